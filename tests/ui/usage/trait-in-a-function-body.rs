use ipc_runtime::{expose, service};

fn main() {
    #[service(namespace = "notes")]
    pub trait Notes {
        async fn get(&self, id: u64) -> String;
    }

    expose! {
        pub struct ViewerApi {
            notes: Notes { get },
        }
    }
}

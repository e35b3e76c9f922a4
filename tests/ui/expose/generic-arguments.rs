use ipc_runtime::{expose, service};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
}

expose! {
    pub struct ViewerApi {
        notes: Notes<u64> { get },
    }
}

fn main() {}

use ipc_runtime::{expose, service};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
}

expose! {
    pub struct ViewerApi {
        notes: Notes { get(id) },
    }
}

fn main() {}

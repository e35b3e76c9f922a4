use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    #[ipc(timeout = 5, rename = "Bad")]
    async fn get(&self, id: u64) -> String;
}

fn main() {}

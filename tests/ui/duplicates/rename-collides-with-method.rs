use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
    #[ipc(rename = "get")]
    async fn fetch(&self, id: u64) -> String;
}

fn main() {}

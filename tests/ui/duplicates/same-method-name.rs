use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    #[ipc(rename = "get-by-id")]
    async fn get(&self, id: u64) -> String;
    #[ipc(rename = "get-by-title")]
    async fn get(&self, title: String) -> String;
}

fn main() {}

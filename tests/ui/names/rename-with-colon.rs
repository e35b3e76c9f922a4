use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    #[ipc(rename = "notes:get")]
    async fn get(&self, id: u64) -> String;
}

fn main() {}

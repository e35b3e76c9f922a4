use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    #[ipc(rename = "")]
    async fn get(&self, id: u64) -> String;
}

fn main() {}

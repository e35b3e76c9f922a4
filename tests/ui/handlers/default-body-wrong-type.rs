use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String {
        id
    }
}

fn main() {}

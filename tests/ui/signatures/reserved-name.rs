use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    async fn new(&self, text: String) -> u64;
}

fn main() {}

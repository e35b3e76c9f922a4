use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    async fn find(&self, text: &str) -> u64;
}

fn main() {}

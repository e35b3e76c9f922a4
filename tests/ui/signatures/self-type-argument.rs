use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    async fn merge(&self, other: Self) -> u64;
}

fn main() {}

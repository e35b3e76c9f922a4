use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    async fn count() -> u64;
}

fn main() {}

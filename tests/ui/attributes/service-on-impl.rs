use ipc_runtime::service;

pub trait Notes {
    async fn count(&self) -> u64;
}

pub struct Handler;

#[service(namespace = "notes")]
impl Notes for Handler {
    async fn count(&self) -> u64 {
        0
    }
}

fn main() {}

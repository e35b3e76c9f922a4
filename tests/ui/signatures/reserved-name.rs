use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    async fn new(&self, text: String) -> u64;
}

#[service(namespace = "drafts")]
pub trait Drafts {
    async fn __new(&self, text: String) -> u64;
}

fn main() {}

use ipc_runtime::service;

#[service(namespace = "files")]
pub trait Files {
    async fn größe(&self, path: String) -> u64;
}

fn main() {}

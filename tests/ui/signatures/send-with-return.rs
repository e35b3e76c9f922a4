use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    #[ipc(send)]
    async fn log(&self, line: String) -> bool;
}

fn main() {}

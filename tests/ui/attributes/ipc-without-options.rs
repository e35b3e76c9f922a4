use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    #[ipc]
    async fn log(&self, line: String);
}

fn main() {}

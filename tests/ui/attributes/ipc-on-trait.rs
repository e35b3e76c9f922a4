use ipc_runtime::service;

#[service(namespace = "notes")]
#[ipc(send)]
pub trait Notes {
    async fn log(&self, line: String);
}

fn main() {}

use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    #[ipc(sned, rename = 5)]
    async fn log(&self, line: String);
}

fn main() {}

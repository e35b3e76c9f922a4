use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    #[ipc(rename = "get_all")]
    async fn all(&self) -> Vec<String>;
}

fn main() {}

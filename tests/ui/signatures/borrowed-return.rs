use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    async fn title(&self) -> &str;
}

fn main() {}

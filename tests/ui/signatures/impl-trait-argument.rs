use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    async fn add(&self, text: impl Into<String>);
}

fn main() {}

use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    async fn add(&mut self, text: String);
}

fn main() {}

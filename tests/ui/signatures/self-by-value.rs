use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    async fn close(self);
}

fn main() {}

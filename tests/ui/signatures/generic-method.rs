use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    async fn get<T>(&self, id: T) -> String;
}

fn main() {}

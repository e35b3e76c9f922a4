use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    #[allow(non_snake_case)]
    async fn getAll(&self) -> Vec<String>;
}

fn main() {}

use ipc_runtime::service;

#[service(namespace = "")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
}

fn main() {}

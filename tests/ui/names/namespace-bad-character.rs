use ipc_runtime::service;

#[service(namespace = "notes.v2")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
}

fn main() {}

use ipc_runtime::service;

#[service(namespace = "store")]
pub trait Store<T> {
    async fn get(&self, id: u64) -> T;
}

fn main() {}

use ipc_runtime::{expose, service};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
    async fn list(&self) -> Vec<u64>;
}

expose! {
    pub struct ViewerApi {
        notes: Notes { get list },
    }
}

fn main() {}

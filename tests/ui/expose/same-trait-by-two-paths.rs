use ipc_runtime::{expose, service};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
    async fn list(&self) -> Vec<u64>;
}

expose! {
    pub struct ViewerApi {
        reader: Notes { get },
        lister: self::Notes { list },
    }
}

fn main() {}

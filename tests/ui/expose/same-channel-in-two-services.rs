use ipc_runtime::{expose, service};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
    async fn list(&self) -> Vec<u64>;
}

// Another trait that, by mistake, took the same namespace.
#[service(namespace = "notes")]
pub trait Archive {
    async fn restore(&self, id: u64);
    #[ipc(rename = "get")]
    async fn fetch(&self, id: u64) -> String;
}

expose! {
    pub struct EditorApi {
        notes: Notes { get, list },
        archive: Archive { restore },
    }
}

fn main() {}

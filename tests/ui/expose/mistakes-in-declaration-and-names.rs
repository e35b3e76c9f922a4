use ipc_runtime::{expose, service};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
    async fn list(&self) -> Vec<u64>;
}

// A mistake in the declaration does not hide a misspelled name: both are
// reported in one compile.
expose! {
    pub struct ViewerApi {
        notes: Notes { get, lsit, get },
    }
}

fn main() {}

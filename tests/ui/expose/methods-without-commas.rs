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

// The API is still there, as meant: using it adds no error.
pub async fn page(api: ViewerApi) -> Option<String> {
    api.notes.get(1).await.ok()
}

fn main() {}

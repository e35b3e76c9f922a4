use ipc_runtime::{service, Main};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
}

// Another trait that, by mistake, took the same namespace.
#[service(namespace = "notes")]
pub trait Archive {
    async fn restore(&self, id: u64);
    #[ipc(rename = "get")]
    async fn fetch(&self, id: u64) -> String;
}

struct Handler;

impl Notes for Handler {
    async fn get(&self, id: u64) -> String {
        id.to_string()
    }
}

impl Archive for Handler {
    async fn restore(&self, _id: u64) {}
    async fn fetch(&self, id: u64) -> String {
        id.to_string()
    }
}

fn main() {
    let _ = Main::builder()
        .service(NotesServer::new(Handler))
        .service(ArchiveServer::new(Handler))
        .build();
}

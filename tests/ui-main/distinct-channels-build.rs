// Services and events traits with distinct channels build and run.
use ipc_runtime::{events, service, Main};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
}

#[service(namespace = "archive")]
pub trait Archive {
    async fn get(&self, id: u64) -> String;
}

#[events(namespace = "notes")]
pub trait NotesEvents {
    fn changed(&self, id: u64);
}

struct Handler;

impl Notes for Handler {
    async fn get(&self, id: u64) -> String {
        id.to_string()
    }
}

impl Archive for Handler {
    async fn get(&self, id: u64) -> String {
        id.to_string()
    }
}

fn main() {
    let main = Main::builder()
        .service(NotesServer::new(Handler))
        .service(ArchiveServer::new(Handler))
        .events::<NotesEventsContract>()
        .build();
    assert!(main.is_ok());
}

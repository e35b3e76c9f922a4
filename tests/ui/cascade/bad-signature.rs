// A borrowed argument is the only error: the handler and the client calls
// written against the trait must not add errors of their own.
use ipc_runtime::{service, Connection, Main};

#[service(namespace = "notes")]
pub trait Notes {
    async fn find(&self, text: &str) -> Vec<u64>;
    async fn count(&self) -> u64;
}

struct Handler;

impl Notes for Handler {
    async fn find(&self, _text: &str) -> Vec<u64> {
        Vec::new()
    }
    async fn count(&self) -> u64 {
        0
    }
}

pub async fn renderer(conn: &Connection) -> u64 {
    let notes = NotesClient::new(conn);
    let found = notes.find("x").await.unwrap_or_default();
    found.len() as u64 + notes.count().await.unwrap_or_default()
}

pub fn main_side() {
    let _main = Main::builder().service(NotesServer::new(Handler)).build();
}

fn main() {}

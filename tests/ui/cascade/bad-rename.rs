// A bad rename is the only error: code that uses the generated client,
// server and contract must not add "cannot find type" errors.
use ipc_runtime::{service, Connection, Main};

#[service(namespace = "notes")]
pub trait Notes {
    #[ipc(rename = "Get Note")]
    async fn get(&self, id: u64) -> String;
}

struct Handler;

impl Notes for Handler {
    async fn get(&self, id: u64) -> String {
        id.to_string()
    }
}

pub async fn renderer(conn: &Connection) -> String {
    let notes = NotesClient::new(conn);
    println!("calling {}", NotesContract::GET);
    notes.get(1).await.unwrap_or_default()
}

pub fn main_side() {
    let _main = Main::builder().service(NotesServer::new(Handler)).build();
}

fn main() {}

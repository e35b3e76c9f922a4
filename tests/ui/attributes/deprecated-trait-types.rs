#![deny(deprecated)]

use ipc_runtime::{service, Main};

#[deprecated(note = "use `NotesV2`")]
#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
}

struct Handler;

#[allow(deprecated)]
impl Notes for Handler {
    async fn get(&self, id: u64) -> String {
        id.to_string()
    }
}

fn main() {
    let _ = Main::builder().service(NotesServer::new(Handler)).build();
}

//! Lint attributes on a contract reach the code generated from it: a
//! deprecated method warns where it is called, not where it is declared,
//! and an `allow` on a method covers its generated copies.
#![deny(warnings)]

use ipc_runtime::{events, service, Main};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
    #[deprecated(note = "use `get`")]
    async fn fetch(&self, id: u64) -> String;
    #[allow(non_snake_case)]
    async fn odd(&self, Weird: u64) -> u64;
}

#[events(namespace = "notes")]
pub trait NotesEvents {
    #[deprecated(note = "listen to `changed`")]
    fn touched(&self, id: u64);
    fn changed(&self, id: u64);
}

struct Handler;

impl Notes for Handler {
    async fn get(&self, id: u64) -> String {
        id.to_string()
    }
    async fn fetch(&self, id: u64) -> String {
        id.to_string()
    }
    #[allow(non_snake_case)]
    async fn odd(&self, Weird: u64) -> u64 {
        Weird
    }
}

fn main() {
    let _ = Main::builder()
        .service(NotesServer::new(Handler))
        .events::<NotesEventsContract>()
        .build();
    let _: Option<NotesClient> = None;
    let _: Option<NotesEventsListener> = None;
}

//! Lint attributes on a contract trait reach the items generated from it:
//! a deprecated trait is declared without a warning and its generated
//! types are deprecated with it (using them warns: allowed here where
//! used), an `allow` on the trait covers the generated items, and an
//! `expect` on a method is fulfilled by the method and covers its copies.
#![deny(warnings)]

use ipc_runtime::{events, service, Main};

#[deprecated(note = "use NotesV2")]
#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
}

#[allow(non_snake_case)]
#[service(namespace = "lint")]
pub trait Lint {
    async fn odd(&self, Weird: u64) -> u64;
}

#[service(namespace = "expect")]
pub trait Expect {
    #[expect(non_snake_case)]
    async fn odd(&self, Weird: u64) -> u64;
}

#[deprecated(note = "listen to NotesEventsV2")]
#[events(namespace = "notes")]
pub trait NotesEvents {
    fn changed(&self, id: u64);
}

struct Handler;

#[allow(deprecated)]
impl Notes for Handler {
    async fn get(&self, id: u64) -> String {
        id.to_string()
    }
}

impl Lint for Handler {
    #[allow(non_snake_case)]
    async fn odd(&self, Weird: u64) -> u64 {
        Weird
    }
}

impl Expect for Handler {
    #[allow(non_snake_case)]
    async fn odd(&self, Weird: u64) -> u64 {
        Weird
    }
}

#[allow(deprecated)]
fn main() {
    let _ = Main::builder()
        .service(NotesServer::new(Handler))
        .service(LintServer::new(Handler))
        .service(ExpectServer::new(Handler))
        .events::<NotesEventsContract>()
        .build();
    let _: Option<NotesClient> = None;
    let _: Option<NotesEventsListener> = None;
}

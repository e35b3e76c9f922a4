//! Default bodies that never reach their end (a `todo!()` placeholder, a
//! body ending in `return`) are ordinary Rust in an `async fn` and must
//! build without a warning (this file denies them).
#![deny(warnings)]

use ipc_runtime::{service, Main};

#[service(namespace = "placeholders")]
pub trait Placeholders {
    async fn later(&self) -> u64 {
        todo!("not written yet")
    }
    async fn ends_in_return(&self, n: u64) -> u64 {
        return n + 1;
    }
}

struct Handler;

impl Placeholders for Handler {}

fn main() {
    let _ = Main::builder().service(PlaceholdersServer::new(Handler));
}

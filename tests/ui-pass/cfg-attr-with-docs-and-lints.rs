//! A `#[cfg_attr]` on a method that adds only doc comments or lint levels
//! cannot change the contract: accepted, and its lint levels cover the
//! generated copies under the same condition (`expect` as `allow`).
#![deny(warnings)]

use ipc_runtime::{service, Main};

#[service(namespace = "notes")]
pub trait Notes {
    #[cfg_attr(any(), doc = "Only in builds that set no condition at all.")]
    async fn a(&self) -> u8;
    #[cfg_attr(all(), allow(non_snake_case))]
    async fn b(&self, Weird: u8) -> u8;
    #[cfg_attr(all(), expect(non_snake_case), doc = "Both kinds.")]
    async fn c(&self, Weird: u8) -> u8;
}

struct Handler;

impl Notes for Handler {
    async fn a(&self) -> u8 {
        1
    }
    #[allow(non_snake_case)]
    async fn b(&self, Weird: u8) -> u8 {
        Weird
    }
    #[allow(non_snake_case)]
    async fn c(&self, Weird: u8) -> u8 {
        Weird
    }
}

fn main() {
    let _ = Main::builder().service(NotesServer::new(Handler)).build();
    let _: Option<NotesClient> = None;
}

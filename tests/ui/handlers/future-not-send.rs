// The handler's mistake is reported on the handler, with a note on the trait
// method (not on the attribute).
use std::rc::Rc;

use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    async fn count(&self) -> u64;
}

struct Handler;

async fn tick() {}

impl Notes for Handler {
    async fn count(&self) -> u64 {
        let local = Rc::new(1);
        tick().await;
        *local
    }
}

fn main() {}

// The handler's mistake is reported on the handler, with a note on the trait
// method (not on the attribute).
use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    async fn count(&self) -> u64;
}

struct Handler;

impl Notes for Handler {
    async fn count(&self) -> u32 {
        0
    }
}

fn main() {}

// A handler written without `async`: the trait's methods are async, so the
// error must point at the handler's return type and say a future is
// expected.
use ipc_runtime::service;

#[service(namespace = "calc")]
pub trait Calc {
    async fn add(&self, a: i32, b: i32) -> i32;
}

struct Handler;

impl Calc for Handler {
    fn add(&self, a: i32, b: i32) -> i32 {
        a + b
    }
}

fn main() {}

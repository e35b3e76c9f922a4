use std::future::Future;

use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    fn count(&self) -> impl Future<Output = u64> + Send;
}

fn main() {}

// A misspelled type is reported once, not once per generated use of it.
use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> Nte;
}

fn main() {}

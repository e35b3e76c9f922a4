use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    fn count(&self) -> u64;
}

fn main() {}

use ipc_runtime::service;

#[service(namespace = "notes")]
pub struct Notes {
    pub count: u64,
}

fn main() {}

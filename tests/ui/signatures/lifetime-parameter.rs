use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    async fn find<'a>(&self, text: Vec<&'a str>) -> u64;
}

fn main() {}

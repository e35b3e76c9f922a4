use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    async fn find(&self, text: str) -> u64;
    async fn bytes(&self) -> [u8];
    async fn lines(&self, lines: Vec<str>) -> Option<[String]>;
}

fn main() {}

use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    async fn find(&self, text: str) -> u64;
    async fn bytes(&self) -> [u8];
    async fn lines(&self, lines: Vec<str>) -> Option<[String]>;
    // `Box<str>` and `Cow<'static, str>` are accepted; `Arc<str>` would
    // need serde's `rc` feature.
    async fn shared(&self, text: std::sync::Arc<str>) -> u64;
    async fn counted(&self) -> std::rc::Rc<[u8]>;
    async fn labels(&self, labels: std::sync::Arc<[&'static str]>) -> u64;
    async fn names(&self) -> Option<[&'static str]>;
}

fn main() {}

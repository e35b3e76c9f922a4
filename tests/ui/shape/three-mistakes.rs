use ipc_runtime::service;

pub struct Note {
    pub text: String,
}

#[service(namespace = "Notes")]
pub trait Notes {
    async fn find(&self, text: &str) -> Vec<u64>;
    async fn get(&self, id: u64) -> Note;
}

fn main() {}

use ipc_runtime::service;
use serde::Serialize;

#[derive(Serialize)]
pub struct Note {
    pub text: String,
}

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> Option<Note>;
}

fn main() {}

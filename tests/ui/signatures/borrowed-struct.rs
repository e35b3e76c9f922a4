use ipc_runtime::service;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Note {
    pub text: String,
}

#[service(namespace = "notes")]
pub trait Notes {
    async fn save(&self, note: &Note) -> u64;
}

fn main() {}

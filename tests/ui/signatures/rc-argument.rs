use std::rc::Rc;

use ipc_runtime::{service, Connection};

#[service(namespace = "notes")]
pub trait Notes {
    async fn tag(&self, name: Rc<String>) -> u64;
}

// Renderer code written against the trait adds no error of its own.
pub async fn renderer(conn: &Connection) -> u64 {
    NotesClient::new(conn).tag(Rc::new("x".into())).await.unwrap_or(0)
}

fn main() {}

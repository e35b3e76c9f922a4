use ipc_runtime::service;

#[derive(Debug)]
pub enum NotesError {
    NotFound,
}

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> Result<String, NotesError>;
}

fn main() {}

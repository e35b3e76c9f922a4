use ipc_runtime::{service, Main};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
}

struct Handler;

impl Notes for Handler {
    async fn get(&self, id: u64) -> String {
        id.to_string()
    }
}

fn main() {
    let _ = Main::builder()
        .service(NotesServer::new(Handler))
        .service(NotesServer::new(Handler))
        .build();
}

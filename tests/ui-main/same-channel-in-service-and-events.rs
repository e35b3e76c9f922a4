use ipc_runtime::{events, service, Main};

#[service(namespace = "notes")]
pub trait Notes {
    async fn changed(&self, id: u64) -> bool;
}

#[events(namespace = "notes")]
pub trait NotesEvents {
    fn changed(&self, id: u64);
}

struct Handler;

impl Notes for Handler {
    async fn changed(&self, _id: u64) -> bool {
        true
    }
}

fn main() {
    let _ = Main::builder()
        .service(NotesServer::new(Handler))
        .events::<NotesEventsContract>()
        .build();
}

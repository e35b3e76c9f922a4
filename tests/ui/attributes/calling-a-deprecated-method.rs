#![deny(deprecated)]

use ipc_runtime::{events, expose, service, Connection};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
    #[deprecated(note = "use `get`")]
    async fn fetch(&self, id: u64) -> String;
}

#[events(namespace = "notes")]
pub trait NotesEvents {
    #[deprecated(note = "listen to `changed`")]
    fn touched(&self, id: u64);
}

async fn renderer(conn: &Connection) {
    let _ = NotesClient::new(conn).fetch(1).await;
    let _ = NotesEventsListener::new(conn).on_touched(|_| {}).await;
    let _ = NotesEventsListener::new(conn).stream_touched().await;
}

expose! {
    /// On its way out.
    #[deprecated(note = "use `NotesClient`")]
    pub struct OldApi {
        notes: Notes { get },
    }
}

fn uses_the_old_api(api: &OldApi) -> ipc_runtime::RendererId {
    api.id()
}

fn main() {
    let _ = uses_the_old_api;
}

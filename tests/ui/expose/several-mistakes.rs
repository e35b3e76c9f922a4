use ipc_runtime::{events, expose, service};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
    async fn list(&self) -> Vec<u64>;
}

#[events(namespace = "notes")]
pub trait NotesEvents {
    fn changed(&self, id: u64);
}

// Every mistake in the declaration is reported in one compile.
expose! {
    pub struct ViewerApi {
        notes: Notes { get, list, get },
        events: NotesEvents {},
        notes: NotesEvents { changed },
    }
}

fn main() {}

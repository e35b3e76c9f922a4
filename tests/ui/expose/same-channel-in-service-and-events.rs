use ipc_runtime::{events, expose, service};

#[service(namespace = "notes")]
pub trait Notes {
    #[ipc(send)]
    async fn changed(&self, id: u64);
}

#[events(namespace = "notes")]
pub trait NotesEvents {
    fn changed(&self, id: u64);
}

expose! {
    pub struct EditorApi {
        notes: Notes { changed },
        events: NotesEvents { changed },
    }
}

fn main() {}

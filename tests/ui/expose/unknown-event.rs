use ipc_runtime::{events, expose};

#[events(namespace = "notes")]
pub trait NotesEvents {
    fn changed(&self, id: u64);
    fn deleted(&self, id: u64);
}

expose! {
    pub struct ViewerApi {
        events: NotesEvents { changed, delete },
    }
}

fn main() {}

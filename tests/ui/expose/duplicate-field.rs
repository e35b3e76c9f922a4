use ipc_runtime::{events, expose, service};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
}

#[events(namespace = "notes")]
pub trait NotesEvents {
    fn changed(&self, id: u64);
}

expose! {
    pub struct ViewerApi {
        notes: Notes { get },
        notes: NotesEvents { changed },
    }
}

fn main() {}

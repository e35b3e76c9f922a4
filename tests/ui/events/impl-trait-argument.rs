use ipc_runtime::events;

#[events(namespace = "notes")]
pub trait NotesEvents {
    fn changed(&self, title: impl ToString);
}

fn main() {}

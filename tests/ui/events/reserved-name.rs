use ipc_runtime::events;

#[events(namespace = "notes")]
pub trait NotesEvents {
    fn new(&self, id: u64);
}

fn main() {}

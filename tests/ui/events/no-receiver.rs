use ipc_runtime::events;

#[events(namespace = "notes")]
pub trait NotesEvents {
    fn changed(id: u64);
}

fn main() {}

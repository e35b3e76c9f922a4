use ipc_runtime::events;

#[events(namespace = "notes")]
pub trait NotesEvents {
    fn changed(&self, id: u64) -> bool;
}

fn main() {}

use ipc_runtime::events;

#[events(namespace = "Notes")]
pub trait NotesEvents {
    fn changed(&self, id: u64);
}

fn main() {}

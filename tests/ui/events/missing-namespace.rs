use ipc_runtime::events;

#[events]
pub trait NotesEvents {
    fn changed(&self, id: u64);
}

fn main() {}

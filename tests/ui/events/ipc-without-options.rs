use ipc_runtime::events;

#[events(namespace = "notes")]
pub trait NotesEvents {
    #[ipc]
    fn changed(&self, id: u64);
}

fn main() {}

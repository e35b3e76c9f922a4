use ipc_runtime::events;

#[events(namespace = "notes")]
pub trait NotesEvents {
    #[ipc(renam = "edited")]
    fn changed(&self, id: u64);
}

fn main() {}

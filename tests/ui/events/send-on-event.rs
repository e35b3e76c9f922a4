use ipc_runtime::events;

#[events(namespace = "notes")]
pub trait NotesEvents {
    #[ipc(send)]
    fn changed(&self, id: u64);
}

fn main() {}

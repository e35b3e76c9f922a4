use ipc_runtime::events;

#[events(namespace = "notes")]
pub trait NotesEvents {
    #[ipc(rename = "notes:changed")]
    fn changed(&self, id: u64);
}

fn main() {}

use ipc_runtime::events;

#[events(namespace = "notes")]
pub trait NotesEvents {
    fn changed(&self, id: u64);
    #[ipc(rename = "changed")]
    fn edited(&self, id: u64);
}

fn main() {}

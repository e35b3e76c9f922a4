use ipc_runtime::events;

#[events(namespace = "notes")]
#[ipc(rename = "notes")]
pub trait NotesEvents {
    fn changed(&self, id: u64);
}

fn main() {}

use ipc_runtime::events;

#[events(namespce = "notes")]
pub trait NotesEvents {
    fn changed(&self, id: u64);
}

fn main() {}

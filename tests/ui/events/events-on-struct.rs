use ipc_runtime::events;

#[events(namespace = "notes")]
pub struct NotesEvents {
    pub id: u64,
}

fn main() {}

use ipc_runtime::events;

#[events(namespace = "notes")]
pub trait NotesEvents {
    fn renamed(&self, title: &str);
}

fn main() {}

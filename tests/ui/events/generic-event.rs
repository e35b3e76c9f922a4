use ipc_runtime::events;

#[events(namespace = "notes")]
pub trait NotesEvents {
    fn changed<T>(&self, value: T);
}

fn main() {}

use ipc_runtime::events;

#[events(namespace = "notes")]
pub trait NotesEvents {
    #[allow(non_snake_case)]
    fn Changed(&self, id: u64);
}

fn main() {}

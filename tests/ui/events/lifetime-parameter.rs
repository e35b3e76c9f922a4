use ipc_runtime::events;

#[events(namespace = "notes")]
pub trait NotesEvents {
    fn renamed<'a>(&self, title: &'a str);
}

fn main() {}

use ipc_runtime::events;

// Every mistake is reported in one compile.
#[events(namespace = "Notes")]
pub trait NotesEvents {
    async fn changed(&self, id: u64);
    fn renamed(&mut self, title: &str) -> bool;
    #[ipc(sned)]
    fn deleted(id: u64);
}

fn main() {}

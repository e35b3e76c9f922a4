use ipc_runtime::{expose, service};

#[service(namespace = "notes", crate = "my facade")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
}

expose! {
    #[ipc(krate = "ipc_runtime")]
    pub struct NotesApi {
        notes: Notes { get },
    }
}

fn main() {}

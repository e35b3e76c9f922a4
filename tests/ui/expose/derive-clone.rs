use ipc_runtime::{expose, service};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
}

expose! {
    #[derive(Clone, Debug)]
    pub struct NotesApi {
        notes: Notes { get },
    }
}

fn main() {}

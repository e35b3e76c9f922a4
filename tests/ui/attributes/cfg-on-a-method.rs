use ipc_runtime::{events, service};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
    #[cfg(feature = "admin")]
    async fn wipe(&self) -> u64;
    #[cfg_attr(unix, ipc(send))]
    async fn log(&self, line: String);
}

#[events(namespace = "notes")]
pub trait NotesEvents {
    #[cfg(feature = "admin")]
    fn wiped(&self);
}

fn main() {}

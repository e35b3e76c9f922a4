use ipc_runtime::events;

#[events(namespace = "files")]
pub trait FilesEvents {
    #[ipc(timeout_secs = 60)]
    fn changed(&self, path: String);
}

fn main() {}

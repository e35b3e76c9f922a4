use ipc_runtime::{expose, service};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
    #[ipc(rename = "whoami")]
    async fn current_user(&self) -> String;
}

expose! {
    pub struct ViewerApi {
        notes: Notes { get, whoami },
    }
}

fn main() {}

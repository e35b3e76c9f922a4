use ipc_runtime::{expose, service};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
    #[ipc(rename = "whoami")]
    async fn current_user(&self) -> String;
    #[ipc(rename = "type")]
    async fn kind(&self) -> u8;
}

expose! {
    pub struct ViewerApi {
        notes: Notes { get, whoami, r#type },
    }
}

fn main() {}

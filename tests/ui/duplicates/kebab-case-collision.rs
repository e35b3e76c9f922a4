use ipc_runtime::service;

#[service(namespace = "notes")]
pub trait Notes {
    async fn get_user(&self, id: u64) -> String;
    #[ipc(rename = "get-user")]
    async fn user(&self, id: u64) -> String;
}

fn main() {}

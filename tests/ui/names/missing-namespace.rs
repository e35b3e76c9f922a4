use ipc_runtime::service;

#[service]
pub trait UserSettings {
    async fn get(&self, key: String) -> String;
}

fn main() {}

use ipc_runtime::service;

#[service(namespace = "store")]
pub trait Store
where
    Self: Send,
{
    async fn get(&self, id: u64) -> String;
}

#[service(namespace = "cache")]
pub trait Cache {
    async fn get(&self, id: u64) -> String
    where
        Self: Sized;
}

fn main() {}

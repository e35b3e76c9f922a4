use ipc_runtime::{expose, service, IpcError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, thiserror::Error)]
#[error("no such note")]
pub struct NotFound;

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> Result<String, NotFound>;
}

expose! {
    pub struct ViewerApi {
        notes: Notes { get },
    }
}

// A method with a typed error returns `CallError<NotFound>`, which `?`
// cannot turn into an `IpcError`: the function must return an error that
// can hold both (`Box<dyn Error>`, `anyhow::Error`, or `CallError<NotFound>`).
async fn first(api: &ViewerApi) -> Result<String, IpcError> {
    let text = api.notes.get(1).await?;
    Ok(text)
}

fn main() {
    let _ = first;
}

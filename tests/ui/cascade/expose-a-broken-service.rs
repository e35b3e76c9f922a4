// A service with a mistake, listed in an `expose!` API that renderer code
// uses: the mistake is the only error.
use ipc_runtime::{expose, service};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
    #[ipc(send)]
    async fn log(&self, line: &str);
}

expose! {
    pub struct ViewerApi {
        notes: Notes { get, log },
    }
}

async fn page(api: ViewerApi) {
    let _ = api.notes.get(1).await;
    let _ = api.notes.log("hello").await;
}

fn main() {
    let _ = page;
}

use ipc_runtime::{expose, service};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
    #[ipc(send)]
    async fn log(&self, line: String);
}

expose! {
    pub struct ViewerApi {
        notes: Notes { get },
    }
}

async fn page(api: ViewerApi) {
    let _ = api.notes.get(1).await;
    let _ = api.notes.log("not exposed".into()).await;
}

fn main() {
    let _ = page;
}

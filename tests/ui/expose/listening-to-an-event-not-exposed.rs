use ipc_runtime::{events, expose};

#[events(namespace = "notes")]
pub trait NotesEvents {
    fn changed(&self, id: u64);
    fn deleted(&self, id: u64);
}

expose! {
    pub struct ViewerApi {
        events: NotesEvents { changed },
    }
}

async fn page(api: ViewerApi) {
    let _ = api.events.on_deleted(|_id| {}).await;
    let _ = api.events.stream_deleted().await;
}

fn main() {
    let _ = page;
}

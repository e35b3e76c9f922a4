// Listening returns a guard, and dropping the guard unsubscribes: the
// warning must say how to keep it, not only that it was dropped.
#![deny(unused_must_use)]

use ipc_runtime::{events, expose, IpcError};

#[events(namespace = "notes")]
pub trait NotesEvents {
    fn changed(&self, id: u64);
}

expose! {
    pub struct ViewerApi {
        events: NotesEvents { changed },
    }
}

async fn page(api: &ViewerApi) -> Result<(), IpcError> {
    api.events.on_changed(|id| println!("note {id} changed")).await?;
    Ok(())
}

fn main() {
    let _ = page;
}

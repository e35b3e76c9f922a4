// `spawn_renderer` returns the child's handle, and dropping the handle
// kills the child: a statement that discards it must not go unnoticed.
#![deny(unused_must_use)]

use ipc_runtime::{expose, service, IpcError, Main};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
}

expose! {
    pub struct ViewerApi {
        notes: Notes { get },
    }
}

async fn open_window(main: &Main) -> Result<(), IpcError> {
    main.spawn_renderer::<ViewerApi>(std::process::Command::new("viewer"), "viewer")
        .await?;
    Ok(())
}

fn main() {
    let _ = open_window;
}

// The generated items are used from other modules, as in a real program:
// a bad namespace must be the only error.
mod api {
    use ipc_runtime::service;

    #[service(namespace = "my notes")]
    pub trait Notes {
        async fn get(&self, id: u64) -> String;
        #[ipc(send)]
        async fn log(&self, line: String);
    }
}

mod renderer {
    use crate::api::{NotesClient, NotesContract};
    use ipc_runtime::Connection;

    pub async fn run(conn: &Connection) -> Result<String, ipc_runtime::IpcError> {
        let notes = NotesClient::new(conn);
        notes.log(format!("calling {}", NotesContract::GET)).await?;
        notes.get(1).await
    }
}

mod main_side {
    use crate::api::{Notes, NotesServer};
    use ipc_runtime::Main;

    struct Handler;

    impl Notes for Handler {
        async fn get(&self, id: u64) -> String {
            id.to_string()
        }
        async fn log(&self, line: String) {
            println!("{line}");
        }
    }

    pub fn build() -> Result<Main, ipc_runtime::IpcError> {
        Main::builder().service(NotesServer::new(Handler)).build()
    }
}

fn main() {
    let _ = (renderer::run, main_side::build);
}

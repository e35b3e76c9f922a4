use ipc_runtime::Main;

mod editor {
    #[ipc_runtime::service(namespace = "editor")]
    pub trait Files {
        async fn open(&self, path: String) -> u64;
    }
}

mod sync {
    // A different trait that happens to have the same name.
    #[ipc_runtime::service(namespace = "sync")]
    pub trait Files {
        async fn upload(&self, path: String);
    }
}

struct Handler;

impl editor::Files for Handler {
    async fn open(&self, _path: String) -> u64 {
        1
    }
}

impl sync::Files for Handler {
    async fn upload(&self, _path: String) {}
}

fn main() {
    let _ = Main::builder()
        .service(editor::FilesServer::new(Handler))
        .service(sync::FilesServer::new(Handler))
        .build();
}

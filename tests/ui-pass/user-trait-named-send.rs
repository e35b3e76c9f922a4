//! A contract whose supertrait is a trait of the user's own called `Send`:
//! the macro still adds the real `Send + Sync + 'static`, so the handler
//! serves renderers from any thread.
#![deny(warnings)]

mod contract {
    /// Not `core::marker::Send`.
    pub trait Send {}
    impl<T: ?Sized> Send for T {}

    #[ipc_runtime::service(namespace = "usersend")]
    pub trait Notes: Send {
        async fn get(&self, id: u64) -> u64;
    }

    pub struct Handler;

    impl Notes for Handler {
        async fn get(&self, id: u64) -> u64 {
            id
        }
    }
}

fn main() {
    let _ = ipc_runtime::Main::builder()
        .service(contract::NotesServer::new(contract::Handler))
        .build();
}

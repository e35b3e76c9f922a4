//! Contracts, APIs and handlers in a `#[no_implicit_prelude]` module: the
//! generated code names everything it uses by full path.
#![deny(warnings)]

#[no_implicit_prelude]
mod contracts {
    use ::ipc_runtime::{events, expose, service};

    #[service(namespace = "notes")]
    pub trait Notes {
        async fn get(&self, id: u64) -> ::std::result::Result<u64, u8>;
        #[ipc(send)]
        async fn log(&self, line: ::std::string::String);
        async fn count(&self) -> u64 {
            1
        }
    }

    #[events(namespace = "notes")]
    pub trait NotesEvents {
        fn changed(&self, id: u64);
    }

    expose! {
        /// Everything.
        pub struct NotesApi {
            notes: Notes { get, log, count },
            events: NotesEvents { changed },
        }
    }

    pub struct Handler;

    impl Notes for Handler {
        async fn get(&self, id: u64) -> ::std::result::Result<u64, u8> {
            ::std::result::Result::Ok(id)
        }

        async fn log(&self, _line: ::std::string::String) {}
    }

    pub fn main_process() -> ::std::result::Result<::ipc_runtime::Main, ::ipc_runtime::IpcError> {
        ::ipc_runtime::Main::builder()
            .service(NotesServer::new(Handler))
            .events::<NotesEventsContract>()
            .build()
    }
}

fn main() {
    let _ = contracts::main_process;
    let _ = <contracts::NotesApi as ipc_runtime::Api>::NAME;
}

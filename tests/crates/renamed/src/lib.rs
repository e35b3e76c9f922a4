//! The macros where the runtime is not reached as `ipc_runtime`: this
//! crate's manifest renames the dependency to `ipc` (found by the macros
//! in the manifest), and a second contract reaches the runtime only through
//! a facade crate's re-export (named with `crate = "..."`).

/// Contracts through the renamed dependency.
pub mod renamed {
    use ipc::{events, expose, service};

    /// A service, its generated code reaching the runtime as `::ipc`.
    #[service(namespace = "renamed")]
    pub trait Notes {
        /// Returns its argument, doubled.
        async fn double(&self, n: u64) -> u64;
    }

    /// Events, likewise.
    #[events(namespace = "renamed")]
    pub trait NotesEvents {
        /// A number.
        fn number(&self, n: u64);
    }

    expose! {
        /// Everything.
        pub struct NotesApi {
            notes: Notes { double },
            events: NotesEvents { number },
        }
    }
}

/// A contract reaching the runtime through a facade crate only.
pub mod facade {
    use ipc_facade::ipc::{expose, service};

    /// A service whose generated code reaches the runtime at
    /// `ipc_facade::ipc`.
    #[service(namespace = "facade", crate = "ipc_facade::ipc")]
    pub trait Counter {
        /// Adds one.
        async fn next(&self, n: u64) -> u64;
    }

    expose! {
        /// The counter.
        #[ipc(crate = "ipc_facade::ipc")]
        pub struct CounterApi {
            counter: Counter { next },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{facade::*, renamed::*};

    struct Handler;

    impl Notes for Handler {
        async fn double(&self, n: u64) -> u64 {
            n * 2
        }
    }

    impl Counter for Handler {
        async fn next(&self, n: u64) -> u64 {
            n + 1
        }
    }

    #[tokio::test]
    async fn contracts_work_through_a_renamed_dependency_and_a_facade() {
        let main = ipc::Main::builder()
            .service(NotesServer::new(Handler))
            .service(CounterServer::new(Handler))
            .events::<NotesEventsContract>()
            .build()
            .unwrap();

        let (main_end, renderer_end) = ipc::transport::memory_pair(64 * 1024);
        let (accepted, api) = tokio::join!(
            main.accept::<NotesApi>(main_end, "renamed"),
            ipc::Connection::builder().connect_as::<NotesApi>(renderer_end)
        );
        accepted.unwrap();
        let api = api.unwrap();
        assert_eq!(api.notes.double(21).await.unwrap(), 42);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _guard = api
            .events
            .on_number(move |n| {
                let _ = tx.send(n);
            })
            .await
            .unwrap();
        NotesEventsEmitter::new(&main, ipc::Target::All).number(7);
        let n = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(n.ok().flatten(), Some(7));

        let (main_end, renderer_end) = ipc::transport::memory_pair(64 * 1024);
        let (accepted, api) = tokio::join!(
            main.accept::<CounterApi>(main_end, "facade"),
            ipc_facade::ipc::Connection::builder().connect_as::<CounterApi>(renderer_end)
        );
        accepted.unwrap();
        assert_eq!(api.unwrap().counter.next(1).await.unwrap(), 2);
    }
}

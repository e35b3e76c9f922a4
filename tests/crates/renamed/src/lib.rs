//! The macros where the runtime is not reached as `ipc_runtime`: this
//! crate's manifest renames the dependency to `ipc` (found by the macros
//! in the manifest), a second contract reaches the runtime only through
//! a facade crate's re-export (named with `crate = "..."`), and a third
//! names it by a path relative to its module (`crate = "rt"` after `use
//! ipc_facade::ipc as rt;`).

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

/// A contract naming the runtime by a path relative to its module: a
/// local import of the facade's re-export.
pub mod local {
    use ipc_facade::ipc as rt;
    use rt::{events, expose, service};

    /// A service whose generated code reaches the runtime at `rt`.
    #[service(namespace = "local", crate = "rt")]
    pub trait Tally {
        /// Adds ten.
        async fn add_ten(&self, n: u64) -> u64;
    }

    /// Events through the same local path.
    #[events(namespace = "local", crate = "rt")]
    pub trait TallyEvents {
        /// A total.
        fn total(&self, n: u64);
    }

    expose! {
        /// The tally.
        #[ipc(crate = "rt")]
        pub struct TallyApi {
            tally: Tally { add_ten },
            events: TallyEvents { total },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{facade::*, local::*, renamed::*};

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

    impl Tally for Handler {
        async fn add_ten(&self, n: u64) -> u64 {
            n + 10
        }
    }

    #[tokio::test]
    async fn contracts_work_through_a_renamed_dependency_and_a_facade() {
        let main = ipc::Main::builder()
            .service(NotesServer::new(Handler))
            .service(CounterServer::new(Handler))
            .service(TallyServer::new(Handler))
            .events::<NotesEventsContract>()
            .events::<TallyEventsContract>()
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

        let (main_end, renderer_end) = ipc::transport::memory_pair(64 * 1024);
        let (accepted, api) = tokio::join!(
            main.accept::<TallyApi>(main_end, "local"),
            ipc::Connection::builder().connect_as::<TallyApi>(renderer_end)
        );
        accepted.unwrap();
        let api = api.unwrap();
        assert_eq!(api.tally.add_ten(1).await.unwrap(), 11);
        let mut totals = api.events.stream_total().await.unwrap();
        TallyEventsEmitter::new(&main, ipc::Target::All).total(3);
        let n = tokio::time::timeout(Duration::from_secs(5), totals.recv()).await;
        assert_eq!(n.ok().flatten(), Some(3));
    }
}

//! A contract written by a `macro_rules!` macro behaves as the same
//! contract written by hand. Fragments such as `$t:ty` and `$ns:literal`
//! reach the attribute macros wrapped in invisible groups: a `Result`
//! passed as `$t:ty` still delivers its error as [`CallError::Handler`], a
//! `()` is still nothing, a namespace passed as `$ns:literal` is still
//! a string, and a `timeout_secs` passed as `$secs:literal` still a number.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use ipc_runtime::{events, expose, service, CallError, Main, Target};
use ipc_suite::connect_memory_as;
use serde::{Deserialize, Serialize};

/// The typed error of `get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("no note {0}")]
pub struct Missing(u64);

macro_rules! store {
    ($name:ident, $events:ident, $ns:literal, $secs:literal, $get:ty, $unit:ty) => {
        /// A store, made by `store!`.
        #[service(namespace = $ns)]
        pub trait $name {
            /// Fails for a missing note.
            #[ipc(timeout_secs = $secs)]
            async fn get(&self, id: u64) -> $get;
            /// Fire and forget, returning `()` through `$unit`.
            #[ipc(send)]
            async fn put(&self, text: String) -> $unit;
        }

        /// The store's events, made by `store!`.
        #[events(namespace = $ns)]
        pub trait $events {
            /// A note was added.
            fn added(&self, id: u64) -> $unit;
        }
    };
}

store!(Notes, NotesEvents, "notes", 60, Result<String, Missing>, ());

expose! {
    /// All of it.
    pub struct NotesApi {
        notes: Notes { get, put },
        events: NotesEvents { added },
    }
}

#[derive(Default)]
struct Handler {
    notes: Mutex<Vec<String>>,
}

impl Notes for Handler {
    async fn get(&self, id: u64) -> Result<String, Missing> {
        let notes = self.notes.lock().unwrap();
        notes.get(id as usize).cloned().ok_or(Missing(id))
    }
    async fn put(&self, text: String) {
        self.notes.lock().unwrap().push(text);
    }
}

#[tokio::test]
async fn a_contract_made_by_macro_rules_works_as_one_written_by_hand() {
    assert_eq!(
        <NotesContract as ipc_runtime::Service>::DESCRIPTOR.namespace,
        "notes"
    );
    let handler = Arc::new(Handler::default());
    let main = Main::builder()
        .service(NotesServer::from_arc(Arc::clone(&handler)))
        .events::<NotesEventsContract>()
        .build()
        .unwrap();
    let api = connect_memory_as::<NotesApi>(&main, "notes").await.unwrap();
    let (tx, mut added) = tokio::sync::mpsc::unbounded_channel();
    let _guard = api
        .events
        .on_added(move |id| {
            let _ = tx.send(id);
        })
        .await
        .unwrap();

    api.notes.put("first".into()).await.unwrap();
    api.flush().await.unwrap();
    let stored = || !handler.notes.lock().unwrap().is_empty();
    assert!(ipc_suite::eventually(Duration::from_secs(5), stored).await);
    assert_eq!(api.notes.get(0).await.unwrap(), "first");
    // The handler's error is the call's typed error, not a value.
    let missing: Result<String, CallError<Missing>> = api.notes.get(7).await;
    assert!(
        matches!(missing, Err(CallError::Handler(Missing(7)))),
        "{missing:?}"
    );

    NotesEventsEmitter::new(&main, Target::All).added(0);
    let id = tokio::time::timeout(Duration::from_secs(5), added.recv()).await;
    assert_eq!(id.ok().flatten(), Some(0));
}

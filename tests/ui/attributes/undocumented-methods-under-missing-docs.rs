//! `missing_docs` reports the methods and events the user left
//! undocumented, as for any trait; the generated items are documented.
#![deny(missing_docs)]

use ipc_runtime::{events, expose, service};

/// Notes.
#[service(namespace = "notes")]
pub trait Notes {
    /// Documented.
    async fn get(&self, id: u64) -> String;
    async fn list(&self) -> Vec<u64>;
}

/// Changes.
#[events(namespace = "notes")]
pub trait NotesEvents {
    fn changed(&self, id: u64);
}

expose! {
    /// A viewer.
    pub struct ViewerApi {
        notes: Notes { get, list },
        events: NotesEvents { changed },
    }
}

fn main() {}

//! Renames whose names would shadow what generated code uses (`str`), a
//! keyword rename, a method called `usize`, and a generic impl over an
//! API field's type: all build without a warning.
#![deny(warnings)]

use ipc_runtime::{expose, service};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
    #[ipc(rename = "str")]
    async fn text(&self) -> String;
    #[ipc(rename = "type")]
    async fn kind(&self) -> u8;
    async fn usize(&self) -> u64;
}

expose! {
    /// Everything.
    pub struct NotesApi {
        notes: Notes { get, text, kind, usize },
    }
}

/// A trait of the user's, implemented for every client type.
pub trait Described {
    /// What it is.
    fn describe(&self) -> &'static str {
        "a notes client"
    }
}

impl<W> Described for notes_methods::Client<W> {}

fn main() {
    let _ = <NotesApi as ipc_runtime::Api>::NAME;
}

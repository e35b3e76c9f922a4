//! Main's side: one module per channel namespace, as the seed recommends
//! (`main/ipc/notes.js`, `config.js`, `window.js`, …). Each module holds a
//! plain struct with the state it is given (a database, a file, `Main`),
//! implementing its namespace's `#[service]` trait from the contract.
//! `main.rs` creates them and registers them; nothing here knows about the
//! others except through what it is handed.

use ipc_runtime::Caller;

// Visible to the namespace modules as `super::contract`.
use super::contract::{self, WindowRef};

pub mod files;
pub mod notes;
pub mod notify;
pub mod settings;
pub mod system;
pub mod windows;

/// The window making the current call, from main's own record of its
/// connection (never from anything the window sent); `None` when main
/// itself is acting.
pub fn caller() -> Option<WindowRef> {
    Caller::current().map(|c| WindowRef {
        id: c.id().get(),
        label: c.label().to_string(),
    })
}

/// Main's log: one line on standard output, next to the windows' lines.
/// A standard output that cannot be written (closed, as by `| head`, or a
/// full disk) loses the line: handlers log after their work is done, and
/// `println!` would panic there, failing a call whose change was made.
pub fn log(line: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "[main] {line}");
}

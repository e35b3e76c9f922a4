//! Typed IPC between a privileged **main** process and untrusted
//! **renderer** processes, in the style of Electron's `ipcMain` /
//! `ipcRenderer`, with the contract checked by the compiler.
//!
//! You write one trait per channel namespace and annotate it with
//! [`#[service]`](service). The macro generates:
//!
//! - `NotesServer<H>`: main-side dispatch to any handler `H: Notes`, a plain
//!   struct that holds its own state (a directory, a database handle);
//! - `NotesClient`: a renderer-side stub with one typed async method per
//!   channel;
//! - `NotesContract`: channel-name constants (`NotesContract::GET ==
//!   "notes:get"`) and the contract descriptor whose fingerprint main and
//!   renderer compare at connect time.
//!
//! | Electron | here |
//! | --- | --- |
//! | `ipcRenderer.invoke` / `ipcMain.handle` | a method (request/reply), returning `T` or `Result<T, E>` |
//! | `ipcRenderer.send` / `ipcMain.on` | a method marked `#[ipc(send)]` (fire and forget, in order) |
//! | channel strings such as `"notes:get"` | `namespace:method`, derived and checked by the macro |
//!
//! # Example
//!
//! ```
//! use ipc_runtime::{service, transport, CallError, Connection, Main};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! pub struct Note { pub id: u64, pub text: String }
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
//! pub enum NotesError {
//!     #[error("note {0} not found")]
//!     NotFound(u64),
//! }
//!
//! #[service(namespace = "notes")]
//! pub trait Notes {
//!     /// Request/reply on channel `notes:get`.
//!     async fn get(&self, id: u64) -> Result<Note, NotesError>;
//!     /// Fire and forget on `notes:log`.
//!     #[ipc(send)]
//!     async fn log(&self, line: String);
//! }
//!
//! // Main side: a plain struct holding its state.
//! struct InMemoryNotes { notes: Vec<Note> }
//!
//! impl Notes for InMemoryNotes {
//!     async fn get(&self, id: u64) -> Result<Note, NotesError> {
//!         self.notes.iter().find(|n| n.id == id).cloned().ok_or(NotesError::NotFound(id))
//!     }
//!     async fn log(&self, line: String) {
//!         println!("renderer says: {line}");
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), ipc_runtime::IpcError> {
//! let main = Main::builder()
//!     .service(NotesServer::new(InMemoryNotes {
//!         notes: vec![Note { id: 1, text: "hello".into() }],
//!     }))
//!     .build()?;
//!
//! // Here the renderer is a task on an in-memory pipe; see
//! // `Main::spawn_renderer` for a child process.
//! let (main_end, renderer_end) = transport::memory_pair(64 * 1024);
//! let (accepted, conn) = tokio::join!(
//!     main.accept(main_end, "editor"),
//!     Connection::builder().service::<NotesContract>().connect(renderer_end),
//! );
//! accepted?;
//! let notes = NotesClient::new(&conn?);
//!
//! assert_eq!(notes.get(1).await.unwrap().text, "hello");
//! // The handler's own error arrives typed, not as a string.
//! match notes.get(7).await {
//!     Err(CallError::Handler(NotesError::NotFound(7))) => {}
//!     other => panic!("unexpected {other:?}"),
//! }
//! notes.log("done".into()).await?;
//! assert_eq!(NotesContract::GET, "notes:get");
//! # Ok(())
//! # }
//! ```
//!
//! # Processes and transports
//!
//! - [`Main::spawn_renderer`] starts a renderer process and hands it its end
//!   of a socket pair by descriptor inheritance; the child calls
//!   [`ConnectionBuilder::connect_inherited`].
//! - [`Main::listen_unix`] listens on a socket in a private (`0700`)
//!   directory; each renderer presents a one-time token from
//!   [`UnixEndpoint::issue_token`](transport::unix::UnixEndpoint::issue_token).
//! - [`transport::memory_pair`] connects main and a renderer in one process.
//!
//! # Calls
//!
//! Many calls can be in flight on one connection; main runs them
//! concurrently. Each call has a timeout (the connection's default, or
//! `client.with_timeout(..)`); dropping a call's future tells main to abort
//! the handler. A panicking handler fails only its own call with
//! [`IpcError::HandlerPanicked`]. Handlers learn who called them with
//! [`Caller::current`]: main's own record of the connection, never
//! something the renderer claims.
//!
//! # Errors
//!
//! Runtime failures are one enum, [`IpcError`]; a method returning
//! `Result<T, E>` delivers `E` as [`CallError::Handler`].

#![warn(missing_docs)]

pub mod codec;
pub mod transport;

mod caller;
mod contract;
mod dispatch;
mod error;
mod frame;
mod main_process;
mod renderer;

pub use caller::{Caller, Peer, RendererId};
pub use contract::{
    method_fingerprint, service_fingerprint, ArgDescriptor, MethodDescriptor, MethodKind, Service,
    ServiceDescriptor,
};
pub use dispatch::{BoxFuture, Dispatch, Outcome};
pub use error::{CallError, IpcError};
pub use frame::PROTOCOL_VERSION;
pub use main_process::{Main, MainBuilder, RendererInfo, DEFAULT_HANDSHAKE_TIMEOUT};
pub use renderer::{ClientCore, Connection, ConnectionBuilder, DEFAULT_CALL_TIMEOUT};
pub use transport::{child::RendererProcess, unix::UnixEndpoint, Transport};

/// Turns a trait into a typed IPC service.
///
/// ```text
/// #[service(namespace = "notes")]
/// pub trait Notes {
///     async fn get(&self, id: u64) -> Result<Note, NotesError>; // "notes:get", request/reply
///     #[ipc(send)]
///     async fn log(&self, line: String);                         // "notes:log", fire and forget
///     #[ipc(rename = "get-user")]
///     async fn get_user(&self) -> User;                          // "notes:get-user"
/// }
/// ```
///
/// Generates `NotesServer`, `NotesClient` and `NotesContract`; see the
/// [crate documentation](crate) for a complete example.
#[doc(inline)]
pub use ipc_macros::service;

/// Default frame-size limits, in bytes.
pub mod limits {
    pub use crate::main_process::DEFAULT_MAX_FRAME_SIZE as MAIN_MAX_FRAME_SIZE;
    pub use crate::renderer::DEFAULT_MAX_FRAME_SIZE as RENDERER_MAX_FRAME_SIZE;
}

/// Items used by macro-generated code. Not public API: may change in any
/// release.
#[doc(hidden)]
pub mod __private {
    pub use crate::{
        contract::{
            service_fingerprint, ArgDescriptor, MethodDescriptor, MethodKind, Service,
            ServiceDescriptor,
        },
        dispatch::{decode_args, BoxFuture, Dispatch, Outcome},
        renderer::{ClientCore, Connection},
        CallError, IpcError,
    };
    pub use bytes::Bytes;
    pub use std::{boxed::Box, future::Future, sync::Arc, time::Duration};

    /// Implemented for every type that can cross the wire.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be sent over IPC: it must implement `serde::Serialize` and `serde::de::DeserializeOwned`",
        label = "used in an IPC method here",
        note = "add `#[derive(serde::Serialize, serde::Deserialize)]` to the type, and make it own its data (no borrowed fields)"
    )]
    pub trait WireType {}
    impl<T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static> WireType for T {}

    /// Compile-time check, spanned on the user's type by the macro.
    pub const fn assert_wire_type<T: WireType + ?Sized>() {}
}

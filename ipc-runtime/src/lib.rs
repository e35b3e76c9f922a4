//! Typed IPC between a privileged **main** process and untrusted
//! **renderer** processes, in the style of Electron's `ipcMain` /
//! `ipcRenderer` and preload scripts, with the contract checked by the
//! compiler.
//!
//! You write one trait per channel namespace:
//!
//! - [`#[service]`](service) on a trait of `async fn`s renderers call on
//!   main. It generates `NotesServer<H>` (main-side dispatch to any handler
//!   `H: Notes`, a plain struct holding its own state), `NotesClient`
//!   (renderer side: one typed async method per channel) and
//!   `NotesContract` (channel constants such as `NotesContract::GET ==
//!   "notes:get"`, and the descriptor whose channels main and renderer
//!   compare at connect time, those the renderer may reach);
//! - [`#[events]`](events) on a trait of events main pushes to renderers.
//!   It generates `NotesEventsEmitter` (main side) and `NotesEventsListener`
//!   (renderer side, with `on_…` methods returning guards);
//! - [`expose!`] declares renderer API types: whitelists of the methods and
//!   events a renderer may reach, enforced by the compiler on the renderer
//!   side and by main on every frame.
//!
//! | Electron | here |
//! | --- | --- |
//! | `ipcRenderer.invoke` / `ipcMain.handle` | a `#[service]` method, returning `T` or `Result<T, E>` |
//! | `ipcRenderer.send` / `ipcMain.on` | a method marked `#[ipc(send)]` (fire and forget, in order; `flush` the API before `std::process::exit`) |
//! | `webContents.send` / `ipcRenderer.on` | an `#[events]` method; listeners return guards |
//! | preload + `contextBridge.exposeInMainWorld` | an `expose!` type, and main accepting the renderer as it |
//! | channel strings such as `"notes:get"` | `namespace:method`, derived and checked by the macros |
//!
//! # Example
//!
//! ```
//! use ipc_runtime::{events, expose, service, transport, CallError, Main, Target};
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
//! #[events(namespace = "notes")]
//! pub trait NotesEvents {
//!     /// Pushed by main on `notes:changed`.
//!     fn changed(&self, note: Note);
//! }
//!
//! expose! {
//!     /// What a read-only window may reach: no `log`.
//!     pub struct ViewerApi {
//!         notes: Notes { get },
//!         events: NotesEvents { changed },
//!     }
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
//!     .events::<NotesEventsContract>()
//!     .build()?;
//!
//! // Here the renderer is a task on an in-memory pipe; see
//! // `Main::spawn_renderer` for a child process.
//! let (main_end, renderer_end) = transport::memory_pair(64 * 1024);
//! let (accepted, api) = tokio::join!(
//!     main.accept::<ViewerApi>(main_end, "viewer"),
//!     ViewerApi::connect(renderer_end),
//! );
//! accepted?;
//! let api = api?;
//!
//! assert_eq!(api.notes.get(1).await.unwrap().text, "hello");
//! // The handler's own error arrives typed, not as a string.
//! match api.notes.get(7).await {
//!     Err(CallError::Handler(NotesError::NotFound(7))) => {}
//!     other => panic!("unexpected {other:?}"),
//! }
//!
//! // Events: listen (dropping the stream unsubscribes), then push. (Or
//! // `on_changed(|note| ...)`, which calls a closure with each one.)
//! let mut changes = api.events.stream_changed().await?;
//! NotesEventsEmitter::new(&main, Target::All).changed(Note { id: 2, text: "new".into() });
//! assert_eq!(changes.recv().await.unwrap().id, 2);
//! assert_eq!(NotesContract::GET, "notes:get");
//! # Ok(())
//! # }
//! ```
//!
//! A method that the API does not expose is not there to call:
//!
//! ```compile_fail
//! # use ipc_runtime::{expose, service};
//! # #[service(namespace = "notes")]
//! # pub trait Notes {
//! #     async fn get(&self, id: u64) -> String;
//! #     #[ipc(send)]
//! #     async fn log(&self, line: String);
//! # }
//! expose! {
//!     pub struct ViewerApi {
//!         notes: Notes { get },
//!     }
//! }
//!
//! async fn page(api: ViewerApi) {
//!     // error[E0277]: `log` is not exposed by `ViewerApi`
//!     //   = note: add it to the `expose!` declaration of `ViewerApi` if this renderer should reach it
//!     api.notes.log("not exposed".into()).await;
//! }
//! # fn main() {}
//! ```
//!
//! # Processes and transports
//!
//! - [`Main::spawn_renderer`] starts a renderer process and hands it its end
//!   of a socket pair by descriptor inheritance; the child connects with
//!   `MyApi::connect_inherited()`.
//! - [`Main::listen_unix`] listens on a socket in a private (`0700`)
//!   directory; each renderer presents a one-time token from
//!   [`UnixEndpoint::issue_token`](transport::unix::UnixEndpoint::issue_token)
//!   and connects with `MyApi::connect_unix(path, token)`.
//! - [`Main::listen_tcp`] does the same on a loopback TCP port, for set-ups
//!   where a Unix socket cannot be shared; the renderer connects with
//!   `MyApi::connect_tcp(addr, token)`.
//! - [`transport::memory_pair`] connects main and a renderer in one process.
//!
//! A common layout is one program with two roles: main starts its own
//! executable again as the renderer, with an argument that says so
//! (`std::process::Command`, not tokio's; the child's standard streams
//! are left as the command sets them):
//!
//! ```no_run
//! use ipc_runtime::{expose, service, Main};
//!
//! #[service(namespace = "app")]
//! pub trait App {
//!     async fn greet(&self, name: String) -> String;
//! }
//!
//! expose! {
//!     pub struct WindowApi {
//!         app: App { greet },
//!     }
//! }
//!
//! struct Greeter;
//!
//! impl App for Greeter {
//!     async fn greet(&self, name: String) -> String {
//!         format!("hello, {name}")
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     if std::env::args().nth(1).as_deref() == Some("--renderer") {
//!         // The child: connect over the socket main handed down.
//!         let api = WindowApi::connect_inherited().await?;
//!         println!("{}", api.app.greet("renderer".into()).await?);
//!         return Ok(());
//!     }
//!     let main = Main::builder().service(AppServer::new(Greeter)).build()?;
//!     let mut command = std::process::Command::new(std::env::current_exe()?);
//!     command.arg("--renderer");
//!     let mut window = main.spawn_renderer::<WindowApi>(command, "window").await?;
//!     window.wait().await?;
//!     Ok(())
//! }
//! ```
//!
//! Lifetimes of processes: dropping a [`RendererProcess`] kills the child,
//! but a renderer whose main dies (killed, crashed, `std::process::exit`)
//! does not die with it: its connection closes, its pending calls fail
//! with [`IpcError::Disconnected`] and `api.closed()` returns. A renderer
//! should end then, for example by running its work in a `tokio::select!`
//! beside `api.closed()`; one that only listens to events and never looks
//! keeps running on its own. The error's [`DisconnectCause`] says why
//! (`IpcError::disconnect_cause`): main shut down or dropped this renderer
//! on purpose, dropped it for breaking a limit, failed, or went without a
//! word (`Lost`: it crashed or was killed). Renderers also stay in main's process group,
//! so a terminal's Ctrl-C reaches them at the same moment as main: to let
//! main close them in order (`tokio::signal::ctrl_c`, then
//! [`Main::close`]), start them in a group of their own with
//! `std::os::unix::process::CommandExt::process_group(0)` on the command.
//!
//! Handlers are `Send + Sync + 'static` and their futures `Send`: main
//! serves every renderer on the tokio runtime it runs on, from any of its
//! threads. Keep shared state behind `Arc`, `Mutex` or `tokio::sync`
//! types, not `Rc` or `RefCell`.
//!
//! Both sides need a tokio runtime with its I/O and time drivers, as
//! `#[tokio::main]` (either flavour) and `Runtime::new` build it; a
//! runtime from `tokio::runtime::Builder` needs `.enable_all()`. Called
//! outside any runtime, the runtime's entry points return
//! [`IpcError::Config`]; in one that lacks a driver, tokio panics at the
//! first connect, listen or accept, naming the driver to enable (tokio
//! offers no way to ask beforehand).
//!
//! # Security model
//!
//! Main is the only trusted party. Each renderer is accepted *as* one
//! `expose!` type, and every frame from it is checked against that type's
//! whitelist before its payload is decoded: a frame for a channel outside it
//! gets [`IpcError::NotAllowed`] and a `tracing` warning with the renderer's
//! id, whatever bytes the renderer sends. Different renderers may be granted
//! different APIs (an editor window, a narrower settings window).
//!
//! # Calls
//!
//! Many calls can be in flight on one connection; main runs those that
//! wait concurrently (see below). Each call has a timeout (the connection's default, or
//! `client.with_timeout(..)`); dropping a call's future tells main to abort
//! the handler. A panicking handler fails only its own call with
//! [`IpcError::HandlerPanicked`]; the panic's message stays in main's log
//! unless [`MainBuilder::forward_failure_details`] sends it on. Handlers learn who called them with
//! [`Caller::current`]: main's own record of the connection, never
//! something the renderer claims.
//!
//! Main runs a handler on the renderer's connection until it first waits
//! (most finish there, with no task of their own), then in a task of its
//! own. A handler that computes for a long time before its first `.await`
//! therefore delays that renderer's next frames. Worse, a handler that
//! blocks its thread (`std::thread::sleep`, a blocking read, a long
//! computation, at any point) holds one of the runtime's worker threads,
//! and with it every connection and timer that thread was serving: other
//! renderers can stall too. As in any async code, await instead of
//! blocking (`tokio::time::sleep`, async I/O) and move blocking work to
//! `tokio::task::spawn_blocking`. The same holds for the callbacks that
//! renderers register for events: they run on the renderer's runtime and
//! must return quickly (hand the event to a channel or a task if it needs
//! more).
//!
//! For large byte payloads, use [`Blob`] rather than `Vec<u8>` or
//! `serde_bytes::ByteBuf`: the same bytes on the wire, but a blob of
//! [`Blob::SHARE_MIN`] bytes or more is handed over from the buffer its
//! frame was read into instead of being copied into a fresh allocation
//! (when it is at least half of that frame), and is sent from its own
//! buffer instead of being copied into the connection's write buffer (an
//! event's is copied once per `emit`, into a buffer its renderers share).
//! An echo of a megabyte makes no copy in user space on either side.
//!
//! # Events
//!
//! `NotesEventsEmitter::new(&main, target)` pushes to one renderer
//! ([`Target::Renderer`]), a group ([`Target::Group`], see
//! [`Main::join_group`]) or all ([`Target::All`]), or to a group or all
//! but one ([`Target::GroupExcept`], [`Target::AllExcept`]: the other
//! windows, given the sender's id from [`Caller::current`]), and only to
//! renderers that listen: main records subscriptions and sends nothing to
//! the others.
//! Events to one renderer arrive in the order main emitted them, and its
//! callbacks run one at a time in that order. Dropping a listener's guard
//! unsubscribes; when a renderer goes away, main drops its subscriptions.
//! A callback that calls main back holds a [`WeakApi`] (the API's
//! `downgrade()`), not the API itself, which would keep its own connection
//! open for as long as the callback is registered.
//! Events and replies travel in order on the wire, but callbacks run on the
//! connection's event task while a reply wakes the code awaiting it: an
//! event a handler emits before returning may be seen by a callback before
//! or after the caller's `.await` resumes. [`Main::subscribed`] waits until
//! a renderer listens, so that nothing emitted afterwards is missed.
//!
//! A handler that pushes events holds an emitter, made before main is
//! built from the builder's [`MainBuilder::main`]:
//!
//! ```
//! use ipc_runtime::{events, service, Main, Target};
//!
//! #[events(namespace = "notes")]
//! pub trait NotesEvents {
//!     fn changed(&self, id: u64);
//! }
//!
//! #[service(namespace = "notes")]
//! pub trait Notes {
//!     async fn touch(&self, id: u64);
//! }
//!
//! struct MyNotes {
//!     changed: NotesEventsEmitter,
//! }
//!
//! impl Notes for MyNotes {
//!     async fn touch(&self, id: u64) {
//!         // To every renderer that listens, the caller included.
//!         self.changed.changed(id);
//!     }
//! }
//!
//! # fn main() -> Result<(), ipc_runtime::IpcError> {
//! let builder = Main::builder();
//! let changed = NotesEventsEmitter::new(&builder.main(), Target::All);
//! let main = builder
//!     .service(NotesServer::new(MyNotes { changed }))
//!     .events::<NotesEventsContract>()
//!     .build()?;
//! # drop(main);
//! # Ok(())
//! # }
//! ```
//!
//! # Errors
//!
//! Runtime failures are one enum, [`IpcError`]; a method returning
//! `Result<T, E>` delivers `E` as [`CallError::Handler`].
//!
//! # Compile-time guarantees
//!
//! The macros check the contract while your code compiles. Each rule below
//! is a compile error on your own tokens that names the problem and what to
//! write instead (the workspace's `tests/ui/` and, for main's builder,
//! `tests/ui-main/` show every message).
//!
//! | rule | refused, for example |
//! | --- | --- |
//! | namespaces and channel names are lowercase words joined by `-` | `#[service(namespace = "My Notes")]`, `#[ipc(rename = "notes:get")]` |
//! | every trait has a namespace | `#[events] pub trait NotesEvents { .. }` |
//! | one channel per method in a trait | `async fn get(..)` beside `#[ipc(rename = "get")] async fn fetch(..)` |
//! | one channel per method across the traits one `expose!` API lists | `Notes::get` and `Archive::fetch` both on `notes:get` |
//! | one channel per method across the services and events traits registered on one main (reported when the program is built: `cargo build` and `cargo test`, not `cargo check`) | `.service(NotesServer::new(h)).service(ArchiveServer::new(h))` with both on `notes:get`; a service registered twice |
//! | `expose!` names traits, methods and events that exist (rustc suggests a similar name when there is one; a name that is not a `#[service]` or `#[events]` trait, such as a struct `Note`, is reported as "no `note_methods`") | `notes: Notes2 { get }`, `notes: Notes { gett }` |
//! | an `expose!` entry lists something, each method once, each trait and field once | `notes: Notes {}`, `Notes { get, get }` |
//! | a renderer calls and listens to only what its API exposes | `api.notes.log(..)` when `ViewerApi` lists `Notes { get }` |
//! | service methods are `async fn`s taking `&self` | `fn get(&self)`, `async fn get(&mut self)`, `async fn get()` |
//! | events are plain `fn`s taking `&self` and returning nothing | `async fn changed(&self)`, `fn changed(&self) -> bool` |
//! | a `send` method returns nothing | `#[ipc(send)] async fn log(&self, line: String) -> bool` |
//! | no type or lifetime parameters, on the trait or its methods | `async fn get<T>(&self, id: T)`, `trait Notes<T>` |
//! | arguments and results are owned, concrete, sized types | `&str`, `&Note`, `impl ToString`, `dyn Display`, `Self`, `str`, `[u8]` |
//! | at most 16 arguments (serde's largest tuple) | `async fn f(&self, a1: u8, /* .. */ a17: u8)` |
//! | arguments and results implement `Serialize` and `Deserialize`, reported on the type (how they use serde is not checked: see [`IpcType`] for what fails at run time) | `async fn get(&self) -> Note` where `Note` derives neither |
//! | only known options, each given once; `send` and `timeout_secs` only on service methods; `timeout_secs` a whole number of seconds, at least 1 | `#[ipc(sned)]` ("did you mean `send`?"), `#[ipc(send, send)]`, `#[ipc(send)]` on an event, `#[ipc(timeout_secs = "5m")]` |
//! | the macros go on traits holding only methods | `#[service] struct Notes`, `type Item;` in a service |
//! | names the generated types use for themselves stay free | a method `new` or `with_timeout`, an event `new`, an `expose!` field `__ipc_connection` |
//! | main and renderers see the same contract in every build | `#[cfg(feature = "admin")]` on one method (put it on the whole trait) |
//!
//! One mistake is one error: next to the errors, the macros emit stand-ins
//! for the items they would have generated (clients, servers, emitters,
//! listeners, API types), so that code using them adds no errors of its
//! own, and every mistake in a trait or an `expose!` shows in the same
//! compile.
//!
//! A method's doc comments, lint levels (`#[allow]`, `#[warn]`, ...;
//! `#[expect]` as `#[allow]`) and `#[deprecated]` carry over to its client,
//! listener and emitter methods: a renderer calling a deprecated method gets
//! the warning. A trait's `#[allow]`s (and `#[expect]`s) cover the items
//! generated from it, and a deprecated trait's generated types are
//! deprecated with it. A method is
//! fallible (its error delivered as [`CallError::Handler`]) when its return
//! type is written `Result<T, E>`; an alias of `Result` is an ordinary
//! value, delivered whole in `Ok`.
//!
//! `expose!` reaches the items `#[service]` and `#[events]` generate next
//! to a trait (`notes_methods` for `Notes`) through the trait's path: in
//! another module, write `api::Notes` in `expose!` (or import
//! `api::notes_methods` along with `api::Notes`). This is also why an
//! entry naming a trait without `#[service]` or `#[events]` is reported as
//! "no `notes_methods`". An IPC trait is declared in a module, not inside a
//! function body: there, the build fails with "cannot find type
//! `Notes_must_be_declared_in_a_module_not_inside_a_function_body`". (A doc
//! test is wrapped in a function unless it has its own `fn main`: give it
//! one.)
//!
//! The generated code reaches this crate under the name your `Cargo.toml`
//! gives it (`ipc = { package = "ipc-runtime", .. }` works as it is). A
//! crate that reaches it only through another crate's re-export (a facade
//! with `pub use ipc_runtime as ipc;`) names that path:
//! `#[service(namespace = "notes", crate = "my_facade::ipc")]`, the same in
//! `#[events(..)]`, and `#[ipc(crate = "my_facade::ipc")]` on each
//! `expose!` struct. The path is read where the macro is called, so a
//! local import works too (`use my_facade::ipc as rt;`, then
//! `crate = "rt"`).

#![warn(missing_docs)]

pub mod codec;
pub mod transport;

mod blob;
mod caller;
mod contract;
mod cpus;
mod deadline;
mod dispatch;
mod error;
mod frame;
mod main_process;
mod renderer;
mod shape;
mod spin;

pub use blob::Blob;
pub use caller::{Caller, Peer, RendererId};
pub use contract::{
    method_fingerprint, service_fingerprint, Api, ArgDescriptor, MethodDescriptor, MethodKind,
    Service, ServiceDescriptor, WireDescription, WireShapes,
};
pub use dispatch::{BoxFuture, Dispatch, Handler, Served};
pub use error::{ApiNotGranted, CallError, DisconnectCause, IpcError};
pub use frame::PROTOCOL_VERSION;
pub use main_process::{
    ContractList, DisconnectReason, Disconnection, EmitterCore, Limits, Main, MainBuilder,
    RendererInfo, RendererStats, SlowConsumer, Target, DEFAULT_FLUSH_REPLIES_EVERY,
    DEFAULT_HANDSHAKE_TIMEOUT,
};
pub use renderer::{
    ClientCore, Connection, ConnectionBuilder, EventStream, ListenerCore, Subscription, WeakApi,
    WeakConnection, DEFAULT_CALL_TIMEOUT,
};
pub use transport::{child::RendererProcess, tcp::TcpEndpoint, unix::UnixEndpoint, Transport};

/// Implemented for every type that can cross the IPC boundary as an
/// argument, a result, a typed error or an event argument: owned
/// `serde::Serialize + serde::Deserialize` types that are `Send + 'static`.
/// There is nothing to implement; the macros check it on each type a
/// contract names, so that a missing derive is reported once, on the type.
///
/// # What serde can describe but IPC cannot carry
///
/// Values cross as bincode, a compact format that is not self-describing:
/// it writes no field names and no type tags, and reads back exactly the
/// shape the type's `Deserialize` asks for. Serde features that need to
/// look at the data to decide what it is cannot work with it, nor can a
/// type whose `Serialize` and `Deserialize` disagree on its shape; no
/// compile-time check can see them (they are attributes on your types):
///
/// | serde feature | what happens | instead |
/// | --- | --- | --- |
/// | `#[serde(tag = "…")]` (internally or adjacently tagged enums), `#[serde(untagged)]`, `serde_json::Value`, adapters that buffer what they read (`serde_with`'s `OneOrMany`, `PickFirst`, …) | every value that reaches it fails to decode, with [`IpcError::BadPayload`] (a [`CodecError::NeedsSelfDescribing`](crate::codec::CodecError::NeedsSelfDescribing) inside: "`Shape` cannot be decoded from the IPC wire format", naming the serde feature); in debug builds the sender refuses it first, with [`IpcError::Encode`] | serde's default, externally tagged enums; JSON as a `String` |
/// | `#[serde(borrow)]` on a field (a `Note<'a>` whose `Cow<'a, str>` borrows from the input), used as `Note<'static>` | does not compile: rustc reports, on the type in the trait, that "implementation of `Deserialize` is not general enough" (each side decodes into new memory, so a value cannot borrow from the frame it came in) | drop `#[serde(borrow)]` (a `Cow<'static, str>` then decodes as owned), or use `String` |
/// | `#[serde(flatten)]` | fails to encode, on the sender (its map has no length up front) | a nested field |
/// | `#[serde(skip_serializing_if = "…")]` on a field of a struct or struct variant | fails to encode, on the sender, whenever the field is skipped, naming it | always encode the field (`Option` is cheap: one byte for `None`); `#[serde(skip)]`, skipped on both sides, is fine |
/// | `#[serde(skip_serializing)]`, `skip_serializing_if` in a tuple struct or tuple variant, `#[serde(skip_deserializing)]` alone, `#[serde(skip)]` on an enum variant followed by others | serde tells the encoder nothing: the receiver reads what follows shifted, and fails to decode ([`IpcError::BadPayload`]) or, worse, decodes a wrong value. In debug builds the round-trip check below refuses on the sender what would decode as another value or break the format (not a shift that fails in serde's own words, such as a variant index out of range) | skip on both sides or not at all; put skipped variants last |
///
/// In debug builds (`debug_assertions`), the generated clients, handlers
/// and emitters also check each value before it leaves: they decode the
/// bytes they encoded and encode the result again. A value whose bytes do
/// not decode as its type for a reason of the format (bincode's own
/// errors, bytes left over, a self-describing format needed), or that
/// comes back as other bytes, not just in another order (a `HashMap`
/// lists its entries in another order in each copy), is refused on the
/// sender with [`IpcError::Encode`] ("`Secret` does not survive the IPC
/// wire format: …"), naming its type. What it cannot judge it lets
/// through, for the receiver: a decode that fails in the type's own words
/// (a validation such as `#[serde(try_from)]`, which may need what only
/// the receiver has, or serde's own, such as a variant index out of
/// range) or at the decoder's limits, a `Serialize` that writes other
/// bytes each time (a nonce, a timestamp), and a panic in the type's
/// code. Values whose encoding is over 64 KiB are not checked, nor are
/// large [`Blob`]s (blobs survive anyway), nor what [`ClientCore`] and
/// [`EmitterCore`] are given directly. The value's own `Serialize` still
/// runs once; the decoded copy's `Deserialize` runs on the sender, its
/// `Serialize` once or twice, and its `Drop` once. A `Deserialize` that
/// normalizes what it reads (trims, lowercases) fails the check for a
/// value not yet normalized, since that value would not arrive as sent:
/// normalize on the sending side too, or turn the check off
/// ([`ConnectionBuilder::check_round_trips`],
/// [`MainBuilder::check_round_trips`]). Release builds never check (the
/// check is compiled out): it costs a decode and an encode per message.
///
/// Three limits of the decoder, which treats what a renderer sends as
/// hostile, also apply to honest values: a value nests at most 128 levels
/// deep (a linked list of `Option<Box<Node>>` longer than that fails), a
/// payload's collections together hold no more items than it has bytes
/// (which only collections of zero-sized items, such as `Vec<()>`, can
/// reach), and its items take at most 32 times its bytes in memory, or
/// 64 MiB if that is more.
///
/// Main does not count a value that no bytes could decode (the first row)
/// as a protocol violation: the contract's types are at fault, not the
/// renderer, and an honest renderer must not be disconnected for them.
/// Every other payload that fails to decode is counted, as main cannot
/// tell it from a hostile one: a garbled value, one over the decoder's
/// limits, and one that a validating `Deserialize` (`#[serde(try_from)]`)
/// refuses. Where honest renderers may send values that fail validation,
/// take the raw value and validate in the handler, returning a typed
/// error.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent over IPC: it must implement `serde::Serialize` and `serde::Deserialize`",
    label = "sent over IPC here",
    note = "derive both with `#[derive(serde::Serialize, serde::Deserialize)]` on the type (one alone is not enough: each side both encodes and decodes it); for a container such as `Vec<T>` or `Option<T>`, on the type inside; a type of another crate that lacks them (such as `std::io::Error`) cannot cross: convert it into a type of your own, or a `String`",
    note = "an IPC type must also own its data and be `Send + 'static` (`String`, not `&str`); `Arc<T>` needs serde's `rc` feature (each side then has its own copy), and `Rc<T>` is not `Send`"
)]
pub trait IpcType {
    /// Named by the macro's check, `<Note as IpcType>::CHECKED`,
    /// spanned on the user's type: an unmet bound is reported there,
    /// with the advice above and nothing else (a function with a
    /// `T: IpcType` bound would add a note pointing into this crate).
    const CHECKED: () = ();
}
// `do_not_recommend`: report "`Note` cannot be sent over IPC" once,
// rather than once per missing serde trait.
#[allow(unknown_or_malformed_diagnostic_attributes)] // before Rust 1.85
#[diagnostic::do_not_recommend]
impl<T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static> IpcType for T {}

/// Turns a trait into a typed IPC service.
///
/// ```text
/// #[service(namespace = "notes")]
/// pub trait Notes {
///     async fn get(&self, id: u64) -> Result<Note, NotesError>; // "notes:get", request/reply
///     #[ipc(send)]
///     async fn log(&self, line: String);                         // "notes:log", fire and forget
///     async fn get_user(&self) -> User;                          // "notes:get-user"
///     #[ipc(rename = "whoami")]
///     async fn current_user(&self) -> User;                      // "notes:whoami"
///     #[ipc(timeout_secs = 600)]
///     async fn pick_file(&self) -> Option<PathBuf>;              // waits up to 10 minutes
/// }
/// ```
///
/// A call waits for its reply at most the connection's `call_timeout` (30
/// seconds unless its `ConnectionBuilder` says otherwise), then fails with
/// [`IpcError::Timeout`] and main cancels its handler. A method whose work
/// legitimately takes longer (a file dialog waiting for the user) declares
/// so with `#[ipc(timeout_secs = N)]`: its calls wait N seconds, or the
/// connection's `call_timeout` if that is longer. A client's
/// `with_timeout` overrides both.
///
/// Generates `NotesServer`, `NotesClient`, `NotesContract` and a module
/// `notes_methods` beside the trait; see the [crate documentation](crate)
/// for a complete example. `NotesServer::new(handler)` serves with a
/// handler of its own; `NotesServer::from_arc(Arc::clone(&handler))`
/// with one main's other code keeps using (the state it serves). Those
/// names are taken in the trait's module: name the handler type otherwise
/// (`FileNotes`, not `NotesServer`, which rustc would report as "defined
/// multiple times" at the attribute).
///
/// The trait gets `Send + Sync + 'static` as supertraits (main serves
/// renderers from any of its runtime's threads, for as long as they stay):
/// a handler owns its state (`Arc<Db>`, not `&Db`); one that borrows
/// (`impl<'a> Notes for Viewer<'a>`) is refused with rustc's "does not
/// fulfill the required lifetime".
#[doc(inline)]
pub use ipc_macros::service;

/// Turns a trait into events that main pushes to renderers
/// (`webContents.send` / `ipcRenderer.on`).
///
/// ```text
/// #[events(namespace = "notes")]
/// pub trait NotesEvents {
///     fn changed(&self, note: Note);   // "notes:changed"
/// }
/// ```
///
/// Generates `NotesEventsEmitter` (main side: `NotesEventsEmitter::new(&main,
/// Target::All).changed(note)`), `NotesEventsListener` (renderer side:
/// `listener.on_changed(|note| ..).await?` returns a guard; dropping it
/// unsubscribes; `listener.stream_changed().await?` returns an
/// [`EventStream`] of the notes instead; an event with several arguments
/// streams them as a tuple), `NotesEventsContract` and the module
/// `notes_events_methods` that `expose!` reaches: for a trait `T`,
/// `TEmitter`, `TListener`, `TContract` and `t_methods`. Register the
/// contract on main with [`MainBuilder::events`].
#[doc(inline)]
pub use ipc_macros::events;

/// Declares renderer API types: the Rust analogue of a preload script's
/// `contextBridge.exposeInMainWorld`.
///
/// ```text
/// expose! {
///     /// What an editor window may reach.
///     pub struct EditorApi {
///         notes: Notes { get, list, log },
///         notes_events: NotesEvents { changed },
///     }
/// }
/// ```
///
/// Each field is the trait's client (or listener) restricted to the listed
/// methods (or events): calling anything else does not compile. Main
/// accepts a renderer *as* one API type (`main.accept::<EditorApi>(..)`,
/// `spawn_renderer::<EditorApi>`, `issue_token::<EditorApi>`) and refuses
/// every frame for a channel outside its list, whatever bytes the renderer
/// sends. The type connects with `EditorApi::connect_inherited()`,
/// `connect_unix(path, token)`, `connect_tcp(addr, token)` or
/// `connect(transport)`; besides its fields it has `id()`, `label()`,
/// `flush()`, `close()`, `closed()` (waits, and says why) and
/// `is_closed()`, and gives no access to the raw connection. It is
/// `Clone`: a clone is another handle on the same connection, for another
/// task.
///
/// Name each trait by its path (`api::Notes`), not through a `use` of the
/// trait alone: `expose!` reaches the `notes_methods` module generated
/// beside the trait by that path, and an imported `Notes` fails with
/// "unresolved import `self::notes_methods`". Import
/// `api::{Notes, notes_methods}` together if you prefer the short name.
/// The same error, "no `note_methods`", means the name is not a
/// `#[service]` or `#[events]` trait: a struct `Note`, or a trait without
/// the attribute. If rustc then suggests another module (`notes_methods`),
/// write that trait's name (`Notes`) instead.
#[doc(inline)]
pub use ipc_macros::expose;

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
            Api, ArgDescriptor, MethodDescriptor, MethodKind, Service, ServiceDescriptor,
            TypeDescription, WireDescription, WireShapes,
        },
        dispatch::{BoxFuture, Dispatch, Handler, Served},
        main_process::{EmitterCore, Main, Target},
        renderer::{
            ClientCore, Connection, ConnectionBuilder, EventStream, ListenerCore, Subscription,
            WeakApi,
        },
        transport::Transport,
        CallError, IpcError, RendererId,
    };
    pub use bytes::Bytes;
    pub use std::{
        boxed::Box, future::Future, marker::PhantomData, path::Path, sync::Arc, sync::OnceLock,
        time::Duration,
    };
    pub use tokio::net::ToSocketAddrs;

    pub use crate::IpcType as WireType;

    /// What a renderer's hello says about contract `d`, to encode: for
    /// tests and fuzz targets that write handshakes by hand.
    pub fn hello_summary(d: &ServiceDescriptor) -> impl serde::Serialize {
        crate::contract::ServiceSummary::of(d)
    }

    /// Runtime calls that add no type errors of their own.
    ///
    /// Generated code never calls a serde-bounded runtime function on the
    /// user's types directly: a type without `Serialize` would then be
    /// reported once per use, at the macro call, on top of the
    /// [`IpcType`](crate::IpcType) error on the type itself. Instead each call is
    /// written `(&&Probe::<Args, T, E>::NEW).invoke(..)`, and method
    /// resolution picks the real implementation (on `&Probe`, with the
    /// runtime's serde bounds) when the types satisfy them, or else the
    /// inert one (on `Probe`, without bounds), which type-checks silently.
    ///
    /// An inert call is therefore chosen only when a type lacks a serde
    /// trait, and then the `IpcType` check of that type fails the build: no
    /// program containing one is ever produced. This holds because every
    /// bound below is implied by `IpcType` on each argument and result
    /// type, given at most 16 arguments (serde's largest tuple), which the
    /// macro enforces.
    ///
    /// The inert futures hold nothing (their arguments are dropped before
    /// they are created), so they are `Send` whatever the types: the boxed
    /// future of a generated client method adds no "cannot be sent between
    /// threads" error to the one on the type.
    pub mod probe {
        use serde::{de::DeserializeOwned, Serialize};
        use std::{future::Future, marker::PhantomData};

        use crate::{
            codec::check_for,
            dispatch::{serve, Handler},
            main_process::EmitterCore,
            renderer::{ClientCore, ListenerCore, Subscription},
            CallError, IpcError,
        };

        /// The types of one call: the argument tuple `A`, the result `T`
        /// and the typed error `E`.
        #[allow(clippy::type_complexity)] // a marker of three types, never a value
        pub struct Probe<A, T = (), E = ()>(PhantomData<fn() -> (A, T, E)>);

        impl<A, T, E> Probe<A, T, E> {
            /// The probe value.
            pub const NEW: Self = Probe(PhantomData);
        }

        /// What an inert call returns, should one ever run.
        fn inert() -> IpcError {
            IpcError::protocol(
                "internal error: a call whose types #[service] could not check was compiled; please report this bug",
            )
        }

        /// A request/reply call.
        pub trait Invoke<A, T> {
            /// Calls `channel` and waits for the reply.
            fn invoke(
                &self,
                core: &ClientCore,
                channel: &'static str,
                args: A,
            ) -> impl Future<Output = Result<T, IpcError>>;
        }

        impl<A: Serialize + DeserializeOwned, T: DeserializeOwned> Invoke<A, T> for &Probe<A, T> {
            async fn invoke(
                &self,
                core: &ClientCore,
                channel: &'static str,
                args: A,
            ) -> Result<T, IpcError> {
                core.invoke_checked(channel, &args, check_for::<A>()).await
            }
        }

        /// The inert [`Invoke`].
        pub trait InvokeInert<A, T> {
            /// Never called in a built program.
            fn invoke(
                &self,
                core: &ClientCore,
                channel: &'static str,
                args: A,
            ) -> impl Future<Output = Result<T, IpcError>>;
        }

        impl<A, T> InvokeInert<A, T> for Probe<A, T> {
            // Not an `async fn`, which would hold its arguments (see above).
            #[allow(clippy::manual_async_fn)]
            fn invoke(
                &self,
                _: &ClientCore,
                _: &'static str,
                _: A,
            ) -> impl Future<Output = Result<T, IpcError>> {
                async { Err(inert()) }
            }
        }

        /// A request/reply call with a typed error.
        pub trait InvokeFallible<A, T, E> {
            /// Calls `channel` and waits for the reply or the typed error.
            fn invoke_fallible(
                &self,
                core: &ClientCore,
                channel: &'static str,
                args: A,
            ) -> impl Future<Output = Result<T, CallError<E>>>;
        }

        impl<A: Serialize + DeserializeOwned, T: DeserializeOwned, E: DeserializeOwned>
            InvokeFallible<A, T, E> for &Probe<A, T, E>
        {
            async fn invoke_fallible(
                &self,
                core: &ClientCore,
                channel: &'static str,
                args: A,
            ) -> Result<T, CallError<E>> {
                core.invoke_fallible_checked(channel, &args, check_for::<A>())
                    .await
            }
        }

        /// The inert [`InvokeFallible`].
        pub trait InvokeFallibleInert<A, T, E> {
            /// Never called in a built program.
            fn invoke_fallible(
                &self,
                core: &ClientCore,
                channel: &'static str,
                args: A,
            ) -> impl Future<Output = Result<T, CallError<E>>>;
        }

        impl<A, T, E> InvokeFallibleInert<A, T, E> for Probe<A, T, E> {
            // Not an `async fn`, which would hold its arguments (see above).
            #[allow(clippy::manual_async_fn)]
            fn invoke_fallible(
                &self,
                _: &ClientCore,
                _: &'static str,
                _: A,
            ) -> impl Future<Output = Result<T, CallError<E>>> {
                async { Err(CallError::Ipc(inert())) }
            }
        }

        /// A fire-and-forget message.
        pub trait SendMessage<A> {
            /// Sends on `channel` without waiting for a handler.
            fn send(
                &self,
                core: &ClientCore,
                channel: &'static str,
                args: A,
            ) -> impl Future<Output = Result<(), IpcError>>;
        }

        impl<A: Serialize + DeserializeOwned> SendMessage<A> for &Probe<A> {
            async fn send(
                &self,
                core: &ClientCore,
                channel: &'static str,
                args: A,
            ) -> Result<(), IpcError> {
                core.send_checked(channel, &args, check_for::<A>()).await
            }
        }

        /// The inert [`SendMessage`].
        pub trait SendMessageInert<A> {
            /// Never called in a built program.
            fn send(
                &self,
                core: &ClientCore,
                channel: &'static str,
                args: A,
            ) -> impl Future<Output = Result<(), IpcError>>;
        }

        impl<A> SendMessageInert<A> for Probe<A> {
            // Not an `async fn`, which would hold its arguments (see above).
            #[allow(clippy::manual_async_fn)]
            fn send(
                &self,
                _: &ClientCore,
                _: &'static str,
                _: A,
            ) -> impl Future<Output = Result<(), IpcError>> {
                async { Err(inert()) }
            }
        }

        /// The wire shape of one type, for the handshake.
        pub trait Shapes {
            /// Traces the wire shape of `A` (named so that no method of a
            /// user's trait in scope takes its place).
            fn __ipc_shape(&self) -> Option<u64>;
        }

        impl<A: DeserializeOwned> Shapes for &Probe<A> {
            fn __ipc_shape(&self) -> Option<u64> {
                crate::shape::trace::<A>()
            }
        }

        /// The inert [`Shapes`].
        pub trait ShapesInert {
            /// Never called in a built program.
            fn __ipc_shape(&self) -> Option<u64>;
        }

        impl<A> ShapesInert for Probe<A> {
            fn __ipc_shape(&self) -> Option<u64> {
                None
            }
        }

        /// The wire shape of one type as a tree, for a handshake mismatch.
        pub trait Describe {
            /// Describes the wire shape of `A` (named so that no method of
            /// a user's trait in scope takes its place).
            fn __ipc_describe(&self) -> Option<crate::contract::TypeDescription>;
        }

        impl<A: DeserializeOwned> Describe for &Probe<A> {
            fn __ipc_describe(&self) -> Option<crate::contract::TypeDescription> {
                crate::shape::describe::<A>().map(crate::contract::TypeDescription)
            }
        }

        /// The inert [`Describe`].
        pub trait DescribeInert {
            /// Never called in a built program.
            fn __ipc_describe(&self) -> Option<crate::contract::TypeDescription>;
        }

        impl<A> DescribeInert for Probe<A> {
            fn __ipc_describe(&self) -> Option<crate::contract::TypeDescription> {
                None
            }
        }

        /// A push of event arguments `A` from main.
        pub trait Emit<A> {
            /// Pushes on `channel`; returns how many renderers it was
            /// queued for.
            fn emit(&self, core: &EmitterCore, channel: &'static str, args: A) -> usize;
        }

        impl<A: Serialize + DeserializeOwned> Emit<A> for &Probe<A> {
            fn emit(&self, core: &EmitterCore, channel: &'static str, args: A) -> usize {
                core.emit_checked(channel, &args, check_for::<A>())
            }
        }

        /// The inert [`Emit`].
        pub trait EmitInert<A> {
            /// Never called in a built program.
            fn emit(&self, core: &EmitterCore, channel: &'static str, args: A) -> usize;
        }

        impl<A> EmitInert<A> for Probe<A> {
            fn emit(&self, _: &EmitterCore, _: &'static str, _: A) -> usize {
                0
            }
        }

        /// A renderer-side listener of event arguments `A`.
        pub trait Listen<A> {
            /// Calls `f` with each event on `channel`.
            fn on<F: FnMut(A) + Send + 'static>(
                &self,
                core: &ListenerCore,
                channel: &'static str,
                f: F,
            ) -> impl Future<Output = Result<Subscription, IpcError>>;
        }

        impl<A: DeserializeOwned + Send + 'static> Listen<A> for &Probe<A> {
            async fn on<F: FnMut(A) + Send + 'static>(
                &self,
                core: &ListenerCore,
                channel: &'static str,
                f: F,
            ) -> Result<Subscription, IpcError> {
                core.on::<A, F>(channel, f).await
            }
        }

        /// The inert [`Listen`].
        pub trait ListenInert<A> {
            /// Never called in a built program.
            fn on<F: FnMut(A) + Send + 'static>(
                &self,
                core: &ListenerCore,
                channel: &'static str,
                f: F,
            ) -> impl Future<Output = Result<Subscription, IpcError>>;
        }

        impl<A> ListenInert<A> for Probe<A> {
            // Not an `async fn`, which would hold its arguments (see above).
            #[allow(clippy::manual_async_fn)]
            fn on<F: FnMut(A) + Send + 'static>(
                &self,
                _: &ListenerCore,
                _: &'static str,
                _: F,
            ) -> impl Future<Output = Result<Subscription, IpcError>> {
                async { Err(inert()) }
            }
        }

        /// Main's side of a method returning `T` (or nothing: `T = ()`).
        pub trait Serve<A, T> {
            /// Decodes the arguments, runs `handler` on them and encodes
            /// its result.
            fn serve<F, Fut>(&self, payload: bytes::Bytes, handler: F) -> Handler
            where
                F: FnOnce(A) -> Fut + Send + 'static,
                Fut: Future<Output = T> + Send + 'static;
        }

        impl<A, T> Serve<A, T> for &Probe<A, T>
        where
            A: DeserializeOwned + Send + 'static,
            T: Serialize + DeserializeOwned + Send + 'static,
        {
            fn serve<F, Fut>(&self, payload: bytes::Bytes, handler: F) -> Handler
            where
                F: FnOnce(A) -> Fut + Send + 'static,
                Fut: Future<Output = T> + Send + 'static,
            {
                serve(payload, move |args| async move {
                    Ok::<T, ()>(handler(args).await)
                })
            }
        }

        /// The inert [`Serve`].
        pub trait ServeInert<A, T> {
            /// Never called in a built program.
            fn serve<F, Fut>(&self, payload: bytes::Bytes, handler: F) -> Handler
            where
                F: FnOnce(A) -> Fut + Send + 'static,
                Fut: Future<Output = T> + Send + 'static;
        }

        impl<A, T> ServeInert<A, T> for Probe<A, T> {
            fn serve<F, Fut>(&self, _: bytes::Bytes, _: F) -> Handler
            where
                F: FnOnce(A) -> Fut + Send + 'static,
                Fut: Future<Output = T> + Send + 'static,
            {
                Handler::failed(inert())
            }
        }

        /// Main's side of a method returning `Result<T, E>`.
        pub trait ServeFallible<A, T, E> {
            /// Decodes the arguments, runs `handler` on them and encodes
            /// its value or its typed error.
            fn serve_fallible<F, Fut>(&self, payload: bytes::Bytes, handler: F) -> Handler
            where
                F: FnOnce(A) -> Fut + Send + 'static,
                Fut: Future<Output = Result<T, E>> + Send + 'static;
        }

        impl<A, T, E> ServeFallible<A, T, E> for &Probe<A, T, E>
        where
            A: DeserializeOwned + Send + 'static,
            T: Serialize + DeserializeOwned + Send + 'static,
            E: Serialize + DeserializeOwned + Send + 'static,
        {
            fn serve_fallible<F, Fut>(&self, payload: bytes::Bytes, handler: F) -> Handler
            where
                F: FnOnce(A) -> Fut + Send + 'static,
                Fut: Future<Output = Result<T, E>> + Send + 'static,
            {
                serve(payload, handler)
            }
        }

        /// The inert [`ServeFallible`].
        pub trait ServeFallibleInert<A, T, E> {
            /// Never called in a built program.
            fn serve_fallible<F, Fut>(&self, payload: bytes::Bytes, handler: F) -> Handler
            where
                F: FnOnce(A) -> Fut + Send + 'static,
                Fut: Future<Output = Result<T, E>> + Send + 'static;
        }

        impl<A, T, E> ServeFallibleInert<A, T, E> for Probe<A, T, E> {
            fn serve_fallible<F, Fut>(&self, _: bytes::Bytes, _: F) -> Handler
            where
                F: FnOnce(A) -> Fut + Send + 'static,
                Fut: Future<Output = Result<T, E>> + Send + 'static,
            {
                Handler::failed(inert())
            }
        }
    }

    /// Compile-time checks that `expose!` runs over the contracts an API
    /// lists.
    ///
    /// Channel names are strings, which the trait system cannot compare, so
    /// these are `const fn`s evaluated in a `const _: () = { ... };` item
    /// that `expose!` spans on the user's entry. A clash makes that constant
    /// `panic!` with a message built here from both descriptors (a `const`
    /// panic can only print a `&str`, so the message is assembled in a fixed
    /// buffer rather than with `format!`).
    pub mod check {
        use crate::contract::ServiceDescriptor;

        /// A message assembled at compile time, for `panic!("{}", ..)` in a
        /// constant. Longer messages are cut at [`Message::CAPACITY`] bytes.
        #[derive(Debug, Clone, Copy)]
        pub struct Message {
            buf: [u8; Message::CAPACITY],
            len: usize,
        }

        impl Message {
            /// The most bytes a message holds.
            pub const CAPACITY: usize = 1024;

            const fn new() -> Self {
                Message {
                    buf: [0; Message::CAPACITY],
                    len: 0,
                }
            }

            const fn push(mut self, text: &str) -> Self {
                let bytes = text.as_bytes();
                let mut i = 0;
                while i < bytes.len() && self.len < Message::CAPACITY {
                    self.buf[self.len] = bytes[i];
                    self.len += 1;
                    i += 1;
                }
                self
            }

            /// The message (up to the last whole character, if it was cut).
            pub const fn as_str(&self) -> &str {
                let (text, _) = self.buf.split_at(self.len);
                match core::str::from_utf8(text) {
                    Ok(text) => text,
                    Err(e) => {
                        let (text, _) = text.split_at(e.valid_up_to());
                        match core::str::from_utf8(text) {
                            Ok(text) => text,
                            Err(_) => "",
                        }
                    }
                }
            }
        }

        const fn same(a: &str, b: &str) -> bool {
            let (a, b) = (a.as_bytes(), b.as_bytes());
            if a.len() != b.len() {
                return false;
            }
            let mut i = 0;
            while i < a.len() {
                if a[i] != b[i] {
                    return false;
                }
                i += 1;
            }
            true
        }

        /// Whether `a` and `b` describe one trait (listed twice, by two
        /// paths): same name, namespace, methods and channels.
        const fn same_contract(a: &ServiceDescriptor, b: &ServiceDescriptor) -> bool {
            if !same(a.name, b.name)
                || !same(a.namespace, b.namespace)
                || a.methods.len() != b.methods.len()
            {
                return false;
            }
            let mut i = 0;
            while i < a.methods.len() {
                let (x, y) = (&a.methods[i], &b.methods[i]);
                if !same(x.name, y.name) || !same(x.channel, y.channel) {
                    return false;
                }
                i += 1;
            }
            true
        }

        /// The channel of the method or event called `name` in `contract`,
        /// or `""` if it has none: `expose!` imports the marker of every
        /// listed name, so a missing one has already been reported there,
        /// and an empty channel only stands in while the build fails.
        pub const fn channel_of(contract: &'static ServiceDescriptor, name: &str) -> &'static str {
            let mut i = 0;
            while i < contract.methods.len() {
                if same(contract.methods[i].name, name) {
                    return contract.methods[i].channel;
                }
                i += 1;
            }
            ""
        }

        /// If contracts `a` and `b`, listed together in the API called
        /// `api`, define the same channel, the error to report: which
        /// methods, which channel, and what to do.
        pub const fn channel_clash(
            api: &str,
            a: &ServiceDescriptor,
            b: &ServiceDescriptor,
        ) -> Option<Message> {
            if same_contract(a, b) {
                return Some(
                    Message::new()
                        .push("`")
                        .push(a.name)
                        .push("` has two entries in `")
                        .push(api)
                        .push("`: list all its methods in one entry"),
                );
            }
            let Some((i, j)) = shared_channel(a, b) else {
                return None;
            };
            Some(
                both_use(a, i, b, j)
                    .push("`, and `")
                    .push(api)
                    .push("` lists both traits; main could not tell their frames apart. ")
                    .push(RENAME_ADVICE),
            )
        }

        const RENAME_ADVICE: &str =
            "Give one trait another namespace, or one method another channel \
                                     with #[ipc(rename = \"...\")]";

        /// "`A::x` and `B::y` both use the channel `c" (the caller goes on).
        const fn both_use(
            a: &ServiceDescriptor,
            i: usize,
            b: &ServiceDescriptor,
            j: usize,
        ) -> Message {
            Message::new()
                .push("`")
                .push(a.name)
                .push("::")
                .push(a.methods[i].name)
                .push("` and `")
                .push(b.name)
                .push("::")
                .push(b.methods[j].name)
                .push("` both use the channel `")
                .push(a.methods[i].channel)
        }

        /// The first pair of methods (by index) of `a` and `b` that use the
        /// same channel.
        const fn shared_channel(
            a: &ServiceDescriptor,
            b: &ServiceDescriptor,
        ) -> Option<(usize, usize)> {
            let mut i = 0;
            while i < a.methods.len() {
                let mut j = 0;
                while j < b.methods.len() {
                    if same(a.methods[i].channel, b.methods[j].channel) {
                        return Some((i, j));
                    }
                    j += 1;
                }
                i += 1;
            }
            None
        }

        /// The contracts registered on a [`MainBuilder`](crate::MainBuilder),
        /// as a list built at compile time from its type parameter.
        #[derive(Debug)]
        pub enum List {
            /// No contract.
            Nil,
            /// The last contract registered, and the ones before it.
            Cons(&'static ServiceDescriptor, &'static List),
        }

        /// A list of contracts as a type: `()`, or `(Last, Earlier)`.
        /// [`MainBuilder`](crate::MainBuilder) builds one as services and
        /// events traits are registered.
        pub trait Contracts {
            /// The list.
            const LIST: &'static List;
            /// Evaluating it fails the build if two contracts in the list
            /// define the same channel (or one is listed twice).
            const CHECK: ();
        }

        impl Contracts for () {
            const LIST: &'static List = &List::Nil;
            const CHECK: () = ();
        }

        impl<C: crate::Service, Earlier: Contracts> Contracts for (C, Earlier) {
            const LIST: &'static List = &List::Cons(C::DESCRIPTOR, Earlier::LIST);
            const CHECK: () = {
                #[allow(clippy::let_unit_value)]
                let () = Earlier::CHECK;
                if let Some(message) = registered_clash(C::DESCRIPTOR, Earlier::LIST) {
                    panic!("{}", message.as_str());
                }
            };
        }

        /// If `contract` defines a channel that a contract in `earlier`
        /// defines too (or is in `earlier` itself), the error to report.
        const fn registered_clash(contract: &ServiceDescriptor, earlier: &List) -> Option<Message> {
            let mut rest = earlier;
            while let List::Cons(other, tail) = rest {
                if same(contract.name, other.name) && !same_contract(contract, other) {
                    return Some(
                        Message::new()
                            .push("two different traits named `")
                            .push(contract.name)
                            .push("` are registered on this main, which tells contracts apart by name: rename one"),
                    );
                }
                if same_contract(contract, other) {
                    return Some(
                        Message::new()
                            .push("`")
                            .push(contract.name)
                            .push("` is registered twice on this main: register each service or events trait once"),
                    );
                }
                if let Some((x, y)) = shared_channel(other, contract) {
                    return Some(
                        both_use(other, x, contract, y)
                            .push("`, and both traits are registered on this main, which could not tell their frames apart. ")
                            .push(RENAME_ADVICE),
                    );
                }
                rest = tail;
            }
            None
        }
    }

    pub use crate::whitelist::{Allows, Everything};
}

/// The whitelist parameter `W` of generated clients and listeners
/// (`NotesClient<W>`, `NotesEventsListener<W>`), which the signatures of
/// their methods name.
///
/// A client built straight from a connection (`NotesClient::new(&conn)`)
/// has `W = Everything` and can call every method. The fields of an
/// `expose!` type have the API type itself as `W`, and `expose!` writes one
/// `Allows<marker>` impl per listed method (the markers are the unit
/// structs in `notes_methods`): a method outside the list has no impl, so
/// calling it does not compile ("`delete` is not exposed by `ViewerApi`").
pub mod whitelist {
    /// `W: Allows<M>`: the API `W` exposes method or event `M` (a marker
    /// type generated next to the trait). `expose!` writes the impls;
    /// implementing it by hand widens a whitelist that main still checks.
    #[diagnostic::on_unimplemented(
        message = "`{M}` is not exposed by `{Self}`",
        label = "not in the `expose!` whitelist of `{Self}`",
        note = "add it to the `expose!` declaration of `{Self}` if this renderer should reach it"
    )]
    pub trait Allows<M> {}

    /// The whitelist of a client built straight from a connection: every
    /// method of the service.
    #[derive(Debug, Clone, Copy)]
    pub struct Everything;
    impl<M> Allows<M> for Everything {}
}

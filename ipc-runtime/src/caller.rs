//! Who is calling: main's own record of a renderer connection.

use std::{
    collections::HashSet,
    fmt,
    sync::{Arc, Mutex},
};

/// A renderer connection's id, assigned by main and unique for the life of
/// a [`Main`](crate::Main).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RendererId(pub(crate) u64);

impl RendererId {
    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RendererId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "renderer#{}", self.0)
    }
}

/// What the operating system says about the process at the other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Peer {
    /// The peer's process id, when known (the type of
    /// [`std::process::Child::id`]).
    pub pid: Option<u32>,
    /// The peer's user id, when known (`SO_PEERCRED` on a Unix socket; for
    /// a spawned renderer, its process's owner, on Linux).
    pub uid: Option<u32>,
}

/// The renderer that made the current call, as main recorded it.
///
/// Everything here comes from main's own record of the connection (the id
/// and label main assigned, the credentials the OS reported), never from
/// bytes the renderer sent. Inside a handler, get it with
/// [`Caller::current`].
#[derive(Debug, Clone)]
pub struct Caller {
    pub(crate) id: RendererId,
    pub(crate) label: Arc<str>,
    pub(crate) peer: Option<Peer>,
    /// The connection's groups, shared with main's record of it: what
    /// `Main::join_group` and `leave_group` change.
    pub(crate) groups: Arc<Mutex<HashSet<String>>>,
}

/// Two callers are equal if they are the same connection (with the same
/// label and credentials); groups change over a connection's life and are
/// not compared.
impl PartialEq for Caller {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.label == other.label && self.peer == other.peer
    }
}

impl Eq for Caller {}

// Set while a handler is polled: a pointer to the connection's record, so
// that entering it costs no clone.
scoped_tls::scoped_thread_local!(static CALLER: Caller);

impl Caller {
    /// The caller of the handler being run, or `None` outside a handler
    /// invoked by main (for example when a test calls the handler directly,
    /// or in a task the handler spawned: spawned tasks do not inherit it,
    /// so pass the `Caller` along).
    ///
    /// A chat window's message, passed on to every other window, with only
    /// editors allowed to post:
    ///
    /// ```
    /// use ipc_runtime::{events, service, Caller, Main, Target};
    ///
    /// #[service(namespace = "chat")]
    /// pub trait Chat {
    ///     async fn post(&self, text: String) -> Result<(), String>;
    /// }
    ///
    /// #[events(namespace = "chat")]
    /// pub trait ChatEvents {
    ///     fn posted(&self, from: String, text: String);
    /// }
    ///
    /// pub struct Room {
    ///     main: Main,
    /// }
    ///
    /// impl Chat for Room {
    ///     async fn post(&self, text: String) -> Result<(), String> {
    ///         let caller = Caller::current().ok_or("not called by a renderer")?;
    ///         if !caller.in_group("editors") {
    ///             return Err(format!("{} may not post", caller.label()));
    ///         }
    ///         let others = Target::AllExcept(caller.id());
    ///         ChatEventsEmitter::new(&self.main, others).posted(caller.label().into(), text);
    ///         Ok(())
    ///     }
    /// }
    ///
    /// fn main() -> Result<(), ipc_runtime::IpcError> {
    ///     let builder = Main::builder();
    ///     let room = Room { main: builder.main() };
    ///     let main = builder
    ///         .service(ChatServer::new(room))
    ///         .events::<ChatEventsContract>()
    ///         .build()?;
    ///     // … accept or spawn renderers, and `main.join_group(id, "editors")`.
    /// #   drop(main);
    ///     Ok(())
    /// }
    /// ```
    pub fn current() -> Option<Caller> {
        CALLER.is_set().then(|| CALLER.with(Clone::clone))
    }

    /// The connection's id.
    pub fn id(&self) -> RendererId {
        self.id
    }

    /// The label main gave the connection when it accepted it.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The peer process's credentials, when the transport reports them.
    pub fn peer(&self) -> Option<Peer> {
        self.peer
    }

    /// The groups main has put the connection in
    /// ([`Main::join_group`](crate::Main::join_group)), sorted, as they
    /// are now.
    pub fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = self.lock_groups().iter().cloned().collect();
        groups.sort();
        groups
    }

    /// Whether main has put the connection in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.lock_groups().contains(group)
    }

    /// Puts the connection in `group`; `false` if it was already there.
    pub(crate) fn join(&self, group: &str) -> bool {
        self.lock_groups().insert(group.to_string())
    }

    /// Takes the connection out of `group`; `false` if it was not there.
    pub(crate) fn leave(&self, group: &str) -> bool {
        self.lock_groups().remove(group)
    }

    fn lock_groups(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // Each critical section is one set operation: never inconsistent.
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` (one poll of a handler) with `self` as the current caller.
    /// Main enters it around every poll, inline or in the call's task.
    pub(crate) fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        CALLER.set(self, f)
    }
}

//! The main process: registers services, accepts renderers and serves their
//! calls.
//!
//! Build a [`Main`] with [`Main::builder`], register each service's
//! generated `…Server`, then accept renderers: spawned as child processes
//! ([`Main::spawn_renderer`]), connecting to a private Unix socket
//! ([`Main::listen_unix`]) or a loopback TCP port ([`Main::listen_tcp`]),
//! or over any [`Transport`] ([`Main::accept`]).

mod connection;
mod limits;
mod send_tasks;

pub(crate) use connection::ClosedWatch;
pub use limits::{DisconnectReason, Disconnection, Limits, SlowConsumer};

use std::{
    cell::RefCell,
    collections::HashMap,
    marker::PhantomData,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use tokio::sync::{broadcast, Semaphore};

use bytes::BytesMut;
use serde::Serialize;

use self::connection::EventPayload;
use crate::{
    __private::check::Contracts,
    caller::{Peer, RendererId},
    codec::splice::SPLICE_MIN,
    contract::{Api, Grant, Service, ServiceSummary},
    dispatch::{Dispatch, Router, Served},
    DisconnectCause, IpcError, Transport,
};

/// The default largest frame main accepts: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;
/// The default time a renderer has to complete its handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often main writes the replies to a long burst of requests by
/// default, in frames handled, while it may run on more than one CPU (see
/// [`MainBuilder::flush_replies_every`]).
pub const DEFAULT_FLUSH_REPLIES_EVERY: usize = 16;

/// Builds a [`Main`]: the services it serves and its limits.
///
/// `C` lists the contracts registered so far, as a type (`()` at first;
/// each [`service`](Self::service) and [`events`](Self::events) call adds
/// one), so that [`build`](Self::build) can check at compile time that no
/// two of them define the same channel. Register in one chain; code that
/// chooses services at run time uses
/// [`service_unchecked`](Self::service_unchecked).
pub struct MainBuilder<C = ()> {
    router: Router,
    errors: Vec<IpcError>,
    limits: Limits,
    spin: Duration,
    flush_every: Option<usize>,
    round_trips: bool,
    forward_details: bool,
    /// The main being built; marked abandoned if the builder is dropped
    /// unbuilt.
    inner: AbandonUnbuilt,
    contracts: PhantomData<fn() -> C>,
}

/// A [`MainBuilder`]'s main, dropped with the builder (moved from one
/// builder type to the next, it is dropped once): if main was not built by
/// then, it never will be, and emitting through its [`Main`]s reaches no
/// one, which [`EmitterCore::emit`] then says.
struct AbandonUnbuilt(Arc<Inner>);

impl Drop for AbandonUnbuilt {
    fn drop(&mut self) {
        if self.0.setup.get().is_none() {
            self.0.abandoned.store(true, Ordering::Relaxed);
        }
    }
}

/// The contracts a [`MainBuilder`] has registered, as a type: `()`, then
/// `(Contract, Earlier)` for each [`service`](MainBuilder::service) or
/// [`events`](MainBuilder::events) call. Name it to write code generic over
/// builders:
///
/// ```
/// use ipc_runtime::{ContractList, IpcError, Main, MainBuilder};
///
/// fn finish<C: ContractList>(builder: MainBuilder<C>) -> Result<Main, IpcError> {
///     builder.build()
/// }
/// # let _ = finish(Main::builder());
/// ```
///
/// Implemented for every such list; it cannot be implemented otherwise.
pub trait ContractList: Contracts {}

impl<T: Contracts> ContractList for T {}

impl<C> std::fmt::Debug for MainBuilder<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let contracts: Vec<&str> = self.router.descriptors().map(|d| d.name).collect();
        f.debug_struct("MainBuilder")
            .field("contracts", &contracts)
            .field("limits", &self.limits)
            .field("spin_before_parking", &self.spin)
            .finish_non_exhaustive()
    }
}

impl<C> MainBuilder<C> {
    fn with<D>(self) -> MainBuilder<D> {
        MainBuilder {
            router: self.router,
            errors: self.errors,
            limits: self.limits,
            spin: self.spin,
            flush_every: self.flush_every,
            round_trips: self.round_trips,
            forward_details: self.forward_details,
            inner: self.inner,
            contracts: PhantomData,
        }
    }

    /// Serves a service: pass the `…Server` that `#[service]` generated,
    /// wrapping your handler (`NotesServer::new(MyNotes { .. })`).
    ///
    /// A channel that another registered service or events trait defines
    /// too fails the build of [`Self::build`]'s caller (see there).
    pub fn service<S: Dispatch + Served>(mut self, service: S) -> MainBuilder<(S::Contract, C)> {
        if let Err(e) = self.router.add(Arc::new(service)) {
            self.errors.push(e);
        }
        self.with()
    }

    /// Registers a service without adding its contract to the builder's
    /// type, for code that picks services at run time (in a loop or a
    /// branch, where each [`service`](Self::service) call would change the
    /// builder's type). A channel it shares with another contract is then
    /// only reported by [`build`](Self::build)'s run-time check, as an
    /// [`IpcError::Config`] error.
    pub fn service_unchecked(mut self, service: impl Dispatch) -> Self {
        if let Err(e) = self.router.add(Arc::new(service)) {
            self.errors.push(e);
        }
        self
    }

    /// Declares an events trait (the `…Contract` type that `#[events]`
    /// generated): main may push its events, and renderers whose API
    /// exposes them may listen.
    pub fn events<E: Service>(mut self) -> MainBuilder<(E, C)> {
        if let Err(e) = self.router.add_events(E::DESCRIPTOR) {
            self.errors.push(e);
        }
        self.with()
    }

    /// The largest frame accepted from a renderer, in bytes (default
    /// [`DEFAULT_MAX_FRAME_SIZE`]; at most `u32::MAX`, the largest length
    /// a frame's prefix can state, which a larger value is lowered to).
    /// Larger frames are refused from their length prefix, before any
    /// memory is set aside for them.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.limits.max_frame_size = bytes.min(u32::MAX as usize);
        self
    }

    /// Sets every limit at once (see [`Limits`] for each one's default and
    /// what happens when it is exceeded):
    ///
    /// ```
    /// use ipc_runtime::{Limits, Main, SlowConsumer};
    ///
    /// let mut limits = Limits::default();
    /// limits.max_in_flight = 16;
    /// limits.slow_consumer = SlowConsumer::Disconnect;
    /// let main = Main::builder().limits(limits).build().unwrap();
    /// # drop(main);
    /// ```
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Limits {
            max_frame_size: limits.max_frame_size.min(u32::MAX as usize),
            ..limits
        };
        self
    }

    /// The low-latency option (off by default): when a renderer's
    /// connection has nothing to read, keep polling it for up to `spin`
    /// before parking its task, so that a request arriving within that time
    /// is picked up without waking a sleeping thread. Trades CPU time (up
    /// to `spin` per idle moment of each renderer) for latency; it helps
    /// only when both processes have a core to themselves, and hurts when
    /// they share one, so main does not spin while it may run on only one
    /// CPU (its affinity mask or CPU quota, re-checked at most every
    /// 100 ms). Pair it with
    /// [`ConnectionBuilder::spin_before_parking`](crate::ConnectionBuilder::spin_before_parking)
    /// on the renderer; tens of microseconds is the useful range
    /// (`Duration::MAX` spins whenever it may).
    pub fn spin_before_parking(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// Whether main checks, before sending, that each reply, typed error
    /// and event its generated handlers and emitters send survives the
    /// wire format (decoding it and encoding it again gives the same bytes,
    /// in some order): on by default in debug builds. Release builds never
    /// check, whatever this says: the check is compiled out, so that it
    /// costs them nothing. See [`IpcType`](crate::IpcType) for what it
    /// catches. Turn it off for a
    /// type whose `Deserialize` normalizes on purpose (trims, lowercases),
    /// which the check refuses.
    pub fn check_round_trips(mut self, check: bool) -> Self {
        self.round_trips = check;
        self
    }

    /// Whether a renderer whose call failed through a bug on main's side
    /// is told the details: a handler's panic message
    /// ([`IpcError::HandlerPanicked`]), or why main could not encode the
    /// reply ([`IpcError::Encode`]: a `Serialize` that panicked or
    /// refused, in its own words). Off by default: such text is written
    /// for main's developer, and may carry main's data (a path, a query,
    /// another renderer's input), while renderers are untrusted; by
    /// default the renderer learns what failed, and that the details are
    /// withheld. Main logs them either way (a `tracing` error with the
    /// renderer's id and the channel; a panic's message is also on stderr,
    /// from the process's panic hook). Turn it on during development, or
    /// where every renderer is trusted.
    ///
    /// ```
    /// # use ipc_runtime::{service, Main};
    /// # #[service(namespace = "notes")]
    /// # pub trait Notes { async fn get(&self, id: u64) -> String; }
    /// # struct MyNotes;
    /// # impl Notes for MyNotes { async fn get(&self, id: u64) -> String { String::new() } }
    /// # fn main() {
    /// let main = Main::builder()
    ///     .service(NotesServer::new(MyNotes))
    ///     .forward_failure_details(cfg!(debug_assertions))
    ///     .build();
    /// # }
    /// ```
    pub fn forward_failure_details(mut self, forward: bool) -> Self {
        self.forward_details = forward;
        self
    }

    /// While main handles a burst of frames that arrived together from one
    /// renderer (calls, and also sends, cancels and subscriptions), write
    /// the replies queued so far after every `frames` of them; `0` writes
    /// them once, when the whole burst is handled.
    ///
    /// Writing the replies to a burst together saves system calls; writing
    /// some before the burst is over lets the renderer work on them while
    /// main handles the rest. That pays when the two processes run on
    /// different cores (64 small calls in flight complete about 1.5 times
    /// as fast on two cores; see `BENCHMARKS.md` in the repository), and
    /// only adds system calls when they share one.
    ///
    /// Without this setting main decides by itself: every
    /// [`DEFAULT_FLUSH_REPLIES_EVERY`] frames while this process may run on
    /// more than one CPU, otherwise once per burst. It looks up how many
    /// CPUs it may use at most every 100 ms, since that can change while
    /// the process runs (`taskset`, cgroups).
    ///
    /// ```
    /// use ipc_runtime::Main;
    ///
    /// // Main and its renderers are pinned to one core: one write per burst.
    /// let main = Main::builder().flush_replies_every(0).build().unwrap();
    /// # drop(main);
    /// ```
    pub fn flush_replies_every(mut self, frames: usize) -> Self {
        self.flush_every = Some(frames);
        self
    }

    /// How long a renderer has to complete the handshake after connecting
    /// (default [`DEFAULT_HANDSHAKE_TIMEOUT`]; `Duration::MAX` for no
    /// limit).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.limits.handshake_timeout = timeout;
        self
    }

    /// The [`Main`] this builder will finish, available before
    /// [`Self::build`] so that handlers can hold an events emitter (or
    /// anything else that needs main) from the start:
    ///
    /// ```text
    /// let builder = Main::builder();
    /// let changed = NotesEventsEmitter::new(&builder.main(), Target::All);
    /// let main = builder.service(NotesServer::new(FileNotes { dir, changed })).build()?;
    /// ```
    ///
    /// Until `build` is called it reaches no renderer: accepting one fails
    /// with a configuration error, and events go nowhere. If this builder
    /// is dropped without a successful `build` (a `Main` taken from one
    /// builder, another one built), the first event emitted through it
    /// logs a warning, as it will never reach anyone.
    pub fn main(&self) -> Main {
        Main {
            inner: Arc::clone(&self.inner.0),
        }
    }

    /// Finishes the configuration.
    ///
    /// Two registered contracts that define the same channel, or one
    /// registered twice, are a compile error here, naming both methods and
    /// the channel. The check runs when the program is built (`cargo
    /// build`, `cargo test`), not by `cargo check`, because it needs the
    /// concrete list of contracts. A run-time check (two contracts with
    /// the same name, or a channel defined twice) also runs here, for
    /// services registered with [`service_unchecked`](Self::service_unchecked),
    /// and returns an [`IpcError::Config`] error; so do limits under which
    /// main could serve nothing: a [`Limits::max_in_flight`],
    /// [`Limits::max_renderers`] or [`Limits::max_frame_size`] of 0, or a
    /// zero [`Limits::handshake_timeout`].
    pub fn build(self) -> Result<Main, IpcError>
    where
        C: ContractList,
    {
        #[allow(clippy::let_unit_value)]
        let () = const { C::CHECK };
        if let Some(e) = self.errors.into_iter().next() {
            return Err(e);
        }
        if let Some(reason) = useless_limit(&self.limits) {
            return Err(IpcError::Config { reason });
        }
        let summaries = self.router.descriptors().map(ServiceSummary::of).collect();
        let setup = Arc::new(Setup {
            router: self.router,
            summaries,
            slots: Arc::new(Semaphore::new(self.limits.max_renderers)),
            limits: self.limits,
            spin: self.spin,
            flush_every: self.flush_every,
            round_trips: self.round_trips,
            forward_details: self.forward_details,
        });
        if self.inner.0.setup.set(setup).is_err() {
            return Err(IpcError::Config {
                reason: "this main was already built".into(),
            });
        }
        Ok(Main {
            inner: Arc::clone(&self.inner.0),
        })
    }
}

/// Why main would serve no renderer at all with `limits`, if it would not.
fn useless_limit(limits: &Limits) -> Option<String> {
    let zero = |what: &str, so: &str| {
        Some(format!(
            "`Limits::{what}` is 0, so {so}; it must be at least 1"
        ))
    };
    if limits.max_in_flight == 0 {
        // Every call would be refused, and a well-behaved renderer counted
        // as misbehaving for making one.
        return zero("max_in_flight", "no call could ever run");
    }
    if limits.max_renderers == 0 {
        return zero("max_renderers", "no renderer could ever connect");
    }
    if limits.max_frame_size == 0 {
        return zero("max_frame_size", "no renderer could ever send its hello");
    }
    if limits.handshake_timeout.is_zero() {
        return Some(
            "`Limits::handshake_timeout` is zero, so no renderer could ever complete its handshake"
                .into(),
        );
    }
    None
}

/// The main process's IPC hub: serves registered services to every
/// accepted renderer.
///
/// Cheap to clone; clones share the same services and renderers.
#[derive(Clone)]
pub struct Main {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Main {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Main")
            .field(
                "contracts",
                &self.inner.setup.get().map_or(0, |s| s.summaries.len()),
            )
            .field("renderers", &self.renderer_count())
            .finish()
    }
}

pub(crate) struct Inner {
    /// Set once, by `MainBuilder::build`.
    setup: std::sync::OnceLock<Arc<Setup>>,
    /// Every disconnection, for `Main::disconnections`.
    pub disconnections: broadcast::Sender<Disconnection>,
    next_id: AtomicU64,
    /// Ids are main's own, so a fast unkeyed hash is safe.
    renderers: Mutex<HashMap<RendererId, Entry, rustc_hash::FxBuildHasher>>,
    /// Set by [`Main::close`], under the `renderers` lock: from then on no
    /// renderer is registered.
    closed: AtomicBool,
    /// Cancelled by [`Main::close`] too: handshakes under way end at once
    /// (refused as main is closed) instead of at their timeout.
    pub(crate) closing: tokio_util::sync::CancellationToken,
    /// Handshake refusals logged at `WARN`, at most one a second.
    pub(crate) refusals: RefusalLog,
    /// Set when the builder was dropped without building main (or its
    /// `build` failed): main will never reach a renderer.
    abandoned: AtomicBool,
    /// Whether an emit through an abandoned main has warned yet.
    warned_abandoned: AtomicBool,
    /// Every connection's task for `send` messages, until it has handled
    /// them: [`Main::close`] waits for them.
    pub(crate) send_tasks: Arc<send_tasks::SendTasks>,
    /// Set once [`Main::close`]'s work is done, which every call waits for.
    close_finished: tokio::sync::watch::Sender<bool>,
    /// The thread `Main::close` does its waiting on, for the first call
    /// that sees the work done to join.
    close_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Logs handshake refusals: the first in any second at `WARN` (with how
/// many were logged at `DEBUG` since the last warning), the others at
/// `DEBUG`, so that anyone able to connect (any local user, on a TCP
/// port) cannot flood main's log.
#[derive(Default)]
pub(crate) struct RefusalLog {
    last_warning: Mutex<Option<std::time::Instant>>,
    quiet: AtomicU64,
}

impl RefusalLog {
    /// How often a refusal is logged at `WARN`, at most.
    const EVERY: Duration = Duration::from_secs(1);

    pub(crate) fn refused(&self, error: &IpcError) {
        let now = std::time::Instant::now();
        let warn = {
            let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
            let due = last.is_none_or(|at| now.duration_since(at) >= Self::EVERY);
            if due {
                *last = Some(now);
            }
            due
        };
        if warn {
            let quietly_since = self.quiet.swap(0, Ordering::Relaxed);
            tracing::warn!(
                error = %error,
                refused_at_debug_level_since_last_warning = quietly_since,
                "renderer refused at handshake (more within a second are logged at debug level)"
            );
        } else {
            self.quiet.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(error = %error, "renderer refused at handshake");
        }
    }
}

/// What main serves and its limits: fixed once built.
pub(crate) struct Setup {
    pub router: Router,
    pub summaries: Vec<ServiceSummary>,
    pub limits: Limits,
    /// One permit per connection, live or in handshake.
    pub slots: Arc<Semaphore>,
    /// See [`MainBuilder::spin_before_parking`].
    pub spin: Duration,
    /// See [`MainBuilder::flush_replies_every`]: `None` decides by itself.
    pub flush_every: Option<usize>,
    /// See [`MainBuilder::check_round_trips`].
    pub round_trips: bool,
    /// See [`MainBuilder::forward_failure_details`].
    pub forward_details: bool,
}

struct Entry {
    info: RendererInfo,
    closed: ClosedWatch,
    conn: Arc<connection::Conn>,
}

impl Inner {
    /// The connections of the renderers in `target`, taken out of the
    /// registry so that it is not locked while they are used.
    fn conns_of(&self, target: &Target) -> Vec<Arc<connection::Conn>> {
        let renderers = self.renderers();
        let conn = |e: &Entry| Arc::clone(&e.conn);
        match target {
            Target::Renderer(id) => renderers.get(id).map(conn).into_iter().collect(),
            Target::Group(group) => renderers
                .values()
                .filter(|e| e.conn.in_group(group))
                .map(conn)
                .collect(),
            Target::GroupExcept(group, but) => renderers
                .values()
                .filter(|e| e.info.id != *but && e.conn.in_group(group))
                .map(conn)
                .collect(),
            Target::All => renderers.values().map(conn).collect(),
            Target::AllExcept(but) => renderers
                .values()
                .filter(|e| e.info.id != *but)
                .map(conn)
                .collect(),
        }
    }

    fn renderers(&self) -> MutexGuard<'_, HashMap<RendererId, Entry, rustc_hash::FxBuildHasher>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every critical section is a single insert, remove or read).
        self.renderers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What main knows about one connected renderer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RendererInfo {
    /// The id main assigned.
    pub id: RendererId,
    /// The label main gave it.
    pub label: String,
    /// The peer process, when the transport reports it.
    pub peer: Option<Peer>,
    /// The name of the API (`expose!` type) it was accepted as.
    pub api: &'static str,
}

/// Usage counters of one renderer connection, as main sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RendererStats {
    /// Calls being handled now.
    pub in_flight: usize,
    /// Event channels it listens to.
    pub subscriptions: Vec<String>,
    /// Groups main put it in.
    pub groups: Vec<String>,
    /// Events queued for it so far.
    pub events_sent: u64,
    /// Events it missed: its queue was full, or the event was larger than
    /// it accepts.
    pub events_dropped: u64,
    /// Protocol violations it made so far.
    pub violations: u32,
}

/// The part shared by every generated events emitter: main and a target.
/// Generated code calls it; use the generated `…Emitter` instead.
#[derive(Clone, Debug)]
pub struct EmitterCore {
    main: Main,
    target: Target,
}

impl EmitterCore {
    /// An emitter pushing to `target` (a [`Target`], or a [`RendererId`]
    /// for one renderer) through `main`.
    pub fn new(main: &Main, target: impl Into<Target>) -> Self {
        EmitterCore {
            main: main.clone(),
            target: target.into(),
        }
    }

    /// Pushes one event to every renderer in the target that listens to
    /// `channel`; returns how many it was queued for. A listening renderer
    /// it was not queued for is named in a `tracing` event: if the event is
    /// larger than that renderer accepts, a warning the first time for
    /// that renderer and a debug event after; a debug event if its queue
    /// is full under [`SlowConsumer::DropEvents`]. Both are counted in its
    /// `events_dropped`. A value that cannot be encoded is logged and
    /// reaches nobody.
    pub fn emit<A: Serialize + ?Sized>(&self, channel: &'static str, args: &A) -> usize {
        self.emit_checked(channel, args, None)
    }

    /// [`EmitterCore::emit`], running `check` on the encoded arguments
    /// (what the generated emitters do: [`codec::check_for`](crate::codec::check_for)).
    pub(crate) fn emit_checked<A: Serialize + ?Sized>(
        &self,
        channel: &'static str,
        args: &A,
        check: Option<crate::codec::Check>,
    ) -> usize {
        match self.main.emit(&self.target, channel, args, check) {
            Ok(0) => {
                self.main.inner.warn_if_abandoned(channel);
                0
            }
            Ok(n) => n,
            Err(e) => {
                tracing::error!(%channel, error = %e, "event not sent");
                0
            }
        }
    }
}

/// Which renderers an event goes to.
///
/// To pass a message on to every renderer but the one that sent it (the
/// other windows), a handler names the sender with
/// [`Caller::current`](crate::Caller::current): `Target::AllExcept(caller.id())`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// One renderer.
    Renderer(RendererId),
    /// Every renderer in a group (see [`Main::join_group`]).
    Group(String),
    /// Every renderer in a group but one.
    GroupExcept(String, RendererId),
    /// Every connected renderer.
    All,
    /// Every connected renderer but one.
    AllExcept(RendererId),
}

impl From<RendererId> for Target {
    fn from(id: RendererId) -> Self {
        Target::Renderer(id)
    }
}

/// How a connection proves it may talk to main, and what it is granted.
pub(crate) enum Auth {
    /// The transport itself is the credential (an inherited socket, an
    /// in-memory pipe); the label and grant are main's.
    Trusted { label: String, grant: Arc<Grant> },
    /// The renderer must present a one-time token from this store; the
    /// token carries the label and grant. Until it has, the connection
    /// holds a place in its endpoint's waiting room.
    Token(
        Arc<crate::transport::tokens::Tokens>,
        crate::transport::tokens::Waiting,
    ),
}

impl Auth {
    pub(crate) fn trusted<A: Api>(label: &str) -> Self {
        Auth::Trusted {
            label: label.to_string(),
            grant: Arc::new(Grant::of::<A>()),
        }
    }
}

/// How long [`Main::close`] waits for the `send` messages already
/// received to be handled before it aborts their handlers.
const CLOSE_SENDS_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Marks [`Main::close`]'s work done when dropped: when it has finished,
/// or if its thread could not be started, so that no `close` call waits
/// for ever.
struct Finished(Arc<Inner>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.close_finished.send_replace(true);
    }
}

impl Inner {
    /// The part of [`Main::close`] that waits: until every renderer in
    /// `ended` is released, then for the `send` messages already received
    /// (from any renderer, gone before or not) to be handled, for up to
    /// [`CLOSE_SENDS_GRACE`] in all, after which it stops their handlers.
    async fn finish_closing(&self, ended: Vec<ClosedWatch>) {
        let deadline = tokio::time::Instant::now() + CLOSE_SENDS_GRACE;
        for mut closed in ended {
            let _ = closed.wait_for(Option::is_some).await;
        }
        let stopped = self.send_tasks.finish(deadline, connection::LINGER).await;
        if stopped > 0 {
            tracing::warn!(
                renderers = stopped,
                "main closing: `send` handlers still running {CLOSE_SENDS_GRACE:?} after main began to close were aborted"
            );
        }
    }
}

/// The tokio runtime `what` is called in, which will run the tasks that
/// serve renderers; a clear error outside one (rather than tokio's panic
/// when the first task is spawned, after a renderer's process was started).
pub(crate) fn current_runtime(what: &str) -> Result<tokio::runtime::Handle, IpcError> {
    tokio::runtime::Handle::try_current().map_err(|_| IpcError::Config {
        reason: format!(
            "{what} must be called inside a tokio runtime (with I/O and time enabled: `#[tokio::main]`, or `enable_all()` on a runtime builder), \
             whose tasks then serve the renderers"
        ),
    })
}

impl Main {
    /// Checks that this main is built and not closed, and that it is
    /// called inside a runtime, so that a renderer could be accepted now:
    /// what is checked before a renderer's program is started, which would
    /// otherwise only be refused.
    pub(crate) fn check_accepting(&self, what: &str) -> Result<(), IpcError> {
        current_runtime(what)?;
        self.inner.setup()?;
        self.check_open()
    }

    /// Checks that this main is not closed: what is checked before
    /// opening an endpoint or issuing a token, which would only lead to
    /// refused renderers. (Both may come before main is built: an endpoint
    /// follows the limits main is then built with.)
    pub(crate) fn check_open(&self) -> Result<(), IpcError> {
        if self.inner.is_closed() {
            return Err(Inner::closed_error());
        }
        Ok(())
    }

    /// Checks that this main serves every contract API `A` draws from, so
    /// that a renderer accepted as `A` can pass its handshake. Without
    /// this, a main missing one (a `.service(..)` or `.events::<..>()`
    /// forgotten in its builder) would start the process or issue the
    /// token and then refuse the renderer at its handshake; now the
    /// program that grants `A` is told at once, in its own words.
    pub(crate) fn check_serves<A: Api>(&self) -> Result<(), IpcError> {
        let Some(setup) = self.inner.setup.get() else {
            return Ok(());
        };
        let wanted: Vec<ServiceSummary> =
            A::CONTRACTS.iter().map(|d| ServiceSummary::of(d)).collect();
        match crate::contract::compare(&wanted, &setup.summaries) {
            Ok(()) => Ok(()),
            Err(mismatch) => Err(IpcError::Config {
                reason: format!(
                    "main cannot accept renderers as `{}`: {}",
                    A::NAME,
                    mismatch.differences.join("; ")
                ),
            }),
        }
    }

    /// [`Limits::max_renderers`] (the default's, before main is built).
    pub(crate) fn max_renderers(&self) -> usize {
        self.inner.setup.get().map_or_else(
            || Limits::default().max_renderers,
            |setup| setup.limits.max_renderers,
        )
    }
}

impl Main {
    /// Starts configuring a main process.
    pub fn builder() -> MainBuilder {
        let inner = Arc::new(Inner {
            setup: std::sync::OnceLock::new(),
            disconnections: broadcast::channel(256).0,
            next_id: AtomicU64::new(1),
            renderers: Mutex::new(HashMap::default()),
            closed: AtomicBool::new(false),
            closing: tokio_util::sync::CancellationToken::new(),
            refusals: RefusalLog::default(),
            abandoned: AtomicBool::new(false),
            warned_abandoned: AtomicBool::new(false),
            send_tasks: Arc::default(),
            close_finished: tokio::sync::watch::channel(false).0,
            close_thread: Mutex::default(),
        });
        MainBuilder {
            inner: AbandonUnbuilt(inner),
            router: Router::default(),
            errors: Vec::new(),
            limits: Limits::default(),
            spin: Duration::ZERO,
            flush_every: None,
            round_trips: cfg!(debug_assertions),
            forward_details: false,
            contracts: PhantomData,
        }
    }

    /// Accepts a renderer on `transport` as API `A` (an `expose!` type)
    /// and labels it `label`: runs the handshake, then serves the renderer
    /// in a background task. Every frame from it is checked against `A`'s
    /// whitelist before its payload is decoded.
    ///
    /// The transport is trusted as the renderer's credential, so use this
    /// for in-memory pipes and sockets that only the intended renderer can
    /// hold. Fails if the handshake fails (the renderer is told why), and
    /// with [`IpcError::Config`] outside a tokio runtime.
    pub async fn accept<A: Api>(
        &self,
        transport: Transport,
        label: &str,
    ) -> Result<RendererInfo, IpcError> {
        current_runtime("Main::accept")?;
        let (info, _) = self
            .accept_with(transport, Auth::trusted::<A>(label))
            .await?;
        Ok(info)
    }

    /// Accepts a renderer authenticated by `auth`; see
    /// [`connection::accept`].
    pub(crate) async fn accept_with(
        &self,
        transport: Transport,
        auth: Auth,
    ) -> Result<(RendererInfo, connection::ClosedWatch), IpcError> {
        connection::accept(&self.inner, transport, auth).await
    }

    /// The renderers connected now.
    pub fn renderers(&self) -> Vec<RendererInfo> {
        let mut list: Vec<_> = self
            .inner
            .renderers()
            .values()
            .map(|e| e.info.clone())
            .collect();
        list.sort_by_key(|r| r.id);
        list
    }

    /// How many renderers are connected now.
    pub fn renderer_count(&self) -> usize {
        self.inner.renderers().len()
    }

    /// How many calls from renderer `id` are being handled now, or `None`
    /// if it is not connected. A call whose handler has finished no longer
    /// counts, even while its reply waits for room in a renderer's full
    /// queue (see [`Limits`] for what those hold).
    pub fn in_flight(&self, id: RendererId) -> Option<usize> {
        self.inner
            .renderers()
            .get(&id)
            .map(|e| e.conn.in_flight.len())
    }

    /// Main's counters for renderer `id`, or `None` if it is not connected.
    pub fn renderer_stats(&self, id: RendererId) -> Option<RendererStats> {
        self.inner.renderers().get(&id).map(|e| RendererStats {
            violations: e.conn.violations(),
            in_flight: e.conn.in_flight.len(),
            subscriptions: e.conn.subscriptions(),
            groups: e.conn.groups(),
            events_sent: e.conn.events_sent(),
            events_dropped: e.conn.events_dropped(),
        })
    }

    /// Puts renderer `id` in `group` (for example "editor windows"), so that
    /// events sent to the group reach it. Returns `false` if it is not
    /// connected or already in the group.
    ///
    /// ```
    /// use ipc_runtime::{events, expose, transport, Main, Target};
    ///
    /// #[events(namespace = "doc")]
    /// pub trait DocEvents {
    ///     fn saved(&self, path: String);
    /// }
    ///
    /// expose! {
    ///     pub struct WindowApi { doc: DocEvents { saved } }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ipc_runtime::IpcError> {
    /// let main = Main::builder().events::<DocEventsContract>().build()?;
    /// let (main_end, renderer_end) = transport::memory_pair(64 * 1024);
    /// let (editor, window) = tokio::join!(
    ///     main.accept::<WindowApi>(main_end, "editor"),
    ///     WindowApi::connect(renderer_end),
    /// );
    /// let (editor, window) = (editor?, window?);
    /// let mut saved = window.doc.stream_saved().await?;
    ///
    /// main.join_group(editor.id, "editors");
    /// DocEventsEmitter::new(&main, Target::Group("editors".into())).saved("a.txt".into());
    /// assert_eq!(saved.recv().await.as_deref(), Some("a.txt"));
    ///
    /// main.leave_group(editor.id, "editors");
    /// // Now reaches no one:
    /// assert_eq!(DocEventsEmitter::new(&main, Target::Group("editors".into())).saved("b.txt".into()), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn join_group(&self, id: RendererId, group: &str) -> bool {
        self.inner
            .renderers()
            .get(&id)
            .is_some_and(|e| e.conn.join(group))
    }

    /// Takes renderer `id` out of `group`. Returns `false` if it was not in it.
    pub fn leave_group(&self, id: RendererId, group: &str) -> bool {
        self.inner
            .renderers()
            .get(&id)
            .is_some_and(|e| e.conn.leave(group))
    }

    /// Waits until every renderer in `target` that listens to events has
    /// room again for at least half of [`Limits::max_queued_frames`] events
    /// (and half of `max_queued_bytes`), or has gone.
    ///
    /// Emitting never waits: an event that finds a renderer's queue full is
    /// dropped for it (or the renderer disconnected, per [`SlowConsumer`]).
    /// A burst emitted without awaiting can fill the queue even of a
    /// renderer that keeps up, because the writer sends nothing until the
    /// emitting code lets it run. Code that emits in bursts can await this
    /// between bursts of at most half the queue (512 events by default) so
    /// that renderers that keep up miss nothing:
    ///
    /// ```no_run
    /// # async fn f(main: ipc_runtime::Main, events: Vec<u32>) {
    /// use std::time::Duration;
    /// use ipc_runtime::Target;
    /// for chunk in events.chunks(256) {
    ///     // Bounded: a renderer that stops reading would hold it for ever
    ///     // (past the bound, events to that renderer are dropped).
    ///     let _ = tokio::time::timeout(
    ///         Duration::from_secs(1),
    ///         main.room_for_events(&Target::All),
    ///     )
    ///     .await;
    ///     for n in chunk {
    ///         // emitter.progress(*n);
    ///     }
    /// }
    /// # }
    /// ```
    ///
    /// It waits as long as a renderer does not read, so a renderer that
    /// stops reading would stall the emitting code: bound the wait, as
    /// above, or target the renderers one at a time.
    pub async fn room_for_events(&self, target: &Target) {
        for conn in self.inner.conns_of(target) {
            conn.room_for_events().await;
        }
    }

    /// Pushes an event to the renderers in `target` that listen to
    /// `channel`; returns how many it was queued for. Used by the generated
    /// `…Emitter` types.
    pub(crate) fn emit<A: Serialize + ?Sized>(
        &self,
        target: &Target,
        channel: &'static str,
        args: &A,
        check: Option<crate::codec::Check>,
    ) -> Result<usize, IpcError> {
        thread_local! {
            /// Where small events are encoded, to be copied into each
            /// renderer's queue: no allocation per event.
            static SCRATCH: RefCell<BytesMut> = RefCell::new(BytesMut::new());
        }
        let check = check.filter(|_| self.inner.setup.get().is_some_and(|s| s.round_trips));
        let encode = |buf: &mut BytesMut| {
            crate::codec::encode_into(args, buf)
                .and_then(|()| check.map_or(Ok(()), |check| check(buf)))
                .map_err(|e| IpcError::Encode {
                    channel: channel.to_string(),
                    reason: e.into_encode_reason(),
                })
        };
        let deliver = |payload: EventPayload<'_>| -> usize {
            // Looked up first, so that the registry is not locked while
            // the events are queued (a connection's queue may be busy
            // encoding a large reply).
            if let Target::Renderer(id) = target {
                // One renderer: no list to build.
                let conn = self.inner.renderers().get(id).map(|e| Arc::clone(&e.conn));
                return conn.is_some_and(|conn| conn.push_event(channel, payload)) as usize;
            }
            self.inner
                .conns_of(target)
                .iter()
                .filter(|c| c.push_event(channel, payload))
                .count()
        };
        let large = |buf: BytesMut| {
            // Written from the one buffer every renderer's event shares,
            // not copied for each.
            deliver(EventPayload::Shared(&buf.freeze()))
        };
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                encode(&mut buf)?;
                Ok(if buf.len() < SPLICE_MIN {
                    deliver(EventPayload::Small(&buf))
                } else {
                    // The whole buffer: a split would leave the rest of
                    // its capacity here, keeping the large allocation
                    // alive for the next small event.
                    large(std::mem::take(&mut *buf))
                })
            }
            // An event emitted while another is encoded (from a value's
            // `Serialize`): a buffer of its own.
            Err(_) => {
                let mut buf = BytesMut::new();
                encode(&mut buf)?;
                Ok(large(buf))
            }
        })
    }

    /// Closes main, as an app quitting closes its windows: from now on
    /// every renderer that connects is refused (one whose handshake is
    /// under way too, at once), and each connected one is
    /// disconnected as by [`Main::disconnect`] (its handlers are aborted,
    /// its pending calls fail with [`IpcError::Disconnected`]). Returns
    /// once main has released them all: their aborted handlers have been
    /// dropped, destructors run (waiting at most a second for a handler,
    /// running in its own task, that blocks its thread; one that blocks
    /// before its first `.await` holds up its connection, and this, until
    /// it returns). `send` messages already received are still handled
    /// first, in order, those of renderers gone before included: `close`
    /// waits for them for up to 5 seconds from its start, then aborts the
    /// handlers still running and waits (a second at most, for all of
    /// them) for them to be dropped, so a stuck `send` handler delays it
    /// but never hangs it. Once it returns, nothing main serves renderers
    /// with is still running, but for `send` handlers waiting in it (a
    /// "quit" message), which go on, with the messages after them. Such a
    /// handler must await `close` itself: one awaiting a task that calls
    /// it is waited for, and aborted after the 5 seconds. An invoke
    /// handler that calls it is aborted with its renderer's other calls:
    /// the code after `close().await` there does not run (main still
    /// closes). Calling it again, or while it runs, waits until the first
    /// call's work is done. That work runs on a thread of its own, so
    /// `close` may be called from any runtime, or from none; the runtime
    /// serving the renderers must keep running for them to be released.
    ///
    /// Dropping every `Main` handle does not do this: each connection is
    /// served by tasks of its own, which keep what they need alive until
    /// the renderer goes away or the runtime shuts down.
    pub async fn close(&self) {
        let inner = &self.inner;
        let mut finished = inner.close_finished.subscribe();
        let first = {
            let renderers = inner.renderers();
            let first = !inner.closed.swap(true, Ordering::AcqRel);
            first.then(|| {
                inner.closing.cancel();
                renderers
                    .values()
                    .map(|e| (Arc::clone(&e.conn), e.closed.clone()))
                    .unzip::<_, _, Vec<_>, Vec<_>>()
            })
        };
        if let Some((conns, ended)) = first {
            // Nothing here runs user code (a `tracing` layer) until the
            // waiting part is under way, so that a panic cannot leave main
            // closed with its work never done, and every `close` waiting.
            for conn in &conns {
                conn.shut_for_close();
            }
            // The rest runs on a thread of its own, with a runtime of its
            // own for its timers (it only waits on the connections' signals
            // and aborts tasks, which work from any thread), so that it
            // finishes however this call ends (an invoke handler that calls
            // it is aborted with its renderer's other calls) and whatever
            // runtime polled it, and every call waits for it.
            let finishing = Finished(Arc::clone(inner));
            // Held until the handle is stored: a call that sees the work
            // done before then (it can be quick) waits here for the handle
            // to join, rather than finding none.
            let mut handle = inner.close_thread.lock().unwrap_or_else(|e| e.into_inner());
            *handle = std::thread::Builder::new()
                .name("ipc-main-close".into())
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_time()
                        .build();
                    if let Ok(runtime) = runtime {
                        runtime.block_on(finishing.0.finish_closing(ended));
                    }
                    // Last: once it is done, the thread only ends.
                    drop(finishing);
                })
                .ok();
            drop(handle);
            if !conns.is_empty() {
                tracing::info!(
                    renderers = conns.len(),
                    "main closing: disconnecting every renderer"
                );
            }
        }
        // A `send` handler calling this is not waited for.
        let done = inner
            .send_tasks
            .closing(finished.wait_for(|finished| *finished))
            .await
            .is_ok();
        // The work is done and its runtime dropped: the thread is ending,
        // and is joined (a few microseconds at most) by the first call that
        // gets here, under the lock, so that a call at the same time waits
        // for the join too: nothing of the thread outlives any `close`
        // call. (The thread never takes this lock.)
        if done {
            let mut thread = inner.close_thread.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(thread) = thread.take() {
                let _ = thread.join();
            }
        }
    }

    /// Whether [`Main::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Closes the connection to renderer `id`: its in-flight handlers are
    /// aborted and its pending calls fail with [`IpcError::Disconnected`].
    /// Returns `false` if it was not connected.
    pub fn disconnect(&self, id: RendererId) -> bool {
        match self.inner.renderers().get(&id) {
            Some(entry) => {
                entry.conn.shut(DisconnectReason::ClosedByMain);
                true
            }
            None => false,
        }
    }

    /// Waits until renderer `id` has disconnected and main has released
    /// everything it held for it (its aborted handlers dropped, as for
    /// [`Main::close`]), and returns why. Returns `None` at once if
    /// it is not connected (use [`Main::disconnections`] not to miss one).
    pub async fn disconnected(&self, id: RendererId) -> Option<DisconnectReason> {
        let mut rx = self.inner.renderers().get(&id).map(|e| e.closed.clone())?;
        let reason = rx.wait_for(Option::is_some).await.ok()?.clone();
        reason
    }

    /// The id of the connected renderer whose number
    /// ([`RendererId::get`]) is `number`: for turning a number that crossed
    /// the wire (from a renderer, a log line) back into an id main accepts.
    pub fn renderer_id(&self, number: u64) -> Option<RendererId> {
        let id = RendererId(number);
        self.inner.renderers().contains_key(&id).then_some(id)
    }

    /// Waits until renderer `id` listens to event `channel` (a `…Contract`
    /// channel constant such as `NotesEventsContract::CHANGED`), so that
    /// events emitted afterwards reach it. Returns `false` if the renderer
    /// is not connected or disconnects first, and at once if it could
    /// never listen to `channel`: not an event channel main emits (a
    /// method's channel, a misspelt name), or one outside the API the
    /// renderer was accepted as.
    pub async fn subscribed(&self, id: RendererId, channel: &str) -> bool {
        let Some((conn, mut closed)) = self
            .inner
            .renderers()
            .get(&id)
            .map(|e| (Arc::clone(&e.conn), e.closed.clone()))
        else {
            return false;
        };
        let is_event = self
            .inner
            .setup
            .get()
            .is_some_and(|s| s.router.is_event(channel));
        if !is_event || !conn.may_reach(channel) {
            return false;
        }
        let mut changes = conn.subscription_changes();
        loop {
            if conn.is_subscribed(channel) {
                return true;
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return false },
                _ = closed.wait_for(Option::is_some) => return false,
            }
        }
    }

    /// Every later disconnection, with its reason: the renderer closed the
    /// connection, misbehaved, fell behind, or main dropped it. A renderer
    /// that exits, crashes or is killed closes its end like one that
    /// closes it on purpose ([`DisconnectReason::Closed`] for all, or
    /// [`DisconnectReason::Failed`] if it died partway through sending a
    /// frame); for a
    /// child process, its exit status
    /// ([`RendererProcess::wait`](crate::RendererProcess::wait)) tells them
    /// apart. A receiver that falls more than 256 behind skips the oldest.
    ///
    /// ```no_run
    /// # async fn f(main: ipc_runtime::Main) {
    /// use ipc_runtime::DisconnectReason;
    /// use tokio::sync::broadcast::error::RecvError;
    ///
    /// let mut gone = main.disconnections();
    /// tokio::spawn(async move {
    ///     loop {
    ///         match gone.recv().await {
    ///             Ok(d) if matches!(d.reason, DisconnectReason::Closed) => {
    ///                 println!("{} closed", d.renderer.label);
    ///             }
    ///             Ok(d) => eprintln!("{} was disconnected: {}", d.renderer.label, d.reason),
    ///             Err(RecvError::Lagged(skipped)) => eprintln!("missed {skipped} disconnections"),
    ///             // Main was dropped.
    ///             Err(RecvError::Closed) => break,
    ///         }
    ///     }
    /// });
    /// # }
    /// ```
    pub fn disconnections(&self) -> broadcast::Receiver<Disconnection> {
        self.inner.disconnections.subscribe()
    }
}

impl Inner {
    /// Warns, once per main, of an event emitted through a main whose
    /// builder was dropped without building it: it will never reach a
    /// renderer, which would otherwise look like "nobody listens".
    #[cold]
    fn warn_if_abandoned(&self, channel: &str) {
        if self.abandoned.load(Ordering::Relaxed)
            && !self.warned_abandoned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                %channel,
                "event emitted through a Main that was never built: the MainBuilder it came from \
                 was dropped without a successful build, so no renderer will ever receive its \
                 events; make the emitter from the Main of the builder you build (`builder.main()`)"
            );
        }
    }

    /// What main serves, once built.
    pub(crate) fn setup(&self) -> Result<Arc<Setup>, IpcError> {
        self.setup.get().cloned().ok_or_else(|| IpcError::Config {
            reason: if self.abandoned.load(Ordering::Relaxed) {
                "main was never built: the MainBuilder this Main came from was dropped without \
                 a successful build; take the Main (`builder.main()`) from the builder you build"
            } else {
                "main is not built yet: call MainBuilder::build before accepting renderers"
            }
            .into(),
        })
    }

    pub(crate) fn next_id(&self) -> RendererId {
        RendererId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Records a connected renderer; `false` (and nothing recorded) once
    /// main is closed.
    pub(crate) fn register(
        &self,
        info: RendererInfo,
        closed: ClosedWatch,
        conn: Arc<connection::Conn>,
    ) -> bool {
        let mut renderers = self.renderers();
        if self.is_closed() {
            return false;
        }
        renderers.insert(info.id, Entry { info, closed, conn });
        true
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The error for a renderer that connects once main is closed.
    pub(crate) fn closed_error() -> IpcError {
        IpcError::disconnected(
            DisconnectCause::MainClosed,
            "main is closed (Main::close) and accepts no more renderers",
        )
    }

    pub(crate) fn unregister(&self, id: RendererId) {
        self.renderers().remove(&id);
    }
}

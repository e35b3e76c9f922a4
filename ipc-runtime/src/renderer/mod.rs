//! The renderer side: a connection to main, and the calls made over it.
//!
//! A renderer declares the services it will call, connects (to the socket
//! it inherited from main, a Unix socket with a token, or any
//! [`Transport`]), and builds the generated `…Client`s from the
//! [`Connection`].

mod client;
mod listen;
mod pending;

pub use client::ClientCore;
pub use listen::{EventStream, ListenerCore, Subscription};

use std::{
    fmt,
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, Weak,
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use bytes::Bytes;
use serde::Serialize;
use tokio::{
    sync::{watch, Notify},
    time::Instant,
};
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{debug, warn};

use self::pending::{Call, Calls};
use crate::{
    caller::RendererId,
    codec::{self, splice::FrameBuf, CodecError},
    contract::{Api, Cut, Service, ServiceDescriptor, ServiceSummary},
    deadline::capped,
    error::{DisconnectCause, WireError},
    frame::{Channel, Frame, Head, Hello, Sender, StreamError},
    spin::spin_then_wait,
    transport::{
        self,
        reader::FrameReader,
        writer::{run_writer, write_now, Outbox, PushError},
    },
    IpcError, Transport,
};

/// The default time a call waits for its reply.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The default largest frame a renderer accepts from main: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;
/// Frames queued for the writer before callers wait.
const OUT_QUEUE: usize = 1024;
/// How long a dropped connection may spend writing frames it had already
/// accepted (sends, cancels) before closing.
const DRAIN_ON_DROP: Duration = Duration::from_secs(1);

/// Configures and opens a [`Connection`].
#[derive(Debug, Clone)]
pub struct ConnectionBuilder {
    services: Vec<&'static ServiceDescriptor>,
    api: Option<(&'static str, &'static [&'static str])>,
    call_timeout: Duration,
    handshake_timeout: Duration,
    max_frame_size: usize,
    spin: Duration,
    round_trips: bool,
}

impl ConnectionBuilder {
    /// Declares that this renderer calls service `S` (the `…Contract` type
    /// that `#[service]` generated). At connect time main compares the
    /// declared services with its own on the channels its grant lets this
    /// renderer reach; the others are not compared.
    pub fn service<S: Service>(mut self) -> Self {
        if !self
            .services
            .iter()
            .any(|d| std::ptr::eq(*d, S::DESCRIPTOR))
        {
            self.services.push(S::DESCRIPTOR);
        }
        self
    }

    /// Declares that this renderer uses API `A` (an `expose!` type): its
    /// contracts are compared with main's at connect time (as
    /// [`service`](Self::service) says), and main refuses the
    /// connection if it does not grant every channel `A` exposes. The
    /// generated `A::connect_*` functions call this for you.
    pub fn api<A: Api>(mut self) -> Self {
        for d in A::CONTRACTS {
            if !self.services.iter().any(|s| std::ptr::eq(*s, *d)) {
                self.services.push(d);
            }
        }
        self.api = Some((A::NAME, A::ALLOWED));
        self
    }

    /// How long a call waits for its reply unless the client overrides it
    /// (default [`DEFAULT_CALL_TIMEOUT`]; `Duration::MAX` waits as long as
    /// the connection lives). A method declared with
    /// `#[ipc(timeout_secs = N)]` waits N seconds if that is longer. Set it for an `expose!` type with
    /// `Connection::builder().call_timeout(t).connect_inherited_as::<MyApi>()`
    /// (or `connect_unix_as`, `connect_as`).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// How long the handshake may take, from writing the hello to main's
    /// answer (default 10 s; `Duration::MAX` waits as long as main keeps
    /// the connection open).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The largest frame accepted from main (default
    /// [`DEFAULT_MAX_FRAME_SIZE`]; at most `u32::MAX`, the largest length
    /// a frame's prefix can state, which a larger value is lowered to).
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes.min(u32::MAX as usize);
        self
    }

    /// The low-latency option (off by default): a call keeps polling for
    /// its reply for up to `spin` before parking its task, so that a reply
    /// arriving within that time is picked up without waking a sleeping
    /// thread. Trades CPU time (up to `spin` per call) for latency; it
    /// helps only when the renderer and main each have a core to
    /// themselves. A call spins only while it is the connection's only
    /// call in flight (with others, their replies keep the renderer busy
    /// and spinning would take their CPU time), and not at all while this
    /// process may run on only one CPU (its affinity mask or CPU quota,
    /// re-checked at most every 100 ms), where it would mostly delay the
    /// reply: the renderer's own reply reader, and often main, need that
    /// CPU. See
    /// [`MainBuilder::spin_before_parking`](crate::MainBuilder::spin_before_parking)
    /// for main's side and `BENCHMARKS.md` for what it gains.
    /// `Duration::MAX` spins whenever it may.
    pub fn spin_before_parking(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// Whether this renderer checks, before sending, that the arguments
    /// its generated clients send survive the wire format (decoding them
    /// and encoding them again gives the same bytes, in some order): on by
    /// default in debug builds. Release builds never check, whatever this
    /// says: the check is compiled out, so that it costs them nothing. See
    /// [`IpcType`](crate::IpcType) for what it catches. Turn it off for a
    /// type whose `Deserialize` normalizes on purpose (trims, lowercases),
    /// which the check refuses.
    pub fn check_round_trips(mut self, check: bool) -> Self {
        self.round_trips = check;
        self
    }

    /// Connects over `transport`, for example one end of
    /// [`memory_pair`](crate::transport::memory_pair).
    pub async fn connect(self, transport: Transport) -> Result<Connection, IpcError> {
        in_runtime("ConnectionBuilder::connect")?;
        self.handshake(transport, None).await
    }

    /// Connects to main's Unix socket at `path`, presenting the one-time
    /// `token` that main issued for this renderer.
    ///
    /// The token is sent only if the process serving the socket runs as
    /// this renderer's user or as root (`SO_PEERCRED`); otherwise the
    /// connect fails with [`IpcError::Unauthorized`]. A renderer running
    /// as another user than main (root included) cannot connect this way:
    /// start it with [`Main::spawn_renderer`](crate::Main::spawn_renderer)
    /// instead.
    pub async fn connect_unix(
        self,
        path: impl AsRef<Path>,
        token: &str,
    ) -> Result<Connection, IpcError> {
        in_runtime("ConnectionBuilder::connect_unix")?;
        let transport = transport::unix::connect(path.as_ref()).await?;
        self.handshake(transport, Some(token.to_string())).await
    }

    /// Connects to main's TCP socket at `addr` (see
    /// [`Main::listen_tcp`](crate::Main::listen_tcp)), presenting the
    /// one-time `token` that main issued for this renderer. Like main,
    /// refuses addresses other than loopback ones with
    /// [`IpcError::Config`]: the token would cross unencrypted.
    pub async fn connect_tcp(
        self,
        addr: impl tokio::net::ToSocketAddrs,
        token: &str,
    ) -> Result<Connection, IpcError> {
        in_runtime("ConnectionBuilder::connect_tcp")?;
        let transport = transport::tcp::connect(addr).await?;
        self.handshake(transport, Some(token.to_string())).await
    }

    /// Connects over the socket inherited from main, in a process started
    /// by [`Main::spawn_renderer`](crate::Main::spawn_renderer).
    pub async fn connect_inherited(self) -> Result<Connection, IpcError> {
        in_runtime("ConnectionBuilder::connect_inherited")?;
        let transport = transport::child::inherited()?;
        self.handshake(transport, None).await
    }

    /// Connects over `transport` as API `A` (an `expose!` type).
    pub async fn connect_as<A: Api>(self, transport: Transport) -> Result<A, IpcError> {
        Ok(A::__from_connection(
            self.api::<A>().connect(transport).await?,
        ))
    }

    /// Connects to main's Unix socket as API `A`, with a one-time token.
    pub async fn connect_unix_as<A: Api>(
        self,
        path: impl AsRef<Path>,
        token: &str,
    ) -> Result<A, IpcError> {
        Ok(A::__from_connection(
            self.api::<A>().connect_unix(path, token).await?,
        ))
    }

    /// Connects to main's TCP socket as API `A`, with a one-time token.
    pub async fn connect_tcp_as<A: Api>(
        self,
        addr: impl tokio::net::ToSocketAddrs,
        token: &str,
    ) -> Result<A, IpcError> {
        Ok(A::__from_connection(
            self.api::<A>().connect_tcp(addr, token).await?,
        ))
    }

    /// Connects over the inherited socket as API `A`.
    pub async fn connect_inherited_as<A: Api>(self) -> Result<A, IpcError> {
        Ok(A::__from_connection(
            self.api::<A>().connect_inherited().await?,
        ))
    }

    /// Main's refusal, as this renderer reports it: a contract mismatch
    /// also says what differs inside the types main named, from main's
    /// shapes of them and this renderer's own.
    fn rejected(&self, error: WireError) -> IpcError {
        match error {
            WireError::HandshakeMismatch {
                renderer,
                main,
                differences,
                shapes,
            } => {
                // Main's notes, if this renderer can read them (a size it
                // accepts, a layout it knows): without them, the lines
                // stay as main wrote them.
                let notes: Vec<crate::contract::ShapeNote> = (shapes.len()
                    <= crate::contract::NOTES_BYTES)
                    .then(|| codec::decode(&shapes).ok())
                    .flatten()
                    .unwrap_or_default();
                IpcError::HandshakeMismatch {
                    renderer,
                    main,
                    differences: crate::contract::refine(differences, &notes, &self.services),
                }
            }
            other => other.into_ipc(),
        }
    }

    async fn handshake(
        self,
        transport: Transport,
        token: Option<String>,
    ) -> Result<Connection, IpcError> {
        let (read, mut writer, _) = transport.into_parts();
        let mut reader = FrameReader::new(read, self.max_frame_size);
        let hello = Hello {
            services: self
                .services
                .iter()
                .map(|d| ServiceSummary::of(d))
                .collect(),
            max_frame_size: self.max_frame_size as u64,
            api: self.api.map(|(name, allowed)| {
                (
                    name.to_string(),
                    allowed.iter().map(|c| c.to_string()).collect(),
                )
            }),
        };
        let hello = Frame::hello(token.as_deref(), &hello).map_err(|e| IpcError::Encode {
            channel: "the handshake".into(),
            reason: e.into_encode_reason(),
        })?;
        // One deadline for the whole handshake: writing the hello too waits
        // for main (to read it, once it fills the transport's buffer).
        let deadline = tokio::time::Instant::now() + capped(self.handshake_timeout);
        let timed_out = || {
            IpcError::disconnected(
                DisconnectCause::Lost,
                format!(
                    "main did not answer the handshake within {:?}",
                    self.handshake_timeout
                ),
            )
        };
        let written = tokio::time::timeout_at(deadline, write_now(&mut writer, hello))
            .await
            .map_err(|_| timed_out())?;
        if let Err(e) = written {
            // Main may refuse a renderer before reading its hello (too many
            // renderers, main closed) and close at once: its reason, if it
            // arrived, says more than the broken pipe.
            let answer = tokio::time::timeout_at(deadline, reader.next()).await;
            return Err(match answer {
                Ok(Some(Ok(body))) => match Frame::parse(body, Sender::Main) {
                    Ok(Frame::Rejected(reason)) => self.rejected(reason),
                    _ => e.into_ipc(),
                },
                _ => e.into_ipc(),
            });
        }
        let answer = match tokio::time::timeout_at(deadline, reader.next()).await {
            Err(_) => return Err(timed_out()),
            Ok(None) => {
                return Err(IpcError::disconnected(
                    DisconnectCause::Lost,
                    "main closed the connection during the handshake",
                ))
            }
            Ok(Some(Err(e))) => return Err(e.into_ipc()),
            Ok(Some(Ok(body))) => Frame::parse(body, Sender::Main).map_err(|e| e.into_ipc())?,
        };
        let welcome = match answer {
            Frame::Welcome(w) => w,
            Frame::Rejected(e) => return Err(self.rejected(e)),
            _ => {
                return Err(IpcError::protocol(
                    "main answered the handshake with an unexpected frame",
                ))
            }
        };
        let main_max_frame = usize::try_from(welcome.max_frame_size).unwrap_or(usize::MAX);
        let out = Outbox::new(writer, OUT_QUEUE, main_max_frame);
        let queue = out.queue();
        let stop = CancellationToken::new();
        let (closed_tx, closed_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            out,
            state: Mutex::new(State {
                calls: Calls::new(usize::try_from(welcome.max_in_flight).unwrap_or(usize::MAX)),
                next_sweep: None,
                closed: None,
            }),
            next_id: AtomicU64::new(1),
            call_timeout: self.call_timeout,
            spin: self.spin,
            round_trips: self.round_trips,
            id: RendererId(welcome.id),
            label: welcome.label,
            closed: closed_rx,
            is_closed: AtomicBool::new(false),
            stop: stop.clone(),
            listeners: Mutex::default(),
            events: listen::EventQueue::default(),
            sweep: Notify::new(),
            farewell: Mutex::default(),
            write_failed: Mutex::default(),
            runtime: tokio::runtime::Handle::current(),
        });
        tokio::spawn(listen::dispatch_events(Arc::clone(&shared), stop.clone()));
        let writer_stop = stop.clone();
        let writer_shared = Arc::clone(&shared);
        // Made before the task, so that what it holds on drop is written
        // even if the task never runs (see `run_writer`).
        let writing = run_writer(queue, writer_stop.clone(), Some(DRAIN_ON_DROP));
        let give_up = CancellationToken::new();
        let reader_give_up = give_up.clone();
        tokio::spawn(async move {
            if let Err(e) = writing.await {
                // A connection that cannot write is over, even if reading
                // still works (a transport of two separate pipes). But
                // main may have written more before it closed (events, a
                // disconnect it is telling why): the reader goes on until
                // the end of the stream, or until nothing more comes once
                // `DRAIN_ON_DROP` has passed, and then ends the
                // connection, with main's reason if it read one, so that
                // calls failing now and `closed` agree.
                *writer_shared
                    .write_failed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
                tokio::time::sleep(DRAIN_ON_DROP).await;
                give_up.cancel();
            }
        });
        tokio::spawn(sweep_timeouts(Arc::clone(&shared), stop.clone()));
        tokio::spawn(read_replies(
            Arc::clone(&shared),
            reader,
            stop.clone(),
            reader_give_up,
            closed_tx,
        ));
        Ok(Connection {
            shared,
            _stop: Arc::new(stop.drop_guard()),
        })
    }
}

/// Checks that `what` is called inside a tokio runtime, whose tasks will
/// carry the connection: a clear error rather than tokio's panic.
fn in_runtime(what: &str) -> Result<(), IpcError> {
    tokio::runtime::Handle::try_current()
        .map(drop)
        .map_err(|_| IpcError::Config {
            reason: format!(
                "{what} (which the `connect…` functions of `expose!` types call) must be called inside a tokio runtime \
                 (with I/O and time enabled: `#[tokio::main]`, or `enable_all()` on a runtime builder), \
                 whose tasks then carry the connection (once made, it may be used from any thread)"
            ),
        })
}

/// A renderer's connection to main.
///
/// Cheap to clone; the connection closes when the last clone (including
/// those inside clients and API types) is dropped. A listener's callback
/// that holds one keeps the connection open for as long as the callback
/// is registered (for a detached listener, for ever): let it hold a
/// [`WeakConnection`] ([`Connection::downgrade`], or the `downgrade` of an
/// `expose!` type) instead. What was sent until then is still
/// written: for up to a second while the runtime runs, and, if the
/// runtime shuts down first (a renderer returning from `main` right after
/// a `send`), as much as the socket takes at once. A process that ends
/// with `std::process::exit` runs no destructors: call
/// [`Connection::flush`] or [`Connection::close`] before it.
///
/// A connection is made inside a tokio runtime, whose tasks then carry
/// it; its calls, `send`s and listeners may be used from any thread,
/// including one outside every runtime that polls them with an executor
/// of its own (a GUI toolkit's thread): the timers they wait on are then
/// the connection runtime's.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
    _stop: Arc<DropGuard>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.shared.id)
            .field("label", &self.shared.label)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// A reply from main, before it is decoded into the method's types.
pub(crate) enum Reply {
    Ok(Bytes),
    Err(Bytes),
    Failed(IpcError),
}

struct Shared {
    /// Frames on their way to main (no larger than main accepts).
    out: Outbox,
    state: Mutex<State>,
    next_id: AtomicU64,
    call_timeout: Duration,
    /// See [`ConnectionBuilder::spin_before_parking`].
    spin: Duration,
    /// See [`ConnectionBuilder::check_round_trips`].
    round_trips: bool,
    id: RendererId,
    label: String,
    closed: watch::Receiver<bool>,
    /// Set (after `State::closed`) when the connection closes: checked by
    /// every `send` without taking the state's lock.
    is_closed: AtomicBool,
    /// Stops the reader and writer tasks.
    stop: CancellationToken,
    /// Local listeners by event channel.
    listeners: Mutex<listen::Listeners>,
    /// Events on their way to the dispatcher task.
    events: listen::EventQueue,
    /// Wakes the timeout sweeper when a call's deadline comes before the
    /// one it sleeps until.
    sweep: Notify,
    /// Why main ended the connection, if it said so before closing it.
    farewell: Mutex<Option<IpcError>>,
    /// Why writing to main failed, if it did.
    write_failed: Mutex<Option<String>>,
    /// The runtime the connection was made on, whose timers its calls'
    /// waits use (see [`Shared::timer`]).
    runtime: tokio::runtime::Handle,
}

struct State {
    /// The calls in flight, and how many of main's slots they hold.
    calls: Calls,
    /// When the timeout sweeper wakes next (`None`: when a call starts).
    next_sweep: Option<Instant>,
    closed: Option<IpcError>,
}

impl Shared {
    /// Runs `make`, which creates a timer, in the connection's runtime,
    /// whatever the caller's: a call waits on a timer only when it must
    /// wait (for a slot, for room in the queue), so a caller outside any
    /// runtime (a GUI thread polling it with an executor of its own), or
    /// in one without timers, would otherwise work until the first time
    /// it had to wait, then panic. The connection's runtime has timers
    /// (its handshake used them); once it shuts down, the connection is
    /// closed and these waits end without polling their timers.
    fn timer<T>(&self, make: impl FnOnce() -> T) -> T {
        let _entered = self.runtime.enter();
        make()
    }

    /// What main said as it ended the connection, once the reader has it.
    fn farewell(&self) -> Option<IpcError> {
        self.farewell
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Critical sections are single map operations: never inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the connection closed and fails every call still waiting for
    /// its reply (or for a slot).
    ///
    /// The first reason given is kept, and is what every call and
    /// `Connection::closed` report. A connection lost (the reader at the
    /// end of main's stream, or giving up on it) is closed with what main
    /// said as it ended the connection, if it did: the better answer. A
    /// close here (`Connection::close`, the connection dropped, its
    /// runtime gone) keeps its own reason, whatever main said before.
    fn close(&self, reason: IpcError) {
        let reason = match reason.disconnect_cause() {
            Some(DisconnectCause::Lost) => self.farewell().unwrap_or(reason),
            _ => reason,
        };
        let wakers = {
            let mut state = self.state();
            if state.closed.is_none() {
                state.closed = Some(reason);
            }
            self.is_closed.store(true, Ordering::Release);
            state.calls.drain()
        };
        // Nothing more is queued; what is queued is still written. Calls
        // waiting for room in the queue fail now, not when the writer
        // stops.
        self.out.close();
        // Each caller still waiting wakes to find its call gone, and reads
        // the reason; a call whose reply came before the end takes its
        // reply. Calls waiting for a slot fail too; listeners end once the
        // dispatcher has delivered the events already received.
        for waker in wakers {
            waker.wake();
        }
    }

    /// Adds call `id` unless the free in-flight slots are all for calls
    /// waiting ahead of it (all waiting calls, for a call without a place
    /// in line): then it is handed back, and a call in line (its ticket and
    /// waker) is woken when a slot is for it. Fails if the connection is
    /// closed.
    fn try_admit(
        &self,
        id: u64,
        call: Call,
        in_line: Option<(u64, &Waker)>,
    ) -> Result<Result<(), Call>, IpcError> {
        let mut state = self.state();
        if let Some(reason) = &state.closed {
            return Err(reason.clone());
        }
        let deadline = call.deadline;
        let ticket = in_line.map(|(ticket, _)| ticket);
        if let Err(call) = state.calls.admit(id, call, ticket) {
            if let Some((ticket, waker)) = in_line {
                state.calls.register(ticket, waker);
            }
            return Ok(Err(call));
        }
        // The sweeper sleeps until the earliest deadline it knows of.
        if state.next_sweep.is_none_or(|at| deadline < at) {
            state.next_sweep = Some(deadline);
            self.sweep.notify_one();
        }
        Ok(Ok(()))
    }

    /// Takes call `id`'s reply if it has come, or registers `cx` to be
    /// woken when it does; `None` if the connection closed.
    ///
    /// On the `first` poll, a timeout means the sweeper expired the call
    /// before its invoke was queued, so that its cancel may have gone out
    /// first: it is cancelled again, after (main ignores a second one),
    /// before its slot is freed.
    fn poll_reply(&self, id: u64, cx: &mut Context<'_>, first: bool) -> Poll<Option<Reply>> {
        let removed = {
            let mut state = self.state();
            let removed = match state.calls.poll_reply(id, cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(removed)) => removed,
            };
            if first && matches!(removed.reply, Some(Reply::Failed(IpcError::Timeout { .. }))) {
                self.send_from_drop(Frame::Cancel { id });
            }
            removed
        };
        if let Some(next) = removed.next {
            next.wake();
        }
        Poll::Ready(removed.reply)
    }

    /// Queues the invoke of call `id`, which found the write queue full,
    /// waiting for room. While it waits the call is marked unsent, so that
    /// if it is given up meanwhile (dropped, timed out) main is not told to
    /// cancel a call it never saw: such cancels would pile up in the very
    /// queue that is full.
    ///
    /// It is marked sent again just before each try (not under the calls'
    /// lock, which the arguments' `Serialize` must not run under): a call
    /// expiring in between is cancelled as a call that expired before its
    /// first push is, once more after its invoke (see `poll_reply`).
    ///
    /// `None` if the call stopped waiting first (it timed out, or the
    /// connection closed).
    async fn push_unsent<F>(&self, id: u64, mut frame: F) -> Option<Result<(), PushError>>
    where
        F: FnOnce(&mut FrameBuf<'_>) -> Result<(), CodecError>,
    {
        let mark = |sent: bool| self.state().calls.waiting(id).map(|call| call.sent = sent);
        mark(false)?;
        loop {
            self.out.room(|| {}).await;
            mark(true)?;
            match self.out.push_if_room(frame, true) {
                Ok(pushed) => return Some(pushed),
                // Another producer took the room first.
                Err(back) => {
                    frame = back;
                    mark(false)?;
                }
            }
        }
    }

    /// Forgets call `id`. If it was still waiting for its reply, its invoke
    /// was queued and `cancel` is set, main is told to cancel it: before its slot is
    /// freed, so that main never sees the call that takes the slot before
    /// the cancel (it would count one call too many).
    fn forget(&self, id: u64, cancel: bool) {
        let next = {
            let mut state = self.state();
            let Some(removed) = state.calls.remove(id) else {
                return;
            };
            if cancel && removed.reply.is_none() && removed.sent {
                self.send_from_drop(Frame::Cancel { id });
            }
            removed.next
        };
        if let Some(next) = next {
            next.wake();
        }
    }

    fn listeners(&self) -> MutexGuard<'_, listen::Listeners> {
        // Critical sections are single map operations: never inconsistent.
        self.listeners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `frame` from a destructor (a cancel, an unsubscribe), which
    /// cannot wait: it is queued even if the queue is full (it is a few
    /// bytes); if the connection is closed, there is no one to tell.
    fn send_from_drop(&self, frame: Frame) {
        let _ = self.out.push_always(|buf| frame.write_body(buf));
    }

    /// The error for a frame on `channel` that could not be queued. A
    /// closed queue means the connection is ending (its writer failed, or
    /// it was closed): the reason it ends with, once it has, so that every
    /// call and send agree with `Connection::closed` (the reader may still
    /// have main's farewell to read); waited for until `deadline` at most
    /// (the call's, or the send's timeout), then what is known by then.
    async fn push_error(
        &self,
        channel: &str,
        e: PushError,
        deadline: tokio::time::Instant,
    ) -> IpcError {
        match e {
            PushError::Closed => {
                let ended = self.timer(|| tokio::time::timeout_at(deadline, self.ended()));
                ended.await.unwrap_or_else(|_| self.closed_reason())
            }
            e => e.into_ipc(channel, || self.closed_reason()),
        }
    }

    /// Waits until the connection has ended, and returns why.
    async fn ended(&self) -> IpcError {
        let mut rx = self.closed.clone();
        let _ = rx.wait_for(|closed| *closed).await;
        self.closed_reason()
    }

    fn closed_reason(&self) -> IpcError {
        self.state().closed.clone().unwrap_or_else(|| {
            IpcError::disconnected(DisconnectCause::Lost, "the connection to main is closed")
        })
    }
}

/// A handle on a [`Connection`] that does not keep it open, as
/// [`std::sync::Weak`] is to `Arc`: for a listener's callback that calls
/// main back, which would otherwise keep its own connection open.
/// [`upgrade`](Self::upgrade) gives the connection while another handle
/// on it lives.
#[derive(Clone)]
pub struct WeakConnection {
    shared: Weak<Shared>,
    stop: Weak<DropGuard>,
}

impl WeakConnection {
    /// The connection, if a handle on it (a [`Connection`], a client, an
    /// API) still lives; `None` once the last one was dropped, which
    /// closed it. A connection closed otherwise (by main, or by
    /// [`Connection::close`] while other handles live) still upgrades,
    /// and its calls fail with [`IpcError::Disconnected`].
    pub fn upgrade(&self) -> Option<Connection> {
        let stop = self.stop.upgrade()?;
        Some(Connection {
            shared: self.shared.upgrade()?,
            _stop: stop,
        })
    }
}

impl fmt::Debug for WeakConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.upgrade() {
            Some(conn) => f.debug_tuple("WeakConnection").field(&conn).finish(),
            None => f.write_str("WeakConnection(dropped)"),
        }
    }
}

/// A handle on an API (an `expose!` type) that does not keep its
/// connection open, made by the API's `downgrade`: for a listener's
/// callback that calls main back.
///
/// ```no_run
/// use ipc_runtime::{events, expose, service};
///
/// #[service(namespace = "notes")]
/// pub trait Notes {
///     async fn get(&self, id: u64) -> String;
/// }
///
/// #[events(namespace = "notes")]
/// pub trait NotesEvents {
///     fn changed(&self, id: u64);
/// }
///
/// expose! {
///     pub struct ViewerApi {
///         notes: Notes { get },
///         events: NotesEvents { changed },
///     }
/// }
///
/// async fn follow(api: &ViewerApi) -> Result<(), ipc_runtime::IpcError> {
///     // Holding `api` itself, the callback would keep the connection
///     // open after the app dropped every other handle on it.
///     let weak = api.downgrade();
///     api.events
///         .on_changed(move |id| {
///             let Some(api) = weak.upgrade() else { return };
///             tokio::spawn(async move {
///                 if let Ok(text) = api.notes.get(id).await {
///                     println!("note {id} is now {text:?}");
///                 }
///             });
///         })
///         .await?
///         .detach();
///     Ok(())
/// }
/// # fn main() {}
/// ```
pub struct WeakApi<A> {
    conn: WeakConnection,
    api: std::marker::PhantomData<fn() -> A>,
}

impl<A: Api> WeakApi<A> {
    /// Used by the `downgrade` that `expose!` generates.
    #[doc(hidden)]
    pub fn __new(conn: WeakConnection) -> Self {
        WeakApi {
            conn,
            api: std::marker::PhantomData,
        }
    }

    /// The API, if a handle on its connection still lives (see
    /// [`WeakConnection::upgrade`]).
    pub fn upgrade(&self) -> Option<A> {
        self.conn.upgrade().map(A::__from_connection)
    }
}

impl<A> Clone for WeakApi<A> {
    fn clone(&self) -> Self {
        WeakApi {
            conn: self.conn.clone(),
            api: std::marker::PhantomData,
        }
    }
}

impl<A: Api> fmt::Debug for WeakApi<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakApi")
            .field("api", &A::NAME)
            .field("connection", &self.conn)
            .finish()
    }
}

impl Connection {
    /// A handle on this connection that does not keep it open: see
    /// [`WeakConnection`].
    pub fn downgrade(&self) -> WeakConnection {
        WeakConnection {
            shared: Arc::downgrade(&self.shared),
            stop: Arc::downgrade(&self._stop),
        }
    }

    /// Starts configuring a connection.
    pub fn builder() -> ConnectionBuilder {
        ConnectionBuilder {
            services: Vec::new(),
            api: None,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            handshake_timeout: Duration::from_secs(10),
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            spin: Duration::ZERO,
            round_trips: cfg!(debug_assertions),
        }
    }

    /// The id main assigned to this connection.
    pub fn id(&self) -> RendererId {
        self.shared.id
    }

    /// The label main gave this connection.
    pub fn label(&self) -> &str {
        &self.shared.label
    }

    /// Whether the connection to main is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed.load(Ordering::Acquire)
    }

    /// Waits until the connection to main closes (main exited, crashed or
    /// dropped this renderer) and returns why, an
    /// [`IpcError::Disconnected`]: main's own words and cause when it
    /// ended the connection on purpose (it shut down with `Main::close`,
    /// or dropped this renderer, saying why), "main closed the
    /// connection" and [`DisconnectCause::Lost`] when it just went away
    /// (crashed, killed, or exited without closing), and
    /// [`DisconnectCause::ClosedHere`] when it was closed here first
    /// ([`Connection::close`], the last handle dropped, its runtime shut
    /// down). Every call and send that fails because the connection ended
    /// reports the same. Match on [`IpcError::disconnect_cause`] to decide
    /// what to do.
    pub async fn closed(&self) -> IpcError {
        self.shared.ended().await
    }

    /// The default call timeout.
    pub(crate) fn call_timeout(&self) -> Duration {
        self.shared.call_timeout
    }

    /// Sends an invoke frame and waits for its reply.
    pub(crate) async fn call(
        &self,
        channel: &'static str,
        args: &(impl Serialize + ?Sized),
        check: Option<codec::Check>,
        timeout: Duration,
    ) -> Result<Reply, IpcError> {
        let check = check.filter(|_| self.shared.round_trips);
        self.request(channel, timeout, true, |id, buf| {
            Head::Invoke { id, channel }.write(buf);
            buf.encode_checked(args, check)
        })
        .await
    }

    /// Queues the frame that `frame` writes for a new call id (encoding the
    /// arguments straight into the write buffer) and waits for the reply
    /// to that id.
    ///
    /// A `counted` request is a call that main counts against its in-flight
    /// limit: it first waits for one of the slots main granted, so that a
    /// well-behaved renderer never exceeds the limit. The wait counts
    /// towards `timeout`.
    async fn request(
        &self,
        channel: &'static str,
        timeout: Duration,
        counted: bool,
        frame: impl FnOnce(u64, &mut FrameBuf<'_>) -> Result<(), CodecError>,
    ) -> Result<Reply, IpcError> {
        let now = Instant::now();
        let deadline = now + capped(timeout);
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let call = Call::new(deadline, channel, timeout, counted);
        if let Err(call) = self.shared.try_admit(id, call, None)? {
            // Boxed: this rare wait would otherwise grow every call's
            // future by a timer's size.
            Box::pin(self.wait_for_slot(id, call)).await?;
        }
        let mut guard = PendingCall {
            shared: &self.shared,
            id,
            armed: true,
        };
        // Queued at once unless the queue is full (main is not keeping
        // up); only then is a timer armed, so that the timeout also bounds
        // the wait for room.
        let pushed = match self.shared.out.push_if_room(|buf| frame(id, buf), true) {
            Ok(pushed) => pushed,
            Err(frame) => {
                let wait = Box::pin(self.shared.timer(|| {
                    tokio::time::timeout_at(deadline, self.shared.push_unsent(id, frame))
                }));
                match wait.await {
                    Ok(Some(pushed)) => pushed,
                    // Timed out (or the connection closed) before its invoke
                    // was queued: nothing to cancel on main.
                    Ok(None) | Err(_) => {
                        guard.armed = false;
                        self.shared.forget(id, false);
                        if self.shared.is_closed.load(Ordering::Acquire) {
                            return Err(self.shared.closed_reason());
                        }
                        return Err(IpcError::Timeout {
                            channel: channel.to_string(),
                            timeout,
                        });
                    }
                }
            }
        };
        if let Err(e) = pushed {
            guard.armed = false;
            self.shared.forget(id, false);
            // Boxed: a rare wait that would otherwise enlarge every call.
            return Err(Box::pin(self.shared.push_error(channel, e, deadline)).await);
        }
        // A reply, or the timeout from the sweeper (which has told main
        // to cancel the call).
        let mut first = true;
        let reply =
            std::future::poll_fn(|cx| self.shared.poll_reply(id, cx, std::mem::take(&mut first)));
        // The low-latency option spins only while this is the connection's
        // only call: with others in flight, their replies keep the task
        // busy anyway, and spinning would take the CPU time that reading
        // and answering them needs.
        let alone = || self.shared.state().calls.len() <= 1;
        let reply = spin_then_wait(reply, self.shared.spin, alone).await;
        guard.armed = false;
        reply.ok_or_else(|| self.shared.closed_reason())
    }

    /// Waits until call `id` gets one of main's in-flight slots, at most
    /// until its deadline.
    ///
    /// Calls wait in line, in the order they came, and free slots go to
    /// them one each in that order, as with a fair semaphore: a slot that
    /// frees wakes only the call it is for (the connection closing wakes
    /// them all). A call future that is kept but no longer polled keeps the
    /// slot it was let in for, and holds up no one else.
    async fn wait_for_slot(&self, id: u64, call: Call) -> Result<(), IpcError> {
        let deadline = call.deadline;
        let timed_out = call.timed_out();
        let waiting = WaitingForSlot::new(&self.shared);
        let mut call = Some(call);
        let admitted = std::future::poll_fn(|cx| {
            let Some(c) = call.take() else {
                return Poll::Ready(Ok(()));
            };
            // Refused, the call registers its waker under the same lock
            // as it looks: a slot freed later finds it.
            match self
                .shared
                .try_admit(id, c, Some((waiting.ticket, cx.waker())))
            {
                Err(e) => Poll::Ready(Err(e)),
                Ok(Ok(())) => Poll::Ready(Ok(())),
                Ok(Err(c)) => {
                    call = Some(c);
                    Poll::Pending
                }
            }
        });
        let admitted = self
            .shared
            .timer(|| tokio::time::timeout_at(deadline, admitted));
        match admitted.await {
            Ok(admitted) => admitted,
            Err(_) => Err(timed_out),
        }
    }

    /// Sends a fire-and-forget frame, waiting at most `timeout` for room
    /// in the outgoing queue.
    pub(crate) async fn send(
        &self,
        channel: &'static str,
        args: &(impl Serialize + ?Sized),
        check: Option<codec::Check>,
        timeout: Duration,
    ) -> Result<(), IpcError> {
        if self.shared.is_closed.load(Ordering::Acquire) {
            return Err(self.shared.closed_reason());
        }
        let check = check.filter(|_| self.shared.round_trips);
        let frame = |buf: &mut FrameBuf<'_>| {
            Head::Send { channel }.write(buf);
            buf.encode_checked(args, check)
        };
        // Queued at once unless the queue is full (main is not keeping up);
        // only then is a timer armed.
        let pushed = match self.shared.out.push_if_room(frame, true) {
            Ok(pushed) => pushed,
            Err(frame) => {
                let wait = Box::pin(self.shared.timer(|| {
                    tokio::time::timeout(capped(timeout), self.shared.out.push(frame, true))
                }));
                match wait.await {
                    Ok(pushed) => pushed,
                    Err(_) => {
                        return Err(IpcError::SendTimeout {
                            channel: channel.to_string(),
                            timeout,
                        })
                    }
                }
            }
        };
        match pushed {
            Ok(()) => Ok(()),
            // Boxed: a rare wait that would otherwise enlarge every send.
            Err(e) => {
                let deadline = tokio::time::Instant::now() + capped(timeout);
                Err(Box::pin(self.shared.push_error(channel, e, deadline)).await)
            }
        }
    }

    /// Waits until every message and call sent so far has been written to
    /// the connection. A `send` returns once its message is queued; flush
    /// before exiting the process to be sure queued messages reach main.
    pub async fn flush(&self) -> Result<(), IpcError> {
        if self.shared.out.flushed().await {
            Ok(())
        } else {
            Err(self.shared.ended().await)
        }
    }

    /// Closes the connection: calls still waiting for their replies fail
    /// with [`IpcError::Disconnected`], and what was sent so far is
    /// written, for at most a second (as when the last handle is
    /// dropped). An error says that main did not take all of it in that
    /// time; call [`Connection::flush`] first to wait as long as it takes.
    /// Other clones (and clients built from them) see the connection
    /// closed.
    pub async fn close(self) -> Result<(), IpcError> {
        // Everything sent so far, taken before the queue closes.
        let flushed = self.shared.out.flushed();
        self.shared.close(IpcError::disconnected(
            DisconnectCause::ClosedHere,
            "the connection was closed by this renderer",
        ));
        let written = self
            .shared
            .timer(|| tokio::time::timeout(DRAIN_ON_DROP, flushed))
            .await;
        self.shared.stop.cancel();
        match written {
            Ok(true) => Ok(()),
            Ok(false) => Err(IpcError::disconnected(
                DisconnectCause::Lost,
                "the connection ended before everything sent was written",
            )),
            Err(_) => Err(IpcError::disconnected(DisconnectCause::ClosedHere, format!(
                "main did not take what was sent within {DRAIN_ON_DROP:?}; the connection was closed anyway"
            ))),
        }
    }
}

/// A call waiting for its reply. If the caller stops waiting (its future is
/// dropped, or it timed out), main is told to cancel the handler.
struct PendingCall<'a> {
    shared: &'a Arc<Shared>,
    id: u64,
    armed: bool,
}

impl Drop for PendingCall<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.forget(self.id, true);
        }
    }
}

/// A call's place in the queue for an in-flight slot, for as long as it
/// waits: slots go to the waiting calls in the order they came.
struct WaitingForSlot<'a> {
    shared: &'a Shared,
    ticket: u64,
}

impl<'a> WaitingForSlot<'a> {
    fn new(shared: &'a Shared) -> Self {
        let ticket = shared.state().calls.wait();
        WaitingForSlot { shared, ticket }
    }
}

impl Drop for WaitingForSlot<'_> {
    fn drop(&mut self) {
        // Nothing if the call got a slot: it left the line then.
        let next = self.shared.state().calls.stop_waiting(self.ticket);
        if let Some(next) = next {
            next.wake();
        }
    }
}

/// Fails the calls whose deadline has passed (and tells main to cancel
/// them), sleeping until the earliest deadline in between: one timer per
/// connection instead of one per call.
async fn sweep_timeouts(shared: Arc<Shared>, stop: CancellationToken) {
    let mut expired = Vec::new();
    loop {
        let next = {
            let mut state = shared.state();
            let next = state.calls.expire(Instant::now(), &mut expired);
            state.next_sweep = next;
            // Queued under the lock: the callers cannot take their timeout
            // and free their slots before main is told to cancel. A call
            // whose invoke was never queued has nothing to cancel.
            for call in expired.iter().filter(|call| call.sent) {
                shared.send_from_drop(Frame::Cancel { id: call.id });
            }
            next
        };
        for call in expired.drain(..) {
            if let Some(waker) = call.waker {
                waker.wake();
            }
        }
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = shared.sweep.notified() => {}
            () = sleep => {}
        }
    }
}

/// How soon after reading resumed (it had paused for slow listeners) the
/// end of the stream is put down to main having dropped this renderer as
/// a slow consumer.
const FELL_BEHIND_RECENTLY: Duration = Duration::from_secs(2);

/// Reads main's frames and completes the matching calls, until the
/// connection ends; then fails everything still pending.
///
/// Every frame that has arrived is handled before the next read, and the
/// replies among them complete under one lock: a burst of replies costs
/// one lock, not one each.
async fn read_replies(
    shared: Arc<Shared>,
    mut reader: FrameReader,
    stop: CancellationToken,
    give_up: CancellationToken,
    closed: watch::Sender<bool>,
) {
    // Dropped unfinished (its runtime shut down while handles of the
    // connection live on elsewhere), the reader still ends the connection:
    // nothing else would wake the calls waiting for replies (their timeouts
    // died with the sweeper, on the same runtime).
    let mut ending = EndOnDrop(Some((Arc::clone(&shared), closed)));
    // Created once: a fresh `cancelled()` per read would register with
    // (and leave) the token's waiter list every time.
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    // Writing failed a while ago: stop once nothing more is there to read.
    let gave_up = give_up.cancelled();
    tokio::pin!(gave_up);
    // Why the connection ended, when `stopped` fires in either wait below.
    let dropped = || {
        IpcError::disconnected(
            DisconnectCause::ClosedHere,
            "the connection was dropped by this renderer",
        )
    };
    let mut replies = Vec::new();
    let mut wake = Vec::new();
    // When reading last resumed after pausing for slow listeners: main
    // may have dropped this renderer as a slow consumer meanwhile, its
    // farewell stuck behind the events this renderer did not read in time
    // (main stops writing a second later, so the end of the stream follows
    // soon after reading resumes).
    let mut resumed: Option<tokio::time::Instant> = None;
    let reason = loop {
        // An event the dispatcher has no room for yet.
        let mut blocked = None;
        let ended = loop {
            match reader.buffered() {
                Ok(Some(body)) => match route_frame(&shared, body) {
                    Ok(Some(reply)) => replies.push(reply),
                    Ok(None) => {}
                    Err(event) => {
                        blocked = Some(event);
                        break None;
                    }
                },
                Ok(None) => break None,
                Err(e) => break Some(unreadable(e)),
            }
        };
        complete(&shared, &mut replies, &mut wake);
        if let Some(reason) = ended {
            break reason;
        }
        if let Some(event) = blocked {
            // The listeners are behind: wait for them rather than drop the
            // event. Meanwhile nothing more is read, so main's queue for
            // this renderer fills and main applies its limits (counted).
            tokio::select! {
                biased;
                () = &mut stopped => break dropped(),
                () = shared.events.push_when_room(event) => {}
            }
            resumed = Some(tokio::time::Instant::now());
            continue;
        }
        let read = tokio::select! {
            biased;
            () = &mut stopped => break dropped(),
            read = reader.fill() => read,
            () = &mut gave_up => {
                let why = shared.write_failed.lock().unwrap_or_else(|e| e.into_inner()).clone();
                break IpcError::disconnected(
                    DisconnectCause::Lost,
                    format!("writing to main failed: {}", why.unwrap_or_default()),
                );
            }
        };
        match read {
            Ok(true) => {}
            // Main's own reasons come as a farewell, which replaces these.
            Ok(false) => match reader.end() {
                // Main gives up writing to a renderer that does not read
                // (after a second), often in the middle of a frame.
                cut if resumed.is_some_and(|at| at.elapsed() < FELL_BEHIND_RECENTLY) => {
                    break IpcError::disconnected(DisconnectCause::Lost, format!(
                    "main closed the connection without saying why, after this renderer fell behind reading events (its listeners were slow): main may have dropped it as a slow consumer (`SlowConsumer::Disconnect`) and given up telling it, or main's process ended or failed{}",
                    cut.map(|e| format!("; {e}")).unwrap_or_default()
                ))
                }
                None => break IpcError::disconnected(
                    DisconnectCause::Lost,
                    "main closed the connection without saying why (its process ended, or it failed)",
                ),
                Some(e) => break e.into_ipc(),
            },
            Err(e) => break read_failed(e),
        }
    };
    // Main's own words, if it said why, replace `reason` (`Shared::close`).
    ending.end(reason);
    debug!(error = %shared.closed_reason(), "connection to main ended");
}

/// Ends the connection when [`read_replies`] finishes: marks it closed with
/// the reason and fails every call still pending; if the reader is dropped
/// unfinished, with the reason that its runtime shut down.
struct EndOnDrop(Option<(Arc<Shared>, watch::Sender<bool>)>);

impl EndOnDrop {
    fn end(&mut self, reason: IpcError) {
        if let Some((shared, closed)) = self.0.take() {
            shared.stop.cancel();
            shared.close(reason);
            let _ = closed.send(true);
        }
    }
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.end(IpcError::disconnected(
            DisconnectCause::ClosedHere,
            "the tokio runtime this connection was made on shut down",
        ));
    }
}

/// Why a frame from main could not be read, as the connection's end: a
/// frame over this renderer's limit ends it (nothing after it can be
/// found), a disconnection like the others.
fn unreadable(e: StreamError) -> IpcError {
    match e {
        StreamError::TooLarge { size, limit } => IpcError::disconnected(
            DisconnectCause::Lost,
            format!(
                "main sent a frame of {size} bytes, over the {limit} bytes this renderer accepts \
                 (`ConnectionBuilder::max_frame_size`); nothing after it could be read"
            ),
        ),
        other => other.into_ipc(),
    }
}

/// Why reading from main failed, in the renderer's words. A reset is how
/// the OS reports that main closed its end while something this renderer
/// sent was still unread there ([`Main::close`](crate::Main::close) with
/// calls on the way, say): said as such, not as the OS's "connection reset
/// by peer".
fn read_failed(e: StreamError) -> IpcError {
    match &e {
        StreamError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset => {
            IpcError::disconnected(
                DisconnectCause::Lost,
                "main closed the connection before reading everything this renderer sent \
                 (connection reset)",
            )
        }
        _ => e.into_ipc(),
    }
}

/// Handles one frame from main: a reply is returned for [`complete`], an
/// event the dispatcher has no room for is given back (`Err`), anything
/// else is dealt with here.
fn route_frame(shared: &Shared, body: Bytes) -> Result<Option<(u64, Reply)>, (Channel, Bytes)> {
    match Frame::parse(body, Sender::Main) {
        Ok(Frame::ReplyOk { id, payload }) => Ok(Some((id, Reply::Ok(payload)))),
        Ok(Frame::ReplyErr { id, payload }) => Ok(Some((id, Reply::Err(payload)))),
        Ok(Frame::ReplyFailed { id, error }) => Ok(Some((id, Reply::Failed(error.into_ipc())))),
        Ok(Frame::Event { channel, payload }) => {
            shared.events.push(channel, payload).map(|()| None)
        }
        // Main's words, escaped and bounded before they reach this
        // renderer's log or errors (like a renderer's words on main).
        Ok(Frame::Notice(WireError::Disconnected { reason, cause })) => {
            let reason = Cut(&reason, FAREWELL_CHARS).to_string();
            *shared.farewell.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(IpcError::disconnected(cause, reason));
            Ok(None)
        }
        Ok(Frame::Notice(error)) => {
            let error = error.into_ipc().to_string();
            warn!(error = %Cut(&error, FAREWELL_CHARS), "main reported a problem with a message from this renderer");
            Ok(None)
        }
        Ok(other) => {
            let frame = format!("{other:?}");
            warn!(frame = %Cut(&frame, FAREWELL_CHARS), "ignored an unexpected frame from main");
            Ok(None)
        }
        Err(e) => {
            warn!(error = %e, "ignored a frame from main");
            Ok(None)
        }
    }
}

/// What this renderer keeps of a notice or farewell from main, in
/// characters.
const FAREWELL_CHARS: usize = 2000;

/// Hands `replies` to the calls waiting for them: the calls are completed
/// under one lock, and woken after it is released. Both vectors are left
/// empty, keeping their capacity for the next burst.
fn complete(shared: &Shared, replies: &mut Vec<(u64, Reply)>, wake: &mut Vec<Waker>) {
    if replies.is_empty() {
        return;
    }
    // Logged once the lock is released (a `tracing` layer may use this
    // connection): how many replies found their caller gone meanwhile.
    let mut unclaimed = 0usize;
    {
        let mut state = shared.state();
        for (id, reply) in replies.drain(..) {
            match state.calls.complete(id, reply) {
                Some(waker) => wake.extend(waker),
                // The caller may have gone in the meantime; nothing to do.
                None => unclaimed += 1,
            }
        }
    }
    if unclaimed > 0 {
        debug!(
            replies = unclaimed,
            "replies for calls nobody waits for any more"
        );
    }
    for waker in wake.drain(..) {
        waker.wake();
    }
}

//! One renderer connection on the main side: handshake, then the loop that
//! reads its frames and runs its calls, within the renderer's [`Limits`].

use std::{
    any::Any,
    collections::{HashMap, HashSet},
    fmt::Display,
    panic::AssertUnwindSafe,
    sync::{
        atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_util::FutureExt;
use tokio::{
    sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore},
    task::AbortHandle,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::{
    limits::{violations_count, DisconnectReason, Disconnection, Limits, SlowConsumer},
    Auth, Inner, RendererInfo, Setup, DEFAULT_FLUSH_REPLIES_EVERY,
};
use crate::{
    caller::{Caller, RendererId},
    codec::{splice::FrameBuf, CodecError},
    contract::{self, Grant, MethodKind, Quoted, ShapeNote},
    cpus,
    deadline::capped,
    dispatch::{Handler, Outcome, Route},
    error::{panic_message, DisconnectCause, WireError, WITHHELD},
    frame::{
        Channel, Frame, FrameError, Head, Hello, Sender, StreamError, Welcome, PROTOCOL_VERSION,
    },
    spin::spin_then_wait,
    transport::{
        reader::{FrameReader, LARGE_FRAME},
        writer::{run_writer, write_now, Outbox, PushError},
    },
    ApiNotGranted, IpcError, Transport,
};

/// How long frames already queued for a renderer that has gone away (or
/// is being dropped) may take to be written before its writer is stopped.
pub(crate) const LINGER: std::time::Duration = std::time::Duration::from_secs(1);
/// How long main waits for its farewell to a renderer it drops (why) to
/// be written before it reports the renderer released: long enough for one
/// that reads, short enough that `Main::close` does not wait long on one
/// that does not (its frames are still written for up to `LINGER`).
const FAREWELL_WAIT: std::time::Duration = std::time::Duration::from_millis(100);
/// `send` messages queued for one renderer's in-order handler loop before
/// its reader waits (and so stops reading from that renderer).
const SEND_QUEUE: usize = 256;
/// The largest hello main reads (or `max_frame_size`, if smaller). A hello
/// lists the renderer's contracts, a few dozen bytes a method: a megabyte
/// is tens of thousands of methods, and a connection that has not yet
/// shown it may connect cannot make main buffer more.
pub(crate) const MAX_HELLO_SIZE: usize = 1024 * 1024;

/// The calls of one renderer being handled in tasks of their own, by call
/// id. (A call answered on its first poll is never in it.)
#[derive(Default)]
pub(crate) struct InFlight {
    calls: Mutex<HashMap<u64, AbortHandle>>,
    /// How many `calls` holds, readable without the lock.
    len: AtomicUsize,
    /// Call tasks whose handler has not been dropped yet (aborted or not):
    /// an aborted task drops its handler only when the runtime next gets
    /// to it.
    tasks: AtomicUsize,
    /// Signalled when `tasks` falls to zero, and at every fall while
    /// `waiting` is set.
    tasks_done: Notify,
    /// Set while the serve loop waits in [`InFlight::room_for_handlers`].
    waiting: AtomicBool,
}

impl InFlight {
    /// Waits until every call task has dropped its handler, at most
    /// `limit` (a handler that blocks its thread holds its task up);
    /// whether they all did.
    async fn tasks_dropped(&self, limit: std::time::Duration) -> bool {
        self.wait_for_tasks(limit, || self.tasks.load(Ordering::SeqCst) == 0)
            .await
    }

    /// Waits until `done`, read again each time a call task drops (and
    /// `tasks_done` is signalled), for at most `limit`; whether it came.
    async fn wait_for_tasks(&self, limit: std::time::Duration, done: impl Fn() -> bool) -> bool {
        let wait = async {
            loop {
                let notified = self.tasks_done.notified();
                tokio::pin!(notified);
                // Registered before the count is read: a drop in between
                // still wakes this wait.
                notified.as_mut().enable();
                if done() {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether handlers no longer counted as calls bring the call tasks
    /// alive to `limit`: cancelled ones not yet dropped (an aborted task
    /// drops its handler only when the runtime gets to it) and finished
    /// ones whose reply waits for room.
    fn handlers_at(&self, limit: usize) -> bool {
        let tasks = self.tasks.load(Ordering::SeqCst);
        tasks >= limit && tasks > self.len()
    }

    /// Waits while [`InFlight::handlers_at`] `limit`, for up to `LINGER`.
    /// Without it, a renderer pairing each call with its cancel kept
    /// thousands of handlers alive under a limit of 4, and one reading
    /// slowly twice `limit` replies. Only uncounted handlers are waited
    /// for (calls beyond the limit are refused, [`InFlight::refuse`]), and
    /// not forever: one that blocks its thread after being cancelled must
    /// not stop main from serving the renderer, or from seeing it leave.
    async fn room_for_handlers(&self, limit: usize) {
        /// Clears `waiting` however the wait ends.
        struct Waiting<'a>(&'a AtomicBool);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::SeqCst);
            }
        }
        // Set before the count is read: a task that drops in between reads
        // it after counting itself gone, and signals.
        self.waiting.store(true, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        self.wait_for_tasks(LINGER, || !self.handlers_at(limit))
            .await;
    }

    /// Why call `id` may not start now, if it may not: a duplicate id or
    /// the limit reached. Only the connection's reader adds calls, so when
    /// it sees none in flight, none can appear meanwhile.
    fn refuse(&self, id: u64, limit: usize) -> Option<IpcError> {
        if self.len() == 0 && limit > 0 {
            return None;
        }
        let calls = lock(&self.calls);
        if calls.contains_key(&id) {
            Some(IpcError::protocol(format!(
                "call id {id} is already in flight"
            )))
        } else if calls.len() >= limit {
            Some(IpcError::TooManyInFlight { limit })
        } else {
            None
        }
    }

    /// Registers call `id`, running as the task that `spawn` starts. The
    /// lock is held while it starts, so that the task's own removal (which
    /// takes the same lock) always comes after.
    fn insert(&self, id: u64, spawn: impl FnOnce() -> AbortHandle) {
        let mut calls = lock(&self.calls);
        calls.insert(id, spawn());
        self.len.store(calls.len(), Ordering::Release);
    }

    fn remove(&self, id: u64) -> Option<AbortHandle> {
        let mut calls = lock(&self.calls);
        let handle = calls.remove(&id);
        self.len.store(calls.len(), Ordering::Release);
        handle
    }

    /// Removes call `id` as its task `task` finishes, unless the id is now
    /// another task's: a renderer may reuse the id of a call it cancelled
    /// while that call's task was finishing, and the new call must stay
    /// counted (and cancellable).
    fn finished(&self, id: u64, task: tokio::task::Id) {
        let mut calls = lock(&self.calls);
        if calls.get(&id).is_some_and(|handle| handle.id() == task) {
            calls.remove(&id);
        }
        self.len.store(calls.len(), Ordering::Release);
    }

    fn abort_all(&self) {
        let mut calls = lock(&self.calls);
        for (_, handle) in calls.drain() {
            handle.abort();
        }
        self.len.store(0, Ordering::Release);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a single collection operation: a panic
    // cannot leave the data inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where the reason a connection ended is published: `None` until it ends.
pub(crate) type ClosedWatch = watch::Receiver<Option<DisconnectReason>>;

/// Runs the handshake on `transport`; on success, serves the renderer in a
/// background task and returns what main recorded about it, and where the
/// reason it ends will be published (taken before it can end, however
/// fast the renderer is gone).
pub(crate) async fn accept(
    main: &Arc<Inner>,
    transport: Transport,
    auth: Auth,
) -> Result<(RendererInfo, ClosedWatch), IpcError> {
    let setup = match main.setup() {
        Ok(setup) => setup,
        Err(e) => {
            // Not built: the renderer is told why, as for any refusal.
            let (_, mut writer, _) = transport.into_parts();
            reject(
                &mut writer,
                &e,
                Vec::new(),
                Limits::default().handshake_timeout,
            )
            .await;
            return Err(e);
        }
    };
    let limits = &setup.limits;
    let (read, mut writer, peer) = transport.into_parts();
    let mut reader = FrameReader::new(read, limits.max_frame_size.min(MAX_HELLO_SIZE));

    let too_many = || IpcError::TooManyRenderers {
        limit: limits.max_renderers,
    };
    // Main's shapes of the types that differ, if the contracts do.
    let noted = Mutex::new(Vec::new());
    // A hello still on its way when main closes is not waited for.
    let hello_unless_closed = |reader| async {
        tokio::select! {
            hello = read_hello(&setup, reader, &auth, &noted) => hello,
            () = main.closing.cancelled() => Err(Inner::closed_error()),
        }
    };
    let admitted = if main.is_closed() {
        Err(Inner::closed_error())
    } else if let Auth::Token(_, waiting) = &auth {
        // A socket others could connect to: its hello (and token) is read
        // in the endpoint's waiting room, and only a renderer that showed
        // a valid token takes a renderer slot. A newer connection may take
        // its place in the room meanwhile (it waited longest).
        let hello = tokio::select! {
            hello = hello_unless_closed(&mut reader) => hello,
            () = waiting.evicted() => Err(IpcError::Unauthorized {
                reason: format!(
                    "no token shown while {} newer connections came to this endpoint; \
                     main refuses the one that waited longest to make room (connect again)",
                    waiting.limit()
                ),
            }),
        };
        hello.and_then(|hello| match setup.slots.clone().try_acquire_owned() {
            Err(_) => Err(too_many()),
            Ok(slot) => Ok((hello, slot)),
        })
    } else {
        match setup.slots.clone().try_acquire_owned() {
            Err(_) => Err(too_many()),
            Ok(slot) => hello_unless_closed(&mut reader)
                .await
                .map(|hello| (hello, slot)),
        }
    };
    let (hello, slot) = match admitted {
        Ok(admitted) => admitted,
        Err(e) => {
            main.refusals.refused(&e);
            let shapes = std::mem::take(&mut *lock(&noted));
            reject(&mut writer, &e, shapes, limits.handshake_timeout).await;
            return Err(e);
        }
    };
    reader.set_limit(limits.max_frame_size);
    let Admitted {
        label,
        grant,
        renderer_limit,
    } = hello;
    let id = main.next_id();
    let info = RendererInfo {
        id,
        label: label.clone(),
        peer,
        api: grant.name,
    };
    let welcome = Frame::Welcome(Welcome {
        id: id.0,
        label,
        max_frame_size: limits.max_frame_size as u64,
        max_in_flight: limits.max_in_flight as u64,
    });
    let out = Outbox::bounded(
        writer,
        limits.max_queued_frames,
        limits.max_queued_bytes,
        renderer_limit,
    );
    let writer_stop = CancellationToken::new();
    let conn = Arc::new(Conn {
        caller: Caller {
            id,
            label: info.label.as_str().into(),
            peer,
            groups: Arc::default(),
        },
        out,
        in_flight: InFlight::default(),
        allowed: setup.router.allowed_by(&grant),
        grant,
        limits: limits.clone(),
        round_trips: setup.round_trips,
        forward_details: setup.forward_details,
        subscriptions: Mutex::default(),
        subscribed: watch::channel(0).0,
        events_sent: AtomicU64::new(0),
        broken_read: std::sync::OnceLock::new(),
        events_dropped: AtomicU64::new(0),
        refused_subscriptions: Repeats::default(),
        undecodable_types: Repeats::default(),
        oversized_replies: Repeats::default(),
        oversized_events: Repeats::default(),
        violations: AtomicU32::new(0),
        ending: Mutex::new(None),
        shut: AtomicBool::new(false),
        stop: CancellationToken::new(),
    });
    let (closed_tx, closed_rx) = watch::channel(None);
    // Registered before the renderer is welcomed, so that once its
    // `connect` returns main counts it (`renderer_count`, `renderer_id`,
    // `disconnect`). Nothing is queued for it before the welcome: it
    // listens to nothing yet, and has made no call.
    let registered = main.register(info.clone(), closed_rx.clone(), Arc::clone(&conn));
    // From here a registered renderer is released however `accept` ends:
    // an error below, this future dropped (a timeout around `accept` or
    // `spawn_renderer`), or a panic (a `tracing` layer on "renderer
    // connected"). On success the guard goes to the renderer's task.
    let mut release = Release {
        main: Arc::clone(main),
        renderer: registered.then(|| info.clone()),
        slot: Some(slot),
        closed: closed_tx,
        conn: Arc::clone(&conn),
        reason: DisconnectReason::Failed(
            "main stopped accepting the renderer before serving it (its `accept` was cancelled, or panicked)"
                .into(),
        ),
        writer_stop: writer_stop.clone(),
        abrupt: true,
    };
    let first = if registered {
        welcome
    } else {
        // Main closed during the handshake.
        Frame::Rejected(WireError::from(&Inner::closed_error()))
    };
    let queued = conn.out.push_always(|buf| first.write_body(buf));
    tokio::spawn(run_writer(conn.out.queue(), writer_stop.clone(), None));
    // Main ending the connection meanwhile (`Main::close`, `disconnect`)
    // ends the wait: the renderer's task, started below, sees it at once
    // and releases it with main's reason.
    let written = tokio::select! {
        written = tokio::time::timeout(capped(limits.handshake_timeout), conn.out.flushed()) => written,
        () = conn.stop.cancelled() => Ok(true),
    };
    let failed = match (registered, written) {
        (false, _) => Some(Inner::closed_error()),
        (true, _) if queued.is_err() => Some(IpcError::protocol(format!(
            "main's welcome does not fit the largest frame the renderer accepts ({renderer_limit} bytes); raise its `ConnectionBuilder::max_frame_size`"
        ))),
        (true, Ok(true)) => None,
        (true, Ok(false)) => Some(IpcError::disconnected(
            DisconnectCause::Lost,
            "the renderer went away before main's welcome was written",
        )),
        (true, Err(_)) => Some(IpcError::protocol(format!(
            "the renderer did not read main's welcome within {:?}",
            limits.handshake_timeout
        ))),
    };
    if let Some(e) = failed {
        // Reported gone (it was listed while main waited), with why.
        release.reason = DisconnectReason::Failed(e.to_string());
        return Err(e);
    }
    info!(renderer = %id, label = %info.label, api = info.api, peer = ?info.peer, "renderer connected");

    release.reason =
        DisconnectReason::Failed("main's task for this renderer ended unexpectedly".into());
    let send_tasks = Arc::clone(&main.send_tasks);
    tokio::spawn(async move {
        let (send_tx, send_rx) = mpsc::channel(SEND_QUEUE);
        let sends = Sends::new(send_tx, conn.limits.max_queued_send_bytes);
        // Messages already received are still handled after a disconnect:
        // the loop ends once `send_tx` is dropped and its queue is empty
        // (or `Main::close` gives up on it).
        send_tasks.spawn(Arc::clone(&conn).ends_on_panic(
            run_sends(
                Arc::clone(&conn),
                send_rx,
                Arc::clone(&sends.busy),
                Arc::clone(&sends.held),
            ),
            "the task handling `send` messages",
        ));
        // Main's own reason, once it decided to end the connection, wins
        // over what the loop saw next (the renderer closing, say).
        // A panic while serving (a bug, or a `tracing` layer that panics on
        // a record) ends this connection like any other failure: the
        // renderer is told, unregistered and reported, not left behind.
        let serving = AssertUnwindSafe(serve(&setup, &conn, reader, sends)).catch_unwind();
        let reason = tokio::select! {
            served = serving => conn.ending().unwrap_or_else(|| {
                served.unwrap_or_else(|panic| {
                    let why = panic_message(&*panic);
                    DisconnectReason::Failed(format!("main's task for this renderer panicked: {why}"))
                })
            }),
            () = conn.stop.cancelled() => conn.ending().unwrap_or(DisconnectReason::ClosedByMain),
        };
        // Released with this reason however the task ends from here: a
        // `tracing` layer may panic on a record below.
        release.reason = reason.clone();
        let farewell_until = tokio::time::Instant::now() + FAREWELL_WAIT;
        match &reason {
            DisconnectReason::Misbehaved { .. } => {
                error!(renderer = %id, label = %conn.caller.label, %reason, "renderer disconnected")
            }
            DisconnectReason::Closed | DisconnectReason::ClosedByMain => {
                info!(renderer = %id, label = %conn.caller.label, %reason, "renderer disconnected")
            }
            _ => {
                warn!(renderer = %id, label = %conn.caller.label, %reason, "renderer disconnected")
            }
        }
        conn.in_flight.abort_all();
        // Main's own reason is the last frame queued for the renderer
        // (past the queue's bounds: one small frame), so that it can tell a
        // main that shut down or dropped it from one that crashed.
        let farewell = farewell(&reason, conn.ended_by_close(), conn.broken_read.get());
        let told = farewell.map(|why| {
            let notice = Frame::Notice(why);
            let _ = conn.out.push_always(|buf| notice.write_body(buf));
            conn.out.flushed()
        });
        // Nothing more is queued for it: a finished call whose reply waits
        // for room (the renderer stopped reading) gives up now; what is
        // queued is still written, for up to `LINGER`.
        conn.out.close();
        // Released means released: the aborted handlers are dropped (their
        // destructors have run) before anyone is told the renderer is gone,
        // and it stays registered meanwhile (`Main::disconnected` waits for
        // a renderer it still finds).
        if !conn.in_flight.tasks_dropped(LINGER).await {
            warn!(renderer = %id, "handlers of a disconnected renderer still running after {LINGER:?} (one blocks its thread?); not waiting for them");
        }
        // What main told it is written before it is reported gone (unless
        // it does not read): an app that exits once `Main::close` returns
        // does not cut its farewell off.
        if let Some(told) = told {
            let _ = tokio::time::timeout_at(farewell_until, told).await;
        }
        // Released in order: what is queued is still written, for up to
        // `LINGER`. Main's services go first: once the renderer is reported
        // gone, this task holds none of its handlers (only the `send`
        // messages still to be handled do).
        drop(setup);
        release.abrupt = false;
        drop(release);
        // The writer ends by itself once the frames already queued (a last
        // error notice, say) are written and every task holding `conn` has
        // ended; a renderer that stopped reading gets `LINGER` at most.
        drop(conn);
        tokio::time::sleep(LINGER).await;
        writer_stop.cancel();
    });
    Ok((info, closed_rx))
}

/// Tells a renderer main refuses why, waiting at most `timeout` for it to
/// take the rejection (one that does not read it is not waited for). A
/// handshake mismatch carries main's `shapes` of the types that differ.
async fn reject(
    writer: &mut crate::transport::BoxWrite,
    error: &IpcError,
    shapes: Vec<ShapeNote>,
    timeout: std::time::Duration,
) {
    let mut wire = WireError::from(error);
    if let WireError::HandshakeMismatch { shapes: sent, .. } = &mut wire {
        // Bounded by `NOTED_NODES`; should it fail to encode, the refusal
        // goes without it.
        *sent = crate::codec::encode_to_vec(&shapes)
            .map(crate::Blob::from)
            .unwrap_or_default();
    }
    let rejected = Frame::Rejected(wire);
    let _ = tokio::time::timeout(capped(timeout), write_now(writer, rejected)).await;
}

/// Releases a renderer that main's task for it has finished with: its
/// entry, its place among `max_renderers`, and the news (broadcast, then
/// the watch `Main::close` and `Main::disconnected` wait on, so that once
/// they return the disconnection is in every `disconnections()` receiver).
/// A drop guard, so that a panic in the task's cleanup (a `tracing` layer
/// panicking on a record) still releases it.
struct Release {
    main: Arc<Inner>,
    /// `None` if main never registered it (it closed meanwhile).
    renderer: Option<RendererInfo>,
    slot: Option<OwnedSemaphorePermit>,
    closed: watch::Sender<Option<DisconnectReason>>,
    conn: Arc<Conn>,
    reason: DisconnectReason,
    writer_stop: CancellationToken,
    /// Not released in order (an error or cancellation before the welcome
    /// was written, or a panic): stops everything at once.
    abrupt: bool,
}

impl Drop for Release {
    fn drop(&mut self) {
        if self.abrupt {
            self.conn.stop.cancel();
            self.conn.in_flight.abort_all();
            self.conn.out.close();
            self.writer_stop.cancel();
        }
        let Some(renderer) = self.renderer.take() else {
            return;
        };
        self.main.unregister(renderer.id);
        drop(self.slot.take());
        let reason = self.reason.clone();
        let _ = self.main.disconnections.send(Disconnection {
            renderer,
            reason: reason.clone(),
        });
        let _ = self.closed.send(Some(reason));
    }
}

/// What main tells a renderer as it ends its connection for `reason`
/// (`by_close`: because main is closing): nothing if the renderer left (it
/// would not read it).
fn farewell(
    reason: &DisconnectReason,
    by_close: bool,
    broken_read: Option<&String>,
) -> Option<WireError> {
    let (cause, reason) = match reason {
        // Reading from the renderer failed (an I/O error, or it stopped in
        // the middle of a frame): the connection broke, not main.
        DisconnectReason::Failed(why) if Some(why) == broken_read => (
            DisconnectCause::Lost,
            format!("main could not read from this renderer: {why}"),
        ),
        DisconnectReason::Closed => return None,
        DisconnectReason::ClosedByMain if by_close => (
            DisconnectCause::MainClosed,
            "main shut down (`Main::close`)".into(),
        ),
        DisconnectReason::ClosedByMain => (
            DisconnectCause::DisconnectedByMain,
            "main disconnected this renderer (`Main::disconnect`, or its `RendererProcess` killed or dropped)".into(),
        ),
        DisconnectReason::Misbehaved { violations, last } => (
            DisconnectCause::Misbehaved,
            format!(
                "main disconnected this renderer after {}; the last: {last}",
                violations_count(*violations)
            ),
        ),
        // A failure of main's own while serving the renderer (a panic in
        // its task for it, whose details are main's, like a handler's
        // panic message).
        DisconnectReason::Failed(_) => (
            DisconnectCause::MainFailed,
            "main disconnected this renderer after a failure while serving it (main's log says what failed)"
                .into(),
        ),
        // Limits it broke: a frame too large or too slow, a full queue.
        other @ (DisconnectReason::FrameTooLarge { .. }
        | DisconnectReason::FrameTimeout(_)
        | DisconnectReason::SlowConsumer { .. }) => (
            DisconnectCause::Misbehaved,
            format!("main disconnected this renderer: {other}"),
        ),
    };
    Some(WireError::Disconnected { reason, cause })
}

/// Logs a problem counted in `repeats` (a [`Repeats`]): the first for a
/// renderer as a warning that says so, the rest as debug records.
macro_rules! warn_first {
    ($repeats:expr, $msg:literal, $($fields:tt)+) => {
        if $repeats.first() {
            warn!($($fields)+, concat!($msg, " (later ones are debug records)"))
        } else {
            debug!($($fields)+, $msg)
        }
    };
}

/// Counts a problem a renderer can cause at will without breaking the
/// protocol (so it is not a violation), so that main logs the first as a
/// warning and the rest as debug records: one renderer cannot flood
/// main's log.
#[derive(Debug, Default)]
struct Repeats(AtomicU64);

impl Repeats {
    /// Counts one; whether it is the first.
    fn first(&self) -> bool {
        self.0.fetch_add(1, Ordering::Relaxed) == 0
    }
}

/// What the handshake established about a renderer.
struct Admitted {
    label: String,
    grant: Arc<Grant>,
    renderer_limit: usize,
}

/// Reads and checks the renderer's hello: protocol version, credentials,
/// contract and API.
async fn read_hello(
    setup: &Setup,
    reader: &mut FrameReader,
    auth: &Auth,
    noted: &Mutex<Vec<ShapeNote>>,
) -> Result<Admitted, IpcError> {
    let timeout = setup.limits.handshake_timeout;
    let body = match tokio::time::timeout(capped(timeout), reader.next()).await {
        Err(_) => {
            return Err(IpcError::protocol(format!(
                "no handshake within {timeout:?} of connecting; a renderer sends it as it connects (`connect_inherited`, `connect_unix`, `connect_tcp`), so the peer may not be a renderer, or may be stuck before connecting"
            )))
        }
        Ok(None) => {
            return Err(IpcError::disconnected(
                DisconnectCause::Lost,
                "the renderer closed the connection before its handshake",
            ))
        }
        // A hello over the hello's own cap: raising `max_frame_size`, as
        // `FrameTooLarge` advises, would not help.
        Ok(Some(Err(StreamError::TooLarge { size, limit })))
            if limit == MAX_HELLO_SIZE && limit < setup.limits.max_frame_size =>
        {
            return Err(IpcError::protocol(format!(
                "the renderer's hello is {size} bytes, and main reads at most {MAX_HELLO_SIZE} bytes before it admits a renderer; a hello lists the contracts the renderer was built with, so it is too large only for contracts with many thousands of methods, or for a peer that is not a renderer"
            )))
        }
        Ok(Some(Err(e))) => return Err(e.into_ipc()),
        Ok(Some(Ok(body))) => body,
    };
    let (version, body) = match Frame::parse(body, Sender::Renderer) {
        Ok(Frame::Hello { version, body }) => (version, body),
        Ok(_) => {
            return Err(IpcError::protocol(
                "the first frame must be a handshake (hello)",
            ))
        }
        Err(e) => return Err(e.into_ipc()),
    };
    if version != PROTOCOL_VERSION {
        return Err(IpcError::ProtocolMismatch {
            renderer: version,
            main: PROTOCOL_VERSION,
        });
    }
    let (token, rest) = Hello::token(&body).map_err(FrameError::into_ipc)?;
    let (label, grant) = match auth {
        Auth::Trusted { label, grant } => (label.clone(), Arc::clone(grant)),
        Auth::Token(tokens, _) => match token {
            None => {
                return Err(IpcError::Unauthorized {
                    reason: "this socket requires a token and none was presented; pass the token main issued for this renderer (UnixEndpoint::issue_token, TcpEndpoint::issue_token)".into(),
                })
            }
            Some(token) => tokens.redeem(token).ok_or_else(|| IpcError::Unauthorized {
                reason: "the token is unknown, was already used or has expired; each token admits one connection within its lifetime, ask main for a new one".into(),
            })?,
        },
    };
    // Only now, from a connection that may talk to main: the contract
    // lists are the costly part of a hello to decode.
    let hello = Hello::decode(&rest).map_err(FrameError::into_ipc)?;
    // On the channels the grant allows: the renderer learns nothing of
    // the others.
    if let Err(mismatch) =
        contract::compare_visible(&hello.services, &setup.summaries, &|c| grant.allows(c))
    {
        // Sent with the rejection, for the renderer to say what differs
        // inside the types named (see `reject`).
        *lock(noted) = mismatch.shapes;
        return Err(IpcError::HandshakeMismatch {
            renderer: mismatch.renderer,
            main: mismatch.main,
            differences: mismatch.differences,
        });
    }
    if let Some((api, allowed)) = &hello.api {
        check_api(&grant, api, allowed)?;
    }
    Ok(Admitted {
        label,
        grant,
        renderer_limit: usize::try_from(hello.max_frame_size).unwrap_or(usize::MAX),
    })
}

/// A renderer built with an API that reaches channels main does not grant
/// it would fail on each of them later: refuse it now, naming them.
fn check_api(grant: &Grant, api: &str, allowed: &[String]) -> Result<(), IpcError> {
    let mut missing = contract::Differences::default();
    for c in allowed.iter().filter(|c| !grant.allows(c)) {
        missing.push(|| format!("`{}`", Quoted(c)));
    }
    if missing.count() == 0 {
        return Ok(());
    }
    Err(IpcError::ApiNotGranted(Box::new(ApiNotGranted {
        api: Quoted(api).to_string(),
        grant: grant.name.to_string(),
        channels: missing.into_lines(),
    })))
}

/// Main's state for one accepted renderer.
pub(crate) struct Conn {
    caller: Caller,
    /// Frames on their way to the renderer (no larger than it accepts).
    out: Outbox,
    pub(crate) in_flight: InFlight,
    /// The channels this renderer may reach.
    grant: Arc<Grant>,
    /// The same, by route index: one lookup per frame finds both.
    allowed: Box<[bool]>,
    limits: Limits,
    /// See [`MainBuilder::check_round_trips`](crate::MainBuilder::check_round_trips).
    round_trips: bool,
    /// See [`MainBuilder::forward_failure_details`](crate::MainBuilder::forward_failure_details).
    forward_details: bool,
    /// The event channels it listens to: only channels main declares
    /// (checked before one is added), so a fast unkeyed hash is safe.
    subscriptions: Mutex<HashSet<String, rustc_hash::FxBuildHasher>>,
    /// Bumped whenever `subscriptions` gains a channel.
    subscribed: watch::Sender<u64>,
    events_sent: AtomicU64,
    /// Why reading from the renderer failed, if `serve` ended so: a
    /// [`DisconnectReason::Failed`] of the connection's, not main's own.
    broken_read: std::sync::OnceLock<String>,
    events_dropped: AtomicU64,
    /// Subscriptions refused for `max_subscriptions` (not violations: a
    /// renderer cannot know main's limit).
    refused_subscriptions: Repeats,
    /// Arguments of a type that cannot be decoded from the wire format
    /// (`CodecError::NeedsSelfDescribing`): a mistake in the contract's
    /// types, which an honest renderer makes on every call, so not a
    /// violation.
    undecodable_types: Repeats,
    /// Replies larger than the renderer accepts (its `max_frame_size`).
    oversized_replies: Repeats,
    /// Events larger than the renderer accepts.
    oversized_events: Repeats,
    violations: AtomicU32,
    /// Why main decided to end the connection, once it has; and whether
    /// that was `Main::close` (what main tells the renderer).
    ending: Mutex<Option<(DisconnectReason, bool)>>,
    /// Set with `ending`: the serve loop checks it before each frame, so
    /// that nothing a renderer sent after main decided to end it is
    /// handled (`stop` only wakes the loop when it waits).
    shut: AtomicBool,
    /// Ends the serve loop.
    stop: CancellationToken,
}

impl Conn {
    fn id(&self) -> RendererId {
        self.caller.id
    }

    /// Ends the connection for `reason` (the first reason given wins).
    pub(crate) fn shut(&self, reason: DisconnectReason) {
        self.shut_as(reason, false);
    }

    /// Ends the connection because main is closing (unless it is ending
    /// already, for another reason).
    pub(crate) fn shut_for_close(&self) {
        self.shut_as(DisconnectReason::ClosedByMain, true);
    }

    fn shut_as(&self, reason: DisconnectReason, by_close: bool) {
        lock(&self.ending).get_or_insert((reason, by_close));
        self.shut.store(true, Ordering::Release);
        self.stop.cancel();
    }

    fn ending(&self) -> Option<DisconnectReason> {
        lock(&self.ending)
            .as_ref()
            .map(|(reason, _)| reason.clone())
    }

    /// `reason`, noted as the connection's own failure if it is one (see
    /// [`farewell`]).
    fn read_broke(&self, reason: DisconnectReason) -> DisconnectReason {
        if let DisconnectReason::Failed(why) = &reason {
            let _ = self.broken_read.set(why.clone());
        }
        reason
    }

    /// Whether main ended the connection because it was closing.
    fn ended_by_close(&self) -> bool {
        lock(&self.ending)
            .as_ref()
            .is_some_and(|&(_, by_close)| by_close)
    }

    pub(crate) fn violations(&self) -> u32 {
        self.violations.load(Ordering::Relaxed)
    }

    /// Records a protocol violation; past the limit, disconnects the
    /// renderer (Mojo's `ReportBadMessage`).
    fn violation(&self, what: impl Display) {
        let n = match self
            .violations
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_add(1))
            }) {
            Ok(n) | Err(n) => n.saturating_add(1),
        };
        warn!(renderer = %self.id(), violations = n, "rejected frame: {what}");
        if let Some(max) = self.limits.max_violations {
            if n >= max {
                self.shut(DisconnectReason::Misbehaved {
                    violations: n,
                    last: what.to_string(),
                });
            }
        }
    }

    /// Where an invoke or send frame for `channel` leads, if main serves
    /// it, the renderer may reach it and it is of that `kind`. `last` is
    /// the last route found for this connection: a renderer often uses one
    /// channel many times in a row, and comparing a name is cheaper than
    /// looking it up.
    fn route<'s>(
        &self,
        setup: &'s Setup,
        last: &mut Option<&'s Route>,
        channel: &Channel,
        kind: MethodKind,
    ) -> Result<&'s Route, IpcError> {
        if let Some(route) = *last {
            if route.kind == kind && route.channel.as_bytes() == channel.as_bytes() {
                return Ok(route);
            }
        }
        let route = self.find_route(setup, channel, kind)?;
        *last = Some(route);
        Ok(route)
    }

    fn find_route<'s>(
        &self,
        setup: &'s Setup,
        channel: &Channel,
        kind: MethodKind,
    ) -> Result<&'s Route, IpcError> {
        let Some(route) = setup.router.get(channel.as_bytes()) else {
            let c = channel.as_str();
            self.check_grant(c)?;
            if !setup.router.is_event(c) {
                return Err(IpcError::UnknownChannel {
                    channel: Quoted(c).to_string(),
                });
            }
            let verb = match kind {
                MethodKind::Send => "sending to it",
                _ => "invoking it",
            };
            return Err(IpcError::protocol(format!(
                "`{c}` is an event channel; listen to it (subscribe) instead of {verb}"
            )));
        };
        if !self.allowed.get(route.index).copied().unwrap_or(false) {
            return Err(IpcError::NotAllowed {
                channel: route.channel.to_string(),
            });
        }
        if route.kind != kind {
            let c = route.channel;
            return Err(IpcError::protocol(match route.kind {
                MethodKind::Send => {
                    format!("`{c}` is a fire-and-forget channel; send to it instead of invoking it")
                }
                _ => {
                    format!("`{c}` is a request/reply channel; invoke it instead of sending to it")
                }
            }));
        }
        Ok(route)
    }

    pub(crate) fn groups(&self) -> Vec<String> {
        self.caller.groups()
    }

    pub(crate) fn in_group(&self, group: &str) -> bool {
        self.caller.in_group(group)
    }

    pub(crate) fn join(&self, group: &str) -> bool {
        self.caller.join(group)
    }

    pub(crate) fn leave(&self, group: &str) -> bool {
        self.caller.leave(group)
    }

    /// Waits until the renderer's queue has room for half its event limit
    /// again, if it listens to anything (see [`Main::room_for_events`]).
    ///
    /// [`Main::room_for_events`]: crate::Main::room_for_events
    pub(crate) async fn room_for_events(&self) {
        if !lock(&self.subscriptions).is_empty() {
            self.out.room_for_events().await;
        }
    }

    /// Whether the API this renderer was accepted as lists `channel`.
    pub(crate) fn may_reach(&self, channel: &str) -> bool {
        self.grant.allows(channel)
    }

    /// `NotAllowed` for a channel outside the renderer's API, whether main
    /// serves it or not: a renderer learns nothing about channels beyond
    /// its API. (A channel in the API and served is checked by its route.)
    fn check_grant(&self, channel: &str) -> Result<(), IpcError> {
        if self.may_reach(channel) {
            return Ok(());
        }
        Err(IpcError::NotAllowed {
            channel: Quoted(channel).to_string(),
        })
    }

    pub(crate) fn is_subscribed(&self, channel: &str) -> bool {
        lock(&self.subscriptions).contains(channel)
    }

    /// A receiver that changes whenever the renderer subscribes to something.
    pub(crate) fn subscription_changes(&self) -> watch::Receiver<u64> {
        self.subscribed.subscribe()
    }

    pub(crate) fn subscriptions(&self) -> Vec<String> {
        let mut v: Vec<String> = lock(&self.subscriptions).iter().cloned().collect();
        v.sort();
        v
    }

    pub(crate) fn events_sent(&self) -> u64 {
        self.events_sent.load(Ordering::Relaxed)
    }

    pub(crate) fn events_dropped(&self) -> u64 {
        self.events_dropped.load(Ordering::Relaxed)
    }

    /// Queues an event if the renderer listens to `channel`. Never waits:
    /// a renderer whose queue is full misses the event (and it is counted)
    /// or is disconnected, per [`SlowConsumer`], rather than slowing main
    /// or the other renderers down.
    pub(crate) fn push_event(&self, channel: &'static str, payload: EventPayload<'_>) -> bool {
        if !lock(&self.subscriptions).contains(channel) {
            return false;
        }
        let frame = |buf: &mut FrameBuf<'_>| {
            Head::Event { channel }.write(buf);
            match payload {
                EventPayload::Small(bytes) => buf.extend_from_slice(bytes),
                // A large payload is written from the one buffer every
                // renderer's event shares, not copied for each.
                EventPayload::Shared(bytes) => buf.append(bytes),
            }
            Ok(())
        };
        match self.out.try_push(frame) {
            Ok(()) => {
                self.events_sent.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(PushError::TooLarge { size, limit }) => {
                warn_first!(
                    self.oversized_events,
                    "event not sent: larger than the renderer accepts",
                    renderer = %self.id(), %channel, size, limit
                );
                self.events_dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(PushError::Full) => {
                self.events_dropped.fetch_add(1, Ordering::Relaxed);
                match self.limits.slow_consumer {
                    SlowConsumer::DropEvents => {
                        debug!(renderer = %self.id(), %channel, "event dropped: the renderer's queue is full");
                    }
                    SlowConsumer::Disconnect => self.shut(DisconnectReason::SlowConsumer {
                        queued: self.limits.max_queued_frames,
                    }),
                }
                false
            }
            // `Reentrant` comes only to producers that wait for room: an
            // event emitted while its renderer's queue is locked by this
            // thread is set aside instead.
            Err(PushError::Closed | PushError::Encode(_) | PushError::Reentrant) => false,
        }
    }

    /// Queues a frame (waiting while the queue is full); a closed
    /// connection has no one to tell.
    async fn push(&self, frame: Frame) {
        let _ = self.out.push(|buf| frame.write_body(buf), true).await;
    }

    /// Tells the renderer about a problem with a frame that had no call id.
    async fn notice(&self, error: &IpcError) {
        self.push(Frame::Notice(WireError::from(error))).await;
    }

    /// Answers call `id` with `error`. An error report larger than the
    /// renderer accepts (one naming a long reason) is replaced by a
    /// [`IpcError::FrameTooLarge`] report, which always fits, so that the
    /// call fails at once instead of waiting for its timeout.
    async fn fail(&self, id: u64, error: &IpcError) {
        let frame = Frame::ReplyFailed {
            id,
            error: WireError::from(error),
        };
        let pushed = self.out.push(|buf| frame.write_body(buf), true).await;
        if let Err(PushError::TooLarge { size, limit }) = pushed {
            warn_first!(
                self.oversized_replies,
                "an error reply was larger than the renderer accepts; it is told so instead",
                renderer = %self.id(), size, limit
            );
            let error = IpcError::FrameTooLarge {
                size: size as u64,
                limit,
            };
            self.push(Frame::ReplyFailed {
                id,
                error: WireError::from(&error),
            })
            .await;
        }
    }

    /// Refuses a frame that carried call `id`: a violation, and an error
    /// reply for that call.
    async fn refuse_call(&self, id: u64, error: IpcError) {
        self.violation(&error);
        self.fail(id, &error).await;
    }

    /// Refuses a frame without a call id: a violation, and a notice.
    async fn refuse_frame(&self, error: IpcError) {
        self.violation(&error);
        self.notice(&error).await;
    }

    /// Handles a subscribe frame: answered like a call.
    async fn subscribe(&self, setup: &Setup, id: u64, channel: Channel) {
        let channel = channel.as_str();
        if let Err(e) = self.check_grant(channel) {
            return self.refuse_call(id, e).await;
        }
        if !setup.router.is_event(channel) {
            let e = match setup.router.get(channel.as_bytes()) {
                None => IpcError::UnknownChannel {
                    channel: Quoted(channel).to_string(),
                },
                Some(route) => IpcError::protocol(format!(
                    "`{}` is a method channel, not an event; only events can be subscribed to",
                    route.channel
                )),
            };
            return self.refuse_call(id, e).await;
        }
        let added = {
            let mut subscriptions = lock(&self.subscriptions);
            let full = !subscriptions.contains(channel)
                && subscriptions.len() >= self.limits.max_subscriptions;
            if !full {
                subscriptions.insert(channel.to_string());
                self.subscribed.send_modify(|n| *n += 1);
            }
            !full
        };
        // Logged with no lock held: a `tracing` layer is user code, and one
        // that emits events (a log window) would take this lock again.
        if added {
            debug!(renderer = %self.id(), %channel, "subscribed");
        }
        if !added {
            // Not a violation: a renderer cannot know main's limit, so one
            // using only the generated API may well ask for more.
            let limit = self.limits.max_subscriptions;
            warn_first!(
                self.refused_subscriptions,
                "subscription refused: the renderer listens to as many event channels as main allows",
                renderer = %self.id(), %channel, limit
            );
            return self
                .fail(id, &IpcError::TooManySubscriptions { limit })
                .await;
        }
        self.push(Frame::ReplyOk {
            id,
            payload: Bytes::new(),
        })
        .await;
    }

    fn unsubscribe(&self, channel: &str) {
        if lock(&self.subscriptions).remove(channel) {
            debug!(renderer = %self.id(), %channel, "unsubscribed");
        }
    }

    /// Handles an invoke frame. The handler is polled once right here:
    /// most finish without waiting, and their reply is queued without a
    /// task of their own; the others continue in a spawned task, which the
    /// renderer can cancel.
    async fn invoke<'s>(
        self: &Arc<Self>,
        setup: &'s Setup,
        last: &mut Option<&'s Route>,
        id: u64,
        channel: Channel,
        payload: Bytes,
    ) {
        let route = match self.route(setup, last, &channel, MethodKind::Invoke) {
            Ok(route) => route,
            Err(e) => return self.refuse_call(id, e).await,
        };
        if self.in_flight.handlers_at(self.limits.max_in_flight) {
            // Replies queued quietly must not wait with this call.
            self.out.write_through().await;
            self.in_flight
                .room_for_handlers(self.limits.max_in_flight)
                .await;
        }
        if let Some(e) = self.in_flight.refuse(id, self.limits.max_in_flight) {
            return self.refuse_call(id, e).await;
        }
        let mut handler = route.service.call(route.method, payload);
        match self.first_poll(&mut handler, route.channel).await {
            // Queued quietly: `serve` writes once the frames that have
            // arrived are handled (or every few frames of a long burst), so
            // that a burst of replies leaves in few writes.
            Some(outcome) => {
                self.reply(id, route.channel, outcome, &mut handler, false)
                    .await
            }
            None => self.spawn_call(id, route.channel, handler),
        }
    }

    /// Polls a handler once, as the current caller, containing a panic;
    /// `None` if it has to wait.
    async fn first_poll(&self, handler: &mut Handler, channel: &'static str) -> Option<Outcome> {
        std::future::poll_fn(|cx| {
            Poll::Ready(match poll_handler(self, channel, handler, cx) {
                Poll::Ready(outcome) => Some(outcome),
                Poll::Pending => None,
            })
        })
        .await
    }

    /// Finishes call `id` in its own task, registered so that a cancel
    /// frame (or the disconnect) can abort it.
    fn spawn_call(self: &Arc<Self>, id: u64, channel: &'static str, handler: Handler) {
        let mut call = CallTask::new(self, handler);
        let conn = Arc::clone(self);
        self.in_flight.insert(id, || {
            let task = async move {
                let CallTask { conn, handler } = &mut call;
                let Some(handler) = handler else { return };
                let outcome = finish(conn, channel, handler).await;
                conn.in_flight.finished(id, tokio::task::id());
                conn.reply(id, channel, outcome, handler, true).await;
            };
            tokio::spawn(conn.ends_on_panic(task, "a call's task")).abort_handle()
        });
    }

    /// Runs `task`, one of this connection's tasks besides its main one;
    /// a panic in it (from a `tracing` layer on one of its records: the
    /// handler's own panics are contained where it is polled) ends the
    /// connection, as one in the main task does, instead of leaving a call
    /// unanswered or `send` messages unhandled.
    async fn ends_on_panic(
        self: Arc<Self>,
        task: impl std::future::Future<Output = ()>,
        what: &str,
    ) {
        if let Err(panic) = AssertUnwindSafe(task).catch_unwind().await {
            let why = panic_message(&*panic);
            self.shut(DisconnectReason::Failed(format!(
                "{what} for this renderer panicked: {why}"
            )));
        }
    }

    /// Queues the reply to call `id`, encoding the handler's value straight
    /// into the write buffer; with `wake` false, `serve` wakes the writer
    /// later.
    async fn reply(
        &self,
        id: u64,
        channel: &'static str,
        outcome: Outcome,
        handler: &mut Handler,
        wake: bool,
    ) {
        let head = match outcome {
            Outcome::Ok => Head::ReplyOk { id },
            Outcome::Err => Head::ReplyErr { id },
            Outcome::BadPayload(reason) => {
                return self.fail(id, &self.bad_payload(channel, reason)).await
            }
            Outcome::Failed(e) => return self.fail(id, &e).await,
        };
        let frame = |buf: &mut FrameBuf<'_>| {
            head.write(buf);
            handler.encode_value(buf, self.round_trips)
        };
        let (too_large, error) = match self.out.push(frame, wake).await {
            Ok(()) | Err(PushError::Closed | PushError::Full) => return,
            Err(e) => (
                matches!(e, PushError::TooLarge { .. }),
                e.into_ipc(channel, || {
                    IpcError::disconnected(DisconnectCause::Lost, "closed")
                }),
            ),
        };
        let error = if !too_large {
            // The handler's value could not be encoded: main's own bug,
            // told in its value's words (`Serialize`'s error or panic).
            error!(renderer = %self.id(), %channel, %error, "the reply could not be sent");
            match error {
                IpcError::Encode { channel, .. } if !self.forward_details => IpcError::Encode {
                    channel,
                    reason: WITHHELD.to_string(),
                },
                error => error,
            }
        } else {
            // Larger than the renderer's own `max_frame_size`: its choice,
            // which it may make on every call.
            warn_first!(
                self.oversized_replies,
                "the reply could not be sent",
                renderer = %self.id(), %channel, %error
            );
            error
        };
        self.fail(id, &error).await;
    }

    /// Arguments that did not decode: the error for it, and a violation
    /// unless no bytes could have decoded (a type that needs a
    /// self-describing format: the contract's mistake, made on every call
    /// of an honest renderer, and told to it).
    fn bad_payload(&self, channel: &str, reason: CodecError) -> IpcError {
        let types_at_fault = matches!(reason, CodecError::NeedsSelfDescribing { .. });
        let e = IpcError::BadPayload {
            channel: channel.to_string(),
            // A `Deserialize`'s own words in it are escaped and bounded
            // (`codec::decode_error`): they may quote the renderer's input.
            reason: reason.to_string(),
        };
        if !types_at_fault {
            self.violation(&e);
        } else {
            warn_first!(
                self.undecodable_types,
                "arguments of a type no bytes can decode",
                renderer = %self.id(), %channel, error = %e
            );
        }
        e
    }

    /// Reports what went wrong with a `send` message, if anything.
    async fn sent(&self, channel: &'static str, outcome: Outcome) {
        let error = match outcome {
            Outcome::Ok | Outcome::Err => return,
            Outcome::BadPayload(reason) => self.bad_payload(channel, reason),
            Outcome::Failed(e) => e,
        };
        self.notice(&error).await;
    }

    fn cancel(&self, id: u64) {
        if let Some(handle) = self.in_flight.remove(id) {
            debug!(renderer = %self.id(), call = id, "call cancelled by the renderer");
            handle.abort();
        }
    }
}

/// Why reading from a renderer failed. A reset is how the OS reports a
/// renderer that closed its end (exited, or was killed) while frames main
/// had sent were still unread there: closed like any other, not failed.
fn read_failed(e: StreamError) -> DisconnectReason {
    match &e {
        StreamError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset => {
            DisconnectReason::Closed
        }
        _ => DisconnectReason::Failed(e.to_string()),
    }
}

/// A call finishing in a task of its own. The handler is dropped with its
/// caller entered, as it is polled: when the call is cancelled (the task
/// aborted), its destructors still see [`Caller::current`].
struct CallTask {
    conn: Arc<Conn>,
    handler: Option<Handler>,
}

impl CallTask {
    fn new(conn: &Arc<Conn>, handler: Handler) -> Self {
        conn.in_flight.tasks.fetch_add(1, Ordering::SeqCst);
        CallTask {
            conn: Arc::clone(conn),
            handler: Some(handler),
        }
    }
}

impl Drop for CallTask {
    fn drop(&mut self) {
        /// Counts the task gone however the handler's drop ends: a
        /// destructor in it may panic (tokio catches that), and a task
        /// counted forever would hold the serve loop up at each call.
        struct Gone<'a>(&'a InFlight);
        impl Drop for Gone<'_> {
            fn drop(&mut self) {
                let last = self.0.tasks.fetch_sub(1, Ordering::SeqCst) == 1;
                if last || self.0.waiting.load(Ordering::SeqCst) {
                    self.0.tasks_done.notify_waiters();
                }
            }
        }
        let _gone = Gone(&self.conn.in_flight);
        if let Some(handler) = self.handler.take() {
            self.conn.caller.enter(|| drop(handler));
        }
    }
}

/// Polls a handler once with `caller` as the current caller, containing a
/// panic.
fn poll_handler(
    conn: &Conn,
    channel: &'static str,
    handler: &mut Handler,
    cx: &mut Context<'_>,
) -> Poll<Outcome> {
    match conn
        .caller
        .enter(|| std::panic::catch_unwind(AssertUnwindSafe(|| handler.poll(cx))))
    {
        Ok(polled) => polled,
        Err(panic) => Poll::Ready(panicked(conn, channel, panic)),
    }
}

/// Runs a handler to completion with `conn`'s caller as the current
/// caller, containing panics.
async fn finish(conn: &Conn, channel: &'static str, handler: &mut Handler) -> Outcome {
    std::future::poll_fn(|cx| poll_handler(conn, channel, handler, cx)).await
}

/// The outcome of a handler that panicked, for the renderer: the panic's
/// message only if main forwards them.
fn panicked(conn: &Conn, channel: &'static str, panic: Box<dyn Any + Send>) -> Outcome {
    let message = panic_message(&*panic);
    // Escaped by `panic_message`: it may carry the renderer's input.
    error!(renderer = %conn.id(), %channel, %message, "handler panicked");
    Outcome::Failed(IpcError::HandlerPanicked {
        channel: channel.to_string(),
        message: if conn.forward_details {
            message
        } else {
            WITHHELD.to_string()
        },
    })
}

/// An event's encoded payload, for [`Conn::push_event`].
#[derive(Clone, Copy)]
pub(crate) enum EventPayload<'a> {
    /// Copied into each renderer's queue.
    Small(&'a [u8]),
    /// Spliced into each renderer's queue if large (see `codec::splice`),
    /// copied if not.
    Shared(&'a Bytes),
}

/// A `send` message for the in-order loop: not started yet, or started
/// in `serve` and waiting.
enum SendJob {
    Start(Route, Bytes),
    Running(&'static str, Handler),
}

/// A queued `send` message and its share of the byte budget
/// ([`Limits::max_queued_send_bytes`]), given back once it is handled.
type QueuedSend = (SendJob, OwnedSemaphorePermit);

/// `serve`'s end of the in-order `send` loop.
struct Sends {
    tx: mpsc::Sender<QueuedSend>,
    /// Jobs queued and not finished. At zero, `serve` may run the next
    /// message itself: every earlier one has been handled.
    busy: Arc<AtomicUsize>,
    /// Bytes of queued messages, in permits.
    budget: Arc<Semaphore>,
    /// The whole budget: a message larger than it takes all of it.
    cap: u32,
    /// The message [`Sends::queue`] is waiting to queue, with its share
    /// of the budget, where [`run_sends`] finds it if the wait is dropped:
    /// received, it is still handled.
    held: Arc<Mutex<Option<(SendJob, u32)>>>,
}

impl Sends {
    fn new(tx: mpsc::Sender<QueuedSend>, max_bytes: usize) -> Self {
        let cap = max_bytes.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        Sends {
            tx,
            busy: Arc::new(AtomicUsize::new(0)),
            budget: Arc::new(Semaphore::new(cap)),
            cap: cap as u32,
            held: Arc::default(),
        }
    }

    fn idle(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0
    }

    /// Queues `job`, a message of `bytes` bytes, for the in-order loop.
    /// While the queue is full, in messages or in bytes, the reader waits:
    /// main stops reading from this renderer until its handler catches up.
    async fn queue(&self, job: SendJob, bytes: usize, conn: &Conn) -> Result<(), DisconnectReason> {
        self.busy.fetch_add(1, Ordering::AcqRel);
        let stopped = || DisconnectReason::Failed("its message handler stopped".into());
        let share = u32::try_from(bytes).unwrap_or(u32::MAX).min(self.cap);
        let job = match Arc::clone(&self.budget).try_acquire_many_owned(share) {
            Err(_) => job,
            Ok(permit) => match self.tx.try_send((job, permit)) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(stopped()),
                // Its share goes back to the budget, taken again below.
                Err(mpsc::error::TrySendError::Full((job, _))) => job,
            },
        };
        // Held where the end of the connection finds it while this waits.
        *lock(&self.held) = Some((job, share));
        debug!(renderer = %conn.id(), limit = conn.limits.max_queued_send_bytes, "send messages waiting for their handler fill their budget (max_queued_send_bytes, or 256 messages): main stops reading until the handler catches up");
        // The reader is about to wait: replies it queued quietly must not
        // wait with it.
        conn.out.write_through().await;
        let permit = Arc::clone(&self.budget)
            .acquire_many_owned(share)
            .await
            .map_err(|_| stopped())?;
        let slot = self.tx.reserve().await.map_err(|_| stopped())?;
        // Only this wait and `run_sends` (once `serve`, and so this wait,
        // is dropped) take it.
        if let Some((job, _)) = lock(&self.held).take() {
            slot.send((job, permit));
        }
        Ok(())
    }
}

/// Handles `send` messages one at a time, in the order they arrived;
/// last, once `serve` has stopped (and dropped the queue's sender), the
/// message it was still waiting to queue, if any (`held`): received
/// messages are still handled after a disconnect, in order.
async fn run_sends(
    conn: Arc<Conn>,
    mut rx: mpsc::Receiver<QueuedSend>,
    busy: Arc<AtomicUsize>,
    held: Arc<Mutex<Option<(SendJob, u32)>>>,
) {
    while let Some((job, _permit)) = rx.recv().await {
        run_send(&conn, job).await;
        busy.fetch_sub(1, Ordering::AcqRel);
    }
    let last = lock(&held).take();
    if let Some((job, _)) = last {
        run_send(&conn, job).await;
    }
}

async fn run_send(conn: &Conn, job: SendJob) {
    let (channel, mut handler) = match job {
        SendJob::Start(route, payload) => {
            (route.channel, route.service.call(route.method, payload))
        }
        SendJob::Running(channel, handler) => (channel, handler),
    };
    let outcome = finish(conn, channel, &mut handler).await;
    conn.sent(channel, outcome).await;
}

/// Reads and dispatches frames until the renderer goes away or breaks the
/// framing; returns why.
async fn serve(
    setup: &Setup,
    conn: &Arc<Conn>,
    mut reader: FrameReader,
    sends: Sends,
) -> DisconnectReason {
    let frame_timeout = conn.limits.frame_timeout;
    // When the frame that has started arriving must be complete.
    let mut deadline = None;
    // Frames handled since the last chance to write the replies queued,
    // and how many may be (`MainBuilder::flush_replies_every`).
    let mut unflushed = 0;
    let flush_every = match setup.flush_every {
        Some(0) => usize::MAX,
        Some(frames) => frames,
        None => DEFAULT_FLUSH_REPLIES_EVERY,
    };
    let mut last_route = None;
    loop {
        // Main ended the connection (too many violations, a slow consumer,
        // `Main::disconnect`): frames still buffered are not handled.
        if conn.shut.load(Ordering::Acquire) {
            return conn.ending().unwrap_or(DisconnectReason::ClosedByMain);
        }
        let body = match reader.buffered() {
            Ok(Some(body)) => {
                deadline = None;
                // A long burst: the renderer gets the replies so far while
                // main handles the rest, if it can run meanwhile.
                if unflushed == flush_every {
                    unflushed = 0;
                    if setup.flush_every.is_some() || cpus::more_than_one() {
                        conn.out.write_through().await;
                    }
                }
                unflushed += 1;
                body
            }
            Ok(None) => {
                // Every frame that has arrived is handled: write the replies
                // queued meanwhile, then read.
                unflushed = 0;
                conn.out.write_through().await;
                let read = if reader.has_partial() {
                    let at = *deadline
                        .get_or_insert_with(|| tokio::time::Instant::now() + capped(frame_timeout));
                    match tokio::time::timeout_at(at, reader.fill()).await {
                        Err(_) => return DisconnectReason::FrameTimeout(frame_timeout),
                        Ok(read) => read,
                    }
                } else {
                    spin_then_wait(reader.fill(), setup.spin, || true).await
                };
                match read {
                    Ok(true) => continue,
                    Ok(false) => match reader.end() {
                        None => return DisconnectReason::Closed,
                        Some(e) => return conn.read_broke(DisconnectReason::Failed(e.to_string())),
                    },
                    Err(e) => return conn.read_broke(read_failed(e)),
                }
            }
            Err(StreamError::TooLarge { size, limit }) => {
                let e = IpcError::FrameTooLarge { size, limit };
                warn!(renderer = %conn.id(), size, limit, "rejected frame: too large");
                // Queued past the queue's bounds rather than waiting for
                // room: a renderer that does not read would otherwise keep
                // its connection open by never making room.
                let notice = Frame::Notice(WireError::from(&e));
                let _ = conn.out.push_always(|buf| notice.write_body(buf));
                return DisconnectReason::FrameTooLarge { size, limit };
            }
            Err(e) => return conn.read_broke(read_failed(e)),
        };
        match Frame::parse(body, Sender::Renderer) {
            Ok(Frame::Invoke {
                id,
                channel,
                payload,
            }) => {
                // A renderer that does not read its replies gets no more
                // calls started: main would only hold more replies for it.
                conn.out
                    .room(|| {
                        debug!(renderer = %conn.id(), limit = conn.limits.max_queued_frames, "replies fill the renderer's queue (max_queued_frames frames or 256 KiB): no call starts until it reads");
                    })
                    .await;
                conn.invoke(setup, &mut last_route, id, channel, payload)
                    .await;
            }
            Ok(Frame::Send { channel, payload }) => {
                let route = match conn.route(setup, &mut last_route, &channel, MethodKind::Send) {
                    Ok(route) => route,
                    Err(e) => {
                        conn.refuse_frame(e).await;
                        continue;
                    }
                };
                let bytes = payload.len();
                let queued = if sends.idle() {
                    let mut handler = route.service.call(route.method, payload);
                    match conn.first_poll(&mut handler, route.channel).await {
                        Some(outcome) => {
                            conn.sent(route.channel, outcome).await;
                            Ok(())
                        }
                        None => {
                            // Its arguments, decoded, are about as large.
                            let job = SendJob::Running(route.channel, handler);
                            sends.queue(job, bytes, conn).await
                        }
                    }
                } else {
                    // A small frame shares its read buffer with the frames
                    // around it: copied, a queued message holds its own
                    // bytes only, as the budget counts.
                    let payload = if bytes < LARGE_FRAME {
                        Bytes::copy_from_slice(&payload)
                    } else {
                        payload
                    };
                    let job = SendJob::Start(route.clone(), payload);
                    sends.queue(job, bytes, conn).await
                };
                if let Err(reason) = queued {
                    return reason;
                }
            }
            Ok(Frame::Cancel { id }) => conn.cancel(id),
            Ok(Frame::Subscribe { id, channel }) => conn.subscribe(setup, id, channel).await,
            Ok(Frame::Unsubscribe { channel }) => {
                let channel = channel.as_str();
                match conn.check_grant(channel) {
                    Ok(()) => conn.unsubscribe(channel),
                    Err(e) => conn.refuse_frame(e).await,
                }
            }
            // `Frame::parse` refused the kinds only main sends: what is
            // left is a hello after the handshake, never read further.
            Ok(_) => {
                conn.refuse_frame(IpcError::protocol(
                    "unexpected frame: a hello after the handshake",
                ))
                .await;
            }
            // Malformed after its call id: the error answers that call.
            Err(e) => match e.call_id() {
                Some(id) => conn.refuse_call(id, e.into_ipc()).await,
                None => conn.refuse_frame(e.into_ipc()).await,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason main ends a connection for has its cause in the
    /// farewell; a renderer that closed its end gets none.
    #[test]
    fn each_reason_has_its_farewell_cause() {
        let cause = |reason: DisconnectReason, by_close| match farewell(&reason, by_close, None) {
            Some(WireError::Disconnected { cause, .. }) => Some(cause),
            Some(other) => panic!("not a farewell: {other:?}"),
            None => None,
        };
        use DisconnectCause as C;
        use DisconnectReason as R;
        assert_eq!(cause(R::Closed, false), None);
        assert_eq!(cause(R::ClosedByMain, true), Some(C::MainClosed));
        assert_eq!(cause(R::ClosedByMain, false), Some(C::DisconnectedByMain));
        let misbehaved = [
            R::Misbehaved {
                violations: 3,
                last: "x".into(),
            },
            R::FrameTooLarge { size: 9, limit: 8 },
            R::FrameTimeout(std::time::Duration::from_secs(1)),
            R::SlowConsumer { queued: 8 },
        ];
        for reason in misbehaved {
            assert_eq!(cause(reason, false), Some(C::Misbehaved));
        }
        assert_eq!(cause(R::Failed("boom".into()), false), Some(C::MainFailed));
        // The connection's own failure, as `serve` noted it.
        let broken = "the peer closed the connection in the middle of a frame".to_string();
        match farewell(&R::Failed(broken.clone()), false, Some(&broken)) {
            Some(WireError::Disconnected { cause, reason }) => {
                assert_eq!(cause, C::Lost);
                assert_eq!(
                    reason,
                    format!("main could not read from this renderer: {broken}")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// A cancelled call's task that finishes after its id was reused does
    /// not remove the new call: it stays counted against the limit.
    #[tokio::test]
    async fn a_finishing_task_leaves_a_reused_id_to_its_new_call() {
        let in_flight = InFlight::default();
        let old = tokio::spawn(std::future::pending::<()>());
        let new = tokio::spawn(std::future::pending::<()>());
        let old_id = old.id();
        in_flight.insert(5, || old.abort_handle());
        // Cancelled: gone from the table, its task still finishing.
        assert!(in_flight.remove(5).is_some());
        in_flight.insert(5, || new.abort_handle());
        in_flight.finished(5, old_id);
        assert_eq!(in_flight.len(), 1);
        assert_eq!(
            in_flight.refuse(6, 1).map(|e| e.to_string()),
            Some(IpcError::TooManyInFlight { limit: 1 }.to_string())
        );
        in_flight.finished(5, new.id());
        assert_eq!(in_flight.len(), 0);
        old.abort();
        new.abort();
    }
}

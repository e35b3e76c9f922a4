//! One renderer connection on the main side: handshake, then the loop that
//! reads its frames and runs its calls, within the renderer's [`Limits`].

use std::{
    collections::{HashMap, HashSet},
    fmt::Display,
    panic::AssertUnwindSafe,
    sync::{
        atomic::{AtomicU32, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
};

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use tokio::{
    sync::{mpsc, watch},
    task::AbortHandle,
};
use tokio_util::{
    codec::{FramedRead, FramedWrite},
    sync::CancellationToken,
};
use tracing::{debug, error, info, warn};

use super::{
    limits::{DisconnectReason, Disconnection, Limits, SlowConsumer},
    Auth, Inner, RendererInfo, Setup,
};
use crate::{
    caller::{Caller, RendererId},
    contract::{self, Grant},
    dispatch::{Outcome, Route},
    error::WireError,
    frame::{Frame, FrameCodec, StreamError, Welcome, PROTOCOL_VERSION},
    transport::{write_frames, BoxRead, Outgoing},
    IpcError, Transport,
};

/// How long frames already queued for a renderer that has gone away (or
/// is being dropped) may take to be written before its writer is stopped.
const LINGER: std::time::Duration = std::time::Duration::from_secs(1);
/// `send` messages queued for one renderer's in-order handler loop before
/// its reader waits (and so stops reading from that renderer).
const SEND_QUEUE: usize = 256;

/// The calls of one renderer being handled now, by call id.
#[derive(Default)]
pub(crate) struct InFlight(Mutex<HashMap<u64, AbortHandle>>);

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, AbortHandle>> {
        lock(&self.0)
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn abort_all(&self) {
        for (_, handle) in self.lock().drain() {
            handle.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a single collection operation: a panic
    // cannot leave the data inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the handshake on `transport`; on success, serves the renderer in a
/// background task and returns what main recorded about it.
pub(crate) async fn accept(
    main: &Arc<Inner>,
    transport: Transport,
    auth: Auth,
) -> Result<RendererInfo, IpcError> {
    let setup = main.setup()?;
    let limits = &setup.limits;
    let (read, write, peer) = transport.into_parts();
    let mut reader = FramedRead::new(read, FrameCodec::new(limits.max_frame_size));
    let mut writer = FramedWrite::new(write, FrameCodec::new(u32::MAX as usize));

    let admitted = match setup.slots.clone().try_acquire_owned() {
        Err(_) => Err(IpcError::TooManyRenderers {
            limit: limits.max_renderers,
        }),
        Ok(slot) => read_hello(&setup, &mut reader, &auth)
            .await
            .map(|hello| (hello, slot)),
    };
    let (hello, slot) = match admitted {
        Ok(admitted) => admitted,
        Err(e) => {
            warn!(error = %e, "renderer refused at handshake");
            let _ = send_now(&mut writer, Frame::Rejected(WireError::from(&e))).await;
            return Err(e);
        }
    };
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
    send_now(&mut writer, welcome)
        .await
        .map_err(StreamError::into_ipc)?;

    let (out_tx, out_rx) = mpsc::channel(limits.max_queued_frames.max(1));
    let writer_stop = CancellationToken::new();
    tokio::spawn(write_frames(writer, out_rx, writer_stop.clone(), None));
    let conn = Arc::new(Conn {
        caller: Caller {
            id,
            label: info.label.as_str().into(),
            peer,
        },
        out: out_tx,
        in_flight: InFlight::default(),
        renderer_limit,
        grant,
        limits: limits.clone(),
        subscriptions: Mutex::default(),
        subscribed: watch::channel(0).0,
        groups: Mutex::default(),
        events_sent: AtomicU64::new(0),
        events_dropped: AtomicU64::new(0),
        violations: AtomicU32::new(0),
        ending: Mutex::new(None),
        stop: CancellationToken::new(),
    });
    let (closed_tx, closed_rx) = watch::channel(None);
    main.register(info.clone(), closed_rx, Arc::clone(&conn));
    info!(renderer = %id, label = %info.label, api = info.api, peer = ?info.peer, "renderer connected");

    let main = Arc::clone(main);
    let renderer = info.clone();
    tokio::spawn(async move {
        let (send_tx, send_rx) = mpsc::channel(SEND_QUEUE);
        // Messages already received are still handled after a disconnect:
        // the loop ends once `send_tx` is dropped and its queue is empty.
        tokio::spawn(run_sends(Arc::clone(&conn), send_rx));
        let reason = tokio::select! {
            reason = serve(&setup, &conn, reader, send_tx) => reason,
            () = conn.stop.cancelled() => conn.ending().unwrap_or(DisconnectReason::ClosedByMain),
        };
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
        main.unregister(id);
        drop(slot);
        let _ = closed_tx.send(Some(reason.clone()));
        let _ = main.disconnections.send(Disconnection { renderer, reason });
        // The writer ends by itself once the frames already queued (a last
        // error notice, say) are written and every task holding `conn` has
        // ended; a renderer that stopped reading gets `LINGER` at most.
        drop(conn);
        tokio::time::sleep(LINGER).await;
        writer_stop.cancel();
    });
    Ok(info)
}

/// Writes one frame immediately (during the handshake, before the writer
/// task exists).
async fn send_now(
    writer: &mut FramedWrite<crate::transport::BoxWrite, FrameCodec>,
    frame: Frame,
) -> Result<(), StreamError> {
    use futures_util::SinkExt;
    writer.send(frame).await
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
    reader: &mut FramedRead<BoxRead, FrameCodec>,
    auth: &Auth,
) -> Result<Admitted, IpcError> {
    let timeout = setup.limits.handshake_timeout;
    let body = match tokio::time::timeout(timeout, reader.next()).await {
        Err(_) => {
            return Err(IpcError::protocol(format!(
                "no handshake within {timeout:?} of connecting"
            )))
        }
        Ok(None) => {
            return Err(IpcError::disconnected(
                "the renderer closed the connection before its handshake",
            ))
        }
        Ok(Some(Err(e))) => return Err(e.into_ipc()),
        Ok(Some(Ok(body))) => body,
    };
    let (version, hello) = match Frame::parse(body) {
        Ok(Frame::Hello { version, hello }) => (version, hello),
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
    let (label, grant) = match auth {
        Auth::Trusted { label, grant } => (label.clone(), Arc::clone(grant)),
        Auth::Token(tokens) => match &hello.token {
            None => {
                return Err(IpcError::Unauthorized {
                    reason: "this socket requires a token and none was presented; pass the token main issued for this renderer (UnixEndpoint::issue_token)".into(),
                })
            }
            Some(token) => tokens.redeem(token).ok_or_else(|| IpcError::Unauthorized {
                reason: "the token is unknown or was already used; each token admits one connection, ask main for a new one".into(),
            })?,
        },
    };
    if let Err((renderer, main_fp, differences)) =
        contract::compare(&hello.services, &setup.summaries)
    {
        return Err(IpcError::HandshakeMismatch {
            renderer,
            main: main_fp,
            differences,
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
    let missing: Vec<String> = allowed
        .iter()
        .filter(|c| !grant.allows(c))
        .map(|c| {
            format!(
                "the renderer's API `{api}` reaches `{c}`, which main's grant `{}` does not allow",
                grant.name
            )
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let fingerprint = |channels: &mut dyn Iterator<Item = &str>| {
        let mut sorted: Vec<&str> = channels.collect();
        sorted.sort_unstable();
        contract::combine(sorted.iter().map(|c| contract::fnv_str(c)))
    };
    Err(IpcError::HandshakeMismatch {
        renderer: fingerprint(&mut allowed.iter().map(String::as_str)),
        main: fingerprint(&mut grant.allowed.iter().copied()),
        differences: missing,
    })
}

/// Main's state for one accepted renderer.
pub(crate) struct Conn {
    caller: Caller,
    out: mpsc::Sender<Outgoing>,
    pub(crate) in_flight: InFlight,
    /// The largest frame the renderer accepts.
    renderer_limit: usize,
    /// The channels this renderer may reach.
    grant: Arc<Grant>,
    limits: Limits,
    /// The event channels it listens to.
    subscriptions: Mutex<HashSet<String>>,
    /// Bumped whenever `subscriptions` gains a channel.
    subscribed: watch::Sender<u64>,
    /// The groups main put it in.
    groups: Mutex<HashSet<String>>,
    events_sent: AtomicU64,
    events_dropped: AtomicU64,
    violations: AtomicU32,
    /// Why main decided to end the connection, once it has.
    ending: Mutex<Option<DisconnectReason>>,
    /// Ends the serve loop.
    stop: CancellationToken,
}

impl Conn {
    fn id(&self) -> RendererId {
        self.caller.id
    }

    /// Ends the connection for `reason` (the first reason given wins).
    pub(crate) fn shut(&self, reason: DisconnectReason) {
        lock(&self.ending).get_or_insert(reason);
        self.stop.cancel();
    }

    fn ending(&self) -> Option<DisconnectReason> {
        lock(&self.ending).clone()
    }

    pub(crate) fn violations(&self) -> u32 {
        self.violations.load(Ordering::Relaxed)
    }

    /// Records a protocol violation; past the limit, disconnects the
    /// renderer (Mojo's `ReportBadMessage`).
    fn violation(&self, what: impl Display) {
        let n = self.violations.fetch_add(1, Ordering::Relaxed) + 1;
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

    /// Whether the renderer's API exposes `channel`.
    fn check_allowed(&self, channel: &str) -> Result<(), IpcError> {
        if self.grant.allows(channel) {
            return Ok(());
        }
        Err(IpcError::NotAllowed {
            channel: channel.to_string(),
        })
    }

    pub(crate) fn groups(&self) -> Vec<String> {
        let mut v: Vec<String> = lock(&self.groups).iter().cloned().collect();
        v.sort();
        v
    }

    pub(crate) fn in_group(&self, group: &str) -> bool {
        lock(&self.groups).contains(group)
    }

    pub(crate) fn join(&self, group: &str) -> bool {
        lock(&self.groups).insert(group.to_string())
    }

    pub(crate) fn leave(&self, group: &str) -> bool {
        lock(&self.groups).remove(group)
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
    pub(crate) fn push_event(&self, channel: &'static str, payload: &Bytes) -> bool {
        if !lock(&self.subscriptions).contains(channel) {
            return false;
        }
        let frame = Frame::Event {
            channel: channel.to_string(),
            payload: payload.clone(),
        };
        match self.out.try_send(frame.into()) {
            Ok(()) => {
                self.events_sent.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
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
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Tells the renderer about a problem with a frame that had no call id.
    async fn notice(&self, error: &IpcError) {
        let _ = self
            .out
            .send(Frame::Notice(WireError::from(error)).into())
            .await;
    }

    async fn fail(&self, id: u64, error: &IpcError) {
        let frame = Frame::ReplyFailed {
            id,
            error: WireError::from(error),
        };
        let _ = self.out.send(frame.into()).await;
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
    async fn subscribe(&self, setup: &Setup, id: u64, channel: String) {
        if !setup.router.is_event(&channel) {
            return self
                .refuse_call(id, IpcError::UnknownChannel { channel })
                .await;
        }
        if let Err(e) = self.check_allowed(&channel) {
            return self.refuse_call(id, e).await;
        }
        let added = {
            let mut subscriptions = lock(&self.subscriptions);
            let full = !subscriptions.contains(&channel)
                && subscriptions.len() >= self.limits.max_subscriptions;
            if !full {
                debug!(renderer = %self.id(), %channel, "subscribed");
                subscriptions.insert(channel);
                self.subscribed.send_modify(|n| *n += 1);
            }
            !full
        };
        if !added {
            let e = IpcError::TooManySubscriptions {
                limit: self.limits.max_subscriptions,
            };
            return self.refuse_call(id, e).await;
        }
        let _ = self
            .out
            .send(
                Frame::ReplyOk {
                    id,
                    payload: Bytes::new(),
                }
                .into(),
            )
            .await;
    }

    fn unsubscribe(&self, channel: &str) {
        if lock(&self.subscriptions).remove(channel) {
            debug!(renderer = %self.id(), %channel, "unsubscribed");
        }
    }

    /// Starts handling an invoke frame in its own task.
    async fn invoke(self: &Arc<Self>, setup: &Setup, id: u64, channel: String, payload: Bytes) {
        let route = match setup.router.get(&channel) {
            None => {
                return self
                    .refuse_call(id, IpcError::UnknownChannel { channel })
                    .await
            }
            Some(route) => route,
        };
        if let Err(e) = self.check_allowed(&channel) {
            return self.refuse_call(id, e).await;
        }
        if route.kind != contract::MethodKind::Invoke {
            let e = IpcError::protocol(format!(
                "`{channel}` is a fire-and-forget channel; send to it instead of invoking it"
            ));
            return self.refuse_call(id, e).await;
        }
        if let Err(e) = self.start(id, route.clone(), payload) {
            self.refuse_call(id, e).await;
        }
    }

    /// Spawns the task for call `id`, unless a call with that id is already
    /// in flight or the renderer is at its in-flight limit.
    fn start(self: &Arc<Self>, id: u64, route: Route, payload: Bytes) -> Result<(), IpcError> {
        let mut in_flight = self.in_flight.lock();
        if in_flight.contains_key(&id) {
            return Err(IpcError::protocol(format!(
                "call id {id} is already in flight"
            )));
        }
        if in_flight.len() >= self.limits.max_in_flight {
            return Err(IpcError::TooManyInFlight {
                limit: self.limits.max_in_flight,
            });
        }
        let conn = Arc::clone(self);
        let task = tokio::spawn(async move {
            let frame = conn.run(id, &route, payload).await;
            conn.in_flight.lock().remove(&id);
            let _ = conn.out.send(frame.into()).await;
        });
        // Inserted while the lock is held, so the task's removal (which
        // takes the same lock) always comes after.
        in_flight.insert(id, task.abort_handle());
        Ok(())
    }

    /// Runs one call and turns its outcome into a reply frame.
    async fn run(&self, id: u64, route: &Route, payload: Bytes) -> Frame {
        let error = match call(&self.caller, route, payload).await {
            Outcome::Ok(payload) => {
                return self.reply_or_too_large(id, route, Frame::ReplyOk { id, payload })
            }
            Outcome::Err(payload) => {
                return self.reply_or_too_large(id, route, Frame::ReplyErr { id, payload })
            }
            Outcome::BadPayload(reason) => {
                let e = IpcError::BadPayload {
                    channel: route.channel.to_string(),
                    reason,
                };
                self.violation(&e);
                e
            }
            Outcome::Failed(e) => e,
        };
        Frame::ReplyFailed {
            id,
            error: WireError::from(&error),
        }
    }

    /// `frame`, or a frame-too-large failure if the renderer would refuse it.
    fn reply_or_too_large(&self, id: u64, route: &Route, frame: Frame) -> Frame {
        let size = match &frame {
            Frame::ReplyOk { payload, .. } | Frame::ReplyErr { payload, .. } => payload.len() + 9,
            _ => 0,
        };
        if size <= self.renderer_limit {
            return frame;
        }
        warn!(renderer = %self.id(), channel = route.channel, size, limit = self.renderer_limit, "reply too large for the renderer");
        Frame::ReplyFailed {
            id,
            error: WireError::from(&IpcError::FrameTooLarge {
                size: size as u64,
                limit: self.renderer_limit,
            }),
        }
    }

    fn cancel(&self, id: u64) {
        if let Some(handle) = self.in_flight.lock().remove(&id) {
            debug!(renderer = %self.id(), call = id, "call cancelled by the renderer");
            handle.abort();
        }
    }
}

/// Runs a handler with `caller` as the current caller, containing panics.
async fn call(caller: &Caller, route: &Route, payload: Bytes) -> Outcome {
    let fut = route.service.call(route.method, payload);
    match caller
        .clone()
        .scope(AssertUnwindSafe(fut).catch_unwind())
        .await
    {
        Ok(outcome) => outcome,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic payload".to_string());
            error!(renderer = %caller.id, channel = route.channel, %message, "handler panicked");
            Outcome::Failed(IpcError::HandlerPanicked {
                channel: route.channel.to_string(),
                message,
            })
        }
    }
}

/// Handles `send` messages one at a time, in the order they arrived.
async fn run_sends(conn: Arc<Conn>, mut rx: mpsc::Receiver<(Route, Bytes)>) {
    while let Some((route, payload)) = rx.recv().await {
        let error = match call(&conn.caller, &route, payload).await {
            Outcome::Ok(_) | Outcome::Err(_) => continue,
            Outcome::BadPayload(reason) => {
                let e = IpcError::BadPayload {
                    channel: route.channel.to_string(),
                    reason,
                };
                conn.violation(&e);
                e
            }
            Outcome::Failed(e) => e,
        };
        conn.notice(&error).await;
    }
}

/// Reads and dispatches frames until the renderer goes away or breaks the
/// framing; returns why.
async fn serve(
    setup: &Setup,
    conn: &Arc<Conn>,
    mut reader: FramedRead<BoxRead, FrameCodec>,
    send_tx: mpsc::Sender<(Route, Bytes)>,
) -> DisconnectReason {
    let frame_timeout = conn.limits.frame_timeout;
    loop {
        let next = match tokio::time::timeout(frame_timeout, reader.next()).await {
            // Idle between frames: nothing is owed.
            Err(_) if reader.read_buffer().is_empty() => continue,
            Err(_) => return DisconnectReason::FrameTimeout(frame_timeout),
            Ok(next) => next,
        };
        let body = match next {
            None => return DisconnectReason::Closed,
            Some(Ok(body)) => body,
            Some(Err(StreamError::TooLarge { size, limit })) => {
                let e = IpcError::FrameTooLarge { size, limit };
                warn!(renderer = %conn.id(), size, limit, "rejected frame: too large");
                conn.notice(&e).await;
                return DisconnectReason::FrameTooLarge { size, limit };
            }
            Some(Err(e)) => return DisconnectReason::Failed(e.to_string()),
        };
        match Frame::parse(body) {
            Ok(Frame::Invoke {
                id,
                channel,
                payload,
            }) => conn.invoke(setup, id, channel, payload).await,
            Ok(Frame::Send { channel, payload }) => {
                let route = match setup.router.get(&channel) {
                    None => {
                        conn.refuse_frame(IpcError::UnknownChannel { channel })
                            .await;
                        continue;
                    }
                    Some(route) => route,
                };
                if let Err(e) = conn.check_allowed(&channel) {
                    conn.refuse_frame(e).await;
                } else if route.kind != contract::MethodKind::Send {
                    let e = IpcError::protocol(format!(
                        "`{channel}` is a request/reply channel; invoke it instead of sending to it"
                    ));
                    conn.refuse_frame(e).await;
                } else if send_tx.send((route.clone(), payload)).await.is_err() {
                    return DisconnectReason::Failed("its message handler stopped".into());
                }
            }
            Ok(Frame::Cancel { id }) => conn.cancel(id),
            Ok(Frame::Subscribe { id, channel }) => conn.subscribe(setup, id, channel).await,
            Ok(Frame::Unsubscribe { channel }) => conn.unsubscribe(&channel),
            Ok(other) => {
                debug!(renderer = %conn.id(), frame = ?other, "unexpected frame");
                conn.refuse_frame(IpcError::protocol(
                    "that frame kind is not sent by renderers",
                ))
                .await;
            }
            Err(e) => conn.refuse_frame(e.into_ipc()).await,
        }
    }
}

//! Event listeners on the renderer side, and the guards that unsubscribe
//! them.
//!
//! Events from main reach one dispatcher task per connection, which calls
//! the listeners' callbacks one at a time in the order main emitted the
//! events, across every kind of event, like callbacks on a page's single
//! thread. A slow callback delays the events after it; once 4096 events
//! (or 16 MiB of them) wait behind it, the connection's reader waits too,
//! and replies with it (see `ARCHITECTURE.md`).

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    panic::AssertUnwindSafe,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::{Connection, Reply, Shared};
use crate::{
    codec,
    frame::{Channel, Frame},
    IpcError,
};

/// Events received but not yet taken by the dispatcher, per connection.
/// Past this, the reader waits for the dispatcher instead of reading on:
/// a stuck callback cannot grow memory without bound, and no event is
/// dropped here (main's own bounded queue for this renderer fills, and
/// main drops and counts per its `SlowConsumer` policy).
pub(crate) const EVENT_QUEUE: usize = 4096;

/// Bytes of events received but not yet taken by the dispatcher, past which
/// the reader waits too (an event larger than this still goes alone), so
/// that large events behind a stuck callback do not pile up either.
pub(crate) const EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Events on their way from the reader task to the dispatcher task.
///
/// The dispatcher takes every queued event at once, so that a burst costs
/// one lock and at most one wake-up per batch rather than per event.
#[derive(Default)]
pub(crate) struct EventQueue {
    queued: Mutex<Queued>,
    /// Set when an event is queued into an empty queue.
    ready: Notify,
    /// Set when the dispatcher takes a queue that refused an event: room
    /// for the reader.
    room: Notify,
}

/// The events waiting for the dispatcher.
#[derive(Default)]
struct Queued {
    events: VecDeque<(Channel, Bytes)>,
    /// Their payloads' bytes.
    bytes: usize,
    /// An event was refused since the dispatcher last took the queue.
    refused: bool,
}

impl EventQueue {
    fn queued(&self) -> MutexGuard<'_, Queued> {
        // Critical sections are single queue operations: never inconsistent.
        self.queued.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an event for the dispatcher, or gives it back if
    /// [`EVENT_QUEUE`] events, or [`EVENT_BYTES`] bytes of them, are
    /// already waiting.
    pub(crate) fn push(&self, channel: Channel, payload: Bytes) -> Result<(), (Channel, Bytes)> {
        let first = {
            let mut queued = self.queued();
            let too_many = queued.events.len() >= EVENT_QUEUE;
            let too_large = queued.bytes > 0 && queued.bytes + payload.len() > EVENT_BYTES;
            if too_many || too_large {
                queued.refused = true;
                return Err((channel, payload));
            }
            queued.bytes += payload.len();
            queued.events.push_back((channel, payload));
            queued.events.len() == 1
        };
        // Later events find the dispatcher woken already (or busy with a
        // batch, after which it looks again).
        if first {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Queues an event for the dispatcher, waiting while the queue is full
    /// (see [`EventQueue::push`]).
    pub(crate) async fn push_when_room(&self, (mut channel, mut payload): (Channel, Bytes)) {
        loop {
            match self.push(channel, payload) {
                Ok(()) => return,
                // Full: the dispatcher's next take sets `room` (or has set
                // it since the push was refused: `notify_one` keeps it).
                Err(back) => {
                    (channel, payload) = back;
                    self.room.notified().await;
                }
            }
        }
    }

    /// Moves every queued event into `batch` (which must be empty).
    fn take(&self, batch: &mut VecDeque<(Channel, Bytes)>) {
        let refused = {
            let mut queued = self.queued();
            std::mem::swap(&mut queued.events, batch);
            queued.bytes = 0;
            std::mem::take(&mut queued.refused)
        };
        if refused {
            self.room.notify_one();
        }
    }
}

/// Decodes an event and calls the listener with it; a payload that does
/// not decode is handed back, to be logged once the callback's lock is
/// released.
type Callback = Box<dyn FnMut(&Bytes) -> Result<(), codec::CodecError> + Send>;

/// One registered callback.
struct Listener {
    id: u64,
    active: AtomicBool,
    callback: Mutex<Callback>,
}

/// One channel's listeners, shared with the dispatcher.
type ListenerList = Arc<[Arc<Listener>]>;

/// The local listeners of one connection, by event channel.
#[derive(Default)]
pub(crate) struct Listeners {
    next_id: u64,
    /// Rebuilt when a listener comes or goes (rare), so that dispatching
    /// an event (frequent) only clones an `Arc`.
    /// By the channel's bytes, as they arrive in a frame (no UTF-8 check
    /// on every event); the keys are this program's own channels, so a
    /// fast unkeyed hash is safe.
    by_channel: HashMap<&'static [u8], ListenerList, rustc_hash::FxBuildHasher>,
    /// Per channel with listeners, what main was asked and said. A new map
    /// entry each time a channel gets its first listener, so that a late
    /// answer to an earlier subscription sets only its own flag.
    subscribed: HashMap<&'static str, Arc<Subscribed>, rustc_hash::FxBuildHasher>,
    /// Bumped, under the lock, whenever a listener comes or goes: the
    /// dispatcher reads it without the lock to know whether the list it
    /// looked up for the previous event still holds.
    changes: Arc<AtomicU64>,
}

/// Where a channel's subscription on main stands, since the channel got
/// its first listener.
#[derive(Default)]
struct Subscribed {
    /// A subscribe frame was queued: main is to be told when the last
    /// listener goes. One given up before its frame was queued (while it
    /// waited for room) asked nothing, and an unsubscribe for it would be
    /// queued past the queue's bounds for nothing.
    asked: AtomicBool,
    /// Main has confirmed a subscription.
    confirmed: AtomicBool,
}

/// How a new listener joins its channel.
enum Joined {
    /// Main already sends this channel's events here.
    Confirmed,
    /// Main has not confirmed a subscription yet (the channel is new, or
    /// another listener's subscription is on its way): the listener asks
    /// main itself, and sets `confirmed` once main has answered yes. Main
    /// takes a repeated subscription as one, so each listener returns on
    /// main's answer to its own request, whoever else is waiting.
    Subscribe(Arc<Subscribed>),
}

impl Listeners {
    fn of(&self, channel: &[u8]) -> Option<ListenerList> {
        self.by_channel.get(channel).cloned()
    }

    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Release);
    }

    /// Adds a listener; returns it and how it joins its channel.
    fn add(&mut self, channel: &'static str, callback: Callback) -> (Arc<Listener>, Joined) {
        self.next_id += 1;
        let listener = Arc::new(Listener {
            id: self.next_id,
            active: AtomicBool::new(true),
            callback: Mutex::new(callback),
        });
        let list = self
            .by_channel
            .entry(channel.as_bytes())
            .or_insert_with(|| Arc::new([]));
        let first = list.is_empty();
        *list = list
            .iter()
            .cloned()
            .chain([Arc::clone(&listener)])
            .collect();
        self.changed();
        if first {
            self.subscribed.insert(channel, Arc::default());
        }
        let state = Arc::clone(self.subscribed.entry(channel).or_default());
        let joined = if state.confirmed.load(Ordering::Acquire) {
            Joined::Confirmed
        } else {
            Joined::Subscribe(state)
        };
        (listener, joined)
    }

    /// Ends every listener and returns their callbacks, for the caller to
    /// drop once it has released the lock on these listeners: a callback
    /// may own another listener's guard, whose drop takes that lock.
    /// Dropped, the callbacks (and what they captured) let code waiting on
    /// them see the end of the events.
    #[must_use = "the callbacks are to be dropped after the lock is released"]
    fn end_all(&mut self) -> Vec<Callback> {
        let mut ended = Vec::new();
        self.changed();
        for list in std::mem::take(&mut self.by_channel).into_values() {
            for listener in list.iter() {
                listener.active.store(false, Ordering::Release);
                let noop: Callback = Box::new(|_| Ok(()));
                ended.push(std::mem::replace(
                    &mut *listener.callback.lock().unwrap_or_else(|e| e.into_inner()),
                    noop,
                ));
            }
        }
        self.subscribed.clear();
        ended
    }

    /// Removes a listener; returns whether main is to be told to stop
    /// sending the channel's events: it was the channel's last listener,
    /// and main was asked to send them.
    fn remove(&mut self, channel: &'static str, id: u64) -> bool {
        let Some(list) = self.by_channel.get_mut(channel.as_bytes()) else {
            return false;
        };
        let before = list.len();
        *list = list.iter().filter(|l| l.id != id).cloned().collect();
        if list.len() == before {
            return false;
        }
        self.changes.fetch_add(1, Ordering::Release);
        if list.is_empty() {
            self.by_channel.remove(channel.as_bytes());
            return self
                .subscribed
                .remove(channel)
                .is_some_and(|state| state.asked.load(Ordering::Acquire));
        }
        false
    }
}

/// Calls the listeners of each received event, in arrival order, until the
/// connection stops; events already received are still dispatched.
pub(crate) async fn dispatch_events(shared: Arc<Shared>, stop: CancellationToken) {
    let mut batch = VecDeque::new();
    let changes = Arc::clone(&shared.listeners().changes);
    // The listeners looked up for the last event's channel, while no
    // listener came or went, within one batch: a run of events on one
    // channel (the common burst) takes the listeners' lock once, not once
    // per event.
    let mut last: Option<(Channel, u64, Option<ListenerList>)> = None;
    loop {
        // Read before taking: the reader queues every event it received
        // before it stops the connection, so a stop seen here means this
        // take holds the last of them. (Read after, an event queued
        // between the take and the read would be lost.)
        let stopped = stop.is_cancelled();
        shared.events.take(&mut batch);
        if batch.is_empty() {
            // Stopped: what was queued before is dispatched, then no more.
            if stopped {
                let ended = shared.listeners().end_all();
                drop(ended);
                return;
            }
            tokio::select! {
                () = shared.events.ready.notified() => {}
                () = stop.cancelled() => {}
            }
            continue;
        }
        for (channel, payload) in batch.drain(..) {
            let now = changes.load(Ordering::Acquire);
            let same = matches!(&last, Some((c, at, _)) if *at == now && *c == channel);
            if !same {
                let listeners = shared.listeners().of(channel.as_bytes());
                last = Some((channel.clone(), now, listeners));
            }
            if let Some((_, _, Some(listeners))) = &last {
                dispatch(listeners, &channel, &payload);
            }
        }
        // Not kept between batches: it would keep the callbacks of
        // listeners removed meanwhile (and what they hold) alive.
        last = None;
        // A long burst of events must not keep this task from yielding.
        tokio::task::consume_budget().await;
    }
}

/// Calls the listeners of one event.
fn dispatch(listeners: &[Arc<Listener>], channel: &Channel, payload: &Bytes) {
    for listener in listeners {
        if !listener.active.load(Ordering::Acquire) {
            continue;
        }
        let call = {
            let mut callback = listener.callback.lock().unwrap_or_else(|e| e.into_inner());
            std::panic::catch_unwind(AssertUnwindSafe(|| (callback)(payload)))
        };
        // Logged with no lock held: a `tracing` layer may use this
        // connection (subscribe, or drop a guard).
        match call {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(%channel, error = %e, "event could not be decoded"),
            Err(_) => error!(%channel, "an event listener panicked; later events still reach it"),
        }
    }
}

/// A listener's guard: dropping it unsubscribes. When the last listener of
/// an event on a connection goes, main is told to stop sending that event.
///
/// The guard does not keep the connection open: dropping every handle of
/// the API closes the connection, and with it every listener (their
/// callbacks are dropped). Keep a handle for as long as you listen.
/// (Callbacks may own guards, their own included; a guard that kept the
/// connection open would then keep it open for ever.)
///
/// Dropped inside a callback (callbacks run one at a time, on the
/// connection's event dispatcher), its callback is never called again.
/// Dropped on another thread while the dispatcher is starting or running
/// that callback, the call under way finishes (the drop does not wait for
/// it, so a callback that waits for the dropping thread cannot deadlock);
/// no later event reaches it.
///
/// To listen for as long as the connection lasts, with no guard to keep,
/// call [`detach`](Self::detach).
#[must_use = "dropping the subscription unsubscribes at once: keep it for as long as you listen (`let _guard = ...`), or call `.detach()` to listen for as long as the connection lasts; `let _ = ...` would drop it at once"]
pub struct Subscription {
    shared: Arc<Shared>,
    channel: &'static str,
    listener: Arc<Listener>,
    /// Set by [`Subscription::detach`]: dropping unsubscribes nothing.
    detached: bool,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("channel", &self.channel)
            .finish()
    }
}

impl Subscription {
    /// The event channel this listens to.
    pub fn channel(&self) -> &'static str {
        self.channel
    }

    /// Keeps the callback for as long as the connection lasts, without a
    /// guard: it is dropped with the connection's other listeners when the
    /// connection closes, and there is no way to unsubscribe it before.
    ///
    /// A callback that holds a handle on its own connection (the API, to
    /// call main back) then keeps the connection open for ever: dropping
    /// every other handle no longer closes it. Let it hold a weak handle
    /// instead, which the API's `downgrade` gives
    /// ([`WeakApi`](crate::WeakApi) shows one).
    ///
    /// ```no_run
    /// # use ipc_runtime::{events, expose};
    /// # #[events(namespace = "notes")]
    /// # pub trait NotesEvents { fn changed(&self, id: u64); }
    /// # expose! { pub struct ViewerApi { events: NotesEvents { changed } } }
    /// # async fn listen(api: ViewerApi) -> Result<(), ipc_runtime::IpcError> {
    /// api.events.on_changed(|id| println!("note {id} changed")).await?.detach();
    /// # Ok(())
    /// # }
    /// # fn main() {}
    /// ```
    pub fn detach(mut self) {
        self.detached = true;
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        self.listener.active.store(false, Ordering::Release);
        let mut listeners = self.shared.listeners();
        if listeners.remove(self.channel, self.listener.id) {
            // Queued under the lock: a new first listener of the channel
            // queues its subscription after this, never before it. (And
            // after the subscribe frame that asked: a listener's request
            // is queued while its own guard lives, so the last one to go
            // finds every request of its channel queued or given up.)
            self.shared.send_from_drop(Frame::Unsubscribe {
                channel: Channel::from_static(self.channel),
            });
        }
    }
}

impl Connection {
    /// Registers `callback` for `channel`, subscribing on main unless main
    /// has already confirmed a subscription to it. Returns once main has,
    /// so every event main emits afterwards reaches it; a listener that
    /// joins while another's subscription is on its way asks main too, and
    /// fails if main refuses it.
    async fn subscribe(
        &self,
        channel: &'static str,
        callback: Callback,
    ) -> Result<Subscription, IpcError> {
        let (listener, joined) = {
            let closed = self.shared.state().closed.clone();
            if let Some(reason) = closed {
                return Err(reason);
            }
            self.shared.listeners().add(channel, callback)
        };
        // Built first, so that an early return below unregisters it.
        let subscription = Subscription {
            shared: Arc::clone(&self.shared),
            channel,
            listener,
            detached: false,
        };
        if let Joined::Subscribe(state) = joined {
            self.subscribe_on_main(channel, &state.asked).await?;
            state.confirmed.store(true, Ordering::Release);
        }
        Ok(subscription)
    }

    /// Asks main to send the events on `channel` to this renderer,
    /// setting `asked` as the request is queued.
    async fn subscribe_on_main(
        &self,
        channel: &'static str,
        asked: &AtomicBool,
    ) -> Result<(), IpcError> {
        let reply = self
            .request(channel, self.call_timeout(), false, |id, buf| {
                // Under the queue's lock, which an unsubscribe also takes.
                asked.store(true, Ordering::Release);
                Frame::Subscribe {
                    id,
                    channel: Channel::from_static(channel),
                }
                .write_body(buf)
            })
            .await?;
        match reply {
            Reply::Ok(_) => Ok(()),
            Reply::Failed(e) => Err(e),
            Reply::Err(_) => Err(IpcError::protocol(
                "main answered a subscription with a typed error",
            )),
        }
    }
}

/// The events of one kind as they arrive, to read at your own pace: what a
/// generated `stream_…` method returns (`api.events.stream_changed()`), next
/// to the `on_…` method that takes a callback instead.
///
/// ```no_run
/// # use ipc_runtime::{events, Connection};
/// # #[events(namespace = "notes")]
/// # pub trait NotesEvents { fn changed(&self, id: u64); fn moved(&self, id: u64, to: String); }
/// # async fn demo(conn: Connection) -> Result<(), ipc_runtime::IpcError> {
/// let listener = NotesEventsListener::new(&conn);
/// let mut changed = listener.stream_changed().await?;
/// // An event with several arguments arrives as a tuple of them.
/// let mut moved = listener.stream_moved().await?;
/// while let Some(id) = changed.recv().await {
///     println!("note {id} changed");
/// }
/// // `None`: the connection has closed (every event main sent before was
/// // delivered first).
/// # let _ = moved.recv().await.map(|(id, to): (u64, String)| (id, to));
/// # Ok(())
/// # }
/// # fn main() {}
/// ```
///
/// It is also a [`Stream`](futures_util::Stream), for `StreamExt`'s
/// adapters.
///
/// Events wait in the stream until read, without limit (like tokio's
/// unbounded channels): an event never waits for you there, and never
/// holds up the connection's replies or other listeners, but a stream
/// that is kept and never read grows with every event main sends it (a
/// `tracing` warning says so at 10 000 unread events, then at 100 000,
/// and so on; at 10 000 again once the reader has caught up). Read it, or
/// drop it: dropping it unsubscribes, as dropping a [`Subscription`] does.
/// Like a subscription, it does not keep the connection open.
#[must_use = "dropping the stream unsubscribes at once: bind it to a name and read it"]
pub struct EventStream<T> {
    events: tokio::sync::mpsc::UnboundedReceiver<T>,
    /// How many events it has handed out, for its sender's warning.
    taken: usize,
    shared_taken: Arc<AtomicUsize>,
    subscription: Subscription,
}

/// How many unread events a stream holds when its sender first warns; it
/// warns again at ten times as many, and so on.
const STREAM_WARN: usize = 10_000;

/// The sending end of an [`EventStream`], moved into its listener's
/// callback. Used by generated `stream_…` methods.
#[doc(hidden)]
pub struct EventSink<T> {
    events: tokio::sync::mpsc::UnboundedSender<T>,
    sent: usize,
    taken: Arc<AtomicUsize>,
    warn_at: usize,
    channel: &'static str,
}

/// The receiving end of an [`EventStream`], before its subscription is
/// made. Used by generated `stream_…` methods.
#[doc(hidden)]
pub struct EventSource<T> {
    events: tokio::sync::mpsc::UnboundedReceiver<T>,
    taken: Arc<AtomicUsize>,
}

impl<T> EventSink<T> {
    /// Queues an event for the stream; the stream gone, nobody reads it.
    /// At [`STREAM_WARN`] unread events (then ten times as many, and so
    /// on) it warns that the stream is not read; once the reader has
    /// caught up (under half of [`STREAM_WARN`]), at [`STREAM_WARN`] again.
    pub fn send(&mut self, event: T) {
        // Counted before it can be taken, so that `taken <= sent`.
        self.sent += 1;
        if self.events.send(event).is_err() {
            return;
        }
        let waiting = self.sent - self.taken.load(Ordering::Relaxed);
        if waiting < STREAM_WARN / 2 {
            // Caught up: a later stall is worth a warning again.
            self.warn_at = STREAM_WARN;
        } else if waiting >= self.warn_at {
            self.warn_at = self.warn_at.saturating_mul(10);
            let channel = self.channel;
            // Logged from a task of its own: this runs in a listener's
            // callback, under its lock, and a `tracing` layer is user code.
            tokio::spawn(async move {
                warn!(%channel, waiting, "an `EventStream` holds {waiting} unread events: read it (`recv`) or drop it");
            });
        }
    }
}

impl<T> fmt::Debug for EventStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("channel", &self.subscription.channel)
            .field("waiting", &self.events.len())
            .finish()
    }
}

impl<T> EventStream<T> {
    /// The next event, waiting for one if none has arrived; `None` once
    /// the connection has closed and every event received before has been
    /// read.
    ///
    /// Cancel-safe: dropping the future before it completes loses no
    /// event (as in a `tokio::select!` loop).
    pub async fn recv(&mut self) -> Option<T> {
        let event = self.events.recv().await;
        self.took(event)
    }

    /// The next event if one has arrived, without waiting.
    pub fn try_recv(&mut self) -> Option<T> {
        let event = self.events.try_recv().ok();
        self.took(event)
    }

    /// Counts an event handed out, for the sender's warning.
    fn took(&mut self, event: Option<T>) -> Option<T> {
        if event.is_some() {
            self.taken += 1;
            self.shared_taken.store(self.taken, Ordering::Relaxed);
        }
        event
    }

    /// A connected sink and source for a stream of `channel`'s events.
    #[doc(hidden)]
    pub fn __channel(channel: &'static str) -> (EventSink<T>, EventSource<T>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let taken = Arc::new(AtomicUsize::new(0));
        let sink = EventSink {
            events: tx,
            sent: 0,
            taken: Arc::clone(&taken),
            warn_at: STREAM_WARN,
            channel,
        };
        (sink, EventSource { events: rx, taken })
    }

    /// How many events have arrived and wait to be read.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event waits to be read.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The event channel this listens to.
    pub fn channel(&self) -> &'static str {
        self.subscription.channel
    }

    /// Wraps `source`, fed by the callback that `subscription`
    /// registered. Used by generated `stream_…` methods.
    #[doc(hidden)]
    pub fn __new(source: EventSource<T>, subscription: Subscription) -> Self {
        EventStream {
            events: source.events,
            taken: 0,
            shared_taken: source.taken,
            subscription,
        }
    }
}

impl<T> futures_util::Stream for EventStream<T> {
    type Item = T;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        let polled = self.events.poll_recv(cx);
        polled.map(|event| self.took(event))
    }
}

/// The part shared by every generated events listener: subscribes typed
/// callbacks. Generated code calls it; use the generated listener instead.
#[derive(Clone, Debug)]
pub struct ListenerCore {
    conn: Connection,
}

impl ListenerCore {
    /// A core listening on `conn`.
    pub fn new(conn: &Connection) -> Self {
        ListenerCore { conn: conn.clone() }
    }

    /// Calls `f` with each event on `channel`, decoded as `A`, in the order
    /// main emitted them, until the returned guard is dropped or the
    /// connection closes.
    pub async fn on<A, F>(&self, channel: &'static str, mut f: F) -> Result<Subscription, IpcError>
    where
        A: DeserializeOwned + Send + 'static,
        F: FnMut(A) + Send + 'static,
    {
        let callback: Callback =
            Box::new(move |payload: &Bytes| codec::decode_shared::<A>(payload).map(&mut f));
        self.conn.subscribe(channel, callback).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: usize) -> (Channel, Bytes) {
        (
            Channel::from_static("test:tick"),
            Bytes::from(n.to_le_bytes().to_vec()),
        )
    }

    #[tokio::test]
    async fn the_queue_is_bounded_and_hands_over_everything_in_order() {
        let queue = EventQueue::default();
        for n in 0..EVENT_QUEUE {
            let (channel, payload) = event(n);
            assert!(queue.push(channel, payload).is_ok(), "{n}");
        }
        // Full: the next event is refused and given back; a reader that
        // waits for room is let in by the next take.
        let (channel, payload) = event(EVENT_QUEUE);
        let (back, _) = queue.push(channel, payload).unwrap_err();
        assert_eq!(back.as_str(), "test:tick");
        let waiting = queue.push_when_room(event(EVENT_QUEUE));
        tokio::pin!(waiting);
        assert!(futures_util::poll!(waiting.as_mut()).is_pending());
        // The first push woke the dispatcher (once).
        queue.ready.notified().await;

        let mut batch = VecDeque::new();
        queue.take(&mut batch);
        let got: Vec<usize> = batch
            .iter()
            .map(|(_, p)| usize::from_le_bytes(p[..].try_into().unwrap()))
            .collect();
        assert_eq!(got, (0..EVENT_QUEUE).collect::<Vec<_>>());

        // Taken: the waiting event goes in, and (into an empty queue) wakes
        // the dispatcher again.
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("a take lets the waiting reader in");
        tokio::time::timeout(std::time::Duration::from_secs(5), queue.ready.notified())
            .await
            .expect("a push into an empty queue wakes the dispatcher");
        queue.take(&mut batch);
        assert_eq!(batch.len(), 1);
    }
}

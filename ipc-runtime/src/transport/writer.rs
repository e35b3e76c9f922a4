//! A connection's outgoing side: frames are encoded straight into one
//! shared buffer, and whatever has accumulated leaves with one system call.
//!
//! Producers (calls, replies, events) append whole frames to the
//! [`WriteQueue`]'s buffer under a short lock, encoding their payload in
//! place: no intermediate buffer, no copy, no allocation once the buffer
//! has grown. Writing swaps that buffer for an empty one and writes it, so
//! a burst of frames leaves in one write, and the two buffers keep their
//! capacity (up to [`RETAIN`]) from one batch to the next.
//!
//! Large [`Blob`](crate::Blob)s are the exception to "encoded in place":
//! they stay in their own buffer, the queue keeps a reference to it (a
//! *splice*, see `codec::splice`) and the batch leaves in one vectored
//! write, so a megabyte is not copied in user space on its way out (unless
//! the transport cannot write vectored: the splices are then copied in).
//!
//! Usually the writer task writes. Main's reader, which knows when a burst
//! of replies ends (or has gone on long enough, see
//! `MainBuilder::flush_replies_every`), writes them itself when the socket
//! takes them at once ([`WriteQueue::write_through`]), which saves waking
//! another task (on a busy machine, another thread) for every burst.

use std::{
    future::Future,
    io::{self, IoSlice},
    ops::Deref,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    task::{ready, Context, Poll},
    time::Duration,
};

use bytes::{BufMut, BytesMut};
use tokio::{
    io::AsyncWriteExt,
    sync::{watch, Notify},
};
use tokio_util::sync::CancellationToken;

use super::BoxWrite;
use crate::{
    codec::{
        splice::{self, FrameBuf, Splice},
        CodecError,
    },
    error::panic_message,
    frame::{Frame, StreamError, PREFIX},
    IpcError,
};

/// Write buffers larger than this are given back to the allocator after
/// use instead of being kept for the next batch.
const RETAIN: usize = 2 * 1024 * 1024;
/// Producers that can wait ([`WriteQueue::push`]) wait while this many
/// bytes are queued: a peer that reads slowly slows them down instead of
/// growing the buffer (one frame may go past it). Spliced bytes count.
const WAIT_BYTES: usize = 256 * 1024;
/// The most buffers handed to one vectored write.
const MAX_SLICES: usize = 64;

/// Why a frame was not queued.
#[derive(Debug)]
pub(crate) enum PushError {
    /// The queue holds its maximum number of frames (only from
    /// [`WriteQueue::try_push`]).
    Full,
    /// The connection is closed.
    Closed,
    /// The frame is larger than the peer accepts.
    TooLarge { size: usize, limit: usize },
    /// The payload could not be encoded.
    Encode(CodecError),
    /// The frame was queued, by a producer that waits for room, from
    /// inside the encoding of another frame for the same queue, which
    /// holds the queue's lock: refused rather than waiting for itself.
    /// (Frames that cannot wait are set aside instead.)
    Reentrant,
}

impl PushError {
    /// The error to report for a frame on `channel` that was not queued;
    /// `closed` gives the reason the connection closed.
    pub(crate) fn into_ipc(self, channel: &str, closed: impl FnOnce() -> IpcError) -> IpcError {
        match self {
            PushError::Encode(e) => IpcError::Encode {
                channel: channel.to_string(),
                reason: e.into_encode_reason(),
            },
            PushError::TooLarge { size, limit } => IpcError::FrameTooLarge {
                size: size as u64,
                limit,
            },
            PushError::Reentrant => IpcError::Encode {
                channel: channel.to_string(),
                reason:
                    "queued from inside the `Serialize` of another frame for the same connection"
                        .into(),
            },
            PushError::Closed | PushError::Full => closed(),
        }
    }
}

/// Counts one waiter in a [`WriteQueue`]'s count of those waiting (for
/// room, or for events to drain) while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

thread_local! {
    /// The queue whose lock this thread holds while it runs a frame's
    /// encoding (user code), as an address; 0 for none.
    static ENCODING_INTO: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Frames waiting for the writer task.
pub(crate) struct WriteQueue {
    state: Mutex<State>,
    /// The write half and the batch being written: whoever holds this lock
    /// writes (the writer task, or a producer writing through).
    io: Mutex<Io>,
    /// Wakes the writer task.
    wake: Notify,
    /// Wakes producers waiting for room, one at a time (each passes it
    /// on; closing wakes them all, and so does a writer left idle for
    /// [`STRANDED_AFTER`] while `room_waiters` says one waits).
    room: Notify,
    room_waiters: AtomicUsize,
    /// Wakes every [`WriteQueue::room_for_events`] wait whenever the frames
    /// held go down (a batch written), if `event_waiters` says one waits.
    drained: Notify,
    event_waiters: AtomicUsize,
    /// How far the writer has got, for [`WriteQueue::flushed`].
    written: watch::Sender<Written>,
    /// Frames that may wait in the buffer before producers wait.
    max_frames: usize,
    /// Bytes queued, counting the batch being written, past which
    /// [`WriteQueue::try_push`] refuses frames.
    max_bytes: usize,
    /// The largest frame body the peer accepts.
    peer_limit: usize,
    /// A frame was queued without waking the writer.
    quiet: AtomicBool,
    /// Whole frames queued from inside the encoding of a frame for another
    /// queue while this one's lock was taken (see [`WriteQueue::defer`]),
    /// and how many; they join `state` before anything else does.
    deferred: Mutex<(BytesMut, usize)>,
    has_deferred: AtomicBool,
    /// Set by [`WriteQueue::close`]: nothing more is set aside.
    closing: AtomicBool,
}

struct State {
    buf: BytesMut,
    /// Large blobs that belong in `buf`, in order.
    splices: Vec<Splice>,
    /// Bytes in `splices`.
    spliced: usize,
    /// Frames in `buf`.
    frames: usize,
    /// Frames ever queued: the sequence number of the last one.
    queued: u64,
    closed: bool,
    /// Frames and bytes of the batch the writer took and is writing: still
    /// held here until written, so they count towards the limits of
    /// [`WriteQueue::try_push`] (a peer that does not read leaves them
    /// there).
    taken_frames: usize,
    taken_bytes: usize,
}

struct Io {
    /// `None` once the writer task has stopped.
    io: Option<BoxWrite>,
    /// The batch being written.
    batch: Batch,
    /// The sequence number of the batch's last frame.
    seq: u64,
    /// Capacity of `out` when it was taken, to decide whether to keep it.
    capacity: usize,
    /// The batch has been written but not yet flushed.
    unflushed: bool,
}

/// Frames on their way out: their bytes, and the blobs spliced into them.
#[derive(Default)]
struct Batch {
    out: BytesMut,
    splices: Vec<Splice>,
    /// How far the batch is written: bytes of `out`, splices, and bytes of
    /// the next splice (while `at` is where it belongs).
    at: usize,
    next: usize,
    into: usize,
}

impl State {
    fn new() -> Self {
        State {
            buf: BytesMut::new(),
            splices: Vec::new(),
            spliced: 0,
            frames: 0,
            queued: 0,
            closed: false,
            taken_frames: 0,
            taken_bytes: 0,
        }
    }

    /// Whether a producer that can wait may queue another frame.
    fn has_room(&self, max_frames: usize) -> bool {
        self.frames < max_frames && self.buf.len() + self.spliced < WAIT_BYTES
    }

    /// Whether a frame that cannot wait (an event) is refused: the frames
    /// held, queued or being written, reach `max_frames`, or their bytes
    /// reach `max_bytes` (a frame larger than that still goes alone).
    fn is_full(&self, max_frames: usize, max_bytes: usize) -> bool {
        let (frames, bytes) = self.held();
        frames >= max_frames || (bytes > 0 && bytes >= max_bytes)
    }

    /// The frames and bytes held: queued, or taken by the writer and not
    /// yet written.
    fn held(&self) -> (usize, usize) {
        (
            self.frames + self.taken_frames,
            self.buf.len() + self.spliced + self.taken_bytes,
        )
    }
}

impl Batch {
    /// The whole batch is written.
    fn is_done(&self) -> bool {
        self.at == self.out.len() && self.next == self.splices.len()
    }

    /// Where the bytes of `out` stop before splice `next`: where that
    /// splice belongs, or the end.
    fn until(&self, next: usize) -> usize {
        self.splices.get(next).map_or(self.out.len(), |s| s.at)
    }

    /// The rest of the batch, in order, as buffers for a vectored write.
    fn slices<'a>(&'a self, slices: &mut [IoSlice<'a>; MAX_SLICES]) -> usize {
        let (mut at, mut next, mut into) = (self.at, self.next, self.into);
        let mut n = 0;
        while n < MAX_SLICES {
            let until = self.until(next);
            if at < until {
                slices[n] = IoSlice::new(&self.out[at..until]);
                at = until;
            } else if let Some(s) = self.splices.get(next) {
                slices[n] = IoSlice::new(&s.bytes[into..]);
                (next, into) = (next + 1, 0);
            } else {
                break;
            }
            n += 1;
        }
        n
    }

    /// Copies the splices into `out`, for a transport that writes one
    /// buffer at a time (a vectored write to it would send each piece in
    /// a write of its own).
    fn flatten(&mut self) {
        self.out = splice::joined(&self.out, &self.splices);
        self.splices.clear();
    }

    /// Marks `n` more bytes of the batch written.
    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let until = self.until(self.next);
            if self.at < until {
                let k = n.min(until - self.at);
                self.at += k;
                n -= k;
            } else {
                let len = self.splices[self.next].bytes.len();
                let k = n.min(len - self.into);
                self.into += k;
                n -= k;
                if self.into == len {
                    (self.next, self.into) = (self.next + 1, 0);
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Written {
    /// Every frame up to this sequence number has been written.
    upto: u64,
    /// The writer has stopped: nothing more will be written.
    stopped: bool,
}

impl WriteQueue {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while encoding (a user's `Serialize`) is caught in `put`,
        // which truncates the partial frame: the buffer stays whole frames.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame from inside the encoding of a frame (a reply's
    /// `Serialize` emitting an event, a guard dropped there) when this
    /// queue's lock is taken: by this thread, encoding for this queue; or
    /// by another, and waiting could deadlock, as the holder may be a
    /// thread encoding a frame for the first queue that waits for this
    /// one. The frame is encoded apart and set aside, under
    /// a lock never held while user code runs; it joins the queue, ahead of
    /// anything queued after it, at the queue's next use ([`Self::merge`]),
    /// and the writer is woken for that. For a `bounded` frame, what is set
    /// aside is held to the queue's limits (`Full` past them); nothing is
    /// set aside once the queue is closed (`Closed`).
    fn defer(
        &self,
        body: impl FnOnce(&mut FrameBuf<'_>) -> Result<(), CodecError>,
        bounded: bool,
    ) -> Result<(), PushError> {
        if self.closing.load(Ordering::Acquire) {
            return Err(PushError::Closed);
        }
        let mut apart = State::new();
        self.put(&mut apart, body)?;
        let frame = splice::joined(&apart.buf, &apart.splices);
        {
            let mut deferred = self.deferred();
            // The queue's own limits, for what is set aside (the queue
            // itself cannot be looked at: its lock is taken).
            let bytes = deferred.0.len();
            if bounded && (deferred.1 >= self.max_frames || (bytes > 0 && bytes >= self.max_bytes))
            {
                return Err(PushError::Full);
            }
            deferred.0.extend_from_slice(&frame);
            deferred.1 += 1;
            self.has_deferred.store(true, Ordering::Release);
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Moves the frames [`Self::defer`] set aside into the queue, in the
    /// order they came, ahead of what the caller (holding the lock) queues.
    #[inline]
    fn merge(&self, s: &mut State) {
        if self.has_deferred.load(Ordering::Acquire) {
            self.merge_deferred(s);
        }
    }

    /// [`Self::merge`] when frames were set aside.
    #[cold]
    #[inline(never)]
    fn merge_deferred(&self, s: &mut State) {
        let mut deferred = self.deferred();
        let (bytes, frames) = std::mem::take(&mut *deferred);
        self.has_deferred.store(false, Ordering::Release);
        drop(deferred);
        if s.closed {
            return;
        }
        s.buf.extend_from_slice(&bytes);
        s.frames += frames;
        s.queued += frames as u64;
    }

    fn deferred(&self) -> MutexGuard<'_, (BytesMut, usize)> {
        // Single appends and takes: never inconsistent.
        self.deferred.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one frame, length prefix first, whose body `body` writes.
    fn put(
        &self,
        s: &mut State,
        body: impl FnOnce(&mut FrameBuf<'_>) -> Result<(), CodecError>,
    ) -> Result<(), PushError> {
        let start = s.buf.len();
        let first_splice = s.splices.len();
        s.buf.put_u32(0);
        let fail = |s: &mut State, e| {
            s.buf.truncate(start);
            s.splices.truncate(first_splice);
            Err(e)
        };
        // The body runs the user's `Serialize`, which may panic: the frame
        // is then refused like any encoding error, never left half-written,
        // and the panic does not unwind into the connection's tasks.
        let State { buf, splices, .. } = &mut *s;
        // While the body runs, this thread holds the queue's lock: a frame
        // it queues meanwhile on the same queue is refused (`Reentrant`).
        let outer = ENCODING_INTO.replace(self.address());
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            body(&mut FrameBuf::new(buf, splices))
        }));
        ENCODING_INTO.set(outer);
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return fail(s, PushError::Encode(e)),
            Err(panic) => {
                let message = panic_message(&*panic);
                let e = CodecError::Encode(format!("the value's `Serialize` panicked: {message}"));
                return fail(s, PushError::Encode(e));
            }
        }
        let spliced: usize = s.splices[first_splice..]
            .iter()
            .map(|x| x.bytes.len())
            .sum();
        let size = s.buf.len() - start - PREFIX + spliced;
        if size > self.peer_limit {
            return fail(
                s,
                PushError::TooLarge {
                    size,
                    limit: self.peer_limit,
                },
            );
        }
        s.buf[start..start + PREFIX].copy_from_slice(&(size as u32).to_be_bytes());
        s.spliced += spliced;
        s.frames += 1;
        s.queued += 1;
        Ok(())
    }

    /// Queues a frame unless the frames held (queued, or taken by the
    /// writer and not yet written) reach the frame limit, or their bytes
    /// the byte limit; never waits.
    pub(crate) fn try_push(
        &self,
        body: impl FnOnce(&mut FrameBuf<'_>) -> Result<(), CodecError>,
    ) -> Result<(), PushError> {
        self.push_now(body, true)
    }

    /// Queues a small control frame even if the queue is full (a cancel or
    /// an unsubscribe from a destructor, which cannot wait).
    pub(crate) fn push_always(
        &self,
        body: impl FnOnce(&mut FrameBuf<'_>) -> Result<(), CodecError>,
    ) -> Result<(), PushError> {
        self.push_now(body, false)
    }

    fn push_now(
        &self,
        body: impl FnOnce(&mut FrameBuf<'_>) -> Result<(), CodecError>,
        bounded: bool,
    ) -> Result<(), PushError> {
        {
            let mut s = if ENCODING_INTO.get() == 0 {
                self.state()
            } else {
                // Inside the encoding of a frame, holding that frame's
                // queue: this one (then the lock is this thread's own, and
                // the frame follows the one being encoded) or another,
                // whose encoder may wait for this one. Never wait.
                match self.state.try_lock() {
                    Ok(s) => s,
                    Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                    Err(std::sync::TryLockError::WouldBlock) => return self.defer(body, bounded),
                }
            };
            self.merge(&mut s);
            if s.closed {
                return Err(PushError::Closed);
            }
            if bounded && s.is_full(self.max_frames, self.max_bytes) {
                return Err(PushError::Full);
            }
            self.put(&mut s, body)?;
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Queues a frame if [`WriteQueue::push`] would not wait; otherwise
    /// gives `body` back, for the caller to wait its own way. With `wake`
    /// false the writer is not woken (see [`WriteQueue::push`]).
    pub(crate) fn push_if_room<F>(&self, body: F, wake: bool) -> Result<Result<(), PushError>, F>
    where
        F: FnOnce(&mut FrameBuf<'_>) -> Result<(), CodecError>,
    {
        if self.reentered() {
            return Ok(Err(PushError::Reentrant));
        }
        let pushed = {
            let mut s = self.state();
            self.merge(&mut s);
            if s.closed {
                Err(PushError::Closed)
            } else if s.has_room(self.max_frames) {
                self.put(&mut s, body)
            } else {
                return Err(body);
            }
        };
        if pushed.is_ok() {
            if wake {
                self.wake.notify_one();
            } else {
                self.quiet.store(true, Ordering::Release);
            }
        }
        Ok(pushed)
    }

    /// Queues a frame, waiting while the queue is full: it holds its
    /// maximum number of frames, or [`WAIT_BYTES`] bytes. With `wake`
    /// false the writer is not woken: the caller queues more and calls
    /// [`WriteQueue::write_through`] once, so that a burst leaves in one write.
    pub(crate) async fn push<F>(&self, mut body: F, wake: bool) -> Result<(), PushError>
    where
        F: FnOnce(&mut FrameBuf<'_>) -> Result<(), CodecError>,
    {
        loop {
            match self.push_if_room(body, wake) {
                Ok(pushed) => return pushed,
                Err(back) => body = back,
            }
            // Full: `room` wakes the writer, which takes everything queued
            // (frames queued quietly too), and waits for it to.
            self.room(|| {}).await;
        }
    }

    /// Waits until a [`WriteQueue::push`] would not wait (or the queue is
    /// closed). Main's reader calls it before starting a call, so that a
    /// renderer that does not read its replies cannot make main hold more
    /// and more of them.
    ///
    /// `on_full` runs once, before waiting, if the queue is full (for a
    /// record of the limit being hit).
    pub(crate) async fn room(&self, on_full: impl FnOnce()) {
        let has_room = || self.would_take_a_frame();
        // Registering with the `Notify` takes its lock: only when full.
        if has_room() {
            return;
        }
        on_full();
        self.room_waiters.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.room_waiters);
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if has_room() {
                // Had this waiter been handed the room meanwhile, dropping
                // `room` passes it on.
                return;
            }
            self.wake.notify_one();
            room.await;
            if has_room() {
                // Room is handed to one waiter at a time: pass it on, in
                // case there is enough for the next one too (which checks,
                // and waits again if this producer's frame takes the rest).
                self.room.notify_one();
                return;
            }
        }
    }

    /// No frame may be queued any more; the writer writes what is queued
    /// and stops.
    pub(crate) fn close(&self) {
        {
            let mut s = self.state();
            // Frames set aside before the close are written with the rest.
            self.merge(&mut s);
            s.closed = true;
        }
        self.closing.store(true, Ordering::Release);
        self.wake.notify_one();
        self.room.notify_waiters();
        self.drained.notify_waiters();
    }

    /// Resolves to `true` once every frame queued before this call has
    /// been written, or to `false` if the writer stopped first.
    pub(crate) fn flushed(&self) -> impl Future<Output = bool> + Send + 'static {
        let seq = {
            let mut s = self.state();
            self.merge(&mut s);
            s.queued
        };
        let mut written = self.written.subscribe();
        self.quiet.store(false, Ordering::Release);
        self.wake.notify_one();
        async move {
            match written.wait_for(|w| w.upto >= seq || w.stopped).await {
                Ok(w) => w.upto >= seq,
                Err(_) => false,
            }
        }
    }

    /// Moves the queued frames into `io`'s batch (which must be empty) and
    /// returns the sequence number of the last, or `None` if nothing is
    /// queued.
    fn take(&self, batch: &mut Batch) -> Option<u64> {
        let seq = {
            let mut s = self.state();
            self.merge(&mut s);
            // The previous batch is written (the writer takes the next one
            // only then).
            if s.buf.is_empty() {
                (s.taken_frames, s.taken_bytes) = (0, 0);
                drop(s);
                self.drained_some();
                return None;
            }
            (s.taken_frames, s.taken_bytes) = (s.frames, s.buf.len() + s.spliced);
            std::mem::swap(&mut s.buf, &mut batch.out);
            std::mem::swap(&mut s.splices, &mut batch.splices);
            (batch.at, batch.next, batch.into) = (0, 0, 0);
            s.spliced = 0;
            s.frames = 0;
            s.queued
        };
        // One waiting producer at a time: each one that finds room passes
        // it on (see `room`). Waking them all made every large frame wake
        // every waiting caller, to find that one of them had taken the room.
        self.room.notify_one();
        self.drained_some();
        Some(seq)
    }

    /// Wakes every producer waiting for room, if there is room: room handed
    /// to one whose wait is neither polled again nor dropped (a future
    /// polled once and kept, say) stays with it, and once the writer has
    /// nothing left to take, nothing else would hand it on. See
    /// [`STRANDED_AFTER`].
    fn wake_stranded(&self) {
        if self.would_take_a_frame() {
            self.room.notify_waiters();
        }
    }

    /// Whether a producer that may wait would not ([`WriteQueue::push`]):
    /// the queue has room, or is closed (and refuses at once).
    fn would_take_a_frame(&self) -> bool {
        let s = self.state();
        s.closed || s.has_room(self.max_frames)
    }

    /// The frames held went down (or the queue closed): wakes the
    /// [`WriteQueue::room_for_events`] waits, if any (one atomic load
    /// otherwise).
    fn drained_some(&self) {
        if self.event_waiters.load(Ordering::Acquire) > 0 {
            self.drained.notify_waiters();
        }
    }

    /// Waits until the frames and bytes held (queued, or taken by the
    /// writer and not yet written) are at most half of the limits past
    /// which [`WriteQueue::try_push`] refuses events, or the queue is
    /// closed: then at least as many events again can be queued without
    /// one being refused. Waits as long as the peer does not read.
    pub(crate) async fn room_for_events(&self) {
        let ready = || {
            let s = self.state();
            let (frames, bytes) = s.held();
            s.closed || (frames * 2 <= self.max_frames && bytes * 2 <= self.max_bytes)
        };
        if ready() {
            return;
        }
        self.event_waiters.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.event_waiters);
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            // Registered before looking: a batch written in between still
            // wakes this wait.
            drained.as_mut().enable();
            if ready() {
                return;
            }
            self.wake.notify_one();
            drained.await;
        }
    }

    fn io(&self) -> MutexGuard<'_, Io> {
        // Critical sections never panic halfway (polls of the transport).
        self.io.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes (and flushes) what is queued until nothing is left or the
    /// transport would block. Holds the `io` lock only for this poll.
    fn poll_write_queued(&self, io: &mut Io, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Io {
            io: stream,
            batch,
            seq,
            capacity,
            unflushed,
        } = io;
        let Some(stream) = stream.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        loop {
            if batch.is_done() {
                if *unflushed {
                    ready!(stream.as_mut().poll_flush(cx))?;
                    *unflushed = false;
                    if *capacity > RETAIN {
                        batch.out = BytesMut::new();
                    } else {
                        batch.out.clear();
                    }
                    // Written: the blobs' buffers go back to their owners.
                    batch.splices.clear();
                    (batch.at, batch.next, batch.into) = (0, 0, 0);
                    let seq = *seq;
                    self.written.send_modify(|w| w.upto = seq);
                }
                match self.take(batch) {
                    None => return Poll::Ready(Ok(())),
                    Some(last) => {
                        *seq = last;
                        *unflushed = true;
                        if !batch.splices.is_empty() && !stream.is_write_vectored() {
                            batch.flatten();
                        }
                        *capacity = batch.out.capacity();
                    }
                }
            }
            let n = if batch.splices.is_empty() {
                ready!(stream.as_mut().poll_write(cx, &batch.out[batch.at..]))?
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let count = batch.slices(&mut slices);
                ready!(stream.as_mut().poll_write_vectored(cx, &slices[..count]))?
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            batch.advance(n);
        }
    }

    /// Writes the frames queued quietly right here, if the writer task is
    /// not writing and the transport takes them without waiting; otherwise
    /// wakes the writer task to finish.
    pub(crate) async fn write_through(&self) {
        if !self.quiet.swap(false, Ordering::AcqRel) {
            return;
        }
        let done = std::future::poll_fn(|cx| {
            let done = match self.io.try_lock() {
                // Only when the writer task has no batch under way: it may
                // be waiting for the socket to take the rest, and a poll
                // from here would take that wake-up away from it.
                Ok(mut io) if io.batch.is_done() && !io.unflushed => {
                    matches!(self.poll_write_queued(&mut io, cx), Poll::Ready(Ok(())))
                }
                _ => false,
            };
            Poll::Ready(done)
        })
        .await;
        if !done {
            // Busy, blocked or failed: the writer task takes over (and
            // reports a failure by ending).
            self.wake.notify_one();
        }
    }

    fn address(&self) -> usize {
        self as *const Self as usize
    }

    /// Whether this thread is running the encoding of a frame for this
    /// queue, under its lock.
    fn reentered(&self) -> bool {
        ENCODING_INTO.get() == self.address()
    }

    /// The writer stopped: the queue takes no more frames, and producers
    /// and flushes waiting on it are told.
    fn stopped(&self) {
        self.state().closed = true;
        self.written.send_modify(|w| w.stopped = true);
        self.room.notify_waiters();
        self.drained.notify_waiters();
    }

    /// Closed, with nothing left to write.
    fn is_finished(&self) -> bool {
        let s = self.state();
        s.closed && s.buf.is_empty()
    }
}

/// The producers' handle on a connection's queue. Dropping it closes the
/// queue: the writer writes what was queued, then stops.
pub(crate) struct Outbox(Arc<WriteQueue>);

impl Outbox {
    /// A queue writing to `io`, of at most `max_frames` frames waiting to
    /// be written, none larger than `peer_limit` bytes. Spawn
    /// [`run_writer`] on [`Outbox::queue`] to write them.
    pub(crate) fn new(io: BoxWrite, max_frames: usize, peer_limit: usize) -> Self {
        Self::bounded(io, max_frames, usize::MAX, peer_limit)
    }

    /// [`Outbox::new`], where frames that cannot wait are also refused
    /// once `max_bytes` are held (see [`WriteQueue::try_push`]).
    pub(crate) fn bounded(
        io: BoxWrite,
        max_frames: usize,
        max_bytes: usize,
        peer_limit: usize,
    ) -> Self {
        // The length prefix is a `u32`, whatever the peer announced.
        let peer_limit = peer_limit.min(u32::MAX as usize);
        Outbox(Arc::new(WriteQueue {
            state: Mutex::new(State::new()),
            io: Mutex::new(Io {
                io: Some(io),
                batch: Batch::default(),
                seq: 0,
                capacity: 0,
                unflushed: false,
            }),
            wake: Notify::new(),
            room: Notify::new(),
            room_waiters: AtomicUsize::new(0),
            drained: Notify::new(),
            event_waiters: AtomicUsize::new(0),
            written: watch::channel(Written::default()).0,
            max_frames: max_frames.max(1),
            max_bytes,
            peer_limit,
            quiet: AtomicBool::new(false),
            deferred: Mutex::new((BytesMut::new(), 0)),
            has_deferred: AtomicBool::new(false),
            closing: AtomicBool::new(false),
        }))
    }

    /// The queue, for its writer task.
    pub(crate) fn queue(&self) -> Arc<WriteQueue> {
        Arc::clone(&self.0)
    }
}

impl Deref for Outbox {
    type Target = WriteQueue;

    fn deref(&self) -> &WriteQueue {
        &self.0
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Writes one frame at once, before a connection's writer task exists (the
/// handshake).
pub(crate) async fn write_now(io: &mut BoxWrite, frame: Frame) -> Result<(), StreamError> {
    let mut buf = BytesMut::new();
    frame
        .encode(&mut buf)
        .map_err(|e| StreamError::Io(io::Error::other(e)))?;
    io.write_all(&buf).await?;
    io.flush().await?;
    Ok(())
}

/// How long a writer with nothing to write lets producers wait for room
/// before it wakes them all ([`WriteQueue::wake_stranded`]). Room is handed
/// to one waiting producer at a time, which passes it on; a producer that
/// was handed it and is never polled again keeps it, and the others would
/// wait until some other frame is queued, or their timeout. Waking them
/// all whenever the queue emptied instead woke the whole crowd for every
/// batch (10 % fewer calls of 64 KiB per second on one CPU); a producer
/// that was handed the room and runs queues its frame well within this.
const STRANDED_AFTER: Duration = Duration::from_millis(10);

/// Writes the frames queued in `queue` until the queue is closed and
/// empty, a write fails or `stop` is cancelled; then drops the write half,
/// which the peer sees as the end of the stream.
///
/// With `drain_on_stop`, frames still queued when `stop` fires are written
/// (for at most that long) before returning, so that a dropped connection
/// does not lose messages it already accepted; and if the task is dropped
/// before it finished (its runtime shut down, say a renderer returned from
/// `main` right after a `send`), what is left is written as far as the
/// transport takes it without waiting. For that, the future must be made
/// before the task that runs it: a task's `async` block that calls
/// `run_writer` only makes the future when it is first polled.
pub(crate) fn run_writer(
    queue: Arc<WriteQueue>,
    stop: CancellationToken,
    drain_on_stop: Option<Duration>,
) -> impl Future<Output = io::Result<()>> + Send {
    // Made here, not in the `async` block, so that it is dropped with the
    // future even if the future was never polled.
    let mut leftovers = WriteLeftovers(drain_on_stop.map(|_| Arc::clone(&queue)));
    async move {
        let result = write_until_stopped(&queue, &stop, drain_on_stop).await;
        leftovers.disarm();
        result
    }
}

/// Writes, when dropped holding a queue, what that queue still holds, as
/// far as its transport takes it at once: the last act of a writer task
/// dropped before it finished.
struct WriteLeftovers(Option<Arc<WriteQueue>>);

impl WriteLeftovers {
    /// The writer finished: nothing is left to write on drop.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for WriteLeftovers {
    fn drop(&mut self) {
        let Some(queue) = self.0.take() else { return };
        // No task is left to wake, so a waker that does nothing is enough;
        // a transport that is not ready at once keeps the rest.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let _ = queue.poll_write_queued(&mut queue.io(), &mut cx);
        // Closes the transport (the peer reads the end of the stream) and
        // tells anyone still waiting on the queue that it stopped.
        drop(queue.io().io.take());
        queue.stopped();
    }
}

/// [`run_writer`]'s work, without the writing of leftovers on drop.
async fn write_until_stopped(
    queue: &WriteQueue,
    stop: &CancellationToken,
    drain_on_stop: Option<Duration>,
) -> io::Result<()> {
    let write = || std::future::poll_fn(|cx| queue.poll_write_queued(&mut queue.io(), cx));
    // Whether the producers waiting for room were woken since the writer
    // was last woken: once per idle spell is enough.
    let mut rescued = false;
    let result = async {
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => return Ok(()),
                result = write() => result?,
            }
            if queue.is_finished() {
                return Ok(());
            }
            let waiting = !rescued && queue.room_waiters.load(Ordering::Acquire) > 0;
            let stranded = async {
                if !waiting {
                    return std::future::pending().await;
                }
                tokio::time::sleep(STRANDED_AFTER).await;
            };
            tokio::select! {
                biased;
                () = stop.cancelled() => return Ok(()),
                () = queue.wake.notified() => rescued = false,
                () = stranded => {
                    queue.wake_stranded();
                    rescued = true;
                }
            }
        }
    }
    .await;
    if let (Ok(()), Some(limit)) = (&result, drain_on_stop) {
        // Finishes a write that `stop` interrupted, then the rest.
        let _ = tokio::time::timeout(limit, write()).await;
    }
    queue.state().closed = true;
    let stream = queue.io().io.take();
    if let Some(mut stream) = stream {
        let _ = tokio::time::timeout(Duration::from_millis(100), stream.shutdown()).await;
    }
    queue.stopped();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::reader::FrameReader;
    use bytes::Bytes;

    fn bytes_frame(
        data: &'static [u8],
    ) -> impl FnOnce(&mut FrameBuf<'_>) -> Result<(), CodecError> {
        move |buf: &mut FrameBuf<'_>| {
            buf.put_slice(data);
            Ok(())
        }
    }

    #[tokio::test]
    async fn frames_arrive_in_order_and_flush_waits_for_them() {
        let (a, b) = tokio::io::duplex(64);
        let outbox = Outbox::new(Box::pin(a), 4, 1024);
        let stop = CancellationToken::new();
        let writer = tokio::spawn(run_writer(outbox.queue(), stop.clone(), None));
        let mut reader = FrameReader::new(Box::pin(b), 1024);
        let read = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(frame) = reader.next().await {
                got.push(frame.unwrap());
            }
            got
        });
        for i in 0..100u8 {
            let data: &'static [u8] = Box::leak(vec![i; usize::from(i)].into_boxed_slice());
            outbox.push(bytes_frame(data), i % 3 == 0).await.unwrap();
        }
        assert!(outbox.flushed().await, "every frame written");
        drop(outbox);
        writer.await.unwrap().unwrap();
        let got = read.await.unwrap();
        assert_eq!(got.len(), 100);
        for (i, frame) in got.iter().enumerate() {
            assert_eq!(&frame[..], &vec![i as u8; i][..]);
        }
    }

    /// A writer task its runtime drops before it ran (a renderer
    /// returning from `main` right after its sends) still writes what was
    /// queued, as the transport takes it at once.
    #[test]
    fn a_writer_dropped_with_its_runtime_writes_what_was_queued() {
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        };
        let (a, b) = tokio::io::duplex(1 << 20);
        let outbox = Outbox::new(Box::pin(a), 1000, 1024);
        let first = runtime();
        first.spawn(run_writer(
            outbox.queue(),
            CancellationToken::new(),
            Some(Duration::from_secs(1)),
        ));
        first.block_on(async {
            for _ in 0..100 {
                outbox.push(bytes_frame(b"queued"), true).await.unwrap();
            }
        });
        drop(outbox);
        drop(first);
        let got = runtime().block_on(async {
            let mut reader = FrameReader::new(Box::pin(b), 1024);
            let mut got = 0;
            while let Some(frame) = reader.next().await {
                assert_eq!(&frame.unwrap()[..], b"queued");
                got += 1;
            }
            got
        });
        assert_eq!(got, 100);
    }

    /// Frames the writer took but cannot write (the peer does not read)
    /// still count: `try_push` refuses once the frames held, or their
    /// bytes, reach the limits, however the writer has batched them.
    #[tokio::test]
    async fn frames_stuck_in_a_batch_count_towards_try_push_limits() {
        for (max_frames, max_bytes) in [(8, usize::MAX), (1000, 4096)] {
            // 64 bytes of pipe, never read: the first batch stays stuck.
            let (a, _unread) = tokio::io::duplex(64);
            let outbox = Outbox::bounded(Box::pin(a), max_frames, max_bytes, 1 << 20);
            let stop = CancellationToken::new();
            let writer = tokio::spawn(run_writer(outbox.queue(), stop.clone(), None));
            let data: &'static [u8] = &[7; 100];
            let mut accepted = 0;
            for _ in 0..200 {
                if outbox.try_push(bytes_frame(data)).is_ok() {
                    accepted += 1;
                }
                // Let the writer take what is queued into its batch.
                tokio::task::yield_now().await;
            }
            let held_bytes = accepted * (data.len() + PREFIX);
            assert!(
                accepted <= max_frames && held_bytes <= max_bytes.saturating_add(data.len() + PREFIX),
                "accepted {accepted} frames ({held_bytes} bytes) with limits {max_frames} frames, {max_bytes} bytes"
            );
            assert!(accepted > 0);
            stop.cancel();
            writer.await.unwrap().unwrap();
        }
    }

    /// Producers that wait (replies) count only the queue, not the batch
    /// the writer holds: for a peer that stops reading, up to twice
    /// `max_frames` are held (a full batch stuck in the writer and a full
    /// queue), and then they wait, as `Limits` documents.
    #[tokio::test]
    async fn producers_that_wait_are_held_to_twice_max_frames() {
        let max_frames = 8;
        // 64 bytes of pipe, never read: the first batch stays stuck.
        let (a, _unread) = tokio::io::duplex(64);
        let outbox = Outbox::bounded(Box::pin(a), max_frames, usize::MAX, 1 << 20);
        let data: &'static [u8] = &[7; 100];
        // Whether a push is taken at once (`false`: it waits for room).
        let pushed_at_once = || async {
            let mut push = std::pin::pin!(outbox.push(bytes_frame(data), true));
            std::future::poll_fn(|cx| Poll::Ready(push.as_mut().poll(cx).is_ready())).await
        };
        // A full queue, before the writer runs; then the writer takes it
        // all into one batch that it cannot write.
        for _ in 0..max_frames {
            assert!(pushed_at_once().await);
        }
        assert!(!pushed_at_once().await, "the queue is full");
        let stop = CancellationToken::new();
        let writer = tokio::spawn(run_writer(outbox.queue(), stop.clone(), None));
        for _ in 0..1000 {
            if outbox.state().taken_frames == max_frames {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(
            outbox.state().taken_frames,
            max_frames,
            "the writer took the queue"
        );
        // The queue fills again beside the stuck batch, and no further.
        for _ in 0..max_frames {
            assert!(pushed_at_once().await);
        }
        assert!(!pushed_at_once().await, "the queue is full again");
        let held = {
            let s = outbox.state();
            s.frames + s.taken_frames
        };
        assert_eq!(held, 2 * max_frames);
        stop.cancel();
        writer.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_full_queue_refuses_try_push_and_oversize_frames_are_refused() {
        let outbox = Outbox::new(Box::pin(tokio::io::sink()), 2, 8);
        outbox.try_push(bytes_frame(b"a")).unwrap();
        outbox.try_push(bytes_frame(b"b")).unwrap();
        assert!(matches!(
            outbox.try_push(bytes_frame(b"c")),
            Err(PushError::Full)
        ));
        outbox.push_always(bytes_frame(b"d")).unwrap();
        assert!(matches!(
            outbox.push_always(bytes_frame(b"123456789")),
            Err(PushError::TooLarge { size: 9, limit: 8 })
        ));
        let failing = |_: &mut FrameBuf<'_>| Err(CodecError::Encode("no".into()));
        assert!(matches!(
            outbox.push_always(failing),
            Err(PushError::Encode(_))
        ));
        // Refused frames left nothing behind: three frames of one byte.
        assert_eq!(outbox.state().buf.len(), 3 * (PREFIX + 1));
        outbox.close();
        assert!(matches!(
            outbox.push(bytes_frame(b"e"), true).await,
            Err(PushError::Closed)
        ));
    }

    #[tokio::test]
    async fn write_through_writes_without_the_writer_task_and_hands_over_when_blocked() {
        let (a, b) = tokio::io::duplex(16);
        let outbox = Outbox::new(Box::pin(a), 64, 1024);
        let mut reader = FrameReader::new(Box::pin(b), 1024);
        // No writer task: a quiet frame leaves through `write_through`.
        outbox.push(bytes_frame(b"hi"), false).await.unwrap();
        outbox.write_through().await;
        assert_eq!(&reader.next().await.unwrap().unwrap()[..], b"hi");
        // More than the pipe holds: what is left waits for the writer task.
        outbox.push(bytes_frame(&[1; 40]), false).await.unwrap();
        outbox.write_through().await;
        let stop = CancellationToken::new();
        let writer = tokio::spawn(run_writer(outbox.queue(), stop.clone(), None));
        assert_eq!(&reader.next().await.unwrap().unwrap()[..], &[1; 40][..]);
        assert!(outbox.flushed().await);
        drop(outbox);
        writer.await.unwrap().unwrap();
        assert!(reader.next().await.is_none(), "the writer ended the stream");
    }

    #[tokio::test]
    async fn write_through_never_takes_the_writers_wake_up() {
        // The writer task is blocked on a full pipe halfway through a batch;
        // a write-through meanwhile must leave the socket's wake-up to it.
        let (a, b) = tokio::io::duplex(16);
        let outbox = Outbox::new(Box::pin(a), 64, 1024);
        let stop = CancellationToken::new();
        let writer = tokio::spawn(run_writer(outbox.queue(), stop.clone(), None));
        outbox.push(bytes_frame(&[2; 40]), true).await.unwrap();
        while outbox.io().batch.out.is_empty() {
            tokio::task::yield_now().await;
        }
        outbox.push(bytes_frame(b"next"), false).await.unwrap();
        outbox.write_through().await;
        let mut reader = FrameReader::new(Box::pin(b), 1024);
        let read = async {
            let first = reader.next().await.unwrap().unwrap();
            let second = reader.next().await.unwrap().unwrap();
            (first, second)
        };
        let (first, second) = tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("every frame arrives");
        assert_eq!((&first[..], &second[..]), (&[2; 40][..], &b"next"[..]));
        stop.cancel();
        writer.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn producers_that_can_wait_stop_at_the_byte_threshold() {
        let (a, b) = tokio::io::duplex(1024);
        let outbox = Outbox::new(Box::pin(a), 1000, 1 << 20);
        let big: &'static [u8] = Box::leak(vec![3u8; 100 * 1024].into_boxed_slice());
        // Nothing writes yet: three frames pass (the third crosses 256 KiB)…
        for _ in 0..3 {
            outbox.push(bytes_frame(big), false).await.unwrap();
        }
        // …and the fourth waits instead of growing the buffer.
        let blocked = tokio::time::timeout(
            Duration::from_millis(50),
            outbox.push(bytes_frame(big), false),
        )
        .await;
        assert!(blocked.is_err(), "the fourth frame waited for room");
        // Events never wait, and are refused only by the frame count.
        outbox.try_push(bytes_frame(b"event")).unwrap();
        let stop = CancellationToken::new();
        let writer = tokio::spawn(run_writer(outbox.queue(), stop.clone(), None));
        let mut reader = FrameReader::new(Box::pin(b), 1 << 20);
        let read = tokio::spawn(async move {
            let mut sizes = Vec::new();
            while let Some(frame) = reader.next().await {
                sizes.push(frame.unwrap().len());
            }
            sizes
        });
        outbox.push(bytes_frame(big), true).await.unwrap();
        assert!(outbox.flushed().await);
        drop(outbox);
        writer.await.unwrap().unwrap();
        let n = 100 * 1024;
        assert_eq!(read.await.unwrap(), vec![n, n, n, 5, n]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn producers_waiting_for_room_all_get_in_even_when_some_give_up() {
        // Frames that fill the queue on their own, and small frames of
        // which four fit: room is handed to one waiter at a time and passed
        // on, and waiters that give up (possibly just after being let in)
        // must not leave the others waiting.
        let large: &'static [u8] = Box::leak(vec![4u8; WAIT_BYTES].into_boxed_slice());
        for (frame, max_frames) in [(large, 1000), (&b"small"[..], 4)] {
            let (a, b) = tokio::io::duplex(64 * 1024);
            let outbox = Arc::new(Outbox::new(Box::pin(a), max_frames, 1 << 20));
            // Nothing writes yet: fill the queue.
            let mut pushed = 0;
            while outbox.state().has_room(max_frames) {
                outbox.try_push(bytes_frame(frame)).unwrap();
                pushed += 1;
            }
            let producers: Vec<_> = (0..32u64)
                .map(|i| {
                    let outbox = Arc::clone(&outbox);
                    tokio::spawn(async move {
                        let push = outbox.push(bytes_frame(frame), i % 2 == 0);
                        if i % 4 == 3 {
                            let patience = Duration::from_millis(i);
                            tokio::time::timeout(patience, push).await.is_ok()
                        } else {
                            push.await.unwrap();
                            true
                        }
                    })
                })
                .collect();
            // Every producer is waiting (or gave up) before anything is
            // written.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let writer = tokio::spawn(run_writer(outbox.queue(), CancellationToken::new(), None));
            let mut reader = FrameReader::new(Box::pin(b), 1 << 20);
            let read = tokio::spawn(async move {
                let mut n = 0;
                while let Some(body) = reader.next().await {
                    assert_eq!(&body.unwrap()[..], frame);
                    n += 1;
                }
                n
            });
            for producer in producers {
                let got_in = tokio::time::timeout(Duration::from_secs(10), producer)
                    .await
                    .expect("no producer is left waiting for room")
                    .unwrap();
                pushed += usize::from(got_in);
            }
            assert!(pushed >= 25, "{pushed}: at least the patient ones");
            drop(outbox);
            writer.await.unwrap().unwrap();
            assert_eq!(read.await.unwrap(), pushed, "every frame let in arrives");
        }
    }

    #[tokio::test]
    async fn a_producer_handed_room_but_never_polled_again_holds_up_no_one() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let outbox = Arc::new(Outbox::new(Box::pin(a), 4, 1 << 20));
        // Nothing writes yet: fill the queue.
        while outbox.state().has_room(4) {
            outbox.try_push(bytes_frame(b"full")).unwrap();
        }
        // The first in line, polled once and then kept, as a future left
        // behind by `select!` on `&mut fut` is: room is handed to it.
        let mut kept = Box::pin(outbox.push(bytes_frame(b"kept"), true));
        let pending = std::future::poll_fn(|cx| Poll::Ready(kept.as_mut().poll(cx).is_pending()));
        assert!(pending.await, "the queue is full");
        let next = tokio::spawn({
            let outbox = Arc::clone(&outbox);
            async move { outbox.push(bytes_frame(b"next"), true).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let writer = tokio::spawn(run_writer(outbox.queue(), CancellationToken::new(), None));
        let mut reader = FrameReader::new(Box::pin(b), 1 << 20);
        for _ in 0..4 {
            assert_eq!(&reader.next().await.unwrap().unwrap()[..], b"full");
        }
        tokio::time::timeout(Duration::from_secs(5), next)
            .await
            .expect("the next producer got in once the queue was empty")
            .unwrap()
            .unwrap();
        assert_eq!(&reader.next().await.unwrap().unwrap()[..], b"next");
        drop(kept);
        drop(outbox);
        writer.await.unwrap().unwrap();
    }

    #[test]
    fn a_panicking_encoder_leaves_no_partial_frame() {
        let outbox = Outbox::new(Box::pin(tokio::io::sink()), 8, 1024);
        outbox.push_always(bytes_frame(b"one")).unwrap();
        let panicking = |buf: &mut FrameBuf<'_>| {
            buf.put_slice(b"partial");
            panic!("no encoding today")
        };
        match outbox.push_always(panicking) {
            Err(PushError::Encode(e)) => {
                assert!(e.to_string().contains("no encoding today"), "{e}")
            }
            other => panic!("expected an encoding error, got {other:?}"),
        }
        outbox.push_always(bytes_frame(b"two")).unwrap();
        let buf = outbox.state().buf.clone();
        assert_eq!(&buf[..], b"\0\0\0\x03one\0\0\0\x03two");
    }

    fn blob_frame(blob: crate::Blob) -> impl FnOnce(&mut FrameBuf<'_>) -> Result<(), CodecError> {
        move |buf: &mut FrameBuf<'_>| {
            buf.put_slice(b"<");
            buf.encode(&blob)?;
            buf.put_slice(b">");
            Ok(())
        }
    }

    #[tokio::test]
    async fn large_blobs_are_spliced_and_arrive_whole_through_partial_writes() {
        // A pipe much smaller than a blob, and without vectored writes: the
        // batch is flattened, then written in pieces.
        let (a, b) = tokio::io::duplex(7_000);
        spliced_blobs_arrive_whole(Box::pin(a), Box::pin(b)).await;
    }

    #[tokio::test]
    async fn large_blobs_are_spliced_and_arrive_whole_through_a_socket() {
        // A socket takes vectored writes, and cuts them wherever its buffer
        // fills: inside a blob or inside the bytes around one.
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        assert!(tokio::io::AsyncWrite::is_write_vectored(&a));
        spliced_blobs_arrive_whole(Box::pin(a), Box::pin(b)).await;
    }

    async fn spliced_blobs_arrive_whole(a: BoxWrite, b: super::super::BoxRead) {
        use crate::{codec::splice::SPLICE_MIN, Blob};
        let outbox = Outbox::new(a, 64, 1 << 20);
        let blobs: Vec<Blob> = (0..6u8)
            .map(|i| Blob::from(vec![i; SPLICE_MIN + 1000 * usize::from(i)]))
            .collect();
        for blob in &blobs[..3] {
            outbox.push(blob_frame(blob.clone()), false).await.unwrap();
            outbox.push(bytes_frame(b"small"), false).await.unwrap();
        }
        {
            let s = outbox.state();
            assert_eq!(s.splices.len(), 3, "the blobs were not copied");
            assert_eq!(s.spliced, blobs[..3].iter().map(|b| b.len()).sum::<usize>());
            assert!(s.buf.len() < 100, "only the bytes around them were");
        }
        let stop = CancellationToken::new();
        let writer = tokio::spawn(run_writer(outbox.queue(), stop.clone(), None));
        let mut reader = FrameReader::new(b, 1 << 20);
        let more = async {
            for blob in &blobs[3..] {
                outbox.push(blob_frame(blob.clone()), true).await.unwrap();
                outbox.push(bytes_frame(b"small"), true).await.unwrap();
            }
        };
        let read = async {
            let mut frames = Vec::new();
            for _ in 0..2 * blobs.len() {
                frames.push(reader.next().await.unwrap().unwrap());
            }
            frames
        };
        let ((), frames) =
            tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(more, read) })
                .await
                .expect("every frame arrives");
        let mut frames = frames.into_iter();
        for blob in &blobs {
            let frame = frames.next().unwrap();
            assert_eq!(frame[0], b'<');
            assert_eq!(frame[frame.len() - 1], b'>');
            let back: Blob = crate::codec::decode(&frame[1..frame.len() - 1]).unwrap();
            assert_eq!(&back, blob);
            assert_eq!(&frames.next().unwrap()[..], b"small");
        }
        assert!(outbox.flushed().await);
        assert!(
            outbox.io().batch.splices.is_empty(),
            "written blobs are released"
        );
        drop(outbox);
        writer.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn spliced_bytes_count_towards_the_frame_limit_and_the_byte_threshold() {
        use crate::{codec::splice::SPLICE_MIN, Blob};
        let outbox = Outbox::new(Box::pin(tokio::io::sink()), 100, SPLICE_MIN + 10);
        let too_large = Blob::from(vec![1u8; SPLICE_MIN + 10]);
        match outbox.push(blob_frame(too_large), true).await {
            Err(PushError::TooLarge { size, .. }) => assert!(size > SPLICE_MIN + 10),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        {
            let s = outbox.state();
            assert!(s.splices.is_empty() && s.buf.is_empty() && s.spliced == 0);
        }
        // Four blobs reach `WAIT_BYTES`: the fifth waits for room.
        for _ in 0..WAIT_BYTES / SPLICE_MIN {
            let blob = Blob::from(vec![2u8; SPLICE_MIN]);
            outbox.push(blob_frame(blob), false).await.unwrap();
        }
        let blob = Blob::from(vec![2u8; SPLICE_MIN]);
        let blocked = tokio::time::timeout(
            Duration::from_millis(50),
            outbox.push(blob_frame(blob), false),
        )
        .await;
        assert!(blocked.is_err(), "spliced bytes fill the queue too");
    }

    proptest::proptest! {
        /// However a vectored write is cut short, the batch goes out whole
        /// and in order: the bytes around the blobs, and the blobs.
        #[test]
        fn partial_vectored_writes_resume_where_they_stopped(
            parts in proptest::collection::vec((0usize..40, 0usize..5), 0..40),
            cuts in proptest::collection::vec(1usize..300, 1..50),
        ) {
            let mut batch = Batch::default();
            let mut expected = Vec::new();
            for (i, (plain, blob)) in parts.iter().enumerate() {
                let plain: Vec<u8> = (0..*plain).map(|k| (i * 7 + k) as u8).collect();
                batch.out.extend_from_slice(&plain);
                expected.extend_from_slice(&plain);
                // Blobs of 0 to 4 bytes stand for large ones; 0 means none.
                if *blob > 0 {
                    let bytes = Bytes::from(vec![200 + i as u8; *blob]);
                    expected.extend_from_slice(&bytes);
                    batch.splices.push(Splice { at: batch.out.len(), bytes });
                }
            }
            let mut wire = Vec::new();
            let mut cut = cuts.iter().cycle();
            while !batch.is_done() {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let count = batch.slices(&mut slices);
                // A write that takes at most `n` bytes of the slices.
                let mut n = *cut.next().unwrap();
                let mut taken = 0;
                for slice in &slices[..count] {
                    let k = n.min(slice.len());
                    wire.extend_from_slice(&slice[..k]);
                    (n, taken) = (n - k, taken + k);
                }
                proptest::prop_assert!(taken > 0, "a batch not done has bytes to write");
                batch.advance(taken);
            }
            proptest::prop_assert_eq!(wire, expected);
        }
    }

    /// A frame set aside (queued from inside the encoding of a frame for
    /// the same queue: an event a reply's `Serialize` emits to the renderer
    /// it answers) is written after that frame, also when the queue closes
    /// before the writer took them (it was dropped then).
    #[tokio::test]
    async fn a_frame_set_aside_before_close_is_still_written() {
        let (a, b) = tokio::io::duplex(1024);
        let outbox = Outbox::new(Box::pin(a), 8, 1024);
        let queue = outbox.queue();
        outbox
            .push_always(|buf| {
                queue
                    .try_push(bytes_frame(b"event"))
                    .expect("set aside, not refused");
                buf.put_slice(b"reply");
                Ok(())
            })
            .unwrap();
        // Closed (the renderer disconnected by main) before the writer
        // took the queue: what was accepted is still to be written.
        drop(outbox);
        let writer = tokio::spawn(run_writer(queue, CancellationToken::new(), None));
        let mut reader = FrameReader::new(Box::pin(b), 1024);
        let mut got = Vec::new();
        while let Ok(Some(frame)) =
            tokio::time::timeout(Duration::from_secs(5), reader.next()).await
        {
            got.push(frame.unwrap().to_vec());
        }
        writer.await.unwrap().unwrap();
        assert_eq!(got, [b"reply".to_vec(), b"event".to_vec()]);
    }

    /// Events that cannot wait are refused once the bytes held reach
    /// `max_bytes` (main's `Limits::max_queued_bytes`); set aside from
    /// inside an encoding too (only their count was checked).
    #[test]
    fn events_set_aside_respect_the_byte_limit() {
        let outbox = Outbox::bounded(Box::pin(tokio::io::sink()), 1000, 64, 1 << 20);
        let queue = outbox.queue();
        let event: &'static [u8] = &[7; 40];
        // Outside any encoding: two 40-byte events pass, the third is refused.
        let plain = (0..100)
            .filter(|_| queue.try_push(bytes_frame(event)).is_ok())
            .count();
        assert_eq!(plain, 2);
        let outbox = Outbox::bounded(Box::pin(tokio::io::sink()), 1000, 64, 1 << 20);
        let queue = outbox.queue();
        let mut inside = 0;
        outbox
            .push_always(|buf| {
                inside = (0..100)
                    .filter(|_| queue.try_push(bytes_frame(event)).is_ok())
                    .count();
                buf.put_slice(b"reply");
                Ok(())
            })
            .unwrap();
        assert!(
            inside <= 2,
            "{inside} events of 40 bytes accepted against a 64-byte limit"
        );
    }

    #[tokio::test]
    async fn flush_reports_a_writer_that_stopped() {
        let (a, b) = tokio::io::duplex(8);
        let outbox = Outbox::new(Box::pin(a), 4, 1024);
        let stop = CancellationToken::new();
        let writer = tokio::spawn(run_writer(outbox.queue(), stop.clone(), None));
        outbox.push(bytes_frame(&[0; 64]), true).await.unwrap();
        let flushed = outbox.flushed();
        // Nobody reads: the write cannot finish before the writer stops.
        stop.cancel();
        assert!(!flushed.await);
        writer.await.unwrap().unwrap();
        drop(b);
    }
}

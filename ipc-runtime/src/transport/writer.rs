//! A connection's outgoing side: frames are encoded straight into one
//! shared buffer, and a writer task writes whatever has accumulated with
//! one system call.
//!
//! Producers (calls, replies, events) append whole frames to the
//! [`WriteQueue`]'s buffer under a short lock, encoding their payload in
//! place: no intermediate buffer, no copy, no allocation once the buffer
//! has grown. The writer task swaps that buffer for an empty one and writes
//! it, so a burst of frames leaves in one write, and the two buffers keep
//! their capacity (up to [`RETAIN`]) from one batch to the next.

use std::{
    future::Future,
    io,
    ops::Deref,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard,
    },
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
    codec::CodecError,
    frame::{Frame, StreamError, PREFIX},
};

/// Write buffers larger than this are given back to the allocator after
/// use instead of being kept for the next batch.
const RETAIN: usize = 2 * 1024 * 1024;
/// Producers that can wait ([`WriteQueue::push`]) wait while this many
/// bytes are queued: a peer that reads slowly slows them down instead of
/// growing the buffer (one frame may go past it).
const WAIT_BYTES: usize = 256 * 1024;

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
}

/// Frames waiting for the writer task.
pub(crate) struct WriteQueue {
    state: Mutex<State>,
    /// Wakes the writer task.
    wake: Notify,
    /// Wakes producers waiting for room.
    room: Notify,
    /// How far the writer has got, for [`WriteQueue::flushed`].
    written: watch::Sender<Written>,
    /// Frames that may wait in the buffer before producers wait.
    max_frames: usize,
    /// The largest frame body the peer accepts.
    peer_limit: usize,
    /// A frame was queued without waking the writer.
    quiet: AtomicBool,
}

struct State {
    buf: BytesMut,
    /// Frames in `buf`.
    frames: usize,
    /// Frames ever queued: the sequence number of the last one.
    queued: u64,
    closed: bool,
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
        // A panic while encoding (a user's `Serialize`) cannot leave a
        // partial frame: `put` truncates on every error path, and a panic
        // unwinds through the closure before the length is patched.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one frame, length prefix first, whose body `body` writes.
    fn put(
        &self,
        s: &mut State,
        body: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
    ) -> Result<(), PushError> {
        let start = s.buf.len();
        s.buf.put_u32(0);
        let fail = |s: &mut State, e| {
            s.buf.truncate(start);
            Err(e)
        };
        if let Err(e) = body(&mut s.buf) {
            return fail(s, PushError::Encode(e));
        }
        let size = s.buf.len() - start - PREFIX;
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
        s.frames += 1;
        s.queued += 1;
        Ok(())
    }

    /// Queues a frame if there is room; never waits.
    pub(crate) fn try_push(
        &self,
        body: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
    ) -> Result<(), PushError> {
        {
            let mut s = self.state();
            if s.closed {
                return Err(PushError::Closed);
            }
            if s.frames >= self.max_frames {
                return Err(PushError::Full);
            }
            self.put(&mut s, body)?;
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Queues a small control frame even if the queue is full (a cancel or
    /// an unsubscribe from a destructor, which cannot wait).
    pub(crate) fn push_always(
        &self,
        body: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
    ) -> Result<(), PushError> {
        {
            let mut s = self.state();
            if s.closed {
                return Err(PushError::Closed);
            }
            self.put(&mut s, body)?;
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Queues a frame, waiting while the queue is full: it holds its
    /// maximum number of frames, or [`WAIT_BYTES`] bytes. With `wake`
    /// false the writer is not woken: the caller queues more and calls
    /// [`WriteQueue::wake`] once, so that a burst leaves in one write.
    pub(crate) async fn push(
        &self,
        body: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
        wake: bool,
    ) -> Result<(), PushError> {
        let mut waiting = false;
        loop {
            // Registered (which takes the `Notify`'s lock) only once the
            // queue was found full.
            let room = self.room.notified();
            tokio::pin!(room);
            if waiting {
                room.as_mut().enable();
            }
            {
                let mut s = self.state();
                if s.closed {
                    return Err(PushError::Closed);
                }
                if s.frames < self.max_frames && s.buf.len() < WAIT_BYTES {
                    self.put(&mut s, body)?;
                    drop(s);
                    if wake {
                        self.wake.notify_one();
                    } else {
                        self.quiet.store(true, Ordering::Release);
                    }
                    return Ok(());
                }
            }
            // Full: what is queued must be written before there is room,
            // including frames queued quietly.
            self.wake.notify_one();
            if waiting {
                room.await;
            }
            waiting = true;
        }
    }

    /// Wakes the writer if frames were queued without waking it.
    pub(crate) fn wake(&self) {
        if self.quiet.swap(false, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    /// No frame may be queued any more; the writer writes what is queued
    /// and stops.
    pub(crate) fn close(&self) {
        self.state().closed = true;
        self.wake.notify_one();
        self.room.notify_waiters();
    }

    /// Resolves to `true` once every frame queued before this call has
    /// been written, or to `false` if the writer stopped first.
    pub(crate) fn flushed(&self) -> impl Future<Output = bool> + Send + 'static {
        let seq = self.state().queued;
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

    /// Moves the queued frames into `out` (which must be empty) and returns
    /// the sequence number of the last, or `None` if nothing is queued.
    fn take(&self, out: &mut BytesMut) -> Option<u64> {
        let seq = {
            let mut s = self.state();
            if s.buf.is_empty() {
                return None;
            }
            std::mem::swap(&mut s.buf, out);
            s.frames = 0;
            s.queued
        };
        self.room.notify_waiters();
        Some(seq)
    }

    fn is_closed(&self) -> bool {
        self.state().closed
    }
}

/// The producers' handle on a connection's queue. Dropping it closes the
/// queue: the writer writes what was queued, then stops.
pub(crate) struct Outbox(Arc<WriteQueue>);

impl Outbox {
    /// A queue of at most `max_frames` frames waiting to be written, none
    /// larger than `peer_limit` bytes.
    pub(crate) fn new(max_frames: usize, peer_limit: usize) -> Self {
        Outbox(Arc::new(WriteQueue {
            state: Mutex::new(State {
                buf: BytesMut::new(),
                frames: 0,
                queued: 0,
                closed: false,
            }),
            wake: Notify::new(),
            room: Notify::new(),
            written: watch::channel(Written::default()).0,
            max_frames: max_frames.max(1),
            peer_limit,
            quiet: AtomicBool::new(false),
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

/// Writes the frames queued in `queue` to `io` until the queue is closed
/// and empty, a write fails or `stop` is cancelled.
///
/// With `drain_on_stop`, frames still queued when `stop` fires are written
/// (for at most that long) before returning, so that a dropped connection
/// does not lose messages it already accepted.
pub(crate) async fn run_writer(
    queue: Arc<WriteQueue>,
    mut io: BoxWrite,
    stop: CancellationToken,
    drain_on_stop: Option<Duration>,
) -> io::Result<()> {
    let mut out = BytesMut::new();
    let result = write_loop(&queue, &mut io, &mut out, &stop).await;
    if let (Ok(()), Some(limit)) = (&result, drain_on_stop) {
        // `out` holds what a cancelled write left: finish it first.
        let drain = async {
            loop {
                write_out(&mut io, &mut out).await?;
                if queue.take(&mut out).is_none() {
                    return Ok::<_, io::Error>(());
                }
            }
        };
        let _ = tokio::time::timeout(limit, drain).await;
    }
    queue.state().closed = true;
    queue.written.send_modify(|w| w.stopped = true);
    queue.room.notify_waiters();
    result
}

async fn write_loop(
    queue: &WriteQueue,
    io: &mut BoxWrite,
    out: &mut BytesMut,
    stop: &CancellationToken,
) -> io::Result<()> {
    loop {
        let seq = loop {
            if let Some(seq) = queue.take(out) {
                break seq;
            }
            if queue.is_closed() {
                return Ok(());
            }
            tokio::select! {
                biased;
                () = stop.cancelled() => return Ok(()),
                () = queue.wake.notified() => {}
            }
        };
        tokio::select! {
            biased;
            () = stop.cancelled() => return Ok(()),
            result = write_out(io, out) => result?,
        }
        queue.written.send_modify(|w| w.upto = seq);
    }
}

/// Writes `out` and empties it, keeping its capacity unless it grew past
/// [`RETAIN`]. Cancel-safe: `out` is advanced past what was written.
async fn write_out(io: &mut BoxWrite, out: &mut BytesMut) -> io::Result<()> {
    let capacity = out.capacity();
    io.write_all_buf(out).await?;
    io.flush().await?;
    if capacity > RETAIN {
        *out = BytesMut::new();
    } else {
        out.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::reader::FrameReader;

    fn bytes_frame(data: &'static [u8]) -> impl FnOnce(&mut BytesMut) -> Result<(), CodecError> {
        move |buf: &mut BytesMut| {
            buf.put_slice(data);
            Ok(())
        }
    }

    #[tokio::test]
    async fn frames_arrive_in_order_and_flush_waits_for_them() {
        let (a, b) = tokio::io::duplex(64);
        let outbox = Outbox::new(4, 1024);
        let stop = CancellationToken::new();
        let writer = tokio::spawn(run_writer(outbox.queue(), Box::pin(a), stop.clone(), None));
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

    #[tokio::test]
    async fn a_full_queue_refuses_try_push_and_oversize_frames_are_refused() {
        let outbox = Outbox::new(2, 8);
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
        let failing = |_: &mut BytesMut| Err(CodecError::Encode("no".into()));
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
    async fn flush_reports_a_writer_that_stopped() {
        let (a, b) = tokio::io::duplex(8);
        let outbox = Outbox::new(4, 1024);
        let stop = CancellationToken::new();
        let writer = tokio::spawn(run_writer(outbox.queue(), Box::pin(a), stop.clone(), None));
        outbox.push(bytes_frame(&[0; 64]), true).await.unwrap();
        let flushed = outbox.flushed();
        // Nobody reads: the write cannot finish before the writer stops.
        stop.cancel();
        assert!(!flushed.await);
        writer.await.unwrap().unwrap();
        drop(b);
    }
}

//! A connection's incoming side: cuts the byte stream into frames.
//!
//! A frame is a big-endian `u32` length and that many bytes of body. The
//! length is checked against the limit before any space is reserved for the
//! body. Small frames are read into one buffer and split off it (no copy);
//! a large frame (at least [`LARGE_FRAME`] bytes) is read straight into a
//! buffer of its own size, taken from a small per-connection pool and given
//! back when the last handle to the frame is dropped. Reusing those buffers
//! matters: a fresh megabyte is zero pages that the kernel must fault in on
//! every call, which costs more than reading it.

use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::AsyncReadExt;

use super::BoxRead;
use crate::frame::{announced, StreamError, PREFIX};

/// Frames from this size up are read into a pooled buffer of their own.
pub(crate) const LARGE_FRAME: usize = 64 * 1024;
/// Read capacity reserved when the buffer has less than [`MIN_SPARE`]
/// left: as large as a large frame, so that a burst of small frames is read
/// in a few calls (a smaller chunk made a burst of 1 KiB frames cost eight
/// times as many reads as a 64 KiB `BufReader`).
const READ_CHUNK: usize = 64 * 1024;
/// Spare capacity under which the buffer is topped up before a read.
const MIN_SPARE: usize = 4 * 1024;
/// Large-frame buffers a connection keeps for reuse, at most…
///
/// Three, because an echo can keep three large frames alive at once on
/// main (the request being read, the one being answered, and the reply
/// still being written from an earlier request's buffer). With two, 64
/// calls of 1 MiB in flight read about one frame in fifty into a fresh
/// allocation, on both sides, and every page of it was faulted in.
const POOLED_BUFFERS: usize = 3;
/// …each of at most this capacity (larger ones go back to the allocator).
const POOLED_MAX: usize = 2 * 1024 * 1024;

/// Reads frames of at most `limit` bytes from a byte stream.
pub(crate) struct FrameReader {
    io: BoxRead,
    buf: BytesMut,
    limit: usize,
    /// The large frame being read, if any: its buffer and its size.
    large: Option<(Vec<u8>, usize)>,
    pool: Pool,
}

impl FrameReader {
    /// A reader refusing frames larger than `limit` bytes.
    pub(crate) fn new(io: BoxRead, limit: usize) -> Self {
        FrameReader {
            io,
            buf: BytesMut::new(),
            limit,
            large: None,
            pool: Pool::default(),
        }
    }

    /// Refuses frames larger than `limit` bytes from now on.
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Whether part of a frame has arrived and the rest has not.
    pub(crate) fn has_partial(&self) -> bool {
        !self.buf.is_empty() || self.large.is_some()
    }

    /// The next frame body if it has fully arrived, without reading.
    pub(crate) fn buffered(&mut self) -> Result<Option<Bytes>, StreamError> {
        if let Some((body, size)) = &self.large {
            if body.len() < *size {
                return Ok(None);
            }
            let (body, _) = self.large.take().unwrap_or_default();
            return Ok(Some(self.pool.wrap(body)));
        }
        let Some(size) = announced(&self.buf) else {
            return Ok(None);
        };
        if size > self.limit {
            return Err(StreamError::TooLarge {
                size: size as u64,
                limit: self.limit,
            });
        }
        let total = PREFIX + size;
        if self.buf.len() >= total {
            // Advancing the frozen body is cheaper than the `BytesMut`.
            let mut body = self.buf.split_to(total).freeze();
            body.advance(PREFIX);
            return Ok(Some(body));
        }
        if size >= LARGE_FRAME {
            // Everything buffered belongs to this frame: move it to the
            // frame's own buffer and read the rest straight into it.
            self.buf.advance(PREFIX);
            let mut body = self.pool.take(size);
            body.extend_from_slice(&self.buf);
            self.buf.clear();
            self.large = Some((body, size));
        } else {
            // Bounded by the limit checked above.
            self.buf.reserve(total - self.buf.len());
        }
        Ok(None)
    }

    /// The next frame body; `None` at a clean end of stream.
    ///
    /// Cancel-safe: bytes read before a cancellation stay buffered.
    pub(crate) async fn next(&mut self) -> Option<Result<Bytes, StreamError>> {
        loop {
            match self.buffered() {
                Ok(Some(body)) => return Some(Ok(body)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            match self.fill().await {
                Ok(true) => {}
                Ok(false) => return self.end().map(Err),
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// Reads once from the stream; `false` at its end. Call
    /// [`FrameReader::buffered`] first: this reads into the frame that
    /// `buffered` last looked at.
    ///
    /// Cancel-safe.
    pub(crate) async fn fill(&mut self) -> Result<bool, StreamError> {
        let read = match &mut self.large {
            Some((body, size)) => {
                let need = *size - body.len();
                self.io.read_buf(&mut body.limit(need)).await
            }
            None => {
                // Topped up to a whole chunk, partial frame included, so
                // that the buffer does not grow past it. Frames already
                // handed out share the buffer: when they are gone, this
                // reuses it (moving a partial frame to its front); while
                // they live, it takes a new one.
                if self.buf.capacity() - self.buf.len() < MIN_SPARE {
                    let want = READ_CHUNK.saturating_sub(self.buf.len());
                    self.buf.reserve(want.max(MIN_SPARE));
                }
                self.io.read_buf(&mut self.buf).await
            }
        };
        Ok(read? > 0)
    }

    /// At the end of the stream: `None` if it ended between frames, else
    /// the error for the frame it cut short.
    pub(crate) fn end(&self) -> Option<StreamError> {
        let (have, expected) = match &self.large {
            Some((body, size)) => (PREFIX + body.len(), PREFIX + size),
            None if self.buf.is_empty() => return None,
            None => (
                self.buf.len(),
                announced(&self.buf).map_or(PREFIX, |n| n + PREFIX),
            ),
        };
        Some(StreamError::Truncated { have, expected })
    }

    /// Appends `bytes` as if read from the stream (tests).
    #[cfg(test)]
    fn absorb(&mut self, mut bytes: &[u8]) {
        if let Some((body, size)) = &mut self.large {
            let n = (*size - body.len()).min(bytes.len());
            body.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        self.buf.extend_from_slice(bytes);
    }
}

/// Buffers for large frames, kept for reuse.
#[derive(Clone, Default)]
struct Pool(Arc<Mutex<Vec<Vec<u8>>>>);

impl Pool {
    fn buffers(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // One push, pop or swap per critical section: never inconsistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An empty buffer with room for `size` bytes: the smallest pooled one
    /// that fits and is at most twice that, else a new one. (A frame's
    /// buffer lives as long as any `Blob` shared from it: a small frame in
    /// a much larger pooled buffer would let a kept blob hold far more than
    /// the "about four times its size" that `Blob` promises.)
    fn take(&self, size: usize) -> Vec<u8> {
        let reused = {
            let mut buffers = self.buffers();
            let fit = (0..buffers.len())
                .filter(|&i| (size..=size.saturating_mul(2)).contains(&buffers[i].capacity()))
                .min_by_key(|&i| buffers[i].capacity());
            fit.map(|i| buffers.swap_remove(i))
        };
        reused.unwrap_or_else(|| Vec::with_capacity(size))
    }

    /// Keeps `body` for reuse if the pool has room, or in place of a
    /// smaller buffer: a pool full of buffers too small for the frames now
    /// arriving would otherwise never take a larger one, and every large
    /// frame would cost a fresh allocation (a connection that moved from
    /// 64 KiB frames to 1 MiB ones paid that on every frame).
    fn give_back(&self, mut body: Vec<u8>) {
        if body.capacity() > POOLED_MAX {
            return;
        }
        body.clear();
        let unused = {
            let mut buffers = self.buffers();
            if buffers.len() < POOLED_BUFFERS {
                buffers.push(body);
                return;
            }
            let smallest = (0..buffers.len()).min_by_key(|&i| buffers[i].capacity());
            match smallest.filter(|&i| buffers[i].capacity() < body.capacity()) {
                Some(i) => std::mem::replace(&mut buffers[i], body),
                None => body,
            }
        };
        // Freed outside the lock.
        drop(unused);
    }

    /// `body` as a frame that gives its buffer back when dropped.
    fn wrap(&self, body: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            body,
            pool: self.clone(),
        })
    }
}

/// A large frame's buffer, on its way back to the pool.
struct Pooled {
    body: Vec<u8>,
    pool: Pool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.body
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.body));
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::frame::{Channel, Frame, Sender};

    fn reader(limit: usize) -> FrameReader {
        FrameReader::new(Box::pin(tokio::io::empty()), limit)
    }

    fn wire_of(frames: &[Frame]) -> BytesMut {
        let mut wire = BytesMut::new();
        for f in frames {
            f.encode(&mut wire).unwrap();
        }
        wire
    }

    #[test]
    fn frames_arriving_in_any_pieces_decode_the_same() {
        // Sizes on both sides of the large-frame threshold.
        let sizes = |id: u64| match id % 5 {
            0 => LARGE_FRAME + id as usize,
            1 => LARGE_FRAME - 40,
            _ => id as usize * 7,
        };
        let frames: Vec<Frame> = (0..30u64)
            .map(|id| Frame::Invoke {
                id,
                channel: Channel::from_static("probe:echo"),
                payload: Bytes::from(vec![id as u8; sizes(id)]),
            })
            .collect();
        let wire = wire_of(&frames);
        for chunk in [1, 3, 4, 5, 64, 1000, 70_000] {
            let mut r = reader(1 << 20);
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                r.absorb(piece);
                while let Some(body) = r.buffered().unwrap() {
                    got.push(Frame::parse(body, Sender::Renderer).unwrap());
                }
            }
            assert!(!r.has_partial(), "chunk {chunk}");
            assert_eq!(got.len(), frames.len(), "chunk {chunk}");
            for (i, f) in got.iter().enumerate() {
                match f {
                    Frame::Invoke { id, payload, .. } => {
                        assert_eq!((*id, payload.len()), (i as u64, sizes(i as u64)));
                        assert!(payload.iter().all(|b| *b == i as u8));
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    }

    /// An in-memory stream that hands out as much as each read asks for,
    /// and counts the reads that returned bytes.
    struct Counted(
        std::io::Cursor<Vec<u8>>,
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
    );

    impl tokio::io::AsyncRead for Counted {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let before = buf.filled().len();
            let polled = std::pin::Pin::new(&mut self.0).poll_read(cx, buf);
            if buf.filled().len() > before {
                self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            polled
        }
    }

    #[tokio::test]
    async fn a_burst_of_small_frames_is_read_in_a_few_reads() {
        let frames: Vec<Frame> = (0..64u64)
            .map(|id| Frame::ReplyOk {
                id,
                payload: Bytes::from(vec![1u8; 1024]),
            })
            .collect();
        let wire = wire_of(&frames).to_vec();
        let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let io = Counted(std::io::Cursor::new(wire), reads.clone());
        let mut r = FrameReader::new(Box::pin(io), 1 << 20);
        let mut got = Vec::new();
        while let Some(body) = r.next().await {
            got.push(body.unwrap());
        }
        assert_eq!(got.len(), 64);
        // 64 frames of about 1 KiB: two 64 KiB reads, give or take one for
        // the frame cut at the end of a read.
        let reads = reads.load(std::sync::atomic::Ordering::Relaxed);
        assert!(reads <= 3, "{reads} reads for a 66 KiB burst");
    }

    #[test]
    fn oversize_prefix_is_refused_before_allocation() {
        let mut r = reader(1024);
        r.absorb(&[0xff, 0xff, 0xff, 0xff, 0]);
        let cap = r.buf.capacity();
        match r.buffered() {
            Err(StreamError::TooLarge { size, limit }) => {
                assert_eq!((size, limit), (u64::from(u32::MAX), 1024));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(r.buf.capacity(), cap, "no buffer was grown for the frame");
    }

    #[test]
    fn large_frame_buffers_are_reused_once_dropped() {
        let frame = Frame::Send {
            channel: Channel::from_static("probe:sink"),
            payload: Bytes::from(vec![7u8; LARGE_FRAME * 2]),
        };
        let wire = wire_of(&[frame.clone(), frame]);
        let mut r = reader(1 << 20);
        let half = wire.len() / 2;
        r.absorb(&wire[..PREFIX + 1]);
        assert!(r.buffered().unwrap().is_none());
        r.absorb(&wire[PREFIX + 1..half]);
        let first = r.buffered().unwrap().expect("first frame");
        let address = first.as_ptr();
        drop(first);
        r.absorb(&wire[half..half + PREFIX + 1]);
        assert!(r.buffered().unwrap().is_none());
        r.absorb(&wire[half + PREFIX + 1..]);
        let second = r.buffered().unwrap().expect("second frame");
        assert_eq!(
            second.as_ptr(),
            address,
            "the first frame's buffer was reused"
        );
    }

    /// A large frame of `size` payload bytes, arriving in two pieces (as
    /// large frames do), so that it is read into a pooled buffer of its own.
    /// A shared blob keeps at most about four times its size alive: a
    /// frame is not read into a pooled buffer much larger than itself.
    #[test]
    fn a_shared_blob_keeps_at_most_four_times_its_size_alive() {
        use crate::{codec, Blob};
        let mut r = reader(4 << 20);
        let pool = r.pool.clone();
        // A 2 MiB frame leaves a 2 MiB buffer in the pool.
        drop(read_large(&mut r, POOLED_MAX - 64));
        assert_eq!(pool.buffers().len(), 1);
        let blob = Blob::from(vec![9u8; 70_000]);
        let wire = wire_of(&[Frame::Send {
            channel: Channel::from_static("probe:keep"),
            payload: Bytes::from(codec::encode_to_vec(&(blob.clone(),)).unwrap()),
        }]);
        r.absorb(&wire[..PREFIX + 1]);
        assert!(r.buffered().unwrap().is_none());
        r.absorb(&wire[PREFIX + 1..]);
        let body = r.buffered().unwrap().expect("a whole frame");
        let Frame::Send { payload, .. } = Frame::parse(body, Sender::Renderer).unwrap() else {
            panic!("a send frame")
        };
        let (kept,): (Blob,) = codec::decode_shared(&payload).unwrap();
        assert!(payload.as_ptr_range().contains(&kept.as_ptr()), "shared");
        drop(payload);
        // What the kept blob holds goes back to the pool when it is dropped.
        drop(kept);
        let pinned = pool.buffers().iter().map(Vec::capacity).min().unwrap();
        assert!(
            pinned <= 4 * blob.len(),
            "a {} byte blob kept a {pinned} byte buffer alive",
            blob.len()
        );
    }

    fn read_large(r: &mut FrameReader, size: usize) -> Bytes {
        let wire = wire_of(&[Frame::Send {
            channel: Channel::from_static("probe:sink"),
            payload: Bytes::from(vec![7u8; size]),
        }]);
        r.absorb(&wire[..PREFIX + 1]);
        assert!(r.buffered().unwrap().is_none());
        r.absorb(&wire[PREFIX + 1..]);
        r.buffered().unwrap().expect("a whole frame")
    }

    #[test]
    fn the_three_frames_an_echo_keeps_alive_are_all_read_into_reused_buffers() {
        let mut r = reader(1 << 21);
        let size = 16 * LARGE_FRAME;
        let first: Vec<Bytes> = (0..3).map(|_| read_large(&mut r, size)).collect();
        let mut addresses: Vec<_> = first.iter().map(|f| f.as_ptr()).collect();
        drop(first);
        let again: Vec<Bytes> = (0..3).map(|_| read_large(&mut r, size)).collect();
        let mut reused: Vec<_> = again.iter().map(|f| f.as_ptr()).collect();
        addresses.sort();
        reused.sort();
        assert_eq!(reused, addresses, "each frame went into a pooled buffer");
    }

    #[test]
    fn larger_frames_take_the_place_of_smaller_pooled_buffers() {
        let (small, large) = (LARGE_FRAME, 16 * LARGE_FRAME);
        let mut r = reader(1 << 21);
        let pool = r.pool.clone();
        let mut read = |size: usize| read_large(&mut r, size);
        let capacities =
            |pool: &Pool| -> Vec<usize> { pool.buffers().iter().map(Vec::capacity).collect() };
        // As many smaller frames alive at once as the pool keeps fill it
        // when dropped.
        let smaller: Vec<Bytes> = (0..POOLED_BUFFERS).map(|_| read(small)).collect();
        drop(smaller);
        assert_eq!(capacities(&pool).len(), POOLED_BUFFERS);
        assert!(capacities(&pool).iter().all(|&c| c < large));
        // A larger frame needs a buffer of its own, which the pool then
        // keeps in place of a smaller one, for the next larger frame.
        let first = read(large);
        let address = first.as_ptr();
        drop(first);
        let kept = capacities(&pool);
        assert_eq!(kept.len(), POOLED_BUFFERS);
        assert!(kept.iter().any(|&c| c >= large), "pool: {kept:?}");
        let second = read(large);
        assert_eq!(second.as_ptr(), address, "the large buffer was reused");
        // Smaller frames take the smallest buffer that fits, whatever the
        // order the pool keeps them in, and leave the large one for the
        // next large frame.
        drop(second);
        for _ in 0..2 {
            let third = read(small);
            let fourth = read(large);
            assert_eq!(fourth.as_ptr(), address, "the large buffer was kept");
            drop((fourth, third));
        }
    }

    #[tokio::test]
    async fn a_stream_cut_inside_a_frame_is_an_error() {
        let mut wire = wire_of(&[Frame::Cancel { id: 3 }]);
        wire.truncate(wire.len() - 1);
        let mut r = FrameReader::new(Box::pin(std::io::Cursor::new(wire.to_vec())), 1024);
        match r.next().await {
            Some(Err(StreamError::Truncated { have, expected })) => {
                assert_eq!((have, expected), (PREFIX + 8, PREFIX + 9));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_cut_or_fail_without_panicking(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let mut r = reader(1024);
            r.absorb(&body);
            while let Ok(Some(frame)) = r.buffered() {
                let _ = Frame::parse(frame.clone(), Sender::Renderer);
                let _ = Frame::parse(frame, Sender::Main);
            }
        }
    }
}

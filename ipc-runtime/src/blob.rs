//! [`Blob`]: a byte payload that large frames hand over without a copy.

use std::{
    cell::RefCell,
    fmt,
    hash::{Hash, Hasher},
    ops::Deref,
};

use bytes::Bytes;
use serde::{
    de::{self, SeqAccess, Visitor},
    Deserialize, Deserializer, Serialize, Serializer,
};

/// An immutable byte buffer for method arguments, return values and event
/// payloads, that a received frame hands over **without copying** when it
/// is large.
///
/// On the wire a `Blob` is exactly a `serde_bytes::ByteBuf` or a `Vec<u8>`
/// marked `#[serde(with = "serde_bytes")]`: a length, then the bytes, so
/// either side of a contract may use either type. The difference is on
/// receipt: a `ByteBuf` is a fresh allocation the payload is copied into,
/// while a large `Blob` (see [`Blob::SHARE_MIN`]) points into the buffer
/// the frame was read into. For a megabyte that saves a copy and, more, the
/// page faults of a fresh allocation on every call. Sending works the same
/// way: a large `Blob` is written to the socket from its own buffer, where
/// a `ByteBuf` is first copied into the connection's write buffer.
///
/// A blob of a few bytes (up to 22) is held inline, without an allocation
/// of its own, so that small messages cost the allocator nothing. Cloning
/// is cheap (a reference count, or that small copy). A shared `Blob` keeps the frame's
/// buffer alive as long as it lives; call [`Blob::to_vec`] for an owned
/// copy to keep a small part of a large blob for long. Decoded by another
/// serde format (say JSON), or from a frame not read by this crate, a
/// `Blob` is simply copied.
///
/// ```
/// use ipc_runtime::{codec, Blob};
///
/// let blob = Blob::from(vec![7u8; 100_000]);
/// let wire = codec::encode_to_vec(&blob).unwrap();
/// // The same bytes a `serde_bytes::ByteBuf` encodes to.
/// let as_bytebuf = serde_bytes::ByteBuf::from(vec![7u8; 100_000]);
/// assert_eq!(wire, codec::encode_to_vec(&as_bytebuf).unwrap());
///
/// let frame = bytes::Bytes::from(wire);
/// let back: Blob = codec::decode_shared(&frame).unwrap();
/// assert_eq!(back, blob);
/// // No copy: the blob points into the frame.
/// assert!(frame.as_ptr_range().contains(&back.as_ptr()));
/// ```
#[derive(Clone)]
pub struct Blob(Repr);

/// Bytes a [`Blob`] holds without an allocation of its own.
const INLINE: usize = 22;

/// The first 16 bytes of `src` (at most [`INLINE`] long) as `lo` and the
/// rest as `hi`, little-endian, zero beyond its end: read with whole-word
/// loads, some overlapping, so that the bytes reach the blob as two
/// register stores. (Copying them with `memcpy` into a zeroed array, which
/// is then moved into the blob, stalls the move on store forwarding: most
/// of the time spent making a small blob.)
fn load_le(src: &[u8]) -> (u128, u64) {
    let n = src.len();
    let word = |at: usize| {
        let mut w = [0; 8];
        w.copy_from_slice(&src[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let half = |at: usize| {
        let mut w = [0; 4];
        w.copy_from_slice(&src[at..at + 4]);
        u64::from(u32::from_le_bytes(w))
    };
    // The top `k` bytes of the 8 at `at..at + 8`, moved down.
    let top = |at: usize, k: usize| u128::from(word(at)) >> (8 * (8 - k));
    match n {
        0 => (0, 0),
        1..=3 => {
            let b = |i: usize| u128::from(src[i]) << (8 * i);
            (b(0) | b(n / 2) | b(n - 1), 0)
        }
        4..=7 => {
            let rest = u128::from(half(n - 4) >> (8 * (8 - n)));
            (u128::from(half(0)) | rest << 32, 0)
        }
        8..=15 => (u128::from(word(0)) | top(n - 8, n - 8) << 64, 0),
        _ => {
            let mut w = [0; 16];
            w.copy_from_slice(&src[..16]);
            let lo = u128::from_le_bytes(w);
            let hi = if n > 16 { top(n - 8, n - 16) as u64 } else { 0 };
            (lo, hi)
        }
    }
}

/// A small blob is held inline: making, cloning, decoding and dropping
/// it never touches the allocator (for an 8-byte message these were two
/// of the few allocations left per call).
#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Bytes),
}

impl Blob {
    /// Blobs at least this large share the buffer of the frame they
    /// arrived in, if they are also at least half of its payload; other
    /// blobs are copied out of it. A copy is cheap for a small blob, and the
    /// half rule (with frames read into buffers at most twice their size)
    /// bounds what a kept blob keeps alive: at most about four times its
    /// own size.
    pub const SHARE_MIN: usize = 64 * 1024;

    /// An empty blob.
    pub const fn new() -> Self {
        Blob(Repr::Inline {
            len: 0,
            bytes: [0; INLINE],
        })
    }

    /// A blob of `bytes`, copied.
    pub fn copy_from_slice(bytes: &[u8]) -> Self {
        match Self::inline(bytes) {
            Some(blob) => blob,
            None => Blob(Repr::Shared(Bytes::copy_from_slice(bytes))),
        }
    }

    /// `bytes` held inline, if they are few enough.
    fn inline(bytes: &[u8]) -> Option<Self> {
        let len = bytes.len();
        if len > INLINE {
            return None;
        }
        let (lo, hi) = load_le(bytes);
        let mut inline = [0; INLINE];
        inline[..16].copy_from_slice(&lo.to_le_bytes());
        inline[16..].copy_from_slice(&hi.to_le_bytes()[..INLINE - 16]);
        Some(Blob(Repr::Inline {
            len: len as u8,
            bytes: inline,
        }))
    }

    /// A blob of a static slice, without copying.
    pub const fn from_static(bytes: &'static [u8]) -> Self {
        Blob(Repr::Shared(Bytes::from_static(bytes)))
    }

    /// The bytes, as a [`bytes::Bytes`] (no copy, except for a blob of a
    /// few bytes, which is held without an allocation of its own).
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            Repr::Shared(bytes) => bytes,
            Repr::Inline { .. } => Bytes::copy_from_slice(&self),
        }
    }

    /// An owned copy of the bytes, independent of any frame buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        self.as_slice().to_vec()
    }

    fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Shared(b) => b,
        }
    }
}

impl Default for Blob {
    fn default() -> Self {
        Blob::new()
    }
}

impl Deref for Blob {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Blob {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for Blob {
    fn eq(&self, other: &Blob) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Blob {}

impl PartialOrd for Blob {
    fn partial_cmp(&self, other: &Blob) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Blob {
    fn cmp(&self, other: &Blob) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl Hash for Blob {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl From<Vec<u8>> for Blob {
    fn from(v: Vec<u8>) -> Self {
        match Self::inline(&v) {
            Some(blob) => blob,
            None => Blob(Repr::Shared(Bytes::from(v))),
        }
    }
}

impl From<Bytes> for Blob {
    fn from(b: Bytes) -> Self {
        Blob(Repr::Shared(b))
    }
}

impl From<&'static [u8]> for Blob {
    fn from(b: &'static [u8]) -> Self {
        Blob::from_static(b)
    }
}

impl From<Blob> for Bytes {
    fn from(b: Blob) -> Self {
        b.into_bytes()
    }
}

impl From<Blob> for Vec<u8> {
    fn from(b: Blob) -> Self {
        match b.0 {
            Repr::Shared(bytes) => Vec::from(bytes),
            Repr::Inline { .. } => b.to_vec(),
        }
    }
}

impl PartialEq<[u8]> for Blob {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A megabyte of `[1, 2, 3, …]` helps nobody: the size and a prefix.
        const SHOWN: usize = 16;
        let bytes = self.as_slice();
        write!(f, "Blob({} bytes", bytes.len())?;
        if !bytes.is_empty() {
            write!(f, ": {:02x?}", &bytes[..bytes.len().min(SHOWN)])?;
            if bytes.len() > SHOWN {
                write!(f, "…")?;
            }
        }
        write!(f, ")")
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            // A large blob encoded into a write queue is written from its
            // own buffer (see `codec::splice`).
            Repr::Shared(bytes) => {
                crate::codec::splice::offer(bytes, || serializer.serialize_bytes(bytes))
            }
            Repr::Inline { .. } => serializer.serialize_bytes(self.as_slice()),
        }
    }
}

thread_local! {
    /// The frame being decoded on this thread, while [`decode_shared`]
    /// runs: blobs borrowed from it are sliced out of it.
    ///
    /// [`decode_shared`]: crate::codec::decode_shared
    static SOURCE: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Makes `frame` the buffer that blobs decoded on this thread may share,
/// until the returned guard is dropped (which restores the previous one, so
/// nested decodes are fine).
pub(crate) fn share_from(frame: &Bytes) -> SourceGuard {
    let previous = SOURCE.with(|s| s.replace(Some(frame.clone())));
    SourceGuard { previous }
}

/// Restores the previous shared buffer when dropped.
pub(crate) struct SourceGuard {
    previous: Option<Bytes>,
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        SOURCE.with(|s| *s.borrow_mut() = previous);
    }
}

/// `v` as a blob: a slice of the frame being decoded when it lies in it,
/// is large enough to be worth sharing and is a good part of the frame
/// (see [`Blob::SHARE_MIN`]); a copy otherwise.
fn borrowed(v: &[u8]) -> Blob {
    if v.len() >= Blob::SHARE_MIN {
        let shared = SOURCE.with(|s| {
            let source = s.borrow();
            let frame = source.as_ref()?;
            let range = frame.as_ptr_range();
            let inside = range.start <= v.as_ptr() && v.as_ptr_range().end <= range.end;
            let worth_it = v.len() >= frame.len() / 2;
            (inside && worth_it).then(|| frame.slice_ref(v))
        });
        if let Some(bytes) = shared {
            return Blob(Repr::Shared(bytes));
        }
    }
    Blob::copy_from_slice(v)
}

struct BlobVisitor;

impl<'de> Visitor<'de> for BlobVisitor {
    type Value = Blob;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte array")
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Blob, E> {
        Ok(borrowed(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Blob, E> {
        Ok(Blob::copy_from_slice(v))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
        Ok(Blob::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Blob, E> {
        Ok(Blob::copy_from_slice(v.as_bytes()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Blob, A::Error> {
        // Formats without a bytes type (JSON) send a list of numbers. The
        // hint is the sender's claim: capped, never trusted for allocation.
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element::<u8>()? {
            v.push(byte);
        }
        Ok(Blob::from(v))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_bytes(BlobVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    fn frame_of<T: Serialize>(value: &T) -> Bytes {
        Bytes::from(codec::encode_to_vec(value).unwrap())
    }

    fn shares(frame: &Bytes, blob: &Blob) -> bool {
        !blob.is_empty() && frame.as_ptr_range().contains(&blob.as_ptr())
    }

    #[test]
    fn large_blobs_share_the_frame_and_small_ones_are_copied() {
        for len in [0, 1, 100, Blob::SHARE_MIN - 1, Blob::SHARE_MIN, 1 << 20] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let frame = frame_of(&(5u32, Blob::from(data.clone()), "after"));
            let (n, blob, tail): (u32, Blob, String) = codec::decode_shared(&frame).unwrap();
            assert_eq!((n, tail.as_str()), (5, "after"));
            assert_eq!(blob.to_vec(), data, "len {len}");
            assert_eq!(shares(&frame, &blob), len >= Blob::SHARE_MIN, "len {len}");
        }
    }

    #[test]
    fn a_blob_that_is_a_small_part_of_its_frame_is_copied() {
        let small = Blob::from(vec![1u8; Blob::SHARE_MIN]);
        let large = Blob::from(vec![2u8; 2 * Blob::SHARE_MIN + 100]);
        let frame = frame_of(&(small, large));
        let (small, large): (Blob, Blob) = codec::decode_shared(&frame).unwrap();
        assert!(!shares(&frame, &small), "under half of the frame");
        assert!(shares(&frame, &large));
    }

    #[test]
    fn without_a_shared_frame_a_blob_is_copied() {
        let data = vec![9u8; Blob::SHARE_MIN * 2];
        let frame = frame_of(&Blob::from(data.clone()));
        let blob: Blob = codec::decode(&frame).unwrap();
        assert_eq!(blob.to_vec(), data);
        assert!(!shares(&frame, &blob));
    }

    #[test]
    fn the_wire_format_is_serde_bytes() {
        let data = vec![3u8; 70_000];
        let frame = frame_of(&serde_bytes::ByteBuf::from(data.clone()));
        let blob: Blob = codec::decode_shared(&frame).unwrap();
        assert_eq!(blob.to_vec(), data);
        let back: serde_bytes::ByteBuf = codec::decode(&frame_of(&blob)).unwrap();
        assert_eq!(back.into_vec(), data);
    }

    #[test]
    fn a_blob_outlives_the_decode_and_the_guard_restores_the_outer_frame() {
        let outer = frame_of(&Blob::from(vec![1u8; Blob::SHARE_MIN]));
        let inner = frame_of(&Blob::from(vec![2u8; Blob::SHARE_MIN]));
        let guard = share_from(&outer);
        let b: Blob = codec::decode_shared(&inner).unwrap();
        assert!(shares(&inner, &b));
        let a: Blob = codec::decode(&outer).unwrap();
        assert!(shares(&outer, &a), "the outer frame is shared again");
        drop(guard);
        drop((outer, inner));
        assert_eq!(&a[..], &[1u8; Blob::SHARE_MIN][..]);
        assert_eq!(&b[..], &[2u8; Blob::SHARE_MIN][..]);
        SOURCE.with(|s| assert!(s.borrow().is_none()));
    }

    #[test]
    fn a_hostile_length_is_refused_not_allocated() {
        let mut hostile = vec![0xfd];
        hostile.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(codec::decode_shared::<Blob>(&Bytes::from(hostile)).is_err());
    }

    #[test]
    fn small_blobs_are_inline_and_equal_to_shared_ones_of_the_same_bytes() {
        use std::collections::hash_map::DefaultHasher;
        let hash = |b: &Blob| {
            let mut h = DefaultHasher::new();
            b.hash(&mut h);
            h.finish()
        };
        // Every inline length (each takes its own path into the blob).
        for len in (0..=INLINE + 1).chain([1000]) {
            let data: Vec<u8> = (0..len).map(|i| 0xa1 ^ i as u8).collect();
            let ways = [
                Blob::copy_from_slice(&data),
                Blob::from(data.clone()),
                Blob::from(Bytes::from(data.clone())),
                codec::decode_shared(&frame_of(&Blob::from(data.clone()))).unwrap(),
            ];
            for (i, b) in ways.iter().enumerate() {
                assert_eq!(&b[..], &data[..], "len {len}, way {i}");
                let inline = matches!(b.0, Repr::Inline { .. });
                // Only a blob made from `Bytes` keeps them, whatever its size.
                assert_eq!(inline, len <= INLINE && i != 2, "len {len}, way {i}");
                assert_eq!(b, &ways[2], "len {len}, way {i}");
                assert_eq!(b.cmp(&ways[2]), std::cmp::Ordering::Equal);
                assert_eq!(hash(b), hash(&ways[2]), "len {len}, way {i}");
                assert_eq!(b.clone().into_bytes(), Bytes::from(data.clone()));
                assert_eq!(Vec::from(b.clone()), data);
                assert_eq!(
                    codec::encode_to_vec(b).unwrap(),
                    codec::encode_to_vec(&ways[2]).unwrap()
                );
            }
        }
        assert!(Blob::copy_from_slice(b"a") < Blob::from(Bytes::from_static(b"b")));
        assert_eq!(Blob::default(), Blob::from_static(b""));
        assert_eq!(
            format!("{:?}", Blob::copy_from_slice(b"\x01")),
            "Blob(1 bytes: [01])"
        );
    }

    #[test]
    fn json_round_trips_as_a_list_of_numbers() {
        let blob = Blob::from_static(b"\x00\x01\xff");
        let json = serde_json::to_string(&blob).unwrap();
        assert_eq!(json, "[0,1,255]");
        let back: Blob = serde_json::from_str(&json).unwrap();
        assert_eq!(back, blob);
        assert_eq!(format!("{back:?}"), "Blob(3 bytes: [00, 01, ff])");
    }
}

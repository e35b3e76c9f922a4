//! Large blobs leave without a copy: the write queue keeps a reference to
//! their buffer and writes it with the frame around it in one vectored
//! system call, instead of copying it into the write buffer first.
//!
//! A frame is encoded into a [`FrameBuf`]: the queue's buffer and its list
//! of [`Splice`]s. A large [`Blob`], while it serializes,
//! *offers* the [`Bytes`] that own its contents ([`offer`], through a
//! thread-local). The frame buffer's writer, given a write of at least
//! [`SPLICE_MIN`] bytes, records a splice instead of copying **only if**
//! those bytes are exactly the offered blob (same address, same length).
//! Anything else is copied as usual.
//!
//! That rule keeps the encoding right whatever the value does: a blob
//! serialized by another format inside a `Serialize` impl never reaches
//! the writer with its own address. A splice is placed where the blob's
//! bytes would have been, so the stream on the wire is byte for byte the
//! same. Encoding into a plain `BytesMut` ([`crate::codec::encode_into`])
//! never splices.

use std::{
    cell::RefCell,
    ops::{Deref, DerefMut},
};

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use super::{CodecError, CONFIG};
use crate::Blob;

/// Bytes written from their own buffer, in the middle of a write buffer.
#[derive(Debug, Clone)]
pub(crate) struct Splice {
    /// Where in the write buffer the bytes belong: before the byte at
    /// this offset.
    pub at: usize,
    /// The bytes.
    pub bytes: Bytes,
}

/// Writes of at least this many bytes may become splices.
pub(crate) const SPLICE_MIN: usize = Blob::SHARE_MIN;

thread_local! {
    /// The blob whose bytes are being serialized on this thread.
    static OFFERED: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Runs `serialize` (which writes `bytes`) with `bytes` offered for
/// splicing. Small blobs are not offered: they are cheaper to copy. Nor
/// are blobs serialized while the thread's locals are being torn down:
/// they are simply copied.
pub(crate) fn offer<R>(bytes: &Bytes, serialize: impl FnOnce() -> R) -> R {
    if bytes.len() < SPLICE_MIN {
        return serialize();
    }
    struct Withdraw(Option<Bytes>);
    impl Drop for Withdraw {
        fn drop(&mut self) {
            let previous = self.0.take();
            let _ = OFFERED.try_with(|o| *o.borrow_mut() = previous);
        }
    }
    let Ok(previous) = OFFERED.try_with(|o| o.replace(Some(bytes.clone()))) else {
        return serialize();
    };
    let _withdraw = Withdraw(previous);
    serialize()
}

/// A write queue's buffer while a frame is encoded into it: the bytes,
/// and the large blobs that belong between them. Dereferences to the
/// bytes, for everything written by hand.
pub(crate) struct FrameBuf<'a> {
    buf: &'a mut BytesMut,
    splices: &'a mut Vec<Splice>,
}

impl<'a> FrameBuf<'a> {
    /// Frames go into `buf`, blobs into `splices`.
    pub(crate) fn new(buf: &'a mut BytesMut, splices: &'a mut Vec<Splice>) -> Self {
        FrameBuf { buf, splices }
    }

    /// Encodes `value` with the wire codec, splicing its large blobs.
    pub(crate) fn encode<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
        let writer = FrameWriter {
            buf: self.buf,
            splices: Some(self.splices),
        };
        bincode::serde::encode_into_writer(super::Strict(value), writer, CONFIG)
            .map_err(super::encode_error)
    }

    /// Encodes `value` like [`FrameBuf::encode`], then runs `check` (see
    /// [`check_for`](super::check_for)) on the bytes written, unless a blob
    /// in it was spliced (its bytes are not in this buffer; blobs survive
    /// anyway).
    pub(crate) fn encode_checked<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
        check: Option<super::Check>,
    ) -> Result<(), CodecError> {
        let (start, splices) = (self.buf.len(), self.splices.len());
        self.encode(value)?;
        match check {
            Some(check) if self.splices.len() == splices => check(&self.buf[start..]),
            _ => Ok(()),
        }
    }

    /// Appends `bytes` already encoded: spliced if large, copied if not.
    pub(crate) fn append(&mut self, bytes: &Bytes) {
        if bytes.len() >= SPLICE_MIN {
            self.splices.push(Splice {
                at: self.buf.len(),
                bytes: bytes.clone(),
            });
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }
}

impl Deref for FrameBuf<'_> {
    type Target = BytesMut;

    fn deref(&self) -> &BytesMut {
        self.buf
    }
}

impl DerefMut for FrameBuf<'_> {
    fn deref_mut(&mut self) -> &mut BytesMut {
        self.buf
    }
}

/// The bytes `buf` and its `splices` stand for on the wire, in one buffer.
pub(crate) fn joined(buf: &[u8], splices: &[Splice]) -> BytesMut {
    let spliced: usize = splices.iter().map(|s| s.bytes.len()).sum();
    let mut out = BytesMut::with_capacity(buf.len() + spliced);
    let mut at = 0;
    for s in splices {
        out.extend_from_slice(&buf[at..s.at]);
        out.extend_from_slice(&s.bytes);
        at = s.at;
    }
    out.extend_from_slice(&buf[at..]);
    out
}

/// The codec's output: a buffer, and where its offered blobs go (if they
/// may be spliced).
pub(crate) struct FrameWriter<'a> {
    pub buf: &'a mut BytesMut,
    pub splices: Option<&'a mut Vec<Splice>>,
}

impl bincode::enc::write::Writer for FrameWriter<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        if bytes.len() < SPLICE_MIN || !self.splice(bytes) {
            self.buf.put_slice(bytes);
        }
        Ok(())
    }
}

impl FrameWriter<'_> {
    /// Records `bytes` as a splice if they are the offered blob's.
    #[cold]
    fn splice(&mut self, bytes: &[u8]) -> bool {
        let Some(splices) = self.splices.as_mut() else {
            return false;
        };
        let offered = OFFERED
            .try_with(|o| {
                let o = o.borrow();
                o.as_ref()
                    .filter(|b| b.as_ptr() == bytes.as_ptr() && b.len() == bytes.len())
                    .cloned()
            })
            .ok()
            .flatten();
        match offered {
            Some(bytes) => {
                splices.push(Splice {
                    at: self.buf.len(),
                    bytes,
                });
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    #[test]
    fn large_blobs_are_spliced_in_place_and_the_stream_is_unchanged() {
        let big = Blob::from(vec![7u8; SPLICE_MIN]);
        let bigger = Blob::from(vec![8u8; 3 * SPLICE_MIN]);
        let small = Blob::from(vec![9u8; 1000]);
        let value = (1u8, big.clone(), small, "mid", vec![bigger.clone()], 2u8);
        let mut buf = BytesMut::from(&b"head"[..]);
        let mut splices = Vec::new();
        FrameBuf::new(&mut buf, &mut splices)
            .encode(&value)
            .unwrap();
        assert_eq!(splices.len(), 2, "the two large blobs");
        assert_eq!(splices[0].bytes.as_ptr(), big.as_ptr(), "no copy");
        assert_eq!(splices[1].bytes.as_ptr(), bigger.as_ptr(), "no copy");
        assert!(buf.len() < 1100, "only the small parts were copied");
        let mut expected = b"head".to_vec();
        expected.extend(codec::encode_to_vec(&value).unwrap());
        assert_eq!(&joined(&buf, &splices)[..], &expected[..]);
    }

    #[test]
    fn outside_a_frame_buffer_blobs_are_copied() {
        let big = Blob::from(vec![1u8; SPLICE_MIN]);
        let mut plain = BytesMut::new();
        codec::encode_into(&big, &mut plain).unwrap();
        assert_eq!(&plain[..], &codec::encode_to_vec(&big).unwrap()[..]);
    }

    #[test]
    fn a_blob_inside_another_format_is_copied() {
        // A `Serialize` impl that encodes a blob with JSON and writes the
        // text: the blob's own bytes never reach the frame writer.
        struct AsJson(Blob);
        impl serde::Serialize for AsJson {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let text = serde_json::to_string(&self.0).map_err(serde::ser::Error::custom)?;
                s.serialize_str(&text)
            }
        }
        let value = AsJson(Blob::from(vec![2u8; SPLICE_MIN]));
        let mut buf = BytesMut::new();
        let mut splices = Vec::new();
        FrameBuf::new(&mut buf, &mut splices)
            .encode(&value)
            .unwrap();
        assert!(splices.is_empty());
        assert_eq!(&buf[..], &codec::encode_to_vec(&value).unwrap()[..]);
    }

    #[test]
    fn append_splices_large_encoded_bytes_and_copies_small_ones() {
        let mut buf = BytesMut::new();
        let mut splices = Vec::new();
        let large = Bytes::from(vec![3u8; SPLICE_MIN]);
        let mut frame = FrameBuf::new(&mut buf, &mut splices);
        frame.append(&Bytes::from_static(b"ab"));
        frame.append(&large);
        frame.put_slice(b"cd");
        assert_eq!(&buf[..], b"abcd");
        assert_eq!(splices.len(), 1);
        assert_eq!(
            (splices[0].at, splices[0].bytes.as_ptr()),
            (2, large.as_ptr())
        );
    }

    #[test]
    fn an_offer_is_withdrawn_even_on_panic() {
        let big = Bytes::from(vec![3u8; SPLICE_MIN]);
        let result = std::panic::catch_unwind(|| offer(&big, || panic!("serializer panicked")));
        assert!(result.is_err());
        OFFERED.with(|o| assert!(o.borrow().is_none()));
    }
}

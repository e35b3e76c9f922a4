//! The payload codec: serde values to bytes and back, with bincode 2.
//!
//! This is the only module that knows the payload encoding, so that bincode
//! (no longer maintained) can be swapped for another serde format by changing
//! this module alone (this file, `guard.rs` and `splice.rs`).
//!
//! Decoding treats its input as hostile. bincode 2 allocates from length
//! fields it reads inside a payload (`String`, `Vec<u8>`) before checking
//! that the bytes are there, and its byte limit is a compile-time constant,
//! so it cannot follow the size of each frame. [`decode`] therefore drives
//! bincode through a small serde adapter (`guard`) that reads strings and
//! byte buffers by borrowing them from the frame (so they are copied only
//! once proven present) and caps every size hint at the frame's length: a
//! hostile length field never allocates more than the frame holds. The items
//! of a value's sequences and maps may take at most 32 times the frame's
//! bytes, or 64 MiB if that is more, in memory (each counted as the size of
//! its type), so that short encodings of large types (a `None` of an 8 KiB
//! array is one byte) cannot decode a 16 MiB frame into 128 GiB (512 MiB at
//! most). What a `Box` inside an item points to is not counted: a
//! collection of boxed large types that can encode as one byte still
//! amplifies, so keep such types out of what untrusted peers send.
//!
//! # Examples
//!
//! ```
//! use ipc_runtime::codec;
//!
//! let bytes = codec::encode_to_vec(&(7u64, "seven")).unwrap();
//! let (n, word): (u64, String) = codec::decode(&bytes).unwrap();
//! assert_eq!((n, word.as_str()), (7, "seven"));
//!
//! // A string whose length field claims 2^40 bytes is refused, not allocated.
//! let mut hostile = vec![0xfd];
//! hostile.extend_from_slice(&(1u64 << 40).to_le_bytes());
//! assert!(codec::decode::<String>(&hostile).is_err());
//! ```

mod guard;
pub(crate) mod splice;
mod strict;

use strict::Strict;

use bytes::{Bytes, BytesMut};
use serde::{de::DeserializeOwned, Serialize};

/// The bincode configuration used on the wire: little-endian, variable-length
/// integers (bincode's standard configuration).
const CONFIG: bincode::config::Configuration = bincode::config::standard();

/// Why a value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The value could not be serialised (for example a map whose length is
    /// unknown up front, or a `Serialize` impl that returned an error).
    #[error("could not encode the value: {0}")]
    Encode(String),
    /// The bytes are not a valid encoding of the expected type.
    #[error("could not decode the value: {0}")]
    Decode(String),
    /// The type cannot be decoded from this format whatever the bytes: a
    /// type in it asks serde for a self-describing format (its
    /// `Deserialize` calls `deserialize_any`), and bincode is not one.
    /// Internally tagged (`#[serde(tag = "…")]`) and untagged enums,
    /// `#[serde(flatten)]` and `serde_json::Value` do this. A mistake in
    /// the contract's types, not in the data: see
    /// [`IpcType`](crate::IpcType).
    #[error(
        "`{type_name}` cannot be decoded from the IPC wire format (bincode), whatever the bytes: \
         a type in it, expecting {expecting}, asks serde for a self-describing format; \
         internally tagged (`#[serde(tag = \"…\")]`) and untagged enums, `#[serde(flatten)]` \
         and `serde_json::Value` cannot cross IPC: use serde's default (externally tagged) \
         enums and plain structs, or send such data as a `String` of JSON"
    )]
    NeedsSelfDescribing {
        /// The type being decoded (a method's argument tuple, a reply, an
        /// event's arguments).
        type_name: &'static str,
        /// What the visitor of the type that asked expected, in serde's
        /// words ("internally tagged enum Shape", "any valid JSON value").
        expecting: String,
    },
    /// The value decoded, but bytes were left over after it: the sender and
    /// the receiver disagree on the type.
    #[error(
        "{extra} unexpected bytes after the value (the payload holds {total} bytes; {DISAGREE})"
    )]
    TrailingBytes {
        /// How many bytes were not consumed.
        extra: usize,
        /// The size of the whole payload.
        total: usize,
    },
}

impl CodecError {
    /// The reason for an [`IpcError::Encode`](crate::IpcError::Encode),
    /// whose own words already say that encoding failed.
    pub(crate) fn into_encode_reason(self) -> String {
        match self {
            CodecError::Encode(why) => why,
            other => other.to_string(),
        }
    }
}

/// Why bytes that do not decode as the expected type most often do not,
/// added to bincode's own errors (not to those of a type's `Deserialize`,
/// or of the guard, which say what they refused).
const DISAGREE: &str = "both sides must be built from the same contract, and each type must \
     decode from what it encodes: a field or enum variant skipped on one side only \
     (`skip_serializing`, `skip_deserializing`, `#[serde(skip)]` on a variant) shifts what \
     follows; see `IpcType`";

/// The error for a value bincode could not encode, in words a user can act
/// on where bincode's are terse.
pub(crate) fn encode_error(e: bincode::error::EncodeError) -> CodecError {
    use bincode::{error::EncodeError, serde::EncodeError as SerdeError};
    match e {
        EncodeError::Serde(SerdeError::SequenceMustHaveLength) => CodecError::Encode(
            "a sequence or map whose length is not known before its items (`#[serde(flatten)]`, \
             or a `Serialize` impl that passes no length to `serialize_seq` or `serialize_map`) \
             cannot cross IPC: the wire format (bincode) writes the length first"
                .into(),
        ),
        // A `Serialize` impl's own error (or `strict`'s): its words alone,
        // which may quote the value (perhaps a renderer's input).
        EncodeError::OtherString(why) => CodecError::Encode(crate::contract::peer_text(&why)),
        other => CodecError::Encode(other.to_string()),
    }
}

/// The error for bytes bincode could not decode: a `Deserialize` impl's
/// own words alone ("missing field `id`"), bincode's as it says them. A
/// `Deserialize` may quote the bytes it refused (`not an email address:
/// …`), which the peer chose: its words are escaped and cut short, so that
/// they cannot write lines of their own into a log.
fn decode_error(e: bincode::error::DecodeError) -> CodecError {
    match e {
        bincode::error::DecodeError::OtherString(why) => {
            CodecError::Decode(crate::contract::peer_text(&why))
        }
        other => CodecError::Decode(format!("{other} ({DISAGREE})")),
    }
}

/// Encodes `value` and appends its bytes to `dst`.
///
/// Writing straight into the frame buffer avoids an intermediate `Vec`.
/// (The connections' write queues go further: they write large
/// [`Blob`](crate::Blob)s from their own buffers, see `splice`.)
pub fn encode_into<T: Serialize + ?Sized>(value: &T, dst: &mut BytesMut) -> Result<(), CodecError> {
    let writer = splice::FrameWriter {
        buf: dst,
        splices: None,
    };
    bincode::serde::encode_into_writer(Strict(value), writer, CONFIG).map_err(encode_error)
}

/// Encodes `value` into a new vector.
pub fn encode_to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(Strict(value), CONFIG).map_err(encode_error)
}

/// A check of a value's bytes just encoded: [`survives`] for its type.
pub(crate) type Check = fn(&[u8]) -> Result<(), CodecError>;

/// The check that values of `T` survive the wire format, in debug builds
/// (it costs a decode and an encode per message); none in release builds.
pub(crate) fn check_for<T: Serialize + DeserializeOwned>() -> Option<Check> {
    cfg!(debug_assertions).then_some(survives::<T> as Check)
}

/// The largest encoding [`survives`] checks: beyond it, a debug build
/// would spend too long on a large value, under the connection's write
/// lock (256 KiB of `Vec<u8>`, decoded and encoded byte by byte, took
/// 67 ms), and a type's shape shows in small values too.
pub(crate) const CHECK_MAX: usize = 64 * 1024;

/// Checks that `bytes`, a `T` just encoded, decode as a `T` that encodes
/// to the same bytes, in some order (if they are [`CHECK_MAX`] bytes at
/// most). A type whose `Serialize` and `Deserialize` disagree on its shape
/// (a field or enum variant skipped on one side only, which serde does not
/// tell the encoder about), or that needs a self-describing format, fails
/// here, on the sender, instead of reaching the other side garbled. Not
/// judged, so passed: a decode that fails in the type's own words or at
/// the guard's limits, a `Serialize` whose bytes change from one call to
/// the next, and a panic in the type's code. The value's own `Serialize`
/// is not run again (it may have side effects); the decoded copy's runs
/// once or twice, and its `Deserialize` and `Drop` once.
pub(crate) fn survives<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<(), CodecError> {
    if bytes.len() > CHECK_MAX {
        return Ok(());
    }
    // The type's code may panic on this side (it was written for the
    // other): that is not this check's to report.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| round_trip::<T>(bytes)))
        .unwrap_or(Ok(()))
}

/// [`survives`], panics aside.
fn round_trip<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<(), CodecError> {
    let fails = |what: String| {
        Err(CodecError::Encode(format!(
            "`{}` does not survive the IPC wire format: {what} (checked in debug builds only; \
             see `IpcType` for what serde can describe but IPC cannot carry)",
            core::any::type_name::<T>()
        )))
    };
    let back = match decode::<T>(bytes) {
        Ok(back) => back,
        // The type's own words (a validation, which may need what only
        // the receiver has) and the decoder's limits (this thread's stack)
        // are the receiver's to apply: every `Decode` error but bincode's
        // own, to which `decode_error` adds `DISAGREE`.
        Err(CodecError::Decode(why)) if !why.contains(DISAGREE) => return Ok(()),
        Err(e) => return fails(format!("what it encodes does not decode as it: {e}")),
    };
    let same = |a: &[u8], b: &[u8]| a == b || same_bytes_reordered(a, b);
    let Ok(again) = encode_to_vec(&back) else {
        return Ok(());
    };
    if same(&again, bytes) {
        return Ok(());
    }
    // A `Serialize` that writes other bytes each time (a nonce, a
    // timestamp) cannot be judged this way.
    match encode_to_vec(&back) {
        Ok(third) if same(&third, &again) => fails(
            "what it encodes decodes as a different value: a field or enum variant skipped on \
             one side only (`skip_serializing`, `skip_deserializing`, `#[serde(skip)]` on a \
             variant followed by others) shifts what follows"
                .into(),
        ),
        _ => Ok(()),
    }
}

/// Whether `a` and `b` hold the same bytes, in any order: a `HashMap` or
/// `HashSet` decoded anew lists its entries in another order, and must
/// not fail [`survives`]. (A shift from a skipped field or variant changes
/// the bytes, not just their order, in all but contrived cases.)
fn same_bytes_reordered(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut counts = [0isize; 256];
    for (&x, &y) in a.iter().zip(b) {
        counts[usize::from(x)] += 1;
        counts[usize::from(y)] -= 1;
    }
    counts.iter().all(|&c| c == 0)
}

/// Decodes a `T` that must fill `bytes` exactly.
///
/// No allocation made while decoding is larger than `bytes.len()` plus the
/// size of the decoded value itself, and the items of its sequences and
/// maps take at most 32 × `bytes.len()` bytes, or 64 MiB if that is more
/// (counted as the size of their types, not what boxes in them point to;
/// past that it fails); trailing bytes are an error.
///
/// A type that cannot be decoded from this format at all fails with
/// [`CodecError::NeedsSelfDescribing`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, read) = decode_prefix(bytes)?;
    if read != bytes.len() {
        return Err(CodecError::TrailingBytes {
            extra: bytes.len() - read,
            total: bytes.len(),
        });
    }
    Ok(value)
}

/// Reads an `Option<&str>` from the start of `bytes`, borrowing the text
/// (nothing is allocated), and returns it with the number of bytes it
/// took; what follows is left for the caller.
pub(crate) fn decode_str_prefix(bytes: &[u8]) -> Result<(Option<&str>, usize), CodecError> {
    bincode::serde::borrow_decode_from_slice(bytes, CONFIG).map_err(decode_error)
}

/// Decodes a `T` from the start of `bytes`, within the bounds [`decode`]
/// states, and returns it with the number of bytes it took.
fn decode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), CodecError> {
    let wanted_any = core::cell::Cell::new(None);
    let seed = guard::GuardSeed::<T>::new(bytes.len(), &wanted_any);
    let decoded = bincode::serde::seed_decode_from_slice(seed, bytes, CONFIG);
    // A refusal the type swallowed (a field that falls back to its default
    // on error) still leaves a wrong value, and its bytes unread.
    if let Some(expecting) = wanted_any.take() {
        return Err(CodecError::NeedsSelfDescribing {
            type_name: core::any::type_name::<T>(),
            expecting,
        });
    }
    decoded.map_err(decode_error)
}

/// Decodes a `T` that must fill `frame` exactly, like [`decode`], letting
/// the large [`Blob`](crate::Blob)s in it share `frame`'s buffer instead of
/// copying out of it.
pub fn decode_shared<T: DeserializeOwned>(frame: &Bytes) -> Result<T, CodecError> {
    if frame.len() < crate::Blob::SHARE_MIN {
        // No blob in it can be large enough to share.
        return decode(frame);
    }
    let _shared = crate::blob::share_from(frame);
    decode(frame)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::{encode_to_vec, survives};

    /// Maps and sets whose order changes from copy to copy survive; a
    /// skipped field does not.
    #[test]
    fn survives_allows_reordered_maps_and_sets_only() {
        let map: HashMap<String, u32> = (0..200).map(|i| (i.to_string(), i)).collect();
        let set: HashSet<u64> = (0..200).map(|i| i * 1_000_003).collect();
        let value = (map, set, vec![1u8, 2, 3]);
        let bytes = encode_to_vec(&value).unwrap();
        assert_eq!(
            survives::<(HashMap<String, u32>, HashSet<u64>, Vec<u8>)>(&bytes),
            Ok(())
        );

        #[derive(serde::Serialize, serde::Deserialize)]
        #[allow(dead_code)] // its fields are only encoded
        struct Secret {
            #[serde(skip_serializing)]
            secret: u32,
            items: Vec<u32>,
        }
        let bytes = encode_to_vec(&Secret {
            secret: 5,
            items: vec![0],
        })
        .unwrap();
        assert!(survives::<Secret>(&bytes).is_err());
    }
}

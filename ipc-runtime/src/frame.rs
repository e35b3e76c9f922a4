//! The wire format: length-prefixed frames and what is inside them.
//!
//! A frame on the wire is a big-endian `u32` length followed by that many
//! bytes of body. The body starts with one kind byte:
//!
//! | kind | frame | direction | fields after the kind byte |
//! | --- | --- | --- | --- |
//! | `0x01` | hello | renderer → main | protocol version (`u16` LE), the token (an `Option<String>`), then [`Hello`] |
//! | `0x02` | welcome | main → renderer | [`Welcome`] |
//! | `0x03` | rejected | main → renderer | a wire error |
//! | `0x10` | invoke | renderer → main | call id (`u64` LE), channel (`u8` length + UTF-8), payload |
//! | `0x11` | send | renderer → main | channel, payload |
//! | `0x12` | cancel | renderer → main | call id |
//! | `0x13` | subscribe | renderer → main | call id, channel (answered like an invoke, with an empty reply) |
//! | `0x14` | unsubscribe | renderer → main | channel |
//! | `0x20` | reply ok | main → renderer | call id, payload (the return value) |
//! | `0x21` | reply error | main → renderer | call id, payload (the handler's typed error) |
//! | `0x22` | reply failed | main → renderer | call id, a wire error (a runtime failure) |
//! | `0x23` | notice | main → renderer | a wire error about a frame that had no call id |
//! | `0x24` | event | main → renderer | channel, payload (the event's arguments) |
//!
//! Payloads and structured fields are encoded by [`crate::codec`]. The frame
//! length is checked against the limit before any buffer for the frame is
//! allocated (`transport::reader`). Each side parses only the kinds its peer
//! sends ([`Sender`]): a frame of another kind is refused from its kind
//! byte, before anything in its body is decoded. The hello's token comes
//! before the rest, so that main checks it before it decodes the contract
//! lists of a connection that may not talk to it at all.
//!
//! A wire error is an enum encoded by its variant's index; new errors are
//! appended, so an older peer of the same [`PROTOCOL_VERSION`] still reads
//! every error it knows, and reads a newer one as a malformed frame (a
//! protocol error instead of the refusal): build main and its renderers
//! with the same `ipc-runtime`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::{codec, contract::ServiceSummary, error::WireError, DisconnectCause, IpcError};

/// The version of the wire protocol: the frame layout and the handshake,
/// including how contract fingerprints are computed. Main refuses a
/// renderer that speaks another version with
/// [`IpcError::ProtocolMismatch`], naming both. Version 2: fingerprints
/// cover the wire shapes of a method's types, not only their names.
/// Version 3: each argument's shape is traced on its own. Version 4: the
/// hello's token comes first, before the contract lists. Version 5: the
/// hello lists each contract's channels and their parts without a
/// fingerprint of the whole, which main computes over the channels it
/// compares. Version 6: main's farewell (a disconnection notice) carries
/// a [`DisconnectCause`] besides its words, and a contract mismatch main's
/// shapes of the types that differ, so that the renderer can name the
/// field or variant.
pub const PROTOCOL_VERSION: u16 = 6;

/// Bytes of the length prefix.
pub(crate) const PREFIX: usize = 4;

mod kind {
    pub const HELLO: u8 = 0x01;
    pub const WELCOME: u8 = 0x02;
    pub const REJECTED: u8 = 0x03;
    pub const INVOKE: u8 = 0x10;
    pub const SEND: u8 = 0x11;
    pub const CANCEL: u8 = 0x12;
    pub const SUBSCRIBE: u8 = 0x13;
    pub const UNSUBSCRIBE: u8 = 0x14;
    pub const REPLY_OK: u8 = 0x20;
    pub const REPLY_ERR: u8 = 0x21;
    pub const REPLY_FAILED: u8 = 0x22;
    pub const NOTICE: u8 = 0x23;
    pub const EVENT: u8 = 0x24;
}

/// Who sent a frame: each side parses only what the other sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sender {
    Main,
    Renderer,
}

impl Sender {
    /// Whether frames of kind `k` come from this side.
    fn sends(self, k: u8) -> bool {
        match self {
            Sender::Renderer => matches!(
                k,
                kind::HELLO
                    | kind::INVOKE
                    | kind::SEND
                    | kind::CANCEL
                    | kind::SUBSCRIBE
                    | kind::UNSUBSCRIBE
            ),
            Sender::Main => matches!(
                k,
                kind::WELCOME
                    | kind::REJECTED
                    | kind::REPLY_OK
                    | kind::REPLY_ERR
                    | kind::REPLY_FAILED
                    | kind::NOTICE
                    | kind::EVENT
            ),
        }
    }
}

impl std::fmt::Display for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sender::Main => "main",
            Sender::Renderer => "renderers",
        })
    }
}

/// The renderer's side of the handshake, after its token (which main
/// reads first: [`Frame::Hello`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub services: Vec<ServiceSummary>,
    /// The largest frame the renderer accepts, so that main can refuse an
    /// oversize reply with an error instead of sending it.
    pub max_frame_size: u64,
    /// The API the renderer was built with (its name and channels), if it
    /// connected through an `expose!` type.
    pub api: Option<(String, Vec<String>)>,
}

/// Main's acceptance of a renderer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Welcome {
    pub id: u64,
    pub label: String,
    pub max_frame_size: u64,
    /// Calls the renderer may have in flight; its client waits beyond.
    pub max_in_flight: u64,
}

/// One decoded frame.
#[derive(Debug, Clone)]
pub(crate) enum Frame {
    /// A hello: its version read, and what follows left encoded (the
    /// token, then [`Hello`]) until main is in the handshake
    /// ([`Hello::token`]) and knows the connection may talk to it
    /// ([`Hello::decode`]): a hello after the handshake is refused unread.
    Hello {
        version: u16,
        body: Bytes,
    },
    Welcome(Welcome),
    Rejected(WireError),
    Invoke {
        id: u64,
        channel: Channel,
        payload: Bytes,
    },
    Send {
        channel: Channel,
        payload: Bytes,
    },
    Cancel {
        id: u64,
    },
    Subscribe {
        id: u64,
        channel: Channel,
    },
    Unsubscribe {
        channel: Channel,
    },
    Event {
        channel: Channel,
        payload: Bytes,
    },
    ReplyOk {
        id: u64,
        payload: Bytes,
    },
    ReplyErr {
        id: u64,
        payload: Bytes,
    },
    ReplyFailed {
        id: u64,
        error: WireError,
    },
    /// A problem with a frame that had no call id; or, as
    /// `WireError::Disconnected`, main's last frame: why it is ending the
    /// connection.
    Notice(WireError),
}

/// Why a frame body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("empty frame")]
    Empty,
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    #[error("frame kind {kind:#04x} is not sent by {from}")]
    WrongSender { kind: u8, from: Sender },
    #[error("frame kind {kind:#04x} is truncated: {need} more bytes expected")]
    Truncated { kind: u8, need: usize },
    #[error("channel name is not UTF-8")]
    ChannelNotUtf8,
    #[error("frame kind {kind:#04x} has a malformed body: {reason}")]
    Body { kind: u8, reason: String },
    /// What was wrong after the call id of a frame that carries one (an
    /// invoke or a subscribe) was read, so the error can answer that call.
    #[error("{error}")]
    InCall { id: u64, error: Box<FrameError> },
}

impl FrameError {
    /// The call id of a frame that was malformed after its id, which the
    /// error answers.
    pub(crate) fn call_id(&self) -> Option<u64> {
        match self {
            FrameError::InCall { id, .. } => Some(*id),
            _ => None,
        }
    }

    pub(crate) fn into_ipc(self) -> IpcError {
        match self {
            FrameError::WrongSender { .. } => {
                IpcError::protocol(format!("unexpected frame: {self}"))
            }
            _ => IpcError::protocol(format!("malformed frame: {self}")),
        }
    }
}

/// A body of kind `kind` that did not decode.
fn body_error(kind: u8, e: codec::CodecError) -> FrameError {
    FrameError::Body {
        kind,
        reason: e.to_string(),
    }
}

/// `error`, found after call `id` was read.
fn in_call(id: u64, error: FrameError) -> FrameError {
    FrameError::InCall {
        id,
        error: Box::new(error),
    }
}

/// A cursor over a frame body with typed, bounds-checked reads.
struct Reader {
    kind: u8,
    body: Bytes,
}

impl Reader {
    fn need(&self, n: usize) -> Result<(), FrameError> {
        if self.body.remaining() < n {
            return Err(FrameError::Truncated {
                kind: self.kind,
                need: n - self.body.remaining(),
            });
        }
        Ok(())
    }

    fn u16(&mut self) -> Result<u16, FrameError> {
        self.need(2)?;
        Ok(self.body.get_u16_le())
    }

    fn u64(&mut self) -> Result<u64, FrameError> {
        self.need(8)?;
        Ok(self.body.get_u64_le())
    }

    fn channel(&mut self) -> Result<Channel, FrameError> {
        self.need(1)?;
        let len = usize::from(self.body.get_u8());
        self.need(len)?;
        Channel::take(&mut self.body, len)
    }

    /// Fails if bytes are left over.
    fn end(&self) -> Result<(), FrameError> {
        if self.body.has_remaining() {
            return Err(FrameError::Body {
                kind: self.kind,
                reason: format!("{} unexpected bytes at the end", self.body.remaining()),
            });
        }
        Ok(())
    }

    fn rest(self) -> Bytes {
        self.body
    }

    fn value<T: serde::de::DeserializeOwned>(self) -> Result<T, FrameError> {
        codec::decode(&self.body).map_err(|e| body_error(self.kind, e))
    }
}

impl Hello {
    /// The token at the start of a hello's `body` (after its version),
    /// borrowed from it (nothing is allocated, however long it is), and
    /// the rest of the body.
    pub(crate) fn token(body: &Bytes) -> Result<(Option<&str>, Bytes), FrameError> {
        let (token, read) =
            codec::decode_str_prefix(body).map_err(|e| body_error(kind::HELLO, e))?;
        Ok((token, body.slice(read..)))
    }

    /// Decodes the rest of a hello, after its token.
    pub(crate) fn decode(rest: &[u8]) -> Result<Hello, FrameError> {
        codec::decode(rest).map_err(|e| body_error(kind::HELLO, e))
    }
}

impl Frame {
    /// A hello frame presenting `token` and `hello`.
    pub(crate) fn hello(token: Option<&str>, hello: &Hello) -> Result<Frame, codec::CodecError> {
        let mut body = codec::encode_to_vec(&token)?;
        body.extend_from_slice(&codec::encode_to_vec(hello)?);
        Ok(Frame::Hello {
            version: PROTOCOL_VERSION,
            body: Bytes::from(body),
        })
    }

    /// Parses a frame body (without its length prefix) that `from` sent.
    /// A kind that `from` never sends is refused before its body is read.
    pub(crate) fn parse(mut body: Bytes, from: Sender) -> Result<Frame, FrameError> {
        if body.is_empty() {
            return Err(FrameError::Empty);
        }
        let k = body.get_u8();
        if !from.sends(k) {
            let known = Sender::Main.sends(k) || Sender::Renderer.sends(k);
            return Err(match known {
                true => FrameError::WrongSender { kind: k, from },
                false => FrameError::UnknownKind(k),
            });
        }
        let mut r = Reader { kind: k, body };
        Ok(match k {
            kind::HELLO => {
                // The rest may be laid out differently in another version:
                // read by `Hello::token` and `Hello::decode` once main
                // has checked the version.
                let version = r.u16()?;
                Frame::Hello {
                    version,
                    body: r.rest(),
                }
            }
            kind::WELCOME => Frame::Welcome(r.value()?),
            kind::REJECTED => Frame::Rejected(r.value()?),
            kind::INVOKE => {
                let id = r.u64()?;
                let channel = r.channel().map_err(|e| in_call(id, e))?;
                Frame::Invoke {
                    id,
                    channel,
                    payload: r.rest(),
                }
            }
            kind::SEND => {
                let channel = r.channel()?;
                Frame::Send {
                    channel,
                    payload: r.rest(),
                }
            }
            kind::CANCEL => {
                let id = r.u64()?;
                r.end()?;
                Frame::Cancel { id }
            }
            kind::SUBSCRIBE => {
                let id = r.u64()?;
                let channel = r.channel().map_err(|e| in_call(id, e))?;
                r.end().map_err(|e| in_call(id, e))?;
                Frame::Subscribe { id, channel }
            }
            kind::UNSUBSCRIBE => {
                let channel = r.channel()?;
                r.end()?;
                Frame::Unsubscribe { channel }
            }
            kind::EVENT => {
                let channel = r.channel()?;
                Frame::Event {
                    channel,
                    payload: r.rest(),
                }
            }
            kind::REPLY_OK => Frame::ReplyOk {
                id: r.u64()?,
                payload: r.rest(),
            },
            kind::REPLY_ERR => Frame::ReplyErr {
                id: r.u64()?,
                payload: r.rest(),
            },
            kind::REPLY_FAILED => {
                let id = r.u64()?;
                Frame::ReplyFailed {
                    id,
                    error: r.value()?,
                }
            }
            kind::NOTICE => Frame::Notice(r.value()?),
            other => return Err(FrameError::UnknownKind(other)),
        })
    }

    /// Appends the frame body (without its length prefix) to `dst`.
    pub(crate) fn write_body(&self, dst: &mut BytesMut) -> Result<(), codec::CodecError> {
        let (head, payload) = match self {
            Frame::Hello { version, body } => {
                dst.put_u8(kind::HELLO);
                dst.put_u16_le(*version);
                dst.put_slice(body);
                return Ok(());
            }
            Frame::Welcome(w) => {
                dst.put_u8(kind::WELCOME);
                return codec::encode_into(w, dst);
            }
            Frame::Rejected(e) => {
                dst.put_u8(kind::REJECTED);
                return codec::encode_into(e, dst);
            }
            Frame::Cancel { id } => {
                dst.put_u8(kind::CANCEL);
                dst.put_u64_le(*id);
                return Ok(());
            }
            Frame::Subscribe { id, channel } => {
                dst.put_u8(kind::SUBSCRIBE);
                dst.put_u64_le(*id);
                put_channel(dst, channel.as_str());
                return Ok(());
            }
            Frame::Unsubscribe { channel } => {
                dst.put_u8(kind::UNSUBSCRIBE);
                put_channel(dst, channel.as_str());
                return Ok(());
            }
            Frame::ReplyFailed { id, error } => {
                dst.put_u8(kind::REPLY_FAILED);
                dst.put_u64_le(*id);
                return codec::encode_into(error, dst);
            }
            Frame::Notice(e) => {
                dst.put_u8(kind::NOTICE);
                return codec::encode_into(e, dst);
            }
            Frame::Invoke {
                id,
                channel,
                payload,
            } => (
                Head::Invoke {
                    id: *id,
                    channel: channel.as_str(),
                },
                payload,
            ),
            Frame::Send { channel, payload } => (
                Head::Send {
                    channel: channel.as_str(),
                },
                payload,
            ),
            Frame::Event { channel, payload } => (
                Head::Event {
                    channel: channel.as_str(),
                },
                payload,
            ),
            Frame::ReplyOk { id, payload } => (Head::ReplyOk { id: *id }, payload),
            Frame::ReplyErr { id, payload } => (Head::ReplyErr { id: *id }, payload),
        };
        head.write(dst);
        dst.put_slice(payload);
        Ok(())
    }

    /// The whole frame, length prefix included (handshake frames and
    /// tests; the hot path writes through [`Head`]).
    pub(crate) fn encode(&self, dst: &mut BytesMut) -> Result<(), codec::CodecError> {
        let start = dst.len();
        dst.put_u32(0);
        if let Err(e) = self.write_body(dst) {
            dst.truncate(start);
            return Err(e);
        }
        let Ok(len) = u32::try_from(dst.len() - start - PREFIX) else {
            let size = dst.len() - start - PREFIX;
            dst.truncate(start);
            return Err(codec::CodecError::Encode(format!(
                "a frame of {size} bytes does not fit a 32-bit length prefix"
            )));
        };
        dst[start..start + PREFIX].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }
}

/// Channels are at most 255 bytes on the wire; the macros allow far less
/// (two parts of at most 64 bytes), so longer names never reach here from
/// generated code and are cut only for hand-made frames.
fn put_channel(dst: &mut BytesMut, channel: &str) {
    let bytes = &channel.as_bytes()[..channel.len().min(255)];
    dst.put_u8(bytes.len() as u8);
    dst.put_slice(bytes);
}

/// The header of a frame that carries a payload, written in front of the
/// payload's bytes. The payload is encoded straight after it, into the
/// same buffer (see `transport::writer`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Head<'a> {
    Invoke { id: u64, channel: &'a str },
    Send { channel: &'a str },
    Event { channel: &'a str },
    ReplyOk { id: u64 },
    ReplyErr { id: u64 },
}

impl Head<'_> {
    /// Appends the kind byte and the fields before the payload.
    pub(crate) fn write(self, dst: &mut BytesMut) {
        match self {
            Head::Invoke { id, channel } => {
                dst.put_u8(kind::INVOKE);
                dst.put_u64_le(id);
                put_channel(dst, channel);
            }
            Head::Send { channel } => {
                dst.put_u8(kind::SEND);
                put_channel(dst, channel);
            }
            Head::Event { channel } => {
                dst.put_u8(kind::EVENT);
                put_channel(dst, channel);
            }
            Head::ReplyOk { id } => {
                dst.put_u8(kind::REPLY_OK);
                dst.put_u64_le(id);
            }
            Head::ReplyErr { id } => {
                dst.put_u8(kind::REPLY_ERR);
                dst.put_u64_le(id);
            }
        }
    }
}

/// A channel name received in a frame, checked to be UTF-8 once, so that
/// reading it allocates nothing: a copy when it is short (as names are),
/// otherwise a slice of the frame. A copy of a few bytes is cheaper than
/// the slice, which takes and releases a reference to the frame's buffer
/// (two atomic operations on every frame).
#[derive(Clone)]
pub(crate) struct Channel(ChannelRepr);

/// Channel names up to this long are copied out of the frame.
const CHANNEL_INLINE: usize = 46;

#[derive(Clone)]
enum ChannelRepr {
    Inline {
        len: u8,
        bytes: [u8; CHANNEL_INLINE],
    },
    Shared(Bytes),
}

impl Channel {
    /// A channel the program names itself.
    pub(crate) fn from_static(name: &'static str) -> Self {
        Channel(ChannelRepr::Shared(Bytes::from_static(name.as_bytes())))
    }

    /// Takes a name of `len` bytes from the front of `body`.
    fn take(body: &mut Bytes, len: usize) -> Result<Self, FrameError> {
        let raw = &body[..len];
        // Channel names are ASCII in practice; checking that is cheaper.
        if !raw.is_ascii() && std::str::from_utf8(raw).is_err() {
            return Err(FrameError::ChannelNotUtf8);
        }
        if len > CHANNEL_INLINE {
            return Ok(Channel(ChannelRepr::Shared(body.split_to(len))));
        }
        let mut bytes = [0; CHANNEL_INLINE];
        bytes[..len].copy_from_slice(raw);
        body.advance(len);
        Ok(Channel(ChannelRepr::Inline {
            len: len as u8,
            bytes,
        }))
    }

    /// The name's bytes (UTF-8), for lookups that need no `&str`.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            ChannelRepr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            ChannelRepr::Shared(b) => b,
        }
    }

    /// The name. Checked at parse time, so the fallback is never used.
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl PartialEq for Channel {
    fn eq(&self, other: &Channel) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Channel {}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Channel> for String {
    fn from(c: Channel) -> String {
        c.as_str().to_string()
    }
}

/// Why the byte stream could not be cut into frames.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamError {
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: u64, limit: usize },
    #[error("the peer closed the connection in the middle of a frame ({have} of {expected} bytes received)")]
    Truncated { have: usize, expected: usize },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl StreamError {
    pub(crate) fn into_ipc(self) -> IpcError {
        match self {
            StreamError::TooLarge { size, limit } => IpcError::FrameTooLarge { size, limit },
            StreamError::Truncated { .. } => {
                IpcError::disconnected(DisconnectCause::Lost, self.to_string())
            }
            StreamError::Io(e) => {
                IpcError::disconnected(DisconnectCause::Lost, format!("connection error: {e}"))
            }
        }
    }
}

/// The size of the frame body announced at the start of `src`, once the
/// whole prefix is there.
pub(crate) fn announced(src: &[u8]) -> Option<usize> {
    let prefix: [u8; PREFIX] = src.get(..PREFIX)?.try_into().ok()?;
    Some(u32::from_be_bytes(prefix) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(frame: Frame) -> Frame {
        let mut buf = BytesMut::new();
        frame.encode(&mut buf).unwrap();
        assert_eq!(announced(&buf), Some(buf.len() - PREFIX));
        buf.advance(PREFIX);
        Frame::parse(buf.freeze(), Sender::Renderer).unwrap()
    }

    #[test]
    fn invoke_round_trips() {
        let f = round_trip(Frame::Invoke {
            id: 42,
            channel: Channel::from_static("notes:get"),
            payload: Bytes::from_static(b"abc"),
        });
        match f {
            Frame::Invoke {
                id,
                channel,
                payload,
            } => {
                assert_eq!(
                    (id, channel.as_str(), &payload[..]),
                    (42, "notes:get", &b"abc"[..])
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_hello_carries_its_token_ahead_of_the_rest() {
        let hello = Hello {
            services: Vec::new(),
            max_frame_size: 1 << 20,
            api: Some(("Api".into(), vec!["a:b".into()])),
        };
        let frame = Frame::hello(Some("t0ken"), &hello).unwrap();
        let Frame::Hello { version, body } = round_trip(frame) else {
            panic!("not a hello");
        };
        let (token, rest) = Hello::token(&body).unwrap();
        assert_eq!((version, token), (PROTOCOL_VERSION, Some("t0ken")));
        assert_eq!(Hello::decode(&rest).unwrap(), hello);

        // The token is read whatever follows it: the rest is decoded only
        // once main has checked the token.
        let mut body = vec![kind::HELLO];
        body.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        body.extend_from_slice(&codec::encode_to_vec(&Some("t0ken")).unwrap());
        body.extend_from_slice(&[0xff; 32]);
        let Ok(Frame::Hello { body, .. }) = Frame::parse(Bytes::from(body), Sender::Renderer)
        else {
            panic!("the head of a hello did not parse");
        };
        let (token, rest) = Hello::token(&body).unwrap();
        assert_eq!(token, Some("t0ken"));
        assert!(Hello::decode(&rest).is_err());
    }

    #[test]
    fn each_side_parses_only_the_kinds_its_peer_sends() {
        let all = [
            kind::HELLO,
            kind::WELCOME,
            kind::REJECTED,
            kind::INVOKE,
            kind::SEND,
            kind::CANCEL,
            kind::SUBSCRIBE,
            kind::UNSUBSCRIBE,
            kind::REPLY_OK,
            kind::REPLY_ERR,
            kind::REPLY_FAILED,
            kind::NOTICE,
            kind::EVENT,
        ];
        for k in all {
            assert!(
                Sender::Main.sends(k) != Sender::Renderer.sends(k),
                "{k:#04x} must come from exactly one side"
            );
            // A body that would fail to decode: refused by its kind alone
            // on the side that never receives it.
            let body = Bytes::from([&[k][..], &[0xff; 64]].concat());
            let from = if Sender::Main.sends(k) {
                Sender::Renderer
            } else {
                Sender::Main
            };
            match Frame::parse(body, from) {
                Err(e @ FrameError::WrongSender { .. }) => assert_eq!(
                    e.to_string(),
                    format!("frame kind {k:#04x} is not sent by {from}")
                ),
                other => panic!("{k:#04x} from {from}: {other:?}"),
            }
        }
        assert!(matches!(
            Frame::parse(Bytes::from_static(&[0x7f]), Sender::Renderer),
            Err(FrameError::UnknownKind(0x7f))
        ));
    }

    #[test]
    fn a_channel_that_is_not_utf8_is_an_error() {
        for len in [2, CHANNEL_INLINE, CHANNEL_INLINE + 1, 255] {
            let mut body = vec![kind::SEND, len as u8];
            body.extend(std::iter::repeat_n(0xff, len));
            assert!(
                matches!(
                    Frame::parse(Bytes::from(body), Sender::Renderer),
                    Err(FrameError::ChannelNotUtf8)
                ),
                "{len}"
            );
        }
    }

    #[test]
    fn short_and_long_channel_names_parse_alike() {
        for len in [0, 1, CHANNEL_INLINE, CHANNEL_INLINE + 1, 255] {
            // Not ASCII, but UTF-8: two-byte `é`s, after one `a` if odd.
            let name = "a".repeat(len % 2) + &"é".repeat(len / 2);
            let mut body = vec![kind::SEND, len as u8];
            body.extend_from_slice(name.as_bytes());
            body.extend_from_slice(b"payload");
            let Frame::Send { channel, payload } =
                Frame::parse(Bytes::from(body), Sender::Renderer).unwrap()
            else {
                panic!("not a send frame");
            };
            assert_eq!(
                (channel.as_str(), &payload[..]),
                (&name[..], &b"payload"[..])
            );
            assert_eq!(channel, Channel::from_static(name.clone().leak()));
            assert_eq!(
                matches!(channel.0, ChannelRepr::Inline { .. }),
                len <= CHANNEL_INLINE
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_fail_without_panicking(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = Frame::parse(Bytes::from(body.clone()), Sender::Renderer);
            let _ = Frame::parse(Bytes::from(body), Sender::Main);
        }
    }

    #[test]
    fn fixed_size_bodies_with_bytes_left_over_are_errors() {
        let mut cancel = vec![kind::CANCEL];
        cancel.extend_from_slice(&7u64.to_le_bytes());
        assert!(matches!(
            Frame::parse(Bytes::from(cancel.clone()), Sender::Renderer),
            Ok(Frame::Cancel { id: 7 })
        ));
        let mut unsubscribe = vec![kind::UNSUBSCRIBE, 1, b'a'];
        let mut subscribe = vec![kind::SUBSCRIBE];
        subscribe.extend_from_slice(&7u64.to_le_bytes());
        subscribe.extend_from_slice(&[1, b'a']);
        for body in [&mut cancel, &mut subscribe, &mut unsubscribe] {
            body.extend_from_slice(&[0xde, 0xad]);
            let e = Frame::parse(Bytes::from(body.clone()), Sender::Renderer).unwrap_err();
            assert!(
                e.to_string().contains("2 unexpected bytes at the end"),
                "{body:?}: {e}"
            );
        }
    }

    #[test]
    fn truncated_bodies_are_errors() {
        for body in [
            &[kind::INVOKE, 1, 2][..],
            &[kind::SEND, 9, b'a'],
            &[kind::CANCEL],
            &[0x7f],
            &[],
        ] {
            assert!(
                Frame::parse(Bytes::copy_from_slice(body), Sender::Renderer).is_err(),
                "{body:?}"
            );
        }
    }
}

//! A hostile renderer: hand-made frames on a raw socket, following the wire
//! format documented in `ipc-runtime`'s `frame` module, without the
//! library's client.

use std::time::Duration;

use ipc_runtime::{codec, Api, Main, RendererId, Service, Transport, PROTOCOL_VERSION};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::UnixStream,
};

/// Frame kinds, from the wire-format table.
pub mod kind {
    /// Renderer → main handshake.
    pub const HELLO: u8 = 0x01;
    /// Main's acceptance.
    pub const WELCOME: u8 = 0x02;
    /// Main's refusal.
    pub const REJECTED: u8 = 0x03;
    /// Request.
    pub const INVOKE: u8 = 0x10;
    /// Fire and forget.
    pub const SEND: u8 = 0x11;
    /// The renderer gives up on a call.
    pub const CANCEL: u8 = 0x12;
    /// Successful reply.
    pub const REPLY_OK: u8 = 0x20;
    /// Typed-error reply.
    pub const REPLY_ERR: u8 = 0x21;
    /// Runtime-failure reply.
    pub const REPLY_FAILED: u8 = 0x22;
    /// A problem with a frame that had no call id.
    pub const NOTICE: u8 = 0x23;
    /// An event pushed by main.
    pub const EVENT: u8 = 0x24;
}

/// A contract as a hello lists it, written by hand (the real client's is
/// `ipc_runtime::__private::hello_summary`).
#[derive(Serialize, Deserialize)]
struct Summary {
    name: String,
    methods: Vec<(String, [u64; 4])>,
}

/// A hello after its token, which comes first (see `encode_hello`).
#[derive(Serialize, Deserialize)]
struct Hello<S> {
    services: Vec<S>,
    max_frame_size: u64,
    api: Option<(String, Vec<String>)>,
}

/// The handshake body for service `S`, as the real client would send it.
pub fn hello_body<S: Service>(token: Option<&str>) -> Vec<u8> {
    encode_hello(
        token,
        Hello {
            services: vec![ipc_runtime::__private::hello_summary(S::DESCRIPTOR)],
            max_frame_size: 1 << 20,
            api: None,
        },
    )
}

/// A hand-made handshake body: services by name (each with one method,
/// on `probe:echo`, a channel the probe's API reaches, so that main
/// compares it) and the API the renderer claims, by name and channels.
pub fn hello_body_claiming(services: Vec<String>, api: Option<(String, Vec<String>)>) -> Vec<u8> {
    let services = services
        .into_iter()
        .map(|name| Summary {
            name,
            methods: vec![("probe:echo".into(), [0; 4])],
        })
        .collect();
    encode_hello(
        None,
        Hello {
            services,
            max_frame_size: 1 << 20,
            api,
        },
    )
}

/// A hello body: the kind, the protocol version, the token, then the rest.
fn encode_hello<S: Serialize>(token: Option<&str>, hello: Hello<S>) -> Vec<u8> {
    let mut body = hello_head(token);
    body.extend_from_slice(&codec::encode_to_vec(&hello).unwrap());
    body
}

/// The start of a hello body, up to and including its token: what main
/// reads before it knows whether the connection may talk to it.
pub fn hello_head(token: Option<&str>) -> Vec<u8> {
    let mut body = vec![kind::HELLO];
    body.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    body.extend_from_slice(&codec::encode_to_vec(&token).unwrap());
    body
}

/// `body` with its length prefix: one frame as it travels on the wire.
pub fn framed(body: &[u8]) -> Vec<u8> {
    let mut wire = (body.len() as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(body);
    wire
}

/// An invoke frame body.
pub fn invoke_body(id: u64, channel: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![kind::INVOKE];
    body.extend_from_slice(&id.to_le_bytes());
    body.push(channel.len() as u8);
    body.extend_from_slice(channel.as_bytes());
    body.extend_from_slice(payload);
    body
}

/// A subscribe frame body (answered like a call with this id).
pub fn subscribe_body(id: u64, channel: &str) -> Vec<u8> {
    let mut body = vec![0x13];
    body.extend_from_slice(&id.to_le_bytes());
    body.push(channel.len() as u8);
    body.extend_from_slice(channel.as_bytes());
    body
}

/// A cancel frame body: the renderer gives up on call `id`.
pub fn cancel_body(id: u64) -> Vec<u8> {
    let mut body = vec![kind::CANCEL];
    body.extend_from_slice(&id.to_le_bytes());
    body
}

/// A send frame body.
pub fn send_body(channel: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![kind::SEND];
    body.push(channel.len() as u8);
    body.extend_from_slice(channel.as_bytes());
    body.extend_from_slice(payload);
    body
}

#[derive(Serialize, Deserialize)]
struct Welcome {
    id: u64,
    label: String,
    max_frame_size: u64,
    max_in_flight: u64,
}

/// Main's handshake answer, for a test playing main by hand.
pub fn welcome_body(id: u64, label: &str, max_frame_size: u64, max_in_flight: u64) -> Vec<u8> {
    let welcome = Welcome {
        id,
        label: label.to_string(),
        max_frame_size,
        max_in_flight,
    };
    let mut body = vec![kind::WELCOME];
    body.extend_from_slice(&codec::encode_to_vec(&welcome).unwrap());
    body
}

/// Plays main's side of a handshake by hand: reads the renderer's hello
/// from `rd` and welcomes it on `wr` as renderer 1 labelled `label`,
/// granting 1 MiB frames and `max_in_flight` calls.
pub async fn welcome<R, W>(rd: &mut R, wr: &mut W, label: &str, max_in_flight: u64)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let len = rd.read_u32().await.unwrap();
    let mut hello = vec![0; len as usize];
    rd.read_exact(&mut hello).await.unwrap();
    let welcome = welcome_body(1, label, 1 << 20, max_in_flight);
    wr.write_all(&framed(&welcome)).await.unwrap();
}

/// A successful reply to call `id`, carrying the encoded `value`.
pub fn reply_ok_body<T: Serialize>(id: u64, value: &T) -> Vec<u8> {
    let mut body = vec![kind::REPLY_OK];
    body.extend_from_slice(&id.to_le_bytes());
    body.extend_from_slice(&codec::encode_to_vec(value).unwrap());
    body
}

/// Main's errors in their wire form: the variants of `ipc-runtime`'s
/// private `WireError`, in its order (the codec encodes a variant by its
/// index), so that a test can check which error a frame carries, or play
/// main and send one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum WireError {
    UnknownChannel {
        channel: String,
    },
    NotAllowed {
        channel: String,
    },
    TooManyInFlight {
        limit: u64,
    },
    TooManySubscriptions {
        limit: u64,
    },
    TooManyRenderers {
        limit: u64,
    },
    BadPayload {
        channel: String,
        reason: String,
    },
    FrameTooLarge {
        size: u64,
        limit: u64,
    },
    HandshakeMismatch {
        renderer: u64,
        main: u64,
        differences: Vec<String>,
        /// Main's shapes of the types that differ, encoded apart.
        shapes: ipc_runtime::Blob,
    },
    ProtocolMismatch {
        renderer: u16,
        main: u16,
    },
    HandlerPanicked {
        channel: String,
        message: String,
    },
    Unauthorized {
        reason: String,
    },
    Protocol {
        reason: String,
    },
    Internal {
        reason: String,
    },
    Disconnected {
        reason: String,
        cause: ipc_runtime::DisconnectCause,
    },
    Encode {
        channel: String,
        reason: String,
    },
    ApiNotGranted {
        api: String,
        grant: String,
        channels: Vec<String>,
    },
}

/// A raw socket (or any byte stream) speaking frames by hand.
pub struct RawPeer<S = UnixStream> {
    /// The socket.
    pub stream: S,
}

/// One frame read back from main.
#[derive(Debug)]
pub struct RawFrame {
    /// The kind byte.
    pub kind: u8,
    /// Everything after the kind byte.
    pub rest: Vec<u8>,
}

impl RawFrame {
    /// The call id of a reply frame.
    pub fn call_id(&self) -> u64 {
        u64::from_le_bytes(self.rest[..8].try_into().unwrap())
    }

    /// The error an error-carrying frame (rejected, reply failed, notice)
    /// carries, decoded; panics on any other frame or on bytes left over.
    pub fn error(&self) -> WireError {
        let encoded = match self.kind {
            kind::REPLY_FAILED => &self.rest[8..],
            kind::NOTICE | kind::REJECTED => &self.rest[..],
            other => panic!("frame kind {other:#x} carries no error"),
        };
        codec::decode(encoded).expect("a wire error")
    }
}

/// A raw peer that `main` accepted as API `A` under `label`, after a hello
/// written by hand that declares contract `S`; and the id main gave it.
pub async fn accepted<A: Api, S: Service>(main: &Main, label: &str) -> (RawPeer, RendererId) {
    let (a, b) = UnixStream::pair().unwrap();
    accepted_over::<A, S, _>(main, label, Transport::from_unix(a), b).await
}

/// [`accepted`] over a transport of the test's choosing: main serves
/// `transport`, whose other end is `peer`.
pub async fn accepted_over<A: Api, S: Service, P: AsyncRead + AsyncWrite + Unpin>(
    main: &Main,
    label: &str,
    transport: Transport,
    peer: P,
) -> (RawPeer<P>, RendererId) {
    let mut raw = RawPeer { stream: peer };
    let accept = tokio::spawn({
        let (main, label) = (main.clone(), label.to_string());
        async move { main.accept::<A>(transport, &label).await }
    });
    raw.frame(&hello_body::<S>(None)).await;
    assert_eq!(raw.read().await.map(|f| f.kind), Some(kind::WELCOME));
    let info = accept.await.unwrap().unwrap();
    (raw, info.id)
}

impl<P: AsyncRead + AsyncWrite + Unpin> RawPeer<P> {
    /// Writes a length-prefixed frame.
    pub async fn frame(&mut self, body: &[u8]) {
        self.bytes(&framed(body)).await;
    }

    /// Writes raw bytes.
    pub async fn bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads one frame, or `None` if main closed the connection (or nothing
    /// came within five seconds).
    pub async fn read(&mut self) -> Option<RawFrame> {
        let read = async {
            let mut len = [0u8; 4];
            self.stream.read_exact(&mut len).await.ok()?;
            let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
            self.stream.read_exact(&mut body).await.ok()?;
            let kind = *body.first()?;
            Some(RawFrame {
                kind,
                rest: body[1..].to_vec(),
            })
        };
        tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .ok()?
    }

    /// Whether main has closed the connection (reads EOF within 5 s).
    pub async fn closed_by_main(&mut self) -> bool {
        let mut buf = [0u8; 64];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

//! Values that cannot be sent: an argument whose `Serialize` fails, a reply
//! whose `Serialize` fails, and a reply larger than the renderer accepts.
//! Each is a typed error for that call, and the connection goes on. And
//! owned types with an unsized part (`Box<str>`, `Cow<'static, str>`),
//! which can.

use ipc_runtime::{expose, service, transport, Connection, IpcError, Main};
use serde::{ser::Error as _, Deserialize, Serialize, Serializer};

/// Refuses to be encoded when `refuse` is set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Picky {
    /// Whether encoding fails.
    pub refuse: bool,
}

impl Serialize for Picky {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.refuse {
            return Err(S::Error::custom("this value refuses to be encoded"));
        }
        s.serialize_bool(self.refuse)
    }
}

/// Panics as it is encoded, with a message quoting main's data.
#[derive(Debug, Deserialize)]
pub struct Boom;

impl Serialize for Boom {
    fn serialize<S: Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
        panic!("db password hunter2")
    }
}

/// Methods whose values may not cross.
#[service(namespace = "enc")]
pub trait Enc {
    /// Takes a value.
    async fn put(&self, value: Picky) -> u64;
    /// Returns a value that refuses to be encoded if `refuse`.
    async fn get(&self, refuse: bool) -> Picky;
    /// Returns `len` bytes.
    async fn bytes(&self, len: u32) -> Vec<u8>;
    /// Returns a value whose `Serialize` panics.
    async fn boom(&self) -> Boom;
}

expose! {
    /// Everything `Enc` offers.
    pub struct EncApi {
        enc: Enc { put, get, bytes, boom },
    }
}

struct Handler;

impl Enc for Handler {
    async fn put(&self, _value: Picky) -> u64 {
        1
    }
    async fn get(&self, refuse: bool) -> Picky {
        Picky { refuse }
    }
    async fn boom(&self) -> Boom {
        Boom
    }
    async fn bytes(&self, len: u32) -> Vec<u8> {
        vec![7; len as usize]
    }
}

/// A renderer accepting frames of at most `max_frame` bytes.
async fn connect(max_frame: usize) -> (Main, EncClient<EncApi>) {
    connect_forwarding(max_frame, false).await
}

/// Like [`connect`], main forwarding failure details if `forward`.
async fn connect_forwarding(max_frame: usize, forward: bool) -> (Main, EncClient<EncApi>) {
    let main = Main::builder()
        .service(EncServer::new(Handler))
        .forward_failure_details(forward)
        .build()
        .unwrap();
    let (main_end, renderer_end) = transport::memory_pair(256 * 1024);
    let (accepted, conn) = tokio::join!(
        main.accept::<EncApi>(main_end, "enc"),
        Connection::builder()
            .max_frame_size(max_frame)
            .connect_as::<EncApi>(renderer_end)
    );
    accepted.unwrap();
    (main, conn.unwrap().enc)
}

#[tokio::test]
async fn an_argument_that_cannot_be_encoded_is_an_encode_error_and_nothing_is_sent() {
    let (_main, client) = connect(64 * 1024).await;
    let err = client.put(Picky { refuse: true }).await.unwrap_err();
    assert!(
        matches!(&err, IpcError::Encode { channel, reason }
            if channel == "enc:put" && reason.contains("refuses to be encoded")),
        "{err:?}"
    );
    assert_eq!(client.put(Picky { refuse: false }).await.unwrap(), 1);
}

/// A reply main cannot encode fails that call; why is main's business (its
/// value's own words, which may quote main's data), told to the renderer
/// only if main forwards failure details.
#[tokio::test]
async fn a_reply_that_cannot_be_encoded_fails_that_call_only() {
    for forward in [false, true] {
        let (_main, client) = connect_forwarding(64 * 1024, forward).await;
        let err = client.get(true).await.unwrap_err();
        let IpcError::Encode { channel, reason } = &err else {
            panic!("expected an encode error, got {err:?}");
        };
        assert_eq!(channel, "enc:get");
        assert_eq!(
            reason.contains("refuses to be encoded"),
            forward,
            "{reason}"
        );
        let err = client.boom().await.unwrap_err();
        let IpcError::Encode { reason, .. } = &err else {
            panic!("expected an encode error, got {err:?}");
        };
        assert_eq!(reason.contains("hunter2"), forward, "{reason}");
        if !forward {
            assert!(
                reason.contains("MainBuilder::forward_failure_details(true)"),
                "{reason}"
            );
        }
        assert_eq!(client.get(false).await.unwrap(), Picky { refuse: false });
    }
}

#[tokio::test]
async fn a_reply_larger_than_the_renderer_accepts_fails_that_call_only() {
    let (_main, client) = connect(4096).await;
    let err = client.bytes(10_000).await.unwrap_err();
    assert!(
        matches!(err, IpcError::FrameTooLarge { limit: 4096, size } if size > 10_000),
        "{err:?}"
    );
    assert_eq!(client.bytes(100).await.unwrap().len(), 100);
}

/// Owned types whose parameter is unsized, which serde encodes like
/// `String` and `Vec`: the macro must not take them for `str` or a slice.
#[service(namespace = "owned")]
pub trait Owned {
    /// Echoes a boxed string, upper-cased.
    async fn shout(&self, text: Box<str>) -> Box<str>;
    /// Echoes the bytes of a boxed slice, reversed.
    async fn reverse(&self, bytes: Box<[u8]>) -> Option<Box<[u16]>>;
    /// Echoes a copy-on-write string.
    async fn label(
        &self,
        text: std::borrow::Cow<'static, str>,
    ) -> Vec<std::borrow::Cow<'static, str>>;
}

expose! {
    /// Everything `Owned` offers.
    pub struct OwnedApi {
        owned: Owned { shout, reverse, label },
    }
}

struct OwnedHandler;

impl Owned for OwnedHandler {
    async fn shout(&self, text: Box<str>) -> Box<str> {
        text.to_uppercase().into()
    }

    async fn reverse(&self, bytes: Box<[u8]>) -> Option<Box<[u16]>> {
        Some(bytes.iter().rev().map(|&b| u16::from(b)).collect())
    }

    async fn label(
        &self,
        text: std::borrow::Cow<'static, str>,
    ) -> Vec<std::borrow::Cow<'static, str>> {
        vec![text, "fixed".into()]
    }
}

#[tokio::test]
async fn boxed_and_copy_on_write_values_cross() {
    let main = Main::builder()
        .service(OwnedServer::new(OwnedHandler))
        .build()
        .unwrap();
    let client = ipc_suite::connect_memory_as::<OwnedApi>(&main, "owned")
        .await
        .unwrap()
        .owned;
    assert_eq!(&*client.shout("hi".into()).await.unwrap(), "HI");
    assert_eq!(
        client
            .reverse(vec![1, 2, 3].into())
            .await
            .unwrap()
            .as_deref(),
        Some(&[3u16, 2, 1][..])
    );
    assert_eq!(client.label("x".into()).await.unwrap(), ["x", "fixed"]);
}

//! Fuzzes main's token check: a hostile peer that reached main's Unix
//! socket writes a hello of its own making. The first input byte picks
//! what comes after the kind byte and protocol version:
//!
//! - `0 mod 3`: the rest of the input as it is (the token field included);
//! - `1 mod 3`: the token main issued, then the rest of the input;
//! - `2 mod 3`: that token with one byte changed (which byte and how, from
//!   the next two input bytes; it stays as long, so main compares it), then
//!   the rest.
//!
//! Whatever it writes, main must answer within the time limit with at
//! most 64 KiB, or close; never panic (a panic hook aborts). A hello
//! without the issued token must never be welcomed, and must not use the
//! token up: a real renderer presenting it afterwards is admitted.
//!
//! Run with: `cargo +nightly fuzz run handshake_token` from the workspace
//! root.

#![no_main]

#[path = "common.rs"]
mod common;

use std::time::Duration;

use ipc_runtime::{codec, expose, service, Connection, Main, PROTOCOL_VERSION};
use libfuzzer_sys::fuzz_target;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::UnixStream,
};

#[service(namespace = "fz")]
pub trait Fuzzed {
    async fn echo(&self, text: String) -> String;
}

expose! {
    pub struct NarrowApi {
        fz: Fuzzed { echo },
    }
}

struct Handler;

impl Fuzzed for Handler {
    async fn echo(&self, text: String) -> String {
        text
    }
}

/// The largest answer main may give a hello.
const MAX_ANSWER: usize = 64 * 1024;

/// The kind byte of main's welcome (`frame::kind::WELCOME`).
const WELCOME: u8 = 0x02;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    common::runtime().block_on(async {
        let main = Main::builder()
            .service(FuzzedServer::new(Handler))
            .handshake_timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        let endpoint = main.listen_unix().unwrap();
        let token = endpoint.issue_token::<NarrowApi>("fuzz").unwrap();
        let (presented, rest): (Option<String>, &[u8]) = match mode % 3 {
            0 => (None, rest),
            1 => (Some(token.clone()), rest),
            _ => match rest {
                [at, flip, rest @ ..] => {
                    let mut bytes = token.clone().into_bytes();
                    let i = usize::from(*at) % bytes.len();
                    // Tokens are ASCII; the change keeps them so.
                    bytes[i] ^= (flip & 0x3f) | 1;
                    (Some(String::from_utf8(bytes).unwrap()), rest)
                }
                _ => return main.close().await,
            },
        };
        let mut body = vec![0x01];
        body.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        if mode % 3 != 0 {
            body.extend_from_slice(&codec::encode_to_vec(&presented).unwrap());
        }
        body.extend_from_slice(rest);
        let genuine = presented.as_deref() == Some(token.as_str());

        let mut peer = UnixStream::connect(endpoint.path()).await.unwrap();
        let exchange = async {
            let _ = peer.write_all(&common::framed(&body)).await;
            let mut prefix = [0u8; 4];
            if peer.read_exact(&mut prefix).await.is_err() {
                return;
            }
            let len = u32::from_be_bytes(prefix) as usize;
            assert!(
                len <= MAX_ANSWER,
                "main answered a {}-byte hello with {len} bytes",
                body.len()
            );
            let mut kind = [0u8; 1];
            if len > 0 && peer.read_exact(&mut kind).await.is_ok() {
                assert!(
                    genuine || kind[0] != WELCOME,
                    "main welcomed a hello without the token it issued: {body:?}"
                );
            }
        };
        let finished = tokio::time::timeout(Duration::from_secs(5), exchange).await;
        assert!(
            finished.is_ok(),
            "main neither answered nor closed within 5 s"
        );
        drop(peer);

        if !genuine {
            let renderer = tokio::time::timeout(
                Duration::from_secs(5),
                Connection::builder().connect_unix_as::<NarrowApi>(endpoint.path(), &token),
            )
            .await
            .expect("a renderer with the issued token got no answer within 5 s");
            let renderer = renderer.unwrap_or_else(|e| {
                panic!("a refused hello used up the token it did not present: {e}")
            });
            assert_eq!(renderer.fz.echo("ok".into()).await.unwrap(), "ok");
        }
        main.close().await;
    });
});

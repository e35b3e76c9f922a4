//! Fuzzes main's side of the handshake: the input is the body of a hello
//! (after its kind byte and protocol version), as a hostile renderer would
//! write it. Whatever it claims, main must answer within the time limit
//! with a welcome or a rejection of at most 64 KiB (a rejection lists a
//! bounded number of differences), or close; never panic (a panic hook
//! aborts, so the fuzzer sees it).
//!
//! Run with: `cargo +nightly fuzz run handshake` from the workspace root.

#![no_main]

#[path = "common.rs"]
mod common;

use std::time::Duration;

use ipc_runtime::{expose, service, Main, PROTOCOL_VERSION};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[service(namespace = "fz")]
pub trait Fuzzed {
    async fn echo(&self, text: String) -> String;
    #[ipc(send)]
    async fn note(&self, line: String);
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
    async fn note(&self, _line: String) {}
}

/// The largest answer main may give a hello.
const MAX_ANSWER: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    common::runtime().block_on(async {
        let main = Main::builder()
            .service(FuzzedServer::new(Handler))
            .handshake_timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        let (mut peer, accept) = common::accepting::<NarrowApi>(&main);
        let mut body = vec![0x01];
        body.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        body.extend_from_slice(data);
        let frame = common::framed(&body);
        let exchange = async {
            let _ = peer.write_all(&frame).await;
            let mut prefix = [0u8; 4];
            if peer.read_exact(&mut prefix).await.is_err() {
                return;
            }
            let len = u32::from_be_bytes(prefix) as usize;
            assert!(
                len <= MAX_ANSWER,
                "main answered a {}-byte hello with {len} bytes",
                data.len()
            );
        };
        let finished = tokio::time::timeout(Duration::from_secs(5), exchange).await;
        assert!(
            finished.is_ok(),
            "main neither answered nor closed within 5 s"
        );
        drop(peer);
        let _ = tokio::time::timeout(Duration::from_secs(5), accept).await;
        main.close().await;
    });
});

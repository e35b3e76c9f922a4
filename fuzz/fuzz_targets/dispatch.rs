//! Fuzzes main's frame decoding and dispatch: after a valid handshake, the
//! input is written to main as the raw bytes of a hostile renderer. Main
//! must answer or disconnect, never panic (a panic hook aborts, so the
//! fuzzer sees it: this service has no handler that panics on purpose) and
//! never hang (the exchange has a time limit).
//!
//! Run with: `cargo +nightly fuzz run dispatch` from the workspace root.

#![no_main]

#[path = "common.rs"]
mod common;

use std::time::Duration;

use ipc_runtime::{codec, expose, service, Main, Service};
use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub name: String,
    pub tags: Vec<String>,
    pub data: Vec<u8>,
    pub nested: Option<Box<Item>>,
}

#[service(namespace = "fz")]
pub trait Fuzzed {
    async fn echo(&self, text: String) -> String;
    async fn store(&self, item: Item, count: u32) -> Result<u64, String>;
    #[ipc(send)]
    async fn note(&self, items: Vec<(u8, String)>);
}

expose! {
    pub struct FuzzApi {
        fz: Fuzzed { echo, store, note },
    }
}

struct Handler;

impl Fuzzed for Handler {
    async fn echo(&self, text: String) -> String {
        text
    }
    async fn store(&self, item: Item, count: u32) -> Result<u64, String> {
        if count == 0 {
            return Err(item.name);
        }
        Ok(item.data.len() as u64 + u64::from(count))
    }
    async fn note(&self, items: Vec<(u8, String)>) {
        let _ = items.len();
    }
}

/// A hello after its token (none here: the transport is trusted).
#[derive(Serialize)]
struct Hello<S> {
    services: Vec<S>,
    max_frame_size: u64,
    api: Option<(String, Vec<String>)>,
}

fn hello() -> Vec<u8> {
    let d = FuzzedContract::DESCRIPTOR;
    let hello = Hello {
        services: vec![ipc_runtime::__private::hello_summary(d)],
        max_frame_size: 1 << 20,
        api: None,
    };
    let mut body = vec![0x01];
    body.extend_from_slice(&ipc_runtime::PROTOCOL_VERSION.to_le_bytes());
    body.extend_from_slice(&codec::encode_to_vec(&None::<String>).unwrap());
    body.extend_from_slice(&codec::encode_to_vec(&hello).unwrap());
    common::framed(&body)
}

fuzz_target!(|data: &[u8]| {
    common::runtime().block_on(async {
        let main = Main::builder()
            .service(FuzzedServer::new(Handler))
            .max_frame_size(64 * 1024)
            .build()
            .unwrap();
        let (mut peer, accept) = common::accepting::<FuzzApi>(&main);
        peer.write_all(&hello()).await.unwrap();
        let exchange = async {
            let _ = peer.write_all(data).await;
            let _ = peer.shutdown().await;
            let mut sink = Vec::new();
            let _ = peer.read_to_end(&mut sink).await;
        };
        let finished = tokio::time::timeout(Duration::from_secs(5), exchange).await;
        assert!(
            finished.is_ok(),
            "main neither answered nor closed within 5 s"
        );
        let _ = accept.await;
    });
});

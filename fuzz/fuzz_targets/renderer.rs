//! Fuzzes the renderer against a hostile main: the input is what "main"
//! writes on the connection. Its first byte chooses how:
//!
//! - even: main answers the hello with a genuine welcome; the renderer then
//!   has two calls waiting (ids 1 and 2), a listener being subscribed
//!   (id 3) and a `send` written; the rest of the input is then written
//!   as main's frames (replies to those ids, events, notices, garbage),
//!   and main's end is shut;
//! - odd: the rest of the input is main's whole answer to the hello (a
//!   welcome with any limits, a rejection, garbage), then main's end is
//!   shut; if the renderer connected, it makes the same calls.
//!
//! Whatever main writes, `connect` must return, and once main's end is
//! shut every call must finish (with a reply or an error) and the
//! connection must report itself closed, each within a time limit; nothing
//! may panic (a panic hook aborts, so the fuzzer sees it).
//!
//! Run with: `cargo +nightly fuzz run renderer` from the workspace root.

#![no_main]

#[path = "common.rs"]
mod common;

use std::time::Duration;

use ipc_runtime::{events, expose, service, Connection, Transport};
use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub name: String,
    pub data: Vec<u8>,
    pub nested: Option<Box<Item>>,
}

#[service(namespace = "fz")]
pub trait Fuzzed {
    async fn echo(&self, text: String) -> String;
    async fn store(&self, item: Item) -> Result<Vec<Item>, String>;
    #[ipc(send)]
    async fn note(&self, line: String);
}

#[events(namespace = "fz")]
pub trait FuzzedEvents {
    fn changed(&self, item: Item);
}

expose! {
    pub struct FuzzApi {
        fz: Fuzzed { echo, store, note },
        events: FuzzedEvents { changed },
    }
}

/// The frames the renderer writes after its hello in the even mode: two
/// invokes, a subscribe and a send.
const FRAMES_AFTER_HELLO: usize = 4;
/// How long anything may take before the renderer counts as hung.
const LIMIT: Duration = Duration::from_secs(5);

/// A genuine welcome: id 7, label "fuzz", 1 MiB frames, 64 calls in flight.
fn welcome() -> Vec<u8> {
    #[derive(Serialize)]
    struct Welcome {
        id: u64,
        label: String,
        max_frame_size: u64,
        max_in_flight: u64,
    }
    let mut body = vec![0x02];
    let welcome = Welcome {
        id: 7,
        label: "fuzz".into(),
        max_frame_size: 1 << 20,
        max_in_flight: 64,
    };
    body.extend_from_slice(&ipc_runtime::codec::encode_to_vec(&welcome).unwrap());
    common::framed(&body)
}

/// Reads one frame of the renderer's (`None` at the end or on a bad
/// length: the renderer's frames are not under test here).
async fn read_frame(main: &mut DuplexStream) -> Option<Vec<u8>> {
    let mut prefix = [0u8; 4];
    main.read_exact(&mut prefix).await.ok()?;
    let mut body = vec![0; u32::from_be_bytes(prefix) as usize];
    main.read_exact(&mut body).await.ok()?;
    Some(body)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let whole_answer = mode & 1 == 1;
    common::runtime().block_on(async {
        let (renderer_end, mut main) = tokio::io::duplex(1 << 20);
        let (r, w) = tokio::io::split(renderer_end);
        let connect = tokio::spawn(
            Connection::builder()
                .handshake_timeout(Duration::from_millis(200))
                .max_frame_size(64 * 1024)
                .connect_as::<FuzzApi>(Transport::new(r, w)),
        );
        let hello = read_frame(&mut main).await;
        assert!(hello.is_some(), "the renderer wrote no hello");
        let answer = if whole_answer {
            data.to_vec()
        } else {
            welcome()
        };
        let _ = main.write_all(&answer).await;
        if whole_answer {
            let _ = main.shutdown().await;
        }
        let connected = tokio::time::timeout(LIMIT, connect).await;
        let Ok(Ok(connected)) = connected else {
            panic!("connect did not return within {LIMIT:?}");
        };
        let Ok(api) = connected else {
            // Refused, or an answer it could not read: a typed error is
            // all that is asked.
            return;
        };
        let calls = {
            let api = api.clone();
            tokio::spawn(async move {
                let echo = api.fz.echo("hi".into());
                let item = Item {
                    name: "n".into(),
                    data: vec![1, 2, 3],
                    nested: None,
                };
                let store = api.fz.store(item);
                let listen = api.events.on_changed(|item| {
                    let _ = item.name.len();
                });
                let note = async {
                    let _ = api.fz.note("line".into()).await;
                };
                let (_, _, subscription, ()) = tokio::join!(echo, store, listen, note);
                drop(subscription);
            })
        };
        if !whole_answer {
            // Until every frame the calls write has reached main (or a
            // short wait, if some call failed before writing), so that
            // the input answers calls that are waiting.
            let _ = tokio::time::timeout(Duration::from_millis(100), async {
                for _ in 0..FRAMES_AFTER_HELLO {
                    read_frame(&mut main).await;
                }
            })
            .await;
            let _ = main.write_all(data).await;
            let _ = main.shutdown().await;
        }
        // Main keeps reading what the renderer writes, so that no write
        // of the renderer's waits for room.
        let drain = tokio::spawn(async move {
            let mut sink = [0u8; 4096];
            while matches!(main.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        let finished = tokio::time::timeout(LIMIT, calls).await;
        assert!(
            matches!(finished, Ok(Ok(()))),
            "the calls did not finish within {LIMIT:?} of main's end closing"
        );
        let closed = tokio::time::timeout(LIMIT, api.closed()).await;
        assert!(
            closed.is_ok(),
            "the connection was not closed within {LIMIT:?} of main's end closing"
        );
        drop(api);
        drain.abort();
    });
});

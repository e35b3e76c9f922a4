//! `Blob` payloads end to end: every size arrives intact in both
//! directions and in events, and a large blob that shares its frame's
//! buffer stays intact while later frames reuse the connection's buffers.
//!
//! Each test runs over the in-memory pipe and over a Unix socket: large
//! blobs leave in vectored writes from their own buffers, and a socket cuts
//! those writes wherever its buffer fills.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use ipc_runtime::{events, expose, service, Blob, Main, Target};
use ipc_suite::connect_memory_as;

/// How a test's renderer reaches main.
#[derive(Debug, Clone, Copy)]
enum Over {
    Memory,
    UnixSocket,
}

/// A renderer connected to `main` as [`StoreApi`]; the socket's endpoint,
/// if any, must live as long as the test.
async fn connect(
    main: &Main,
    label: &str,
    over: Over,
) -> (StoreApi, Option<ipc_runtime::UnixEndpoint>) {
    match over {
        Over::Memory => (connect_memory_as(main, label).await.unwrap(), None),
        Over::UnixSocket => {
            let endpoint = main.listen_unix().unwrap();
            let token = endpoint.issue_token::<StoreApi>(label).unwrap();
            let api = StoreApi::connect_unix(endpoint.path(), &token)
                .await
                .unwrap();
            (api, Some(endpoint))
        }
    }
}

#[service(namespace = "store")]
pub trait Store {
    /// Keeps `blob` and returns its length.
    async fn put(&self, blob: Blob) -> u64;
    /// A blob kept by `put`.
    async fn get(&self, index: u64) -> Option<Blob>;
    /// Returns its argument.
    async fn echo(&self, blob: Blob) -> Blob;
}

#[events(namespace = "store")]
pub trait StoreEvents {
    fn chunk(&self, blob: Blob);
}

expose! {
    pub struct StoreApi {
        store: Store { put, get, echo },
        events: StoreEvents { chunk },
    }
}

#[derive(Default)]
struct Kept(Mutex<Vec<Blob>>);

impl Store for Kept {
    async fn put(&self, blob: Blob) -> u64 {
        let len = blob.len() as u64;
        self.0.lock().unwrap().push(blob);
        len
    }

    async fn get(&self, index: u64) -> Option<Blob> {
        self.0.lock().unwrap().get(index as usize).cloned()
    }

    async fn echo(&self, blob: Blob) -> Blob {
        blob
    }
}

/// `len` bytes of a pattern that differs with `seed`.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Copied, copied, shared or not, shared.
const SIZES: [usize; 7] = [
    0,
    10,
    40_000,
    Blob::SHARE_MIN - 1,
    Blob::SHARE_MIN,
    200_001,
    1 << 20,
];

fn store_main() -> (Main, Arc<Kept>) {
    let kept = Arc::new(Kept::default());
    let main = Main::builder()
        .service(StoreServer::from_arc(Arc::clone(&kept)))
        .events::<StoreEventsContract>()
        .build()
        .unwrap();
    (main, kept)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_kept_on_both_sides_stay_intact_while_buffers_are_reused() {
    kept_blobs_stay_intact(Over::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_kept_on_both_sides_stay_intact_over_a_unix_socket() {
    kept_blobs_stay_intact(Over::UnixSocket).await;
}

async fn kept_blobs_stay_intact(over: Over) {
    let (main, kept) = store_main();
    let (api, _endpoint) = connect(&main, "blobs", over).await;
    let mut echoed = Vec::new();
    for (i, &len) in SIZES.iter().enumerate() {
        let data = pattern(len, i as u8);
        assert_eq!(
            api.store.put(Blob::from(data.clone())).await.unwrap(),
            len as u64
        );
        let back = api.store.echo(Blob::from(data.clone())).await.unwrap();
        assert_eq!(back.to_vec(), data, "echo of {len} bytes");
        echoed.push(back);
    }
    // Many more large frames each way: the connections' buffers go round
    // and round, and none of them may be the one a kept blob points into.
    let filler = Blob::from(vec![0xee; 300_000]);
    let calls: Vec<_> = (0..40).map(|_| api.store.echo(filler.clone())).collect();
    for reply in futures_util::future::join_all(calls).await {
        assert_eq!(reply.unwrap(), filler);
    }
    for (i, &len) in SIZES.iter().enumerate() {
        let data = pattern(len, i as u8);
        assert_eq!(echoed[i].to_vec(), data, "renderer's copy of {len} bytes");
        assert_eq!(
            kept.0.lock().unwrap()[i].to_vec(),
            data,
            "main's copy of {len} bytes"
        );
        let fetched = api.store.get(i as u64).await.unwrap().unwrap();
        assert_eq!(fetched.to_vec(), data, "fetched {len} bytes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_events_arrive_intact() {
    blob_events(Over::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_events_arrive_intact_over_a_unix_socket() {
    blob_events(Over::UnixSocket).await;
}

async fn blob_events(over: Over) {
    let (main, _) = store_main();
    let (api, _endpoint) = connect(&main, "listener", over).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _listening = api
        .events
        .on_chunk(move |blob| {
            let _ = tx.send(blob);
        })
        .await
        .unwrap();
    assert!(main.subscribed(api.id(), "store:chunk").await);
    let emitter = StoreEventsEmitter::new(&main, Target::Renderer(api.id()));
    for (i, &len) in SIZES.iter().enumerate() {
        assert_eq!(emitter.chunk(Blob::from(pattern(len, i as u8))), 1);
    }
    let mut received = Vec::new();
    for _ in SIZES {
        let blob = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the event arrives")
            .unwrap();
        received.push(blob);
    }
    for (i, &len) in SIZES.iter().enumerate() {
        assert_eq!(
            received[i].to_vec(),
            pattern(len, i as u8),
            "event of {len} bytes"
        );
    }
}

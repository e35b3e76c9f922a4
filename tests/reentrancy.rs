//! User code that main runs while it holds one of its locks: a reply's
//! `Serialize` runs while main holds that renderer's write queue. One that
//! emits events to other renderers must not deadlock main when two such
//! replies are encoded at once on two threads (each holding its own queue,
//! wanting the other's); the events are queued or, if the other queue
//! stays busy, dropped and counted.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use ipc_runtime::{events, expose, service, Main, RendererId, Target};
use serde::{Deserialize, Serialize};

/// A reply whose encoding emits a `ping` to every renderer, after waiting
/// (at most 2 s) until `together` encodings are under way at once.
pub struct Loud {
    n: u64,
    emit: Option<(Main, usize)>,
}

/// Encodings of `Loud` under way or done.
static ENCODING: AtomicUsize = AtomicUsize::new(0);

impl Serialize for Loud {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Some((main, together)) = &self.emit {
            ENCODING.fetch_add(1, Ordering::SeqCst);
            let started = Instant::now();
            while ENCODING.load(Ordering::SeqCst) < *together
                && started.elapsed() < Duration::from_secs(2)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            LoudEventsEmitter::new(main, Target::All).ping(self.n);
        }
        s.serialize_u64(self.n)
    }
}

impl<'de> Deserialize<'de> for Loud {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u64::deserialize(d).map(|n| Loud { n, emit: None })
    }
}

#[service(namespace = "loud")]
pub trait LoudService {
    /// Replies `n`, emitting while the reply is encoded.
    async fn shout(&self, n: u64, together: u64) -> Loud;
}

#[events(namespace = "loud")]
pub trait LoudEvents {
    /// Emitted by a reply's encoding.
    fn ping(&self, n: u64);
}

expose! {
    pub struct LoudApi {
        svc: LoudService { shout },
        events: LoudEvents { ping },
    }
}

struct Handler {
    main: Main,
}

impl LoudService for Handler {
    async fn shout(&self, n: u64, together: u64) -> Loud {
        Loud {
            n,
            emit: Some((self.main.clone(), together as usize)),
        }
    }
}

/// Runs `scenario` on a runtime of its own (two workers) in a thread of
/// its own: a deadlock that blocks both workers fails here at `limit`
/// instead of hanging the test run.
fn within<T: Send + 'static, F: std::future::Future<Output = T>>(
    limit: Duration,
    scenario: impl FnOnce() -> F + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let _ = tx.send(rt.block_on(scenario()));
        rt.shutdown_background();
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("main deadlocked: nothing finished within {limit:?}"))
}

fn loud_main() -> Main {
    let builder = Main::builder();
    let main = builder.main();
    builder
        .service(LoudServiceServer::new(Handler { main }))
        .events::<LoudEventsContract>()
        .build()
        .unwrap()
}

#[test]
fn replies_emitting_to_each_others_renderer_at_once_do_not_deadlock() {
    let (answers, accounted) = within(Duration::from_secs(20), || async {
        let main = loud_main();
        let a = ipc_suite::connect_memory_as::<LoudApi>(&main, "a")
            .await
            .unwrap();
        let b = ipc_suite::connect_memory_as::<LoudApi>(&main, "b")
            .await
            .unwrap();
        let _a_pings = a.events.on_ping(|_| {}).await.unwrap();
        let _b_pings = b.events.on_ping(|_| {}).await.unwrap();
        // Both replies are encoded at once, each emitting to both renderers.
        let (one, two) = tokio::join!(a.svc.shout(1, 2), b.svc.shout(2, 2));
        // Every ping was queued or counted as dropped.
        let accounted: u64 = [a.id(), b.id()]
            .into_iter()
            .map(|id: RendererId| {
                let stats = main.renderer_stats(id).unwrap();
                stats.events_sent + stats.events_dropped
            })
            .sum();
        ((one.unwrap().n, two.unwrap().n), accounted)
    });
    assert_eq!(answers, (1, 2));
    assert_eq!(accounted, 4, "two pings to each of two renderers");
}

#[test]
fn many_replies_emitting_to_all_from_two_renderers_do_not_deadlock() {
    within(Duration::from_secs(60), || async {
        let main = loud_main();
        let mut renderers = Vec::new();
        for label in ["a", "b"] {
            let api = ipc_suite::connect_memory_as::<LoudApi>(&main, label)
                .await
                .unwrap();
            renderers.push(tokio::spawn(async move {
                let _pings = api.events.on_ping(|_| {}).await.unwrap();
                for round in 0..200u64 {
                    let calls = (0..16).map(|k| api.svc.shout(round * 16 + k, 0));
                    for (k, reply) in futures_util::future::join_all(calls)
                        .await
                        .into_iter()
                        .enumerate()
                    {
                        assert_eq!(reply.unwrap().n, round * 16 + k as u64);
                    }
                }
            }));
        }
        for renderer in renderers {
            renderer.await.unwrap();
        }
    });
}

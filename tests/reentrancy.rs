//! User code that main runs while it holds one of its locks: a reply's
//! `Serialize` runs while main holds that renderer's write queue. One that
//! emits events to other renderers must not deadlock main when two such
//! replies are encoded at once on two threads (each holding its own queue,
//! wanting the other's), nor lose the events: one whose queue is taken (by
//! another thread, or by this one encoding for that very renderer) is set
//! aside and joins that queue at its next use.

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

/// The next ping `pings` gets, waiting at most 5 s.
async fn next(pings: &mut ipc_runtime::EventStream<u64>) -> Option<u64> {
    tokio::time::timeout(Duration::from_secs(5), pings.recv())
        .await
        .ok()
        .flatten()
}

#[test]
fn replies_emitting_to_each_others_renderer_at_once_do_not_deadlock() {
    let (answers, received, dropped) = within(Duration::from_secs(20), || async {
        let main = loud_main();
        let a = ipc_suite::connect_memory_as::<LoudApi>(&main, "a")
            .await
            .unwrap();
        let b = ipc_suite::connect_memory_as::<LoudApi>(&main, "b")
            .await
            .unwrap();
        let mut a_pings = a.events.stream_ping().await.unwrap();
        let mut b_pings = b.events.stream_ping().await.unwrap();
        // Both replies are encoded at once, each emitting to both renderers.
        let (one, two) = tokio::join!(a.svc.shout(1, 2), b.svc.shout(2, 2));
        // Each renderer gets both pings: the other's, and the one its own
        // reply emitted (set aside, after the reply).
        let mut received = Vec::new();
        for rx in [&mut a_pings, &mut b_pings] {
            let mut both = [next(rx).await, next(rx).await];
            both.sort();
            received.push(both);
        }
        let dropped =
            [a.id(), b.id()].map(|id: RendererId| main.renderer_stats(id).unwrap().events_dropped);
        ((one.unwrap().n, two.unwrap().n), received, dropped)
    });
    assert_eq!(answers, (1, 2));
    assert_eq!(received, [[Some(1), Some(2)], [Some(1), Some(2)]]);
    assert_eq!(dropped, [0, 0]);
}

/// A reply whose encoding is slow (and emits nothing).
pub struct Slow(u64);

static SLOW_ENCODING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Serialize for Slow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SLOW_ENCODING.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        SLOW_ENCODING.store(false, Ordering::SeqCst);
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Slow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u64::deserialize(d).map(Slow)
    }
}

/// A reply whose encoding emits a ping to one renderer once a `Slow`
/// encoding is under way.
pub struct Notify {
    n: u64,
    to: Option<(Main, RendererId)>,
}

impl Serialize for Notify {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Some((main, to)) = &self.to {
            let started = Instant::now();
            while !SLOW_ENCODING.load(Ordering::SeqCst)
                && started.elapsed() < Duration::from_secs(2)
            {
                std::thread::yield_now();
            }
            LoudEventsEmitter::new(main, Target::Renderer(*to)).ping(self.n);
        }
        s.serialize_u64(self.n)
    }
}

impl<'de> Deserialize<'de> for Notify {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u64::deserialize(d).map(|n| Notify { n, to: None })
    }
}

#[service(namespace = "busy")]
pub trait Busy {
    /// Replies `n`, pinging renderer `to` while the reply is encoded.
    async fn notify(&self, n: u64, to: u64) -> Notify;
    /// Replies `n`, slowly.
    async fn slow(&self, n: u64) -> Slow;
}

expose! {
    pub struct BusyApi {
        svc: Busy { notify, slow },
        events: LoudEvents { ping },
    }
}

impl Busy for Handler {
    async fn notify(&self, n: u64, to: u64) -> Notify {
        let to = self.main.renderer_id(to).unwrap();
        Notify {
            n,
            to: Some((self.main.clone(), to)),
        }
    }
    async fn slow(&self, n: u64) -> Slow {
        Slow(n)
    }
}

/// An event emitted from a reply's encoding to a renderer whose queue is
/// merely busy (encoding a slow reply that emits nothing) arrives.
#[test]
fn an_event_to_a_renderer_whose_queue_is_busy_arrives() {
    let (ping, dropped) = within(Duration::from_secs(20), || async {
        let builder = Main::builder();
        let main = builder.main();
        let main = builder
            .service(BusyServer::new(Handler { main }))
            .events::<LoudEventsContract>()
            .build()
            .unwrap();
        let a = ipc_suite::connect_memory_as::<BusyApi>(&main, "a")
            .await
            .unwrap();
        let b = ipc_suite::connect_memory_as::<BusyApi>(&main, "b")
            .await
            .unwrap();
        let (tx, mut b_pings) = tokio::sync::mpsc::unbounded_channel();
        let _guard = b
            .events
            .on_ping(move |n| {
                let _ = tx.send(n);
            })
            .await
            .unwrap();
        let (one, two) = tokio::join!(a.svc.notify(7, b.id().get()), b.svc.slow(1));
        assert_eq!((one.unwrap().n, two.unwrap().0), (7, 1));
        let ping = tokio::time::timeout(Duration::from_secs(5), b_pings.recv()).await;
        (
            ping.ok().flatten(),
            main.renderer_stats(b.id()).unwrap().events_dropped,
        )
    });
    assert_eq!((ping, dropped), (Some(7), 0));
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

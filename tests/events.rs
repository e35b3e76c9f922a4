//! Main → renderer events across real processes: to one renderer, to a
//! group, to all, to a group or all but one; ordering; listener guards;
//! streams; cleanup after SIGKILL.

use std::{
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};

use ipc_runtime::{Main, RendererId, RendererProcess, Target};
use ipc_suite::{connect_memory, eventually, poll_once, probe_main, ProbeApi, ProbeEventsEmitter};
use tokio::io::{AsyncBufReadExt, BufReader};

const RENDERER: &str = env!("CARGO_BIN_EXE_ipc-test-renderer");

async fn spawn(main: &Main, mode: &str, label: &str) -> RendererProcess {
    let mut command = Command::new(RENDERER);
    command.arg(mode).stdout(std::process::Stdio::piped());
    main.spawn_renderer::<ProbeApi>(command, label)
        .await
        .unwrap()
}

/// Waits until main records renderer `id` as listening to `channels`.
async fn listening(main: &Main, id: RendererId, channels: &[&str]) {
    for channel in channels {
        let subscribed =
            tokio::time::timeout(Duration::from_secs(10), main.subscribed(id, channel));
        assert!(subscribed.await.unwrap(), "{id} subscribed to {channel}");
    }
}

async fn output(mut child: RendererProcess) -> String {
    let mut stdout = child.child_mut().stdout.take().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the renderer exits")
        .unwrap();
    let mut out = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut out)
        .await
        .unwrap();
    assert!(status.success(), "renderer failed: {status}");
    out.trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_one_renderer_a_group_or_all_in_order() {
    let (main, _) = probe_main();
    let a = spawn(&main, "listen", "a").await;
    let b = spawn(&main, "listen", "b").await;
    let c = spawn(&main, "listen", "c").await;
    for r in [&a, &b, &c] {
        listening(&main, r.id(), &["probe:tick", "probe:note"]).await;
    }
    assert!(main.join_group(a.id(), "editors"));
    assert!(main.join_group(b.id(), "editors"));

    ProbeEventsEmitter::new(&main, Target::Renderer(a.id())).tick(1);
    ProbeEventsEmitter::new(&main, Target::Group("editors".into())).tick(2);
    let all = ProbeEventsEmitter::new(&main, Target::All);
    all.tick(3);
    ProbeEventsEmitter::new(&main, Target::GroupExcept("editors".into(), a.id())).tick(4);
    ProbeEventsEmitter::new(&main, Target::AllExcept(b.id())).tick(5);
    // Ordering: a long run to one renderer arrives as emitted.
    let to_c = ProbeEventsEmitter::new(&main, c.id());
    for n in 100..400 {
        to_c.tick(n);
    }
    all.note("stop".into());

    let expected_c: Vec<String> = ["3", "5"]
        .into_iter()
        .map(String::from)
        .chain((100..400).map(|n| n.to_string()))
        .collect();
    assert_eq!(output(a).await, "1,2,3,5");
    assert_eq!(output(b).await, "2,3,4");
    assert_eq!(output(c).await, expected_c.join(","));
}

#[tokio::test]
async fn a_dropped_guard_stops_deliveries_and_main_stops_sending() {
    let (main, _) = probe_main();
    let api = connect_memory(&main, "listener").await.unwrap();
    let (guard, mut rx) = ipc_suite::ticks_of(&api).await;
    // Once `on_tick` returns, main has recorded the subscription.
    let stats = main.renderer_stats(api.id()).unwrap();
    assert_eq!(stats.subscriptions, ["probe:tick"]);
    let emitter = ProbeEventsEmitter::new(&main, Target::All);
    emitter.tick(1);
    assert_eq!(rx.recv().await, Some(1));
    let sent_before = main.renderer_stats(api.id()).unwrap().events_sent;
    assert_eq!(sent_before, 1);

    drop(guard);
    // Main learns of it and stops sending: observed on main.
    assert!(
        eventually(Duration::from_secs(5), || main
            .renderer_stats(api.id())
            .is_some_and(|s| s.subscriptions.is_empty()))
        .await
    );
    emitter.tick(2);
    emitter.tick(3);
    assert_eq!(
        main.renderer_stats(api.id()).unwrap().events_sent,
        sent_before
    );
    // And nothing more is delivered locally (the sender side was dropped).
    assert_eq!(rx.recv().await, None);
}

/// Events main sent before it disconnected a renderer are all delivered
/// there, in order, before its listeners end: the dispatcher, slowed by
/// its callback, is still working through them when the connection
/// closes. Repeated, since the close meets the dispatcher at a different
/// point each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_sent_just_before_a_disconnect_are_all_delivered() {
    const EVENTS: u64 = 50;
    for round in 0..20 {
        let (main, _) = probe_main();
        let api = connect_memory(&main, "closing").await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _guard = api
            .events
            .on_tick(move |n| {
                std::thread::sleep(Duration::from_micros(200));
                let _ = tx.send(n);
            })
            .await
            .unwrap();
        let emitter = ProbeEventsEmitter::new(&main, Target::Renderer(api.id()));
        for n in 0..EVENTS {
            emitter.tick(n);
        }
        assert!(main.disconnect(api.id()));
        let got = received_until_listeners_end(&mut rx).await;
        assert_eq!(got, (0..EVENTS).collect::<Vec<_>>(), "round {round}");
    }
}

/// A detached listener hears every event until the connection closes,
/// and is dropped then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_listener_lasts_as_long_as_the_connection() {
    let (main, _) = probe_main();
    let api = connect_memory(&main, "detached").await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    api.events
        .on_tick(move |n| {
            let _ = tx.send(n);
        })
        .await
        .unwrap()
        .detach();
    assert_eq!(
        main.renderer_stats(api.id()).unwrap().subscriptions,
        ["probe:tick"]
    );
    let emitter = ProbeEventsEmitter::new(&main, Target::Renderer(api.id()));
    for n in 0..3 {
        emitter.tick(n);
    }
    assert!(main.disconnect(api.id()));
    assert_eq!(received_until_listeners_end(&mut rx).await, [0, 1, 2]);
}

/// What a listener's callback sent on `rx` until the callback, and the
/// sender it holds, were dropped with the connection's listeners.
async fn received_until_listeners_end(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<u64>,
) -> Vec<u64> {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut got = Vec::new();
        while let Some(n) = rx.recv().await {
            got.push(n);
        }
        got
    })
    .await
    .expect("the listener ends once the connection closes")
}

#[tokio::test]
async fn a_renderer_without_listeners_gets_no_event_frames() {
    let (main, _) = probe_main();
    let quiet = connect_memory(&main, "quiet").await.unwrap();
    let loud = connect_memory(&main, "loud").await.unwrap();
    let _guard = loud.events.on_note(|_| {}).await.unwrap();
    ProbeEventsEmitter::new(&main, Target::All).note("hello".into());
    assert_eq!(main.renderer_stats(loud.id()).unwrap().events_sent, 1);
    assert_eq!(main.renderer_stats(quiet.id()).unwrap().events_sent, 0);
}

#[tokio::test]
async fn two_listeners_on_one_event_share_one_subscription() {
    let (main, _) = probe_main();
    let api = connect_memory(&main, "twice").await.unwrap();
    let first = api.events.on_tick(|_| {}).await.unwrap();
    let second = api.events.on_tick(|_| {}).await.unwrap();
    drop(first);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        main.renderer_stats(api.id()).unwrap().subscriptions,
        ["probe:tick"]
    );
    drop(second);
    assert!(
        eventually(Duration::from_secs(5), || main
            .renderer_stats(api.id())
            .is_some_and(|s| s.subscriptions.is_empty()))
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_renderer_releases_everything_and_others_carry_on() {
    let (main, handler) = probe_main();
    let other = connect_memory(&main, "survivor").await.unwrap();
    let (_guard, mut rx) = ipc_suite::ticks_of(&other).await;

    let mut victim = spawn(&main, "busy", "victim").await;
    let stdout = victim.child_mut().stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("ready"));
    let id = victim.id();
    listening(&main, id, &["probe:tick"]).await;
    assert!(eventually(Duration::from_secs(5), || main.in_flight(id) == Some(1)).await);
    assert_eq!(main.renderer_count(), 2);

    victim.kill().await.unwrap();

    tokio::time::timeout(Duration::from_secs(5), main.disconnected(id))
        .await
        .expect("main notices the death");
    assert_eq!(main.renderer_count(), 1);
    assert_eq!(main.in_flight(id), None);
    assert!(main.renderer_stats(id).is_none());
    assert!(
        eventually(Duration::from_secs(5), || handler.aborted() == 1).await,
        "its call was aborted"
    );
    // Pushes to all skip the dead renderer without error; the survivor is served.
    ProbeEventsEmitter::new(&main, Target::All).tick(7);
    assert_eq!(rx.recv().await, Some(7));
    assert_eq!(other.probe.echo("alive".into()).await.unwrap(), "alive");
}

/// A note whose encoding emits a tick: an event emitted while another is
/// being encoded (main encodes small events in a buffer of its thread).
struct NoteThatTicks {
    main: Main,
    text: &'static str,
}

impl serde::Serialize for NoteThatTicks {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ProbeEventsEmitter::new(&self.main, Target::All).tick(7);
        // The note's arguments: a tuple of one string.
        serde::Serialize::serialize(&(self.text,), s)
    }
}

#[tokio::test]
async fn an_event_emitted_while_another_is_encoded_reaches_the_renderer_too() {
    let (main, _) = probe_main();
    let api = connect_memory(&main, "nested").await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let ticks = tx.clone();
    let _tick = api
        .events
        .on_tick(move |n| {
            let _ = ticks.send(n.to_string());
        })
        .await
        .unwrap();
    let _note = api
        .events
        .on_note(move |text| {
            let _ = tx.send(text);
        })
        .await
        .unwrap();
    let note = NoteThatTicks {
        main: main.clone(),
        text: "outer",
    };
    let core = ipc_runtime::EmitterCore::new(&main, Target::All);
    assert_eq!(core.emit("probe:note", &note), 1);
    // Then one more of each, with the thread's buffer free again.
    assert_eq!(core.emit("probe:note", &("after",)), 1);
    ProbeEventsEmitter::new(&main, Target::All).tick(8);
    let mut got = Vec::new();
    for _ in 0..4 {
        let next = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        got.push(next.expect("four events arrive").unwrap());
    }
    assert_eq!(got, ["7", "outer", "after", "8"]);
}

/// A listener that joins a channel while its first listener's
/// subscription is still on its way to main returns only once main has
/// it: an event emitted right after reaches it.
#[tokio::test]
async fn a_second_listener_returns_only_once_main_has_subscribed() {
    let (main, _) = probe_main();
    let api = connect_memory(&main, "second").await.unwrap();
    let mut first = Box::pin(api.events.on_tick(|_| {}));
    assert!(poll_once(&mut first).await.is_none(), "subscription queued");
    let (_second, mut rx) = ipc_suite::ticks_of(&api).await;
    let recorded = main.renderer_stats(api.id()).unwrap().subscriptions;
    assert_eq!(recorded, ["probe:tick"]);
    ProbeEventsEmitter::new(&main, Target::All).tick(1);
    let _first = first.await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    assert!(matches!(got, Ok(Some(1))), "{got:?}");
}

/// A listener is never handed a subscription main refused: one that joins
/// while the first listener's subscription is pending fails as main
/// refuses it, and once main has room a later listener subscribes.
#[tokio::test]
async fn a_listener_is_never_given_a_subscription_main_refused() {
    let mut limits = ipc_runtime::Limits::default();
    limits.max_subscriptions = 1;
    let (main, _) = ipc_suite::probe_main_with(|b| b.limits(limits));
    let api = connect_memory(&main, "refused").await.unwrap();
    let note = api.events.on_note(|_| {}).await.unwrap(); // main's one slot
    let mut first = Box::pin(api.events.on_tick(|_| {}));
    assert!(poll_once(&mut first).await.is_none(), "subscription queued");
    let second = api.events.on_tick(|_| {}).await;
    assert!(
        matches!(
            second,
            Err(ipc_runtime::IpcError::TooManySubscriptions { limit: 1 })
        ),
        "{second:?}"
    );
    let first = first.await;
    assert!(
        matches!(
            first,
            Err(ipc_runtime::IpcError::TooManySubscriptions { limit: 1 })
        ),
        "{first:?}"
    );
    // With room again, a new listener gets main's subscription.
    drop(note);
    assert!(
        eventually(Duration::from_secs(5), || main
            .renderer_stats(api.id())
            .is_some_and(|s| s.subscriptions.is_empty()))
        .await
    );
    let (_third, mut rx) = ipc_suite::ticks_of(&api).await;
    ProbeEventsEmitter::new(&main, Target::All).tick(9);
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    assert!(matches!(got, Ok(Some(9))), "{got:?}");
}

/// A callback may own another listener's guard: when the connection
/// closes, ending the listeners drops it without deadlocking the renderer
/// (on a current-thread runtime, that would freeze everything).
/// Runs the future `scenario` makes on a current-thread runtime of its
/// own, on a thread of its own, and returns its output; panics with
/// `expect` if none comes within 10 s. A frozen runtime then fails the
/// test instead of hanging the test binary.
fn on_own_runtime<T, F>(scenario: impl FnOnce() -> F + Send + 'static, expect: &str) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = tx.send(rt.block_on(scenario()));
    });
    rx.recv_timeout(Duration::from_secs(10)).expect(expect)
}

#[test]
fn a_listener_owning_another_guard_is_ended_on_close_without_freezing() {
    on_own_runtime(
        || async {
            let (main, _) = probe_main();
            let api = connect_memory(&main, "nested").await.unwrap();
            let tick = api.events.on_tick(|_| {}).await.unwrap();
            let _note = api
                .events
                .on_note(move |_| {
                    let _keep = &tick;
                })
                .await
                .unwrap();
            assert!(main.disconnect(api.id()));
            api.closed().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        },
        "the renderer's runtime kept running after the connection closed",
    );
}

/// A reply value whose `Serialize` emits an event to the renderer it
/// answers: main encodes replies into the renderer's queue under its lock,
/// so that event is set aside and follows the reply; main used to wait for
/// itself forever, then refused the event.
pub mod reentry {
    use std::sync::OnceLock;

    use ipc_runtime::{events, expose, service, Main, Target};
    use serde::{Deserialize, Serialize};

    pub static MAIN: OnceLock<Main> = OnceLock::new();

    #[derive(Debug, Deserialize)]
    pub struct Loud(pub u64);

    impl Serialize for Loud {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            if let Some(main) = MAIN.get() {
                ReentryEventsEmitter::new(main, Target::All).served(self.0);
            }
            s.serialize_newtype_struct("Loud", &self.0)
        }
    }

    #[service(namespace = "reentry")]
    pub trait Reentry {
        async fn poke(&self, n: u64) -> Loud;
    }

    #[events(namespace = "reentry")]
    pub trait ReentryEvents {
        fn served(&self, n: u64);
    }

    expose! {
        pub struct ReentryApi {
            svc: Reentry { poke },
            events: ReentryEvents { served },
        }
    }

    pub struct Handler;

    impl Reentry for Handler {
        async fn poke(&self, n: u64) -> Loud {
            Loud(n)
        }
    }
}

#[test]
fn an_event_emitted_while_its_renderers_reply_is_encoded_does_not_freeze_main() {
    use reentry::{Handler, ReentryApi, ReentryEventsContract, ReentryServer, MAIN};
    let (reply, dropped) = on_own_runtime(
        || async {
            let main = Main::builder()
                .service(ReentryServer::new(Handler))
                .events::<ReentryEventsContract>()
                .build()
                .unwrap();
            MAIN.set(main.clone()).ok().unwrap();
            let api = ipc_suite::connect_memory_as::<ReentryApi>(&main, "r")
                .await
                .unwrap();
            let (tx, mut served) = tokio::sync::mpsc::unbounded_channel();
            let _listening = api
                .events
                .on_served(move |n| {
                    let _ = tx.send(n);
                })
                .await
                .unwrap();
            let reply = api.svc.poke(7).await.map(|loud| loud.0);
            let event = tokio::time::timeout(Duration::from_secs(5), served.recv()).await;
            let dropped = main.renderer_stats(api.id()).unwrap().events_dropped;
            (reply, (event.ok().flatten(), dropped))
        },
        "main answered instead of freezing",
    );
    assert_eq!(reply.unwrap(), 7);
    assert_eq!(
        dropped,
        (Some(7), 0),
        "the event emitted from the reply's encoding arrives"
    );
}

/// A renderer whose listener falls behind for a while (here, its first
/// call blocks the dispatcher for 300 ms) loses no event main queued for
/// it: once the renderer's own queue is full, it stops reading, main's
/// queue fills, and main holds back (the emitter below retries what main
/// did not queue). Every event arrives, once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_falls_behind_loses_no_event_main_queued() {
    const EVENTS: u64 = 20_000;
    let (main, _) = probe_main();
    let api = connect_memory(&main, "slow-at-first").await.unwrap();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let _guard = api
        .events
        .on_tick({
            let got = got.clone();
            move |n| {
                if n == 0 {
                    // Hands this worker's other tasks (the reader may be
                    // among them) to another thread while it sleeps, so
                    // that the reader keeps reading meanwhile.
                    tokio::task::block_in_place(|| std::thread::sleep(Duration::from_millis(300)));
                }
                got.lock().unwrap().push(n);
            }
        })
        .await
        .unwrap();
    let emitter = ProbeEventsEmitter::new(&main, Target::All);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    while n < EVENTS {
        if emitter.tick(n) == 1 {
            n += 1;
        } else {
            // Main's queue for the renderer is full: let it drain.
            assert!(
                tokio::time::Instant::now() < deadline,
                "main could not queue event {n} for 20 s: the renderer stopped reading"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let all = eventually(Duration::from_secs(10), || {
        got.lock().unwrap().len() as u64 >= EVENTS
    })
    .await;
    let got = got.lock().unwrap().clone();
    assert!(all, "the listener got {} of {EVENTS} events", got.len());
    assert_eq!(got, (0..EVENTS).collect::<Vec<_>>());
}

/// `Main::subscribed` answers `false` at once for a channel the renderer
/// could never listen to (a misspelt name, a method's channel, an event
/// outside its API) instead of waiting for ever.
#[tokio::test]
async fn subscribed_is_false_at_once_for_a_channel_the_renderer_cannot_listen_to() {
    let (main, _) = probe_main();
    let narrow = ipc_suite::connect_memory_as::<ipc_suite::NarrowApi>(&main, "narrow")
        .await
        .unwrap();
    let _tick = narrow.events.on_tick(|_| {}).await.unwrap();
    let id = narrow.id();
    for channel in ["probe:tik", "probe:add", "probe:note"] {
        let answer = tokio::time::timeout(Duration::from_secs(1), main.subscribed(id, channel))
            .await
            .unwrap_or_else(|_| panic!("`{channel}` waited"));
        assert!(!answer, "{channel}");
    }
    assert!(main.subscribed(id, "probe:tick").await);
}

/// A listener's guard does not keep the connection open: dropping every
/// handle of the API closes it and ends the listener (its callback, and
/// what it holds, are dropped), even when a callback owns its own guard,
/// which would otherwise keep the connection open for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_api_closes_the_connection_and_ends_its_listeners() {
    let (main, _) = probe_main();
    let api = connect_memory(&main, "guard-only").await.unwrap();
    let id = api.id();
    let (guard, mut rx) = ipc_suite::ticks_of(&api).await;
    // A second listener that owns its own guard (to unsubscribe itself
    // later, say).
    let own: Arc<Mutex<Option<ipc_runtime::Subscription>>> = Arc::default();
    let note = api
        .events
        .on_note({
            let own = Arc::clone(&own);
            move |text| {
                if text == "enough" {
                    own.lock().unwrap().take();
                }
            }
        })
        .await
        .unwrap();
    *own.lock().unwrap() = Some(note);
    drop(api);
    let gone = tokio::time::timeout(Duration::from_secs(5), main.disconnected(id)).await;
    assert!(gone.is_ok(), "the connection closes with the API's handles");
    // The tick listener ended: its callback, and the sender it held, are gone.
    let ended = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    assert_eq!(ended.unwrap(), None);
    drop(guard);
}

/// Emitting never waits, so a burst larger than a renderer's queue loses
/// events even to a renderer that keeps up. `Main::room_for_events`
/// between bursts of at most half the queue loses none: a real renderer
/// process receives all 5000 ticks, in order, and main counts no drop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_paced_by_room_for_events_lose_nothing() {
    let (main, _) = ipc_suite::probe_main_with(|b| {
        let mut limits = ipc_runtime::Limits::default();
        limits.max_queued_frames = 256;
        b.limits(limits)
    });
    let renderer = spawn(&main, "listen", "paced").await;
    let id = renderer.id();
    listening(&main, id, &["probe:tick", "probe:note"]).await;
    let ticks = ProbeEventsEmitter::new(&main, Target::All);
    let ticks_sent: Vec<u64> = (0..5000).collect();
    for burst in ticks_sent.chunks(128) {
        main.room_for_events(&Target::All).await;
        for n in burst {
            assert_eq!(ticks.tick(*n), 1, "tick {n} queued");
        }
    }
    main.room_for_events(&Target::All).await;
    ticks.note("stop".into());
    let stats = main.renderer_stats(id).unwrap();
    assert_eq!(stats.events_dropped, 0);
    let expected: Vec<String> = ticks_sent.iter().map(u64::to_string).collect();
    assert_eq!(output(renderer).await, expected.join(","));
}

/// `Main::room_for_events` waits as long as a renderer does not read, and
/// returns once it is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_for_events_waits_for_a_renderer_that_does_not_read_until_it_goes() {
    use ipc_suite::raw::{accepted, kind, subscribe_body};
    let (main, _) = ipc_suite::probe_main_with(|b| {
        let mut limits = ipc_runtime::Limits::default();
        limits.max_queued_frames = 8;
        b.limits(limits)
    });
    let (mut raw, id) = accepted::<ProbeApi, ipc_suite::ProbeContract>(&main, "deaf").await;
    raw.frame(&subscribe_body(1, "probe:note")).await;
    assert_eq!(raw.read().await.unwrap().kind, kind::REPLY_OK);
    // Large notes fill the socket, then the queue: the peer reads nothing.
    let notes = ProbeEventsEmitter::new(&main, Target::Renderer(id));
    let big = "n".repeat(100 * 1024);
    // Full once a note is still refused after the writer had time to
    // move what it could into the socket.
    loop {
        if notes.note(big.clone()) == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if notes.note(big.clone()) == 0 {
                break;
            }
        }
    }
    let deaf = Target::Renderer(id);
    let wait = tokio::time::timeout(Duration::from_millis(300), main.room_for_events(&deaf));
    assert!(wait.await.is_err(), "no room while the peer does not read");
    let waiting = tokio::spawn({
        let main = main.clone();
        async move { main.room_for_events(&Target::Renderer(id)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(main.disconnect(id));
    tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the wait ends with the renderer")
        .unwrap();
    drop(raw);
}

/// `stream_<event>()` across real processes: a renderer reading ticks and
/// notes as streams gets every tick in order, and its streams end once
/// main closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_deliver_in_order_and_end_when_main_closes() {
    let (main, _) = probe_main();
    let stopped = spawn(&main, "stream", "stopped").await;
    let ended = spawn(&main, "stream", "ended").await;
    for r in [&stopped, &ended] {
        listening(&main, r.id(), &["probe:tick", "probe:note"]).await;
    }
    let emitter = ProbeEventsEmitter::new(&main, Target::All);
    for n in 0..100 {
        emitter.tick(n);
    }
    ProbeEventsEmitter::new(&main, Target::Renderer(stopped.id())).note("stop".into());
    let all: Vec<String> = (0..100).map(|n: u64| n.to_string()).collect();
    assert_eq!(output(stopped).await, all.join(","));
    main.close().await;
    assert_eq!(output(ended).await, format!("{}\nended", all.join(",")));
}

/// A detached listener whose callback calls main back through a weak
/// handle on its API: the calls work while the app holds the API, and
/// dropping the API still closes the connection. (Holding the API itself,
/// the callback kept the connection, its tasks and its place among main's
/// renderers for ever.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_holding_a_weak_api_lets_the_connection_close() {
    let (main, _) = probe_main();
    let api = connect_memory(&main, "window").await.unwrap();
    let id = api.id();
    let weak = api.downgrade();
    let (tx, mut sums) = tokio::sync::mpsc::unbounded_channel();
    api.events
        .on_tick({
            let weak = weak.clone();
            move |n| {
                let Some(api) = weak.upgrade() else { return };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(api.probe.add(n, 1).await.unwrap());
                });
            }
        })
        .await
        .unwrap()
        .detach();
    listening(&main, id, &["probe:tick"]).await;
    ProbeEventsEmitter::new(&main, id).tick(41);
    let sum = tokio::time::timeout(Duration::from_secs(10), sums.recv()).await;
    assert_eq!(sum.unwrap(), Some(42));
    assert!(weak.upgrade().is_some());

    drop(api);
    let gone = tokio::time::timeout(Duration::from_secs(10), main.disconnected(id)).await;
    assert!(
        gone.is_ok(),
        "main still serves the renderer whose every handle was dropped"
    );
    assert!(weak.upgrade().is_none());
    assert!(format!("{weak:?}").contains("dropped"), "{weak:?}");
}

//! Hostile renderers, floods and crashes cost main nothing: limits,
//! backpressure, slow consumers, fairness, the violation policy, faults
//! and authentication.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use ipc_runtime::{
    DisconnectCause, DisconnectReason, IpcError, Limits, Main, RendererId, SlowConsumer, Target,
    Transport,
};
use ipc_suite::{
    call_ends_disconnected, connect_memory, ends_disconnected, eventually, next_disconnection,
    poll_once, probe_main_with,
    raw::{
        accepted, accepted_over, framed, hello_body, invoke_body, kind, subscribe_body, RawPeer,
        WireError,
    },
    ProbeApi, ProbeContract, ProbeEventsEmitter,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream},
    net::UnixStream,
};

const RENDERER: &str = env!("CARGO_BIN_EXE_ipc-test-renderer");

fn main_with(edit: impl FnOnce(&mut Limits)) -> (Main, std::sync::Arc<ipc_suite::ProbeHandler>) {
    let mut limits = Limits::default();
    edit(&mut limits);
    probe_main_with(|b| b.limits(limits))
}

/// A raw peer accepted as `ProbeApi`, handshake done by hand.
async fn raw_peer(main: &Main) -> (RawPeer, RendererId) {
    accepted::<ProbeApi, ProbeContract>(main, "raw").await
}

/// [`raw_peer`] over a pipe that holds `capacity` bytes each way instead
/// of a socket: main's writer blocks as soon as that much is left unread.
async fn raw_peer_over_pipe(main: &Main, capacity: usize) -> (RawPeer<DuplexStream>, RendererId) {
    let (main_end, peer) = tokio::io::duplex(capacity);
    let (read, write) = tokio::io::split(main_end);
    accepted_over::<ProbeApi, ProbeContract, _>(main, "slow", Transport::new(read, write), peer)
        .await
}

/// Subscribes raw peer `id` to `channel` by hand, and waits until main has
/// recorded it (without reading main's answer).
async fn subscribe_by_hand<P: AsyncRead + AsyncWrite + Unpin>(
    main: &Main,
    raw: &mut RawPeer<P>,
    id: RendererId,
    channel: &str,
) {
    raw.frame(&subscribe_body(1, channel)).await;
    assert!(
        eventually(Duration::from_secs(5), || main
            .renderer_stats(id)
            .is_some_and(|s| s.subscriptions.iter().any(|c| c == channel)))
        .await
    );
}

/// `sleep(ms)` arguments, as the client would encode them.
fn sleep_args(ms: u64) -> Vec<u8> {
    ipc_runtime::codec::encode_to_vec(&(ms,)).unwrap()
}

// 1 and 2: in-flight limit; excess refused on a raw socket, in-limit calls answered.
#[tokio::test]
async fn a_raw_peer_over_the_in_flight_limit_gets_errors_for_the_excess_only() {
    let (main, _) = main_with(|l| {
        l.max_in_flight = 4;
        l.max_violations = None;
    });
    let (mut raw, id) = raw_peer(&main).await;
    for call in 1..=6 {
        raw.frame(&invoke_body(call, "probe:sleep", &sleep_args(200)))
            .await;
    }
    let mut failed = Vec::new();
    let mut answered = Vec::new();
    for _ in 0..6 {
        let reply = raw.read().await.expect("every call is answered");
        match reply.kind {
            kind::REPLY_FAILED => {
                assert_eq!(reply.error(), WireError::TooManyInFlight { limit: 4 });
                failed.push(reply.call_id());
            }
            kind::REPLY_OK => answered.push(reply.call_id()),
            other => panic!("unexpected frame kind {other:#x}"),
        }
    }
    failed.sort();
    answered.sort();
    assert_eq!(failed, [5, 6], "the excess calls are refused at once");
    assert_eq!(
        answered,
        [1, 2, 3, 4],
        "the calls within the limit are answered"
    );
    assert_eq!(main.renderer_stats(id).unwrap().violations, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_client_waits_for_a_slot_instead_of_failing() {
    let (main, _) = main_with(|l| l.max_in_flight = 4);
    let api = connect_memory(&main, "patient").await.unwrap();
    let id = api.id();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let watcher = tokio::spawn({
        let (main, peak) = (main.clone(), peak.clone());
        async move {
            loop {
                let now = main.in_flight(id).unwrap_or(0);
                peak.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let probe = api.probe.clone();
            tokio::spawn(async move { probe.sleep(10 + i % 3).await })
        })
        .collect();
    for call in calls {
        call.await
            .unwrap()
            .expect("no call fails: they wait for a slot");
    }
    watcher.abort();
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        (1..=4).contains(&peak),
        "main saw at most 4 in flight, saw {peak}"
    );
    assert_eq!(main.renderer_stats(id).unwrap().violations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_for_a_slot_times_out_gives_way_and_fails_on_close() {
    let (main, handler) = main_with(|l| l.max_in_flight = 1);
    let api = connect_memory(&main, "queued").await.unwrap();
    let busy = tokio::spawn({
        let probe = api.probe.clone();
        async move { probe.sleep(60_000).await }
    });
    assert!(eventually(Duration::from_secs(5), || handler.started() == 1).await);
    // The only slot is taken: a call waits for it, then times out with the
    // usual error, and main never saw it.
    let impatient = api.probe.clone().with_timeout(Duration::from_millis(50));
    match impatient.add(1, 2).await {
        Err(e @ IpcError::Timeout { .. }) => {
            let IpcError::Timeout { channel, timeout } = &e else {
                unreachable!()
            };
            assert_eq!(channel, "probe:add");
            assert_eq!(*timeout, Duration::from_millis(50));
            // The message covers this case too, not only a slow handler.
            assert!(
                e.to_string().contains(
                    "never reached main: it waits for one of main's `Limits::max_in_flight` slots"
                ),
                "{e}"
            );
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // A waiter that is dropped leaves nothing behind: once the slot is
    // free, the next call takes it.
    let mut dropped = api.probe.add(2, 2);
    assert!(
        poll_once(&mut dropped).await.is_none(),
        "waits for the slot"
    );
    drop(dropped);
    busy.abort();
    assert!(eventually(Duration::from_secs(5), || handler.aborted() == 1).await);
    assert_eq!(api.probe.add(3, 4).await.unwrap(), 7);
    // Calls waiting for a slot fail as soon as the connection closes.
    let busy = tokio::spawn({
        let probe = api.probe.clone();
        async move { probe.sleep(60_000).await }
    });
    assert!(eventually(Duration::from_secs(5), || handler.started() == 2).await);
    let mut waiting = api.probe.add(5, 6);
    assert!(
        poll_once(&mut waiting).await.is_none(),
        "waits for the slot"
    );
    assert!(main.disconnect(api.id()));
    ends_disconnected(busy).await;
    call_ends_disconnected(waiting).await;
    assert_eq!(main.renderer_stats(api.id()).map_or(0, |s| s.violations), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_are_handed_on_under_churn() {
    // Few slots, many callers, some of which give up or are dropped while
    // they wait: every remaining call gets a slot long before its timeout
    // (a slot lost on the way would leave calls waiting 10 s).
    let (main, _) = main_with(|l| l.max_in_flight = 2);
    let api = connect_memory(&main, "churn").await.unwrap();
    let probe = api.probe.clone().with_timeout(Duration::from_secs(10));
    let mut calls = Vec::new();
    let mut dropped = Vec::new();
    for i in 0..120u64 {
        let probe = probe.clone();
        let call = tokio::spawn(async move {
            match i % 4 {
                0 => probe.sleep(1).await,
                1 => probe.add(i, 1).await,
                _ => {
                    // Gives up after 1–3 ms: a timeout is its expected end.
                    let impatient = probe.with_timeout(Duration::from_millis(1 + i % 3));
                    match impatient.sleep(2).await {
                        Err(IpcError::Timeout { .. }) => Ok(0),
                        other => other,
                    }
                }
            }
        });
        if i % 10 == 9 {
            dropped.push(call);
        } else {
            calls.push(call);
        }
    }
    tokio::time::sleep(Duration::from_millis(2)).await;
    for call in dropped {
        call.abort();
    }
    let all = async {
        for call in calls {
            call.await
                .unwrap()
                .expect("no call fails but by its own timeout");
        }
    };
    tokio::time::timeout(Duration::from_secs(8), all)
        .await
        .expect("every call got a slot in time");
    assert_eq!(probe.add(20, 22).await.unwrap(), 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_given_up_never_push_a_renderer_over_mains_limit() {
    // A call that gives up frees its slot only once main has been told to
    // cancel it: the call that takes the slot reaches main after the
    // cancel, so main never counts one call too many.
    let (main, _) = main_with(|l| {
        l.max_in_flight = 2;
        l.max_violations = None;
    });
    let api = connect_memory(&main, "impatient").await.unwrap();
    let id = api.id();
    let until = Instant::now() + Duration::from_secs(2);
    let mut tasks = Vec::new();
    for i in 0..6u64 {
        let probe = api.probe.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                if i % 2 == 0 {
                    // Given up after 300 µs: dropped, or timed out.
                    let _ = tokio::time::timeout(Duration::from_micros(300), probe.sleep(50)).await;
                    let short = probe.clone().with_timeout(Duration::from_micros(400));
                    let _ = short.sleep(50).await;
                } else {
                    probe.add(i, 1).await.expect("never refused by main");
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(main.renderer_stats(id).unwrap().violations, 0);
}

// 1: subscriptions.
#[tokio::test]
async fn subscriptions_beyond_the_limit_are_refused() {
    let (main, _) = main_with(|l| l.max_subscriptions = 1);
    let api = connect_memory(&main, "greedy").await.unwrap();
    let _tick = api.events.on_tick(|_| {}).await.unwrap();
    let err = api.events.on_note(|_| {}).await.unwrap_err();
    assert!(
        matches!(err, IpcError::TooManySubscriptions { limit: 1 }),
        "{err}"
    );
    assert!(err.to_string().contains("1 event channels"), "{err}");
    // The renderer cannot know main's limit: asking again and again (more
    // often than `max_violations`) is not misbehaving.
    for _ in 0..20 {
        assert!(api.events.on_note(|_| {}).await.is_err());
    }
    assert_eq!(main.renderer_stats(api.id()).unwrap().violations, 0);
    assert_eq!(api.probe.add(1, 2).await.unwrap(), 3);
}

// 1: connected renderers, main-wide.
#[tokio::test]
async fn connections_beyond_the_limit_are_refused() {
    let (main, _) = main_with(|l| l.max_renderers = 2);
    let _a = connect_memory(&main, "a").await.unwrap();
    let b = connect_memory(&main, "b").await.unwrap();
    let err = connect_memory(&main, "c").await.unwrap_err();
    assert!(
        matches!(err, IpcError::TooManyRenderers { limit: 2 }),
        "{err}"
    );
    // A slot frees up when a renderer leaves.
    let id = b.id();
    b.close().await.unwrap();
    main.disconnected(id).await;
    connect_memory(&main, "d").await.unwrap();
}

// 1: a frame that starts but never finishes (one byte at a time).
#[tokio::test]
async fn a_peer_dribbling_a_frame_is_dropped_after_the_frame_timeout() {
    let (main, _) = main_with(|l| l.frame_timeout = Duration::from_millis(200));
    let good = connect_memory(&main, "good").await.unwrap();
    let (mut raw, id) = raw_peer(&main).await;
    let mut gone = main.disconnections();
    let body = invoke_body(1, "probe:echo", &[5, b'h', b'e', b'l', b'l', b'o']);
    let wire = framed(&body);
    let started = Instant::now();
    for byte in wire.iter().take(wire.len() - 1) {
        if raw.stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        if main.renderer_stats(id).is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let ended = next_disconnection(&mut gone, "main ends the connection").await;
    assert_eq!(ended.renderer.id, id);
    assert_eq!(
        ended.reason,
        DisconnectReason::FrameTimeout(Duration::from_millis(200))
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(good.probe.add(1, 1).await.unwrap(), 2);
}

// 3: a renderer that stops reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_loses_events_within_its_queue_and_delays_no_one() {
    let (main, _) = main_with(|l| {
        l.max_queued_frames = 32;
        l.slow_consumer = SlowConsumer::DropEvents;
    });
    let (mut raw, slow) = raw_peer(&main).await;
    // Subscribe by hand, then never read again.
    subscribe_by_hand(&main, &mut raw, slow, "probe:tick").await;
    let fast = connect_memory(&main, "fast").await.unwrap();
    let (_guard, mut rx) = ipc_suite::ticks_of(&fast).await;
    let emitter = ProbeEventsEmitter::new(&main, Target::All);
    let payload_count = 6000u64;
    let started = Instant::now();
    for n in 0..payload_count {
        emitter.tick(n);
        // The fast renderer keeps up: each event arrives promptly.
        let got = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .expect("the fast renderer is not delayed by the slow one");
        assert_eq!(got, Some(n));
    }
    let stats = main.renderer_stats(slow).unwrap();
    assert!(stats.events_dropped > 0, "{stats:?}");
    // What main holds for the slow one is bounded by its queue (plus what
    // the kernel's socket buffer took before it filled: with the send
    // buffer `Transport::from_unix` asks for, about 1600 of these frames;
    // hence 6000 events).
    assert!(stats.events_sent < payload_count, "{stats:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    // Replies are not dropped with the events: a call made now, while the
    // queue is full, is answered once the slow renderer reads again.
    raw.frame(&invoke_body(2, "probe:add", &[2, 3])).await;
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(frame) = raw.read().await {
            if frame.kind == kind::REPLY_OK && frame.call_id() == 2 {
                return Some(frame.rest[8..].to_vec());
            }
        }
        None
    })
    .await
    .expect("the reply comes once the renderer reads");
    assert_eq!(answer, Some(vec![5]));
}

/// `gated(len)` arguments, as the client would encode them.
fn gated_args(len: u32) -> Vec<u8> {
    ipc_runtime::codec::encode_to_vec(&(len,)).unwrap()
}

/// Under `DropEvents` a reply is not dropped like an event: a call whose
/// handler finishes while events to its renderer are being dropped still
/// has its reply queued, and it arrives once the renderer reads again.
/// (Events are refused once the frames queued and those the writer holds
/// reach `max_queued_frames`; a reply goes in while the queue itself has
/// room, and otherwise waits for it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_drop_events_a_reply_finishing_while_events_are_dropped_arrives() {
    let (main, handler) = main_with(|l| {
        l.max_queued_frames = 32;
        l.slow_consumer = SlowConsumer::DropEvents;
    });
    // A pipe that holds 64 bytes: main's writer blocks on the first
    // frames the renderer leaves unread, so once an event is dropped the
    // queue is full and stays full (on a socket, the writer could still be
    // emptying the queue into the socket's buffer at that moment).
    let (mut raw, slow) = raw_peer_over_pipe(&main, 64).await;
    subscribe_by_hand(&main, &mut raw, slow, "probe:tick").await;
    raw.frame(&invoke_body(2, "probe:gated", &gated_args(3)))
        .await;
    assert!(eventually(Duration::from_secs(5), || handler.at_gate() == 1).await);
    // The renderer reads nothing: events fill the pipe, then the queue,
    // then are dropped.
    let emitter = ProbeEventsEmitter::new(&main, Target::Renderer(slow));
    let mut emitted = 0u64;
    while main.renderer_stats(slow).unwrap().events_dropped == 0 {
        assert!(emitted < 1_000_000, "no event was ever dropped");
        emitter.tick(emitted);
        emitted += 1;
    }
    // The handler finishes now, its reply meeting the full queue.
    handler.open_gate(1);
    assert!(eventually(Duration::from_secs(5), || handler.at_gate() == 0).await);
    let mut ticks = 0u64;
    let reply = loop {
        let frame = raw
            .read()
            .await
            .expect("the reply comes once the renderer reads");
        match frame.kind {
            kind::EVENT => ticks += 1,
            // The subscription's acknowledgement.
            kind::REPLY_OK if frame.call_id() == 1 => {}
            kind::REPLY_OK => break frame,
            other => panic!("unexpected frame kind {other:#x}"),
        }
    };
    assert_eq!(reply.call_id(), 2);
    assert_eq!(reply.rest[8..], [3, 0x5a, 0x5a, 0x5a]);
    let stats = main.renderer_stats(slow).unwrap();
    assert!(stats.events_dropped > 0, "{stats:?}");
    assert!(ticks <= stats.events_sent, "{ticks} events read, {stats:?}");
}

/// Replies that find the renderer's queue full wait for room, none is
/// dropped: twelve handlers finish at once with 128 KiB replies for a
/// renderer that is not reading, over a pipe that holds 4 KiB. The
/// writer holds at most one batch (what was queued when it took it: under
/// 256 KiB and one frame) and the queue takes replies while it holds under
/// 256 KiB, so at least six of the 1.5 MiB wait; every reply arrives
/// whole once the renderer reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_that_meet_a_full_queue_wait_for_room() {
    const CALLS: u64 = 12;
    const LEN: u32 = 128 * 1024;
    let (main, handler) = main_with(|_| {});
    let (mut raw, _) = raw_peer_over_pipe(&main, 4096).await;
    for id in 1..=CALLS {
        raw.frame(&invoke_body(id, "probe:gated", &gated_args(LEN)))
            .await;
    }
    assert!(
        eventually(Duration::from_secs(5), || handler.at_gate()
            == CALLS as usize)
        .await
    );
    handler.open_gate(CALLS as usize);
    assert!(eventually(Duration::from_secs(5), || handler.at_gate() == 0).await);
    let mut answered = Vec::new();
    while answered.len() < CALLS as usize {
        let frame = raw.read().await.expect("every reply arrives");
        assert_eq!(frame.kind, kind::REPLY_OK);
        let value: Vec<u8> = ipc_runtime::codec::decode(&frame.rest[8..]).unwrap();
        assert!(value.len() == LEN as usize && value.iter().all(|&b| b == 0x5a));
        answered.push(frame.call_id());
    }
    answered.sort_unstable();
    assert_eq!(answered, (1..=CALLS).collect::<Vec<_>>());
}

/// A frame too large ends the connection even when the renderer has
/// stopped reading and its queue is full: the notice saying why does not
/// wait for room that would never come.
#[tokio::test]
async fn a_frame_too_large_ends_the_connection_while_the_queue_is_full() {
    // One thread: main's writer runs only when this test waits.
    let (main, _) = main_with(|_| {});
    let mut gone = main.disconnections();
    let (mut raw, id) = raw_peer_over_pipe(&main, 64).await;
    subscribe_by_hand(&main, &mut raw, id, "probe:note").await;
    // The writer takes one 64 KiB event and blocks on the 64-byte pipe;
    // eight more wait in the queue, past the 256 KiB at which frames that
    // wait for room (such as the notice) wait.
    let emitter = ProbeEventsEmitter::new(&main, Target::Renderer(id));
    let note = "n".repeat(64 * 1024);
    emitter.note(note.clone());
    tokio::task::yield_now().await;
    for _ in 0..8 {
        emitter.note(note.clone());
    }
    assert_eq!(main.renderer_stats(id).unwrap().events_dropped, 0);
    // A length prefix past the 16 MiB limit.
    raw.bytes(&(32u32 << 20).to_be_bytes()).await;
    let ended = next_disconnection(
        &mut gone,
        "main ends the connection without the renderer reading",
    )
    .await;
    assert_eq!(ended.renderer.id, id);
    assert!(
        matches!(ended.reason, DisconnectReason::FrameTooLarge { .. }),
        "{:?}",
        ended.reason
    );
}

#[tokio::test]
async fn under_the_disconnect_policy_a_slow_consumer_is_dropped() {
    let (main, _) = main_with(|l| {
        l.max_queued_frames = 8;
        l.slow_consumer = SlowConsumer::Disconnect;
    });
    let (mut raw, slow) = raw_peer(&main).await;
    subscribe_by_hand(&main, &mut raw, slow, "probe:note").await;
    // Subscribed before the flood: `disconnected` would return `None` once
    // the renderer is gone, and the test would learn nothing.
    let mut gone = main.disconnections();
    let emitter = ProbeEventsEmitter::new(&main, Target::All);
    let big = "x".repeat(64 * 1024);
    for _ in 0..200 {
        emitter.note(big.clone());
        emitter.tick(1);
        if main.renderer_stats(slow).is_none() {
            break;
        }
        tokio::task::yield_now().await;
    }
    let gone = next_disconnection(&mut gone, "main drops the slow consumer").await;
    assert_eq!(gone.renderer.id, slow);
    assert!(
        matches!(gone.reason, DisconnectReason::SlowConsumer { queued: 8 }),
        "{:?}",
        gone.reason
    );
    assert!(main.renderer_stats(slow).is_none());
    drop(raw);
}

/// Events held for a renderer that reads nothing are bounded in bytes
/// (`Limits::max_queued_bytes`), counting those the writer took but could
/// not write: past it they are dropped and counted, and others are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_held_for_a_renderer_that_reads_nothing_are_bounded_in_bytes() {
    const EVENT: usize = 60_000;
    let (main, _) = main_with(|l| l.max_queued_bytes = 1 << 20);
    let good = connect_memory(&main, "good").await.unwrap();
    let (mut raw, slow) = raw_peer(&main).await;
    raw.frame(&subscribe_body(1, "probe:note")).await;
    assert_eq!(raw.read().await.unwrap().kind, kind::REPLY_OK);
    let emitter = ProbeEventsEmitter::new(&main, Target::Renderer(slow));
    let note = "x".repeat(EVENT);
    for _ in 0..1000 {
        emitter.note(note.clone());
        tokio::task::yield_now().await;
    }
    let stats = main.renderer_stats(slow).unwrap();
    // The budget, one event over it, and what the kernel's socket buffers
    // took before they filled (about a megabyte here).
    let held = stats.events_sent as usize * EVENT;
    assert!(
        held <= 4 << 20 && stats.events_dropped > 0,
        "{} events ({} KiB) held for a renderer that reads nothing, {} dropped",
        stats.events_sent,
        held >> 10,
        stats.events_dropped
    );
    assert_eq!(good.probe.add(1, 2).await.unwrap(), 3);
    drop(raw);
}

async fn median_echo_latency(api: &ProbeApi, samples: usize) -> Duration {
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples {
        let started = Instant::now();
        api.probe.echo(format!("ping {i}")).await.unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    times[samples / 2]
}

// 4: fairness. The flooder is a separate process: 64 calls to a slow
// handler in flight at all times, and fire-and-forget messages as fast as
// it can send them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_renderer_does_not_starve_another() {
    let (main, handler) = main_with(|_| {});
    let victim = connect_memory(&main, "victim").await.unwrap();
    let unloaded = median_echo_latency(&victim, 30).await;

    let mut flooder = spawn_raw(&main, "flood").await;
    ready(&mut flooder).await;
    let flooding = eventually(Duration::from_secs(10), || {
        main.in_flight(flooder.id()).unwrap_or(0) >= 32 && handler.recorded_now().len() > 1000
    })
    .await;
    assert!(flooding, "the flood is under way");
    let loaded = median_echo_latency(&victim, 30).await;
    flooder.kill().await.unwrap();
    // Generous for a shared 2-core machine and a debug build: starvation
    // would be seconds, not milliseconds.
    let bound = unloaded * 50 + Duration::from_millis(100);
    assert!(
        loaded <= bound,
        "victim median {loaded:?} under flood vs {unloaded:?} unloaded (bound {bound:?})"
    );
}

// 5: the violation policy.
#[tokio::test]
async fn a_renderer_that_keeps_misbehaving_is_disconnected_with_its_reason() {
    let (main, _) = main_with(|l| l.max_violations = Some(3));
    let good = connect_memory(&main, "good").await.unwrap();
    let mut gone = main.disconnections();
    let (mut raw, id) = raw_peer(&main).await;
    raw.frame(&[0x7f]).await;
    raw.frame(&invoke_body(1, "probe:nope", &[])).await;
    raw.frame(&invoke_body(2, "probe:add", &[0xff])).await;
    let ended = next_disconnection(&mut gone, "main ends the connection").await;
    assert_eq!(ended.renderer.id, id);
    match &ended.reason {
        DisconnectReason::Misbehaved { violations, last } => {
            assert_eq!(*violations, 3);
            assert!(last.contains("probe:add"), "{last}");
        }
        other => panic!("expected a misbehaviour disconnect, got {other:?}"),
    }
    assert!(raw.closed_by_main().await);
    assert_eq!(good.probe.add(2, 2).await.unwrap(), 4);
}

/// A renderer that reaches `max_violations` and then closes its end is
/// reported as misbehaving, not as a renderer that closed: main's reason
/// wins over what the serve loop saw next.
#[tokio::test]
async fn misbehaving_then_closing_is_reported_as_misbehaving() {
    let (main, _) = main_with(|l| l.max_violations = Some(1));
    let mut gone = main.disconnections();
    let (mut raw, id) = raw_peer(&main).await;
    raw.frame(&[0x7f]).await;
    raw.stream.shutdown().await.unwrap();
    let ended = next_disconnection(&mut gone, "main ends the connection").await;
    assert_eq!(ended.renderer.id, id);
    assert!(
        matches!(
            ended.reason,
            DisconnectReason::Misbehaved { violations: 1, .. }
        ),
        "{:?}",
        ended.reason
    );
}

/// Frames that arrive after the one that reached `max_violations`, even
/// in the same read, are not handled: no call answered, no send run.
#[tokio::test]
async fn nothing_sent_after_the_last_violation_is_handled() {
    let (main, handler) = main_with(|l| l.max_violations = Some(1));
    let mut gone = main.disconnections();
    let (mut raw, _) = raw_peer(&main).await;
    let record = ipc_runtime::codec::encode_to_vec(&(5u64,)).unwrap();
    let add = ipc_runtime::codec::encode_to_vec(&(2u64, 3u64)).unwrap();
    let mut wire = framed(&[0x7f]);
    wire.extend(framed(&ipc_suite::raw::send_body("probe:record", &record)));
    wire.extend(framed(&invoke_body(9, "probe:add", &add)));
    raw.bytes(&wire).await;
    let ended = next_disconnection(&mut gone, "main ends the connection").await;
    assert!(
        matches!(ended.reason, DisconnectReason::Misbehaved { .. }),
        "{:?}",
        ended.reason
    );
    // Main's answer is the notice for the bad frame, then why it ends the
    // connection, then the end.
    let mut frames = Vec::new();
    while let Some(frame) = raw.read().await {
        frames.push(frame);
    }
    let kinds: Vec<_> = frames.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [kind::NOTICE, kind::NOTICE]);
    match frames[1].error() {
        WireError::Disconnected { reason, cause } => {
            assert_eq!(
                reason,
                "main disconnected this renderer after 1 protocol violation; the last: protocol error: malformed frame: unknown frame kind 0x7f"
            );
            assert_eq!(cause, DisconnectCause::Misbehaved);
        }
        other => panic!("expected the reason, got {other:?}"),
    }
    assert!(
        handler.recorded_now().is_empty(),
        "a send after the limit ran"
    );
}

/// A renderer whose frame stops in the middle (its write half shut, its
/// reading still open) is told main could not read from it, as a lost
/// connection: not that main failed (`MainFailed`, main's own failures).
#[tokio::test]
async fn a_renderer_cut_off_mid_frame_is_told_the_connection_broke() {
    use tokio::io::AsyncWriteExt;
    let (main, _) = main_with(|_| {});
    let (mut raw, _) =
        ipc_suite::raw::accepted::<ProbeApi, ipc_suite::ProbeContract>(&main, "halfway").await;
    // A length prefix for 100 bytes, then 3 of them, then the write half shuts.
    raw.bytes(&[0, 0, 0, 100, 1, 2, 3]).await;
    raw.stream.shutdown().await.unwrap();
    let mut notices = Vec::new();
    while let Some(frame) = raw.read().await {
        if frame.kind == kind::NOTICE {
            notices.push(frame.error());
        }
    }
    match notices.as_slice() {
        [WireError::Disconnected { reason, cause }] => {
            assert_eq!(*cause, DisconnectCause::Lost);
            assert!(
                reason.starts_with("main could not read from this renderer: ")
                    && reason.contains("in the middle of a frame"),
                "{reason}"
            );
        }
        other => panic!("expected one farewell, got {other:?}"),
    }
}

async fn spawn_raw(main: &Main, mode: &str) -> ipc_runtime::RendererProcess {
    let mut command = Command::new(RENDERER);
    command.arg(mode).stdout(Stdio::piped());
    main.spawn_renderer::<ProbeApi>(command, mode)
        .await
        .unwrap()
}

async fn ready(child: &mut ipc_runtime::RendererProcess) {
    let stdout = child.child_mut().stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("ready"));
}

// 6: SIGKILL mid-frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renderer_killed_mid_frame_is_released() {
    let (main, _) = main_with(|_| {});
    let good = connect_memory(&main, "good").await.unwrap();
    let mut gone = main.disconnections();
    let mut child = spawn_raw(&main, "half-frame").await;
    ready(&mut child).await;
    let id = child.id();
    child.kill().await.unwrap();
    let ended = next_disconnection(&mut gone, "main ends the connection").await;
    assert_eq!(ended.renderer.id, id);
    // The peer vanished in the middle of a frame.
    assert!(
        matches!(ended.reason, DisconnectReason::Failed(_)),
        "{:?}",
        ended.reason
    );
    assert_eq!(main.renderer_count(), 1);
    assert_eq!(good.probe.add(1, 2).await.unwrap(), 3);
}

// 6: SIGKILL mid-handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renderer_killed_mid_handshake_leaves_nothing_behind() {
    let (main, _) = main_with(|l| l.max_renderers = 2);
    let endpoint = main.listen_unix().unwrap();
    let good = connect_memory(&main, "good").await.unwrap();
    let mut child = tokio::process::Command::new(RENDERER)
        .arg("half-hello")
        .arg(endpoint.path())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("ready"));
    child.kill().await.unwrap();
    // Its handshake slot comes back: a second renderer fits under the limit.
    let token = endpoint.issue_token::<ProbeApi>("second").unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ProbeApi::connect_unix(endpoint.path(), &token).await {
                Err(IpcError::TooManyRenderers { .. }) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                other => break other,
            }
        }
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(main.renderer_count(), 2);
    assert_eq!(second.probe.add(1, 1).await.unwrap(), 2);
    assert_eq!(good.probe.add(1, 2).await.unwrap(), 3);
}

// 6: main killed: pending calls end promptly, listeners end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_main_dies_pending_calls_fail_promptly_and_listeners_end() {
    let mut main_process = tokio::process::Command::new(RENDERER)
        .arg("serve-unix")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(main_process.stdout.take().unwrap()).lines();
    let path = lines.next_line().await.unwrap().unwrap();
    let token = lines.next_line().await.unwrap().unwrap();
    let api = ProbeApi::connect_unix(&path, &token).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _guard = api
        .events
        .on_tick(move |n| {
            let _ = tx.send(n);
        })
        .await
        .unwrap();
    assert!(rx.recv().await.is_some(), "events flow while main lives");
    // Polled once: its frame is queued and it waits for the reply.
    let mut pending = api.probe.sleep(3_600_000);
    assert!(poll_once(&mut pending).await.is_none());

    main_process.kill().await.unwrap();
    let started = Instant::now();
    call_ends_disconnected(pending).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    // A main that dies says nothing: the renderer is told only that the
    // connection closed, or that writing to it failed (the pending call's
    // frame may be written after main died); a main that shuts down or
    // drops it says so.
    match api.closed().await {
        IpcError::Disconnected { reason, cause } => {
            assert!(
                reason.starts_with("main closed the connection")
                    || reason.starts_with("writing to main failed"),
                "{reason}"
            );
            assert_eq!(cause, DisconnectCause::Lost);
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
    // The listener ended: its callback (and the sender it held) is gone.
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while rx.recv().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "the listener ended");
    assert!(matches!(
        api.probe.add(1, 1).await,
        Err(IpcError::Disconnected { .. })
    ));
}

// 7: a missing token.
#[tokio::test]
async fn a_unix_renderer_without_a_token_reaches_nothing() {
    let (main, handler) = main_with(|_| {});
    let endpoint = main.listen_unix().unwrap();
    let stream = UnixStream::connect(endpoint.path()).await.unwrap();
    let mut raw = RawPeer { stream };
    raw.frame(&hello_body::<ProbeContract>(None)).await;
    let answer = raw.read().await.unwrap();
    assert_eq!(answer.kind, kind::REJECTED);
    assert!(
        matches!(answer.error(), WireError::Unauthorized { reason } if reason.contains("token")),
        "{:?}",
        answer.error()
    );
    // Anything sent after the refusal goes nowhere.
    let _ = raw.stream.write_all(&[0, 0, 0, 2, 0x11, 0]).await;
    assert!(raw.closed_by_main().await);
    assert_eq!(main.renderer_count(), 0);
    assert!(handler.recorded_now().is_empty());
}

/// A `send` channel whose handler waits for the test to open a gate, and
/// records the first byte of each message.
pub mod gated {
    use std::sync::{Arc, Mutex};

    use ipc_runtime::{expose, service, Blob};
    use tokio::sync::Semaphore;

    #[service(namespace = "gated")]
    pub trait Gated {
        /// Waits for the gate, then records `data[0]`. (A `Blob`, not a
        /// `Vec<u8>`: decoding 48 MiB byte by byte in a debug build took
        /// seconds of CPU, too slow for the test's timeouts on a busy
        /// machine.)
        #[ipc(send)]
        async fn put(&self, data: Blob);
    }

    expose! {
        pub struct GatedApi {
            gated: Gated { put },
        }
    }

    pub struct Gate {
        pub open: Arc<Semaphore>,
        pub seen: Arc<Mutex<Vec<u8>>>,
    }

    impl Default for Gate {
        fn default() -> Self {
            Gate {
                open: Arc::new(Semaphore::new(0)),
                seen: Arc::default(),
            }
        }
    }

    impl Gated for Gate {
        async fn put(&self, data: Blob) {
            self.open.acquire().await.unwrap().forget();
            self.seen.lock().unwrap().push(data[0]);
        }
    }
}

// `send` messages waiting behind a slow handler are bounded in bytes
// (`Limits::max_queued_send_bytes`): main stops reading from the sender
// instead of holding them, and once the handler catches up every message
// is handled, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_waiting_for_a_slow_handler_are_bounded_in_bytes_and_none_is_lost() {
    use gated::{Gate, GatedApi, GatedContract, GatedServer};

    const MESSAGE: usize = 1 << 20;
    const MESSAGES: u8 = 48;
    let gate = Gate::default();
    let (open, seen) = (gate.open.clone(), gate.seen.clone());
    let mut limits = Limits::default();
    limits.max_queued_send_bytes = 2 * MESSAGE;
    let main = Main::builder()
        .service(GatedServer::new(gate))
        .limits(limits)
        .build()
        .unwrap();
    let (mut raw, _) = accepted::<GatedApi, GatedContract>(&main, "raw").await;

    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = tokio::spawn({
        let written = written.clone();
        async move {
            for i in 0..MESSAGES {
                let args = ipc_runtime::codec::encode_to_vec(&(ipc_runtime::Blob::from(
                    vec![i; MESSAGE],
                ),))
                .unwrap();
                let frame = framed(&ipc_suite::raw::send_body("gated:put", &args));
                raw.stream.write_all(&frame).await.unwrap();
                written.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            raw
        }
    });
    // With the gate shut, main takes in the message its handler waits on,
    // two more (the budget), one it holds while it waits for room, and
    // what the socket buffers hold; never all of them (the queue's 256
    // messages used to be its only bound).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let taken = written.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        taken < 12,
        "{taken} messages of 1 MiB written while the handler waited"
    );
    assert!(seen.lock().unwrap().is_empty());

    open.add_permits(usize::from(MESSAGES));
    let _raw = tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .expect("main reads again once the handler catches up")
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || seen.lock().unwrap().len()
            == usize::from(MESSAGES))
        .await
    );
    assert_eq!(*seen.lock().unwrap(), (0..MESSAGES).collect::<Vec<u8>>());
}

// Small `send` messages waiting behind a slow handler are bounded in
// number too (256, besides `max_queued_send_bytes`): 200 000 one-byte
// messages fit the byte budget many times over, yet main stops reading
// long before it has taken them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_sends_waiting_for_a_slow_handler_are_bounded_in_number() {
    use gated::{Gate, GatedApi, GatedContract, GatedServer};

    const MESSAGES: usize = 200_000;
    const CHUNK: usize = 1000;
    let gate = Gate::default();
    let (open, seen) = (gate.open.clone(), gate.seen.clone());
    let main = Main::builder()
        .service(GatedServer::new(gate))
        .build()
        .unwrap();
    let (mut raw, _) = accepted::<GatedApi, GatedContract>(&main, "raw").await;
    let args = ipc_runtime::codec::encode_to_vec(&(vec![7u8],)).unwrap();
    let frame = framed(&ipc_suite::raw::send_body("gated:put", &args));
    let chunk = frame.repeat(CHUNK);

    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = tokio::spawn({
        let written = written.clone();
        async move {
            for _ in 0..MESSAGES / CHUNK {
                raw.stream.write_all(&chunk).await.unwrap();
                written.fetch_add(CHUNK, std::sync::atomic::Ordering::SeqCst);
            }
            raw
        }
    });
    // Main holds 256 messages, the one its handler waits on and what its
    // read buffer holds; the sockets' buffers hold the rest of what was
    // written (each message is 20-odd bytes).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let taken = written.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        taken < MESSAGES / 2,
        "{taken} small messages written while the handler waited"
    );
    assert!(seen.lock().unwrap().is_empty());

    open.add_permits(MESSAGES);
    let _raw = tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .expect("main reads again once the handler catches up")
        .unwrap();
    assert!(
        eventually(Duration::from_secs(20), || seen.lock().unwrap().len()
            == MESSAGES)
        .await
    );
}

/// A renderer that closes its socket while events main sent are unread
/// in it resets the connection (what the OS reports); it is reported
/// `Closed` like any renderer that goes away, not as a failure.
#[tokio::test]
async fn a_renderer_leaving_events_unread_is_reported_closed() {
    use ipc_runtime::{DisconnectReason, Target};
    use ipc_suite::{raw::subscribe_body, ProbeEventsEmitter};
    let (main, _) = main_with(|_| {});
    let mut gone = main.disconnections();
    let (mut raw, _) = accepted::<ProbeApi, ProbeContract>(&main, "leaving").await;
    raw.frame(&subscribe_body(1, "probe:tick")).await;
    assert_eq!(raw.read().await.unwrap().kind, kind::REPLY_OK);
    let ticks = ProbeEventsEmitter::new(&main, Target::All);
    for n in 0..10 {
        ticks.tick(n);
    }
    // Main's writer puts them in the socket; the renderer never reads them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(raw);
    let ended = next_disconnection(&mut gone, "main sees the renderer go").await;
    assert_eq!(ended.reason, DisconnectReason::Closed);
}

/// Closing main while a finished call's reply waits for room (its
/// renderer stopped reading) does not wait for that room: the reply gives
/// up, and close returns at once with nothing left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_does_not_wait_for_room_for_a_reply_nobody_reads() {
    let (main, handler) = main_with(|l| l.max_queued_frames = 1);
    let (mut raw, id) = raw_peer_over_pipe(&main, 4096).await;
    let args = ipc_runtime::codec::encode_to_vec(&(10_000u32,)).unwrap();
    for call in 1..=3 {
        raw.frame(&invoke_body(call, "probe:gated", &args)).await;
    }
    assert!(eventually(Duration::from_secs(5), || handler.at_gate() == 3).await);
    handler.open_gate(3);
    // The handlers finish; their replies cannot all fit the deaf peer.
    assert!(eventually(Duration::from_secs(5), || handler.at_gate() == 0).await);
    assert!(eventually(Duration::from_secs(5), || main.in_flight(id) == Some(0)).await);
    let started = Instant::now();
    main.close().await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(500), "close took {took:?}");
    drop(raw);
}

pub mod held {
    //! Handlers and reply values whose live instances are counted.

    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    };

    use ipc_runtime::{expose, service};
    use serde::{Deserialize, Serialize};

    /// Counts instances alive now, and the most ever alive at once.
    #[derive(Clone, Default)]
    pub struct Census {
        pub alive: Arc<AtomicUsize>,
        pub peak: Arc<AtomicUsize>,
    }

    impl Census {
        /// One more alive until the returned guard is dropped.
        pub fn enter(&self) -> Alive {
            let now = self.alive.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            Alive(self.alive.clone())
        }

        pub fn peak(&self) -> usize {
            self.peak.load(Ordering::SeqCst)
        }
    }

    /// One instance alive.
    #[derive(Debug, Default)]
    pub struct Alive(Arc<AtomicUsize>);

    impl Drop for Alive {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// A reply value counted while main holds it (the renderer decodes it
    /// as plain bytes, uncounted).
    #[derive(Debug, Default, Serialize, Deserialize)]
    pub struct Counted {
        pub bytes: Vec<u8>,
        #[serde(skip)]
        pub alive: Alive,
    }

    #[service(namespace = "held")]
    pub trait Held {
        /// Never finishes; counted while alive.
        async fn hang(&self, n: u64) -> u64;
        /// Waits once, then returns `len` bytes, counted until main has
        /// queued them.
        async fn value(&self, len: u32) -> Counted;
        /// Answers at once.
        async fn fast(&self, n: u64) -> u64;
        /// Never finishes; its destructor panics.
        async fn bomb(&self) -> u64;
        /// Never finishes; its destructor blocks its thread for `ms`.
        async fn stuck(&self, ms: u64) -> u64;
        /// Waits once, then blocks its thread for `ms`.
        async fn block(&self, ms: u64) -> u64;
    }

    expose! {
        pub struct HeldApi {
            held: Held { hang, value, fast, bomb, stuck, block },
        }
    }

    /// Runs `f` when dropped.
    pub struct OnDrop<F: FnMut()>(pub F);

    impl<F: FnMut()> Drop for OnDrop<F> {
        fn drop(&mut self) {
            (self.0)()
        }
    }

    #[derive(Clone, Default)]
    pub struct Counts {
        pub handlers: Census,
        pub values: Census,
    }

    impl Held for Counts {
        async fn hang(&self, n: u64) -> u64 {
            let _alive = self.handlers.enter();
            std::future::pending::<()>().await;
            n
        }

        async fn value(&self, len: u32) -> Counted {
            tokio::task::yield_now().await;
            Counted {
                bytes: vec![7; len as usize],
                alive: self.values.enter(),
            }
        }

        async fn fast(&self, n: u64) -> u64 {
            n
        }

        async fn bomb(&self) -> u64 {
            let _bomb = OnDrop(|| panic!("a handler's destructor panicked"));
            std::future::pending().await
        }

        async fn stuck(&self, ms: u64) -> u64 {
            let _stuck = OnDrop(|| std::thread::sleep(std::time::Duration::from_millis(ms)));
            std::future::pending().await
        }

        async fn block(&self, ms: u64) -> u64 {
            tokio::task::yield_now().await;
            std::thread::sleep(std::time::Duration::from_millis(ms));
            ms
        }
    }
}

fn held_main(max_in_flight: usize) -> (Main, held::Counts) {
    held_main_with(|l| l.max_in_flight = max_in_flight)
}

/// Main serving [`held`], with no violation limit and `edit`'s limits.
fn held_main_with(edit: impl FnOnce(&mut Limits)) -> (Main, held::Counts) {
    let counts = held::Counts::default();
    let mut limits = Limits::default();
    limits.max_violations = None;
    edit(&mut limits);
    let main = Main::builder()
        .service(held::HeldServer::new(counts.clone()))
        .limits(limits)
        .build()
        .unwrap();
    (main, counts)
}

/// Each call followed at once by its cancel: the cancel frees the call's
/// slot, but its aborted handler lives until the runtime gets to its task.
/// Main waits for those before starting more, so `max_in_flight` bounds
/// the handlers alive, not only the calls counted (a renderer kept
/// thousands alive under a limit of 4, with no violation).
async fn invoke_and_cancel_churn() {
    use ipc_suite::raw::cancel_body;
    const CALLS: u64 = 20_000;
    let (main, counts) = held_main(4);
    let (mut raw, id) = accepted::<held::HeldApi, held::HeldContract>(&main, "churn").await;
    let args = ipc_runtime::codec::encode_to_vec(&(0u64,)).unwrap();
    let mut wire = Vec::new();
    for call in 0..CALLS {
        wire.extend_from_slice(&framed(&invoke_body(call, "held:hang", &args)));
        wire.extend_from_slice(&framed(&cancel_body(call)));
    }
    raw.stream.write_all(&wire).await.unwrap();
    let alive = &counts.handlers.alive;
    let all_gone = || alive.load(std::sync::atomic::Ordering::SeqCst) == 0;
    // The last call's handler started (and was cancelled): all were read.
    let all_started = || main.renderer_stats(id).is_some_and(|s| s.in_flight == 0);
    assert!(eventually(Duration::from_secs(30), || all_started() && all_gone()).await);
    let peak = counts.handlers.peak();
    assert!(
        peak <= 4,
        "{peak} handlers alive at once under max_in_flight = 4"
    );
    assert_eq!(main.renderer_stats(id).unwrap().violations, 0);
}

#[tokio::test]
async fn invoke_and_cancel_churn_is_bounded_on_one_thread() {
    invoke_and_cancel_churn().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_and_cancel_churn_is_bounded_on_two_threads() {
    invoke_and_cancel_churn().await;
}

/// A renderer that reads its replies slowly (one frame a millisecond)
/// while it keeps calling: finished handlers whose replies wait for room
/// each hold their value. Main waits for them before starting more calls,
/// so at most `max_in_flight` wait (the `Limits` table's bound; they
/// reached about twice that).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_waiting_for_a_slow_reader_hold_at_most_max_in_flight_values() {
    use tokio::io::AsyncReadExt;
    const MAX_IN_FLIGHT: usize = 16;
    let (main, counts) = held_main_with(|l| {
        l.max_in_flight = MAX_IN_FLIGHT;
        l.max_queued_frames = 2;
    });
    let (main_end, peer) = tokio::io::duplex(256);
    let (read, write) = tokio::io::split(main_end);
    let (raw, _) = accepted_over::<held::HeldApi, held::HeldContract, _>(
        &main,
        "slow reader",
        Transport::new(read, write),
        peer,
    )
    .await;
    let (mut from_main, mut to_main) = tokio::io::split(raw.stream);
    let writer = tokio::spawn(async move {
        let args = ipc_runtime::codec::encode_to_vec(&(1000u32,)).unwrap();
        for call in 0..5_000u64 {
            let frame = framed(&invoke_body(call, "held:value", &args));
            if to_main.write_all(&frame).await.is_err() {
                break;
            }
        }
    });
    let mut replies = 0;
    while replies < 1_000 {
        let mut len = [0u8; 4];
        from_main.read_exact(&mut len).await.unwrap();
        let mut body = vec![0; u32::from_be_bytes(len) as usize];
        from_main.read_exact(&mut body).await.unwrap();
        // Answered, or refused for `max_in_flight` (this peer does not
        // wait for a slot).
        assert!([kind::REPLY_OK, kind::REPLY_FAILED].contains(&body[0]));
        replies += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    writer.abort();
    let peak = counts.values.peak();
    // One more: a call answered on its first poll waits for room in
    // main's serve loop itself.
    assert!(
        peak <= MAX_IN_FLIGHT + 1,
        "{peak} reply values held at once under max_in_flight = {MAX_IN_FLIGHT}"
    );
}

/// A cancelled handler whose destructor panics (tokio catches it) is
/// still counted gone: the connection serves on, and sees its renderer
/// leave. (Counted forever, it held up every later call.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_handlers_whose_destructor_panics_leave_the_connection_serving() {
    let (main, _) = held_main(2);
    let api = ipc_suite::connect_memory_as::<held::HeldApi>(&main, "bombs")
        .await
        .unwrap();
    for _ in 0..4 {
        let call = tokio::time::timeout(Duration::from_millis(100), api.held.bomb()).await;
        assert!(call.is_err(), "{call:?}");
    }
    let answered = tokio::time::timeout(Duration::from_millis(900), api.held.fast(3)).await;
    assert_eq!(
        answered.expect("answered before the wait's bound").unwrap(),
        3
    );
    let mut gone = main.disconnections();
    drop(api);
    next_disconnection(&mut gone, "main sees the renderer leave").await;
}

/// A cancelled handler that blocks its thread as it is dropped holds the
/// serve loop up for a second at most, not until it is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_cancelled_handler_stuck_in_its_destructor_holds_calls_up_for_a_second_at_most() {
    let (main, _) = held_main(1);
    let api = ipc_suite::connect_memory_as::<held::HeldApi>(&main, "stuck")
        .await
        .unwrap();
    let call = tokio::time::timeout(Duration::from_millis(100), api.held.stuck(2500)).await;
    assert!(call.is_err(), "{call:?}");
    let start = Instant::now();
    assert_eq!(api.held.fast(3).await.unwrap(), 3);
    let waited = start.elapsed();
    assert!(
        waited < Duration::from_millis(2500),
        "answered after {waited:?}"
    );
}

/// Replies answered on their first poll are written before main waits
/// for cancelled handlers: a call that finished at once is not held up
/// by one still blocking its thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replies_already_answered_are_written_before_main_waits_for_cancelled_handlers() {
    use ipc_suite::raw::cancel_body;
    let (main, _) = held_main(3);
    let (mut raw, _) = accepted::<held::HeldApi, held::HeldContract>(&main, "quick").await;
    let ms = ipc_runtime::codec::encode_to_vec(&(1500u64,)).unwrap();
    let n = |n: u64| ipc_runtime::codec::encode_to_vec(&(n,)).unwrap();
    let mut wire = Vec::new();
    wire.extend_from_slice(&framed(&invoke_body(1, "held:block", &ms)));
    wire.extend_from_slice(&framed(&invoke_body(2, "held:block", &ms)));
    raw.stream.write_all(&wire).await.unwrap();
    // Both are blocking their threads by now (they yield first).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut wire = Vec::new();
    wire.extend_from_slice(&framed(&cancel_body(1)));
    wire.extend_from_slice(&framed(&cancel_body(2)));
    wire.extend_from_slice(&framed(&invoke_body(3, "held:fast", &n(3))));
    wire.extend_from_slice(&framed(&invoke_body(4, "held:hang", &n(4))));
    wire.extend_from_slice(&framed(&invoke_body(5, "held:fast", &n(5))));
    let start = Instant::now();
    raw.stream.write_all(&wire).await.unwrap();
    let frame = raw.read().await.unwrap();
    assert_eq!((frame.kind, frame.call_id()), (kind::REPLY_OK, 3));
    let waited = start.elapsed();
    assert!(
        waited < Duration::from_millis(500),
        "the reply to call 3 took {waited:?}"
    );
}

//! Cancellation and drop safety: calls given up at every stage (dropped,
//! timed out, raced in `select!`), listeners' guards dropped from anywhere,
//! and the runtime a connection was made on shut down under it. Nothing
//! may hang, leak a slot, leave main running a call nobody waits for, or
//! count a violation; and a renderer's queue must not grow with calls it
//! gave up before their invoke was queued.

use std::{future::Future, sync::Arc, time::Duration};

use ipc_runtime::{transport, Connection, ConnectionBuilder, DisconnectCause, IpcError, Main};
use ipc_suite::{
    connect_memory, eventually, next_disconnection, poll_once, probe_main, probe_main_with,
    ProbeApi,
};

/// Main serving the probe, with `max_in_flight` calls per renderer.
fn main_allowing(max_in_flight: usize) -> (Main, Arc<ipc_suite::ProbeHandler>) {
    let mut limits = ipc_runtime::Limits::default();
    limits.max_in_flight = max_in_flight;
    probe_main_with(|b| b.limits(limits))
}

/// A runtime of the test's own, to be dropped under a connection made on it.
fn own_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Connects a ProbeApi renderer whose connection tasks live on their own
/// runtime (`rt`), main serving on the caller's runtime.
async fn connect_on(rt: &tokio::runtime::Runtime, main: &Main, label: &str) -> ProbeApi {
    let (main_end, renderer_end) = transport::memory_pair(256 * 1024);
    let connecting = rt.spawn(async move {
        Connection::builder()
            .connect_as::<ProbeApi>(renderer_end)
            .await
    });
    main.accept::<ProbeApi>(main_end, label).await.unwrap();
    connecting.await.unwrap().unwrap()
}

/// The renderer's runtime (where its connection's reader, writer and
/// timeout sweeper run) is dropped while a call made from another runtime
/// waits for its reply: the call must end (Disconnected, or at worst its
/// own timeout), not hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_pending_when_the_connection_runtime_is_dropped_ends() {
    let (main, handler) = probe_main();
    let mut gone = main.disconnections();
    let rt = own_runtime();
    let api = connect_on(&rt, &main, "rt-dropped").await;
    // The call's own timeout (the sweeper's) runs on the dropped runtime
    // too: only the end of the connection can end the call.
    let probe = api.probe.clone().with_timeout(Duration::from_secs(60));
    let call = tokio::spawn(async move { probe.gated(4).await });
    assert!(eventually(Duration::from_secs(5), || handler.at_gate() == 1).await);
    // The renderer's runtime goes away (e.g. shut down by its owner).
    tokio::task::spawn_blocking(move || drop(rt)).await.unwrap();
    // Main sees the renderer leave and aborts its handler.
    let gone = next_disconnection(&mut gone, "the renderer's runtime was dropped").await;
    assert_eq!(gone.renderer.id, api.id());
    assert!(eventually(Duration::from_secs(5), || handler.at_gate() == 0).await);
    // The call made from the surviving runtime must end.
    let ended = tokio::time::timeout(Duration::from_secs(5), call).await;
    let result = ended.expect("the pending call ended instead of hanging");
    match result.unwrap() {
        Err(IpcError::Disconnected { reason, cause }) => {
            assert!(reason.contains("runtime"), "{reason}");
            assert_eq!(cause, DisconnectCause::ClosedHere);
        }
        other => panic!("{other:?}"),
    }
}

/// After the connection's runtime is gone, the API handle that survived
/// it: is it reported closed, and do new calls fail at once?
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_connection_runtime_is_dropped_the_handle_reports_it() {
    let (main, _handler) = probe_main();
    let rt = own_runtime();
    let api = connect_on(&rt, &main, "rt-dropped-2").await;
    assert_eq!(api.probe.add(1, 2).await.unwrap(), 3);
    tokio::task::spawn_blocking(move || drop(rt)).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), api.closed()).await;
    assert!(
        matches!(&closed, Ok(IpcError::Disconnected { reason, cause: DisconnectCause::ClosedHere }) if reason.contains("runtime")),
        "{closed:?}"
    );
    let call = tokio::time::timeout(Duration::from_secs(5), api.probe.add(1, 2)).await;
    assert!(
        matches!(call, Ok(Err(IpcError::Disconnected { .. }))),
        "{call:?}"
    );
    let listen = tokio::time::timeout(Duration::from_secs(5), api.events.on_tick(|_| {})).await;
    assert!(matches!(listen, Ok(Err(IpcError::Disconnected { .. }))));
}

/// Calls dropped at every stage (waiting for a slot, queued, running on
/// main, reply arrived but not taken) leave nothing behind: every slot
/// comes back, main runs nothing, no violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_dropped_at_every_stage_give_every_slot_back() {
    let (main, handler) = main_allowing(2);
    let api = connect_memory(&main, "dropper").await.unwrap();
    let id = api.id();
    for round in 0..200u32 {
        // Two take the slots and wait at the gate on main, two wait for a
        // slot, one add whose reply arrives but is never taken.
        let mut running: Vec<_> = (0..2).map(|_| api.probe.gated(8)).collect();
        for c in &mut running {
            assert!(poll_once(c).await.is_none());
        }
        let mut waiting: Vec<_> = (0..2).map(|_| api.probe.add(1, 1)).collect();
        for c in &mut waiting {
            assert!(poll_once(c).await.is_none());
        }
        if round % 2 == 0 {
            drop(waiting);
            drop(running);
        } else {
            drop(running);
            // The first waiter gets a slot: its add is answered; dropped
            // after the reply came, before it is taken.
            tokio::time::sleep(Duration::from_millis(1)).await;
            drop(waiting);
        }
    }
    assert!(
        eventually(Duration::from_secs(5), || main.in_flight(id) == Some(0)
            && handler.at_gate() == 0)
        .await,
        "in flight on main: {:?}, at gate: {}",
        main.in_flight(id),
        handler.at_gate()
    );
    // Both slots are usable at once.
    let both = tokio::time::timeout(Duration::from_secs(5), async {
        let a = api.probe.gated(1);
        let b = api.probe.gated(1);
        let opener = async {
            assert!(eventually(Duration::from_secs(5), || handler.at_gate() == 2).await);
            handler.open_gate(2);
        };
        let (a, b, ()) = tokio::join!(a, b, opener);
        (a.unwrap(), b.unwrap())
    })
    .await
    .expect("both slots came back");
    assert_eq!(both.0.len() + both.1.len(), 2);
    assert_eq!(main.renderer_stats(id).unwrap().violations, 0);
}

/// Calls with a zero timeout expire before (or as) their invoke is
/// queued; main must not be left running them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_timeout_calls_leave_nothing_running_on_main() {
    let (main, handler) = probe_main();
    let api = connect_memory(&main, "zero").await.unwrap();
    let id = api.id();
    let zero = api.probe.clone().with_timeout(Duration::ZERO);
    for _ in 0..300 {
        let r = zero.sleep(60_000).await;
        assert!(matches!(r, Err(IpcError::Timeout { .. })), "{r:?}");
    }
    assert!(
        eventually(Duration::from_secs(5), || main.in_flight(id) == Some(0)).await,
        "still in flight on main: {:?} (started {}, aborted {})",
        main.in_flight(id),
        handler.started(),
        handler.aborted()
    );
    // Aborted tasks drop their handler (and count) a little later.
    assert!(
        eventually(Duration::from_secs(5), || handler.started()
            == handler.aborted())
        .await,
        "started {}, aborted {}",
        handler.started(),
        handler.aborted()
    );
    assert_eq!(main.renderer_stats(id).unwrap().violations, 0);
}

/// A reply being delivered (a large one, 2 MiB, read in pieces) when the call is
/// dropped: nothing breaks, the next call works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_call_while_its_large_reply_arrives_is_harmless() {
    let (main, handler) = probe_main();
    let api = connect_memory(&main, "big").await.unwrap();
    let mut gone = main.disconnections();
    for i in 0..20u64 {
        let mut call = api.probe.gated(2 << 20);
        assert!(poll_once(&mut call).await.is_none());
        assert!(eventually(Duration::from_secs(5), || handler.at_gate() == 1).await);
        handler.open_gate(1);
        // Dropped only once the handler took its permit: a call dropped
        // before (main aborts it at the gate) leaves the permit to the next
        // call, which then never waits at the gate.
        assert!(eventually(Duration::from_secs(5), || handler.at_gate() == 0).await);
        tokio::time::sleep(Duration::from_micros(200 * i)).await;
        drop(call);
    }
    assert_eq!(api.probe.add(2, 3).await.unwrap(), 5);
    assert!(gone.try_recv().is_err(), "no disconnect");
}

/// `select!` between a call and a timer, racing the reply many times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_racing_replies_never_errors_or_disconnects() {
    let (main, handler) = main_allowing(3);
    let api = Arc::new(connect_memory(&main, "racer").await.unwrap());
    let id = api.id();
    let mut tasks = Vec::new();
    for t in 0..4u64 {
        let api = Arc::clone(&api);
        tasks.push(tokio::spawn(async move {
            let mut answered = 0;
            for i in 0..300u64 {
                tokio::select! {
                    r = api.probe.sleep(i % 3) => { assert_eq!(r.unwrap(), i % 3); answered += 1 }
                    () = tokio::time::sleep(Duration::from_micros((i * 37 + t * 11) % 3000)) => {}
                }
            }
            answered
        }));
    }
    let answered = tokio::time::timeout(Duration::from_secs(60), async {
        let mut n = 0;
        for t in tasks {
            n += t.await.unwrap();
        }
        n
    })
    .await
    .expect("no hang");
    assert!(answered > 0, "some calls won their race");
    assert!(eventually(Duration::from_secs(5), || main.in_flight(id) == Some(0)).await);
    assert_eq!(main.renderer_stats(id).unwrap().violations, 0);
    assert_eq!(api.probe.add(1, 1).await.unwrap(), 2);
    let _ = handler;
}

/// A renderer whose main welcomes it and then reads nothing until told to
/// (`go`); from then on main reads to the end of the connection, and
/// returns the body of every frame it read. The pipe between them holds
/// `pipe` bytes; the renderer knows the contracts `services` registers,
/// and never times out.
async fn renderer_of_a_stalled_main(
    pipe: usize,
    services: impl FnOnce(ConnectionBuilder) -> ConnectionBuilder,
) -> (
    Connection,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Vec<Vec<u8>>>,
) {
    use tokio::io::AsyncReadExt;

    let (main_end, renderer_end) = tokio::io::duplex(pipe);
    let (mut rd, mut wr) = tokio::io::split(main_end);
    let (renderer_rd, renderer_wr) = tokio::io::split(renderer_end);
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let fake_main = tokio::spawn(async move {
        ipc_suite::raw::welcome(&mut rd, &mut wr, "stalled", 100_000).await;
        let _ = go_rx.await;
        let mut frames = Vec::new();
        while let Ok(len) = rd.read_u32().await {
            let mut body = vec![0; len as usize];
            if rd.read_exact(&mut body).await.is_err() {
                break;
            }
            frames.push(body);
        }
        drop(wr);
        frames
    });
    let conn = services(Connection::builder())
        .call_timeout(Duration::MAX)
        .connect(ipc_runtime::Transport::new(renderer_rd, renderer_wr))
        .await
        .unwrap();
    (conn, go_tx, fake_main)
}

/// Calls of 4 KiB polled once each, until the write queue is full: later
/// producers wait for room.
async fn fill_the_queue(probe: &ipc_suite::ProbeClient) -> Vec<impl Future + Unpin + '_> {
    let mut filler = Vec::new();
    for _ in 0..200 {
        let mut call = probe.len(vec![0; 4096]);
        assert!(poll_once(&mut call).await.is_none());
        filler.push(call);
    }
    filler
}

/// Lets the stalled main read, closes the connection, and returns what
/// main read.
async fn let_main_read(
    conn: Connection,
    go: tokio::sync::oneshot::Sender<()>,
    fake_main: tokio::task::JoinHandle<Vec<Vec<u8>>>,
) -> Vec<Vec<u8>> {
    go.send(()).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.close()).await;
    tokio::time::timeout(Duration::from_secs(10), fake_main)
        .await
        .expect("the fake main reads to the end")
        .unwrap()
}

/// Calls that give up while waiting for room in the write queue (main not
/// reading) never had their invoke queued: they must not queue a cancel
/// either. Cancels are queued past the queue's bounds (a destructor cannot
/// wait), so one per abandoned call would grow the queue without limit for
/// as long as main does not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_abandoned_before_their_invoke_was_queued_queue_no_cancels() {
    let (conn, go, fake_main) =
        renderer_of_a_stalled_main(64, |b| b.service::<ipc_suite::ProbeContract>()).await;
    let probe = ipc_suite::ProbeClient::new(&conn);
    let filler = fill_the_queue(&probe).await;
    // 2000 calls that wait for room, then give up: half dropped by an
    // outer timeout, half by their own (the library's) timeout.
    const ABANDONED: u64 = 2000;
    let short = probe.clone().with_timeout(Duration::from_millis(1));
    for i in 0..ABANDONED {
        if i % 2 == 0 {
            let r = tokio::time::timeout(Duration::from_millis(1), probe.add(i, i)).await;
            assert!(r.is_err(), "main never answers");
        } else {
            let r = short.add(i, i).await;
            assert!(matches!(r, Err(IpcError::Timeout { .. })), "{r:?}");
        }
    }
    drop(filler);
    drop((probe, short));
    let frames = let_main_read(conn, go, fake_main).await;
    let id = |body: &[u8]| u64::from_le_bytes(body[1..9].try_into().unwrap());
    let invoked: std::collections::HashSet<u64> = frames
        .iter()
        .filter(|b| b[0] == 0x10)
        .map(|b| id(b))
        .collect();
    let never_invoked = frames
        .iter()
        .filter(|b| b[0] == 0x12 && !invoked.contains(&id(b)))
        .count();
    assert!(!invoked.is_empty(), "the filler calls were invoked");
    assert!(
        never_invoked < 10,
        "{never_invoked} cancel frames for calls whose invoke was never queued were held for a main that was not reading"
    );
}

/// A call waiting for an in-flight slot, polled once and then kept, keeps
/// the slot it is let in for (as with a fair semaphore), and no more:
/// with both of main's slots free, another call goes through at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_kept_in_line_for_a_slot_holds_up_no_other_call() {
    let (main, handler) = main_allowing(2);
    let api = Arc::new(connect_memory(&main, "kept").await.unwrap());
    let running: Vec<_> = (0..2)
        .map(|_| {
            let api = Arc::clone(&api);
            tokio::spawn(async move { api.probe.gated(1).await })
        })
        .collect();
    assert!(eventually(Duration::from_secs(5), || handler.at_gate() == 2).await);
    let mut kept = Box::pin(api.probe.add(1, 1));
    assert!(poll_once(&mut kept).await.is_none(), "both slots are taken");
    handler.open_gate(2);
    for call in running {
        call.await.unwrap().unwrap();
    }
    let other = api.probe.clone().with_timeout(Duration::from_secs(5));
    assert_eq!(other.add(2, 2).await.unwrap(), 4);
    // The kept call still gets its own slot when it is polled again.
    assert_eq!(kept.await.unwrap(), 2);
}

/// Listeners given up while their subscribe request waited for room in
/// the write queue (main not reading) never asked main for anything: they
/// must not queue an unsubscribe either, for the reason calls given up
/// then queue no cancel (above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_abandoned_before_their_subscription_was_queued_queue_no_unsubscribes() {
    let (conn, go, fake_main) = renderer_of_a_stalled_main(4096, |b| {
        b.service::<ipc_suite::ProbeContract>()
            .service::<ipc_suite::ProbeEventsContract>()
    })
    .await;
    let probe = ipc_suite::ProbeClient::new(&conn);
    let events = ipc_suite::ProbeEventsListener::new(&conn);
    let filler = fill_the_queue(&probe).await;
    // Listeners, by callback and by stream, that wait for room to ask
    // main, then are given up.
    for i in 0..2000 {
        if i % 2 == 0 {
            let mut listen = events.on_tick(|_| {});
            assert!(poll_once(&mut listen).await.is_none(), "main never answers");
        } else {
            let mut stream = events.stream_note();
            assert!(poll_once(&mut stream).await.is_none(), "main never answers");
        }
    }
    drop(filler);
    drop((probe, events));
    let frames = let_main_read(conn, go, fake_main).await;
    let count = |kind: u8| frames.iter().filter(|b| b[0] == kind).count();
    assert_eq!(
        (count(0x13), count(0x14)),
        (0, 0),
        "unsubscribe frames for subscriptions never asked were held for a main that was not reading"
    );
}

/// A `send` that waits for room in the write queue, polled once and then
/// kept (as a future left behind by `select!` on `&mut fut` is), is handed
/// the room when main reads; it must not keep it from the others: another
/// `send` waiting the ordinary way goes ahead within the writer's
/// `STRANDED_AFTER` (10 ms) of the queue going idle, not at its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_kept_after_one_poll_holds_up_no_other_producer() {
    let (conn, go, fake_main) =
        renderer_of_a_stalled_main(64, |b| b.service::<ipc_suite::stuck::StuckContract>()).await;
    let client = ipc_suite::stuck::StuckClient::new(&conn);
    let mut kept = None;
    for i in 0..100u8 {
        let mut send = Box::pin(client.put(vec![i; 64 * 1024]));
        if poll_once(&mut send).await.is_none() {
            kept = Some(send);
            break;
        }
    }
    let kept = kept.expect("the queue filled");
    let waiting = tokio::spawn({
        let client = client.clone().with_timeout(Duration::from_secs(30));
        async move { client.put(vec![7; 16]).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    go.send(()).unwrap();
    let sent = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the waiting send went ahead once main read the queue empty")
        .unwrap();
    assert!(sent.is_ok(), "{sent:?}");
    drop(kept);
    drop(client);
    conn.close().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), fake_main)
        .await
        .expect("the connection closed")
        .unwrap();
}

/// The renderer's runtime is dropped with everything going on: listeners
/// receiving a flood of events, calls running on main, calls waiting for
/// a slot, sends. Main must not panic or hang, and keeps serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_renderer_runtime_mid_flight_leaves_main_healthy() {
    use ipc_suite::ProbeEventsEmitter;
    let (main, handler) = main_allowing(2);
    let mut gone = main.disconnections();
    for round in 0..5 {
        let rt = own_runtime();
        let api = Arc::new(connect_on(&rt, &main, "doomed").await);
        let id = api.id();
        let counted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        {
            let (api, counted) = (Arc::clone(&api), Arc::clone(&counted));
            rt.spawn(async move {
                let c = Arc::clone(&counted);
                let _g = api
                    .events
                    .on_tick(move |_| {
                        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    })
                    .await
                    .unwrap();
                let mut calls = Vec::new();
                for i in 0..6u64 {
                    let api = Arc::clone(&api);
                    calls.push(tokio::spawn(async move {
                        if i % 2 == 0 {
                            let _ = api.probe.gated(16).await;
                        } else {
                            let _ = api.probe.sleep(60_000).await;
                        }
                    }));
                }
                for n in 0.. {
                    let _ = api.probe.record(n).await;
                    tokio::task::yield_now().await;
                }
                drop(calls);
            });
        }
        assert!(
            main.subscribed(id, ipc_suite::ProbeEventsContract::TICK)
                .await
        );
        let emitter = ProbeEventsEmitter::new(&main, ipc_runtime::Target::All);
        let flood = tokio::spawn(async move {
            for n in 0..u64::MAX {
                emitter.tick(n);
                tokio::task::yield_now().await;
            }
        });
        tokio::time::sleep(Duration::from_millis(100 + 20 * round)).await;
        drop(api);
        tokio::task::spawn_blocking(move || drop(rt)).await.unwrap();
        let d = next_disconnection(&mut gone, "the doomed renderer").await;
        assert_eq!(d.renderer.id, id);
        flood.abort();
        assert!(eventually(Duration::from_secs(5), || main.renderer_count() == 0).await);
    }
    assert!(eventually(Duration::from_secs(5), || handler.at_gate() == 0).await);
    let api = connect_memory(&main, "after").await.unwrap();
    assert_eq!(api.probe.add(2, 2).await.unwrap(), 4);
}

/// A listener dropping its own guard from its callback: no event after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_dropped_in_its_own_callback_sees_no_later_event() {
    use ipc_suite::ProbeEventsEmitter;
    let (main, _) = probe_main();
    let api = connect_memory(&main, "self-drop").await.unwrap();
    let cell: Arc<std::sync::Mutex<Option<ipc_runtime::Subscription>>> = Arc::default();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let guard = api
        .events
        .on_tick({
            let (cell, seen) = (Arc::clone(&cell), Arc::clone(&seen));
            move |n| {
                seen.lock().unwrap().push(n);
                if n == 10 {
                    drop(cell.lock().unwrap().take());
                }
            }
        })
        .await
        .unwrap();
    *cell.lock().unwrap() = Some(guard);
    // A second listener on the same channel, to know when every event has arrived.
    let (_g2, mut rx) = ipc_suite::ticks_of(&api).await;
    let emitter = ProbeEventsEmitter::new(&main, ipc_runtime::Target::All);
    for n in 0..100 {
        emitter.tick(n);
    }
    for _ in 0..100 {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(*seen.lock().unwrap(), (0..=10).collect::<Vec<u64>>());
}

/// A subscription whose future is dropped while main's answer is on its
/// way leaves main's state consistent: a later listener gets events, and
/// once it goes main stops sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_subscribe_futures_leave_subscriptions_consistent() {
    dropped_subscribes().await
}

#[tokio::test]
async fn dropped_subscribe_futures_leave_subscriptions_consistent_one_thread() {
    dropped_subscribes().await
}

async fn dropped_subscribes() {
    use ipc_suite::ProbeEventsEmitter;
    let (main, _) = probe_main();
    let api = connect_memory(&main, "sub-drop").await.unwrap();
    let id = api.id();
    let tick = ipc_suite::ProbeEventsContract::TICK;
    for i in 0..200u64 {
        let mut a = api.events.on_tick(|_| {});
        let _ = poll_once(&mut a).await;
        if i % 3 == 0 {
            let mut b = api.events.on_tick(|_| {});
            let b_done = poll_once(&mut b).await;
            drop(a);
            if i % 2 == 0 {
                drop((b, b_done))
            } else {
                let b = match b_done {
                    Some(r) => r,
                    None => tokio::time::timeout(Duration::from_secs(5), b)
                        .await
                        .unwrap(),
                };
                drop(b.map_err(|e| panic!("iteration {i}: {e}")));
            }
        } else {
            drop(a);
        }
    }
    // Everything dropped: main must end up not subscribed.
    let emitter = ProbeEventsEmitter::new(&main, ipc_runtime::Target::All);
    // Round trip so main has processed every frame.
    api.probe.add(1, 1).await.unwrap();
    assert!(
        !main
            .renderer_stats(id)
            .unwrap()
            .subscriptions
            .contains(&tick.to_string()),
        "{:?}",
        main.renderer_stats(id).unwrap().subscriptions
    );
    let (_g, mut rx) = ipc_suite::ticks_of(&api).await;
    emitter.tick(7);
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap(),
        Some(7)
    );
}

/// Guards dropped on another thread while events pour in: at most the
/// call under way finishes after the drop returns; nothing later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guards_dropped_from_another_thread_stop_deliveries() {
    use ipc_suite::ProbeEventsEmitter;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let (main, _) = probe_main();
    let api = connect_memory(&main, "x-thread").await.unwrap();
    let emitter = ProbeEventsEmitter::new(&main, ipc_runtime::Target::All);
    let flood = tokio::spawn({
        let emitter = emitter.clone();
        async move {
            for n in 0..u64::MAX {
                emitter.tick(n);
                if n % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }
    });
    let mut worst = 0;
    for _ in 0..50 {
        let dropped = Arc::new(AtomicBool::new(false));
        let after = Arc::new(AtomicUsize::new(0));
        let guard = api
            .events
            .on_tick({
                let (dropped, after) = (Arc::clone(&dropped), Arc::clone(&after));
                move |_| {
                    if dropped.load(Ordering::SeqCst) {
                        after.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
        let d = Arc::clone(&dropped);
        tokio::task::spawn_blocking(move || {
            drop(guard);
            d.store(true, Ordering::SeqCst);
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        worst = worst.max(after.load(Ordering::SeqCst));
    }
    flood.abort();
    assert!(
        worst <= 1,
        "a listener was called {worst} times after its guard's drop returned"
    );
    assert_eq!(api.probe.add(1, 1).await.unwrap(), 2);
}

/// A renderer whose `send` handler never finishes, with the send budget
/// full: main has stopped reading from it, so it cannot see it leave (a
/// documented limit), but `Main::disconnect` still ends it at once.
mod stuck_send {
    use std::time::Duration;

    use ipc_suite::{
        connect_memory_as, next_disconnection,
        stuck::{stuck_main, StuckApi},
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_renderer_held_by_a_send_handler_that_never_ends_can_be_disconnected() {
        let main = stuck_main();
        let mut gone = main.disconnections();
        let api = connect_memory_as::<StuckApi>(&main, "sender")
            .await
            .unwrap();
        let id = api.id();
        for _ in 0..4 {
            api.stuck.put(vec![0; 600]).await.unwrap();
        }
        api.flush().await.unwrap();
        drop(api);
        // Not reading, main does not see the renderer leave.
        let seen = tokio::time::timeout(Duration::from_millis(300), gone.recv()).await;
        assert!(seen.is_err(), "{seen:?}");
        assert_eq!(main.renderer_count(), 1);
        assert!(main.disconnect(id));
        let gone = next_disconnection(&mut gone, "the disconnected sender").await;
        assert_eq!(gone.renderer.id, id);
        assert!(
            tokio::time::timeout(Duration::from_secs(5), main.disconnected(id))
                .await
                .is_ok()
        );
        assert_eq!(main.renderer_count(), 0);
    }

    /// Main has stopped reading: once the pipe and the renderer's own queue
    /// are full, a `send` waits for room. It waited for ever; now it fails
    /// after the client's timeout, having sent nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_waits_for_room_no_longer_than_the_clients_timeout() {
        let main = stuck_main();
        let api = connect_memory_as::<StuckApi>(&main, "sender")
            .await
            .unwrap();
        let patience = Duration::from_millis(200);
        let stuck = api.stuck.with_timeout(patience);
        let sending = async {
            for sent in 0u64.. {
                if let Err(e) = stuck.put(vec![0; 600]).await {
                    return (sent, e);
                }
            }
            unreachable!()
        };
        let (sent, e) = tokio::time::timeout(Duration::from_secs(10), sending)
            .await
            .expect("a send waited for ever");
        assert!(sent > 0);
        match e {
            ipc_runtime::IpcError::SendTimeout { channel, timeout } => {
                assert_eq!((channel.as_str(), timeout), ("stuck:put", patience))
            }
            other => panic!("expected SendTimeout, got {other:?}"),
        }
        assert!(main.disconnect(api.id()));
    }
}

//! The settings that take a duration accept `Duration::MAX` as "for ever",
//! and a renderer's end is reported before `close`/`disconnected` return.

use std::time::Duration;

use ipc_runtime::{transport, Connection, DisconnectCause, IpcError, Limits, Transport};
use ipc_suite::{connect_memory, probe_main, probe_main_with, ProbeApi};

/// How long any step below may take before the test calls it a hang.
const T: Duration = Duration::from_secs(10);

/// Main spinning "for ever" before it parks, and waiting for ever for the
/// rest of a frame: a 1 MiB call through a 16 KiB pipe arrives in parts.
/// Each made main's task for the renderer panic (`Instant + Duration::MAX`
/// overflows), leaving the renderer registered with its calls unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_takes_duration_max_as_for_ever() {
    let mut limits = Limits::default();
    limits.frame_timeout = Duration::MAX;
    limits.handshake_timeout = Duration::MAX;
    let (main, _) = probe_main_with(|b| b.limits(limits).spin_before_parking(Duration::MAX));
    let (main_end, renderer_end) = transport::memory_pair(16 * 1024);
    let (accepted, api) = tokio::join!(
        main.accept::<ProbeApi>(main_end, "patient"),
        Connection::builder().connect_as::<ProbeApi>(renderer_end)
    );
    accepted.unwrap();
    let api = api.unwrap();
    let call = tokio::time::timeout(T, api.probe.len(vec![1; 1 << 20])).await;
    assert_eq!(call.expect("no answer").unwrap(), 1 << 20);
    assert_eq!(main.renderer_count(), 1);
}

/// The renderer's handshake timeout, call timeout and spin, all
/// `Duration::MAX`: the connect and the call panicked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renderer_takes_duration_max_as_for_ever() {
    let (main, _) = probe_main();
    let (main_end, renderer_end) = transport::memory_pair(64 * 1024);
    let connect = tokio::spawn(
        Connection::builder()
            .handshake_timeout(Duration::MAX)
            .call_timeout(Duration::MAX)
            .spin_before_parking(Duration::MAX)
            .connect_as::<ProbeApi>(renderer_end),
    );
    main.accept::<ProbeApi>(main_end, "patient").await.unwrap();
    let api = tokio::time::timeout(T, connect).await.unwrap();
    let api = api.expect("connect panicked").unwrap();
    let call = tokio::time::timeout(T, api.probe.add(1, 2)).await;
    assert_eq!(call.expect("no answer").unwrap(), 3);
}

/// A token that never expires: issuing it panicked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_may_live_for_ever() {
    let (main, _) = probe_main();
    let unix = main.listen_unix().unwrap();
    unix.set_token_lifetime(Duration::MAX);
    let token = unix.issue_token::<ProbeApi>("for-ever").unwrap();
    let api = tokio::time::timeout(T, ProbeApi::connect_unix(unix.path(), &token)).await;
    assert_eq!(api.unwrap().unwrap().probe.add(2, 2).await.unwrap(), 4);
}

/// `Main::close` returns once every renderer is released, and each release
/// is in `disconnections()` by then. The reason was published to the
/// watch `close` waits on just before the broadcast, so `close` could
/// return with a disconnection still to come (19 rounds in 200 here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_disconnection_is_reported_when_close_returns() {
    for round in 0..100 {
        let (main, _) = probe_main();
        let mut gone = main.disconnections();
        let mut apis = Vec::new();
        for i in 0..4 {
            apis.push(connect_memory(&main, &format!("r{i}")).await.unwrap());
        }
        main.close().await;
        let mut reported = 0;
        while gone.try_recv().is_ok() {
            reported += 1;
        }
        assert_eq!(reported, 4, "round {round}");
    }
}

/// Once `close` has returned and the app has dropped its `Main`, main's
/// services (and what their handlers hold: a database, a file lock) are
/// freed at once, so that the app can open them again. Each renderer's
/// task kept them for another second, while it let the renderer's last
/// frames be written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_then_drop_frees_the_services() {
    let (main, handler) = probe_main();
    let api = connect_memory(&main, "window").await.unwrap();
    assert_eq!(api.probe.add(1, 2).await.unwrap(), 3);
    main.close().await;
    drop(main);
    assert!(
        ipc_suite::eventually(Duration::from_millis(300), || std::sync::Arc::strong_count(
            &handler
        ) == 1)
        .await,
        "the handler is still held"
    );
}

/// The same for `Main::disconnected`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnection_is_reported_when_disconnected_returns() {
    let (main, _) = probe_main();
    let mut gone = main.disconnections();
    for round in 0..100 {
        let api = connect_memory(&main, "brief").await.unwrap();
        assert!(main.disconnect(api.id()));
        main.disconnected(api.id()).await;
        let reported = gone.try_recv().map(|d| d.renderer.id);
        assert_eq!(reported, Ok(api.id()), "round {round}");
    }
}

/// A closed main refuses what would only lead to refused renderers: a new
/// endpoint, or a token from one it already had (both succeeded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_main_opens_no_endpoint_and_issues_no_token() {
    let (main, _) = probe_main();
    let unix = main.listen_unix().unwrap();
    let tcp = main.listen_tcp("127.0.0.1:0").unwrap();
    main.close().await;
    let closed = |r: Result<(), IpcError>| match r {
        Err(IpcError::Disconnected { reason, cause }) => {
            assert!(reason.contains("main is closed"), "{reason}");
            assert_eq!(cause, DisconnectCause::MainClosed);
        }
        other => panic!("expected Disconnected, got {other:?}"),
    };
    closed(unix.issue_token::<ProbeApi>("late").map(drop));
    closed(tcp.issue_token::<ProbeApi>("late").map(drop));
    closed(main.listen_unix().map(drop));
    closed(main.listen_tcp("127.0.0.1:0").map(drop));
}

/// A renderer can tell why main ended its connection, in words and as a
/// [`DisconnectCause`]: main shut down, or dropped it (here also for
/// misbehaving: a call outside its API with one violation allowed). Each
/// would otherwise read "main closed the connection", as for a main that
/// crashed (`hardening.rs` checks that one still does, as `Lost`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renderer_learns_why_main_ended_its_connection() {
    let reason = |e: IpcError| match e {
        IpcError::Disconnected { reason, cause } => (reason, cause),
        other => panic!("expected Disconnected, got {other:?}"),
    };
    let (main, _) = probe_main_with(|b| {
        let mut limits = Limits::default();
        limits.max_violations = Some(1);
        b.limits(limits)
    });
    let dropped = connect_memory(&main, "dropped").await.unwrap();
    let closing = connect_memory(&main, "closing").await.unwrap();
    // A connection made without an API type, accepted as the narrow one.
    let (main_end, renderer_end) = transport::memory_pair(64 * 1024);
    let (accepted, wayward) = tokio::join!(
        main.accept::<ipc_suite::NarrowApi>(main_end, "wayward"),
        Connection::builder().connect(renderer_end)
    );
    accepted.unwrap();
    let wayward = wayward.unwrap();

    assert!(main.disconnect(dropped.id()));
    let (why, cause) = reason(tokio::time::timeout(T, dropped.closed()).await.unwrap());
    assert_eq!(why, "main disconnected this renderer (`Main::disconnect`, or its `RendererProcess` killed or dropped)");
    assert_eq!(cause, DisconnectCause::DisconnectedByMain);
    // Calls made after it ended say the same.
    let late = dropped.probe.add(1, 2).await.unwrap_err();
    assert_eq!(
        late.disconnect_cause(),
        Some(DisconnectCause::DisconnectedByMain)
    );

    // `add` is outside the grant it was accepted with.
    let _ = ipc_suite::ProbeClient::new(&wayward).add(1, 2).await;
    let (why, cause) = reason(tokio::time::timeout(T, wayward.closed()).await.unwrap());
    assert!(
        why.starts_with("main disconnected this renderer after 1 protocol violation; the last: "),
        "{why}"
    );
    assert_eq!(cause, DisconnectCause::Misbehaved);

    main.close().await;
    let (why, cause) = reason(tokio::time::timeout(T, closing.closed()).await.unwrap());
    assert_eq!(why, "main shut down (`Main::close`)");
    assert_eq!(cause, DisconnectCause::MainClosed);
}

/// An app's usual exit: `main.close().await`, then its runtime goes.
/// `close` returned once the farewell was queued, not written, and main's
/// writer died with the runtime (about 1 round in 20).
#[test]
fn the_farewell_is_written_before_close_returns() {
    let renderer_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for round in 0..100 {
        let main_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (main_end, renderer_end) = transport::memory_pair(64 * 1024);
        let connect = renderer_rt.spawn(Connection::builder().connect_as::<ProbeApi>(renderer_end));
        let main = main_rt.block_on(async {
            let (main, _) = probe_main();
            main.accept::<ProbeApi>(main_end, "r").await.unwrap();
            main
        });
        let api = renderer_rt.block_on(connect).unwrap().unwrap();
        main_rt.block_on(main.close());
        drop(main_rt);
        let why = renderer_rt.block_on(async { tokio::time::timeout(T, api.closed()).await });
        match why {
            Ok(IpcError::Disconnected { reason, cause }) => {
                assert_eq!(reason, "main shut down (`Main::close`)", "round {round}");
                assert_eq!(cause, DisconnectCause::MainClosed, "round {round}");
            }
            other => panic!("round {round}: {other:?}"),
        }
    }
}

/// `Main::disconnect`, then `Main::close`: the renderer was dropped before
/// main shut down, and is told so (the wording was chosen when the
/// connection's task got round to it, by then "main shut down").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renderer_disconnected_before_close_is_told_so() {
    let (main, _) = probe_main();
    let api = connect_memory(&main, "dropped-first").await.unwrap();
    assert!(main.disconnect(api.id()));
    main.close().await;
    match tokio::time::timeout(T, api.closed()).await.unwrap() {
        IpcError::Disconnected { reason, cause } => {
            assert_eq!(
                reason,
                "main disconnected this renderer (`Main::disconnect`, or its `RendererProcess` killed or dropped)"
            );
            assert_eq!(cause, DisconnectCause::DisconnectedByMain);
        }
        other => panic!("{other:?}"),
    }
}

/// A renderer writing when main drops it is told why, and its calls and
/// sends fail with the same reason. Its writer fails first (broken pipe):
/// that reason was kept over the farewell the reader then read (about 1
/// round in 4), and later it failed the calls at once as lost, while
/// main's farewell was still unread (about 1 round in 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_failing_as_main_drops_a_writing_renderer_agree_with_closed() {
    let (main, _) = probe_main();
    let mut disagreements = Vec::new();
    for round in 0..100 {
        let api = connect_memory(&main, "busy").await.unwrap();
        let caller = api.clone();
        let pending = tokio::spawn(async move { caller.probe.sleep(60_000).await });
        let sender = api.clone();
        let sending = tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                if let Err(e) = sender.probe.record(n).await {
                    return e;
                }
                n += 1;
                if n % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(main.disconnect(api.id()));
        let why = tokio::time::timeout(T, api.closed()).await.unwrap();
        let sent = sending.await.unwrap();
        let called = tokio::time::timeout(T, pending)
            .await
            .unwrap()
            .unwrap()
            .unwrap_err();
        match &why {
            IpcError::Disconnected { reason, cause } => {
                assert_eq!(
                    reason, "main disconnected this renderer (`Main::disconnect`, or its `RendererProcess` killed or dropped)",
                    "round {round}"
                );
                assert_eq!(*cause, DisconnectCause::DisconnectedByMain, "round {round}");
            }
            other => panic!("round {round}: {other:?}"),
        }
        let cause = why.disconnect_cause();
        if called.disconnect_cause() != cause || sent.disconnect_cause() != cause {
            disagreements.push(format!("round {round}: call: {called}; send: {sent}"));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// The renderer closes its connection as main closes: whichever comes
/// first, its failed call and `closed` give the same cause. Main's
/// farewell replaced the renderer's own reason for `closed` after the call
/// had failed with it (a few rounds in 200).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_here_racing_mains_close_gives_one_cause() {
    let mut disagreements = Vec::new();
    for round in 0..100 {
        let (main, _) = probe_main();
        let api = connect_memory(&main, "r").await.unwrap();
        let caller = api.clone();
        let pending = tokio::spawn(async move { caller.probe.sleep(60_000).await });
        tokio::time::sleep(Duration::from_millis(2)).await;
        let other = api.clone();
        let closing = main.clone();
        let main_closes = tokio::spawn(async move { closing.close().await });
        if round % 2 == 0 {
            tokio::task::yield_now().await;
        }
        let _ = api.close().await;
        let why = tokio::time::timeout(T, other.closed()).await.unwrap();
        let called = tokio::time::timeout(T, pending)
            .await
            .unwrap()
            .unwrap()
            .unwrap_err();
        main_closes.await.unwrap();
        assert!(
            matches!(
                why.disconnect_cause(),
                Some(DisconnectCause::ClosedHere | DisconnectCause::MainClosed)
            ),
            "round {round}: {why}"
        );
        if called.disconnect_cause() != why.disconnect_cause() {
            disagreements.push(format!("round {round}: call: {called}; closed: {why}"));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// Once a renderer's `connect` returns, main counts it: `renderer_id` finds
/// the number the renderer reports. Main welcomed it before registering
/// it, so for a moment it did not (the renderer number, sent back by some
/// other way, was refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_renderer_is_known_to_main_at_once() {
    let (main, _) = probe_main();
    for round in 0..300 {
        let (main_end, renderer_end) = transport::memory_pair(64 * 1024);
        let accepting = tokio::spawn({
            let main = main.clone();
            async move { main.accept::<ProbeApi>(main_end, "quick").await }
        });
        let api = Connection::builder()
            .connect_as::<ProbeApi>(renderer_end)
            .await
            .unwrap();
        assert!(
            main.renderer_id(api.id().get()).is_some(),
            "round {round}: main does not know renderer {}",
            api.id()
        );
        accepting.await.unwrap().unwrap();
    }
}

/// A transport for main whose peer sends a valid hello and never reads:
/// a pipe too small for main's welcome, so writing it waits.
fn deaf_peer() -> Transport {
    use ipc_suite::raw::{framed, hello_body};
    use tokio::io::AsyncWriteExt;

    let (main_side, mut peer) = tokio::io::duplex(16);
    let (read, write) = tokio::io::split(main_side);
    let hello = framed(&hello_body::<ipc_suite::ProbeContract>(None));
    tokio::spawn(async move {
        let _ = peer.write_all(&hello).await;
        // Kept open, never read.
        std::future::pending::<()>().await;
        drop(peer);
    });
    Transport::new(read, write)
}

/// Main's `accept` for [`deaf_peer`] in a task, once main lists the
/// renderer (registered, waiting to write the welcome).
async fn accepting_deaf(
    main: &ipc_runtime::Main,
) -> tokio::task::JoinHandle<Result<ipc_runtime::RendererInfo, IpcError>> {
    let transport = deaf_peer();
    let accepting = tokio::spawn({
        let main = main.clone();
        async move { main.accept::<ProbeApi>(transport, "deaf").await }
    });
    assert!(ipc_suite::eventually(T, || main.renderer_count() == 1).await);
    accepting
}

/// A renderer that sent its hello but never reads main's welcome is
/// registered while main waits to write it: `Main::close` ends that wait
/// at once (it waited for the whole handshake timeout, 10 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_does_not_wait_for_a_welcome_nobody_reads() {
    let (main, _) = probe_main();
    let accepting = accepting_deaf(&main).await;
    let started = std::time::Instant::now();
    tokio::time::timeout(T, main.close())
        .await
        .expect("close returned");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "close took {took:?}");
    assert_eq!(main.renderer_count(), 0);
    let _ = tokio::time::timeout(T, accepting)
        .await
        .expect("accept ended");
}

/// `accept` given up while it waits to write the welcome (a timeout around
/// it, a `select!`): the renderer stayed registered for ever, even after
/// `Main::close`. It is now released, and reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_accept_leaves_no_renderer_behind() {
    let (main, _) = probe_main();
    let mut gone = main.disconnections();
    let accepting = accepting_deaf(&main).await;
    accepting.abort();
    let ended = ipc_suite::next_disconnection(&mut gone, "the abandoned renderer").await;
    assert!(
        matches!(&ended.reason, ipc_runtime::DisconnectReason::Failed(why) if why.contains("cancelled")),
        "{:?}",
        ended.reason
    );
    assert_eq!(main.renderer_count(), 0);
}

/// A renderer main listed while it waited, whose welcome then fails (here
/// not read within the handshake timeout), is reported gone like any
/// other: `disconnected` gave `None` and nothing was broadcast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_renderer_whose_welcome_fails_is_reported() {
    let (main, _) = probe_main_with(|b| b.handshake_timeout(Duration::from_millis(300)));
    let mut gone = main.disconnections();
    let accepting = accepting_deaf(&main).await;
    let id = main.renderers()[0].id;
    let reason = tokio::time::timeout(T, main.disconnected(id))
        .await
        .unwrap();
    assert!(
        matches!(&reason, Some(ipc_runtime::DisconnectReason::Failed(why)) if why.contains("welcome")),
        "{reason:?}"
    );
    assert_eq!(
        ipc_suite::next_disconnection(&mut gone, "the unwelcomed renderer")
            .await
            .renderer
            .id,
        id
    );
    assert!(accepting.await.unwrap().is_err());
}

/// `Main::close` and `send` handlers: those still running when main
/// closes, of any renderer, and those that close main themselves (a
/// "quit" message).
mod close_and_send_handlers {
    use std::{
        sync::{
            atomic::{AtomicBool, AtomicUsize, Ordering},
            Arc, Mutex, OnceLock,
        },
        time::Duration,
    };

    use ipc_runtime::{expose, service, Main};
    use ipc_suite::{connect_memory_as, eventually};

    #[service(namespace = "app")]
    pub trait App {
        /// Closes main (once another `quit` has started, if `together`),
        /// then records how long `close` took.
        #[ipc(send)]
        async fn quit(&self, together: bool);
        /// Never finishes; sets `dropped` when its future is dropped.
        #[ipc(send)]
        async fn stuck(&self);
    }

    expose! {
        pub struct AppApi {
            app: App { quit, stuck },
        }
    }

    struct State {
        main: OnceLock<Main>,
        started: AtomicUsize,
        dropped: Arc<AtomicBool>,
        closes: Mutex<Vec<Duration>>,
        together: tokio::sync::Barrier,
    }

    impl App for Arc<State> {
        async fn quit(&self, together: bool) {
            if together {
                // Both handlers run before either closes main (which would
                // leave the other's message unread).
                self.together.wait().await;
            }
            let started = tokio::time::Instant::now();
            self.main.get().unwrap().close().await;
            self.closes.lock().unwrap().push(started.elapsed());
        }

        async fn stuck(&self) {
            let _flag = ipc_suite::DropFlag(Arc::clone(&self.dropped));
            self.started.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await
        }
    }

    fn app_main() -> (Main, Arc<State>) {
        let state = Arc::new(State {
            main: OnceLock::new(),
            started: AtomicUsize::new(0),
            dropped: Arc::default(),
            closes: Mutex::default(),
            together: tokio::sync::Barrier::new(2),
        });
        let main = Main::builder()
            .service(AppServer::new(Arc::clone(&state)))
            .build()
            .unwrap();
        state.main.set(main.clone()).unwrap();
        (main, state)
    }

    async fn connect(main: &Main, label: &str) -> AppApi {
        connect_memory_as::<AppApi>(main, label).await.unwrap()
    }

    /// Waits until `n` `quit` handlers got past `close`, and returns how
    /// long each `close` took.
    async fn closes(state: &State, n: usize) -> Vec<Duration> {
        let done = || state.closes.lock().unwrap().len() == n;
        assert!(
            eventually(Duration::from_secs(15), done).await,
            "only {:?} of {n} handlers got past `close`",
            state.closes.lock().unwrap()
        );
        state.closes.lock().unwrap().clone()
    }

    /// `close` waits for the `send` handlers still running, but not for
    /// the one calling it, which goes on once `close` returns. (Waited
    /// for, it was aborted once `close` had waited its whole grace, 5 s,
    /// and never got past `close`.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_handler_goes_on_after_close() {
        let (main, state) = app_main();
        let api = connect(&main, "window").await;
        let other = connect(&main, "other").await;
        api.app.quit(false).await.unwrap();
        let took = closes(&state, 1).await;
        assert!(took[0] < Duration::from_secs(3), "close took {took:?}");
        assert!(main.is_closed());
        let reason = tokio::time::timeout(Duration::from_secs(5), other.closed()).await;
        assert!(reason.unwrap().to_string().contains("main shut down"));
    }

    /// Two "quit" messages at once, from two renderers: neither `close`
    /// waits for the other's handler. (Each did, for 5 s, and then one
    /// aborted the other.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_handlers_closing_at_once_both_go_on() {
        let (main, state) = app_main();
        let (a, b) = (connect(&main, "a").await, connect(&main, "b").await);
        a.app.quit(true).await.unwrap();
        b.app.quit(true).await.unwrap();
        let took = closes(&state, 2).await;
        assert!(took.iter().all(|t| *t < Duration::from_secs(3)), "{took:?}");
    }

    /// A second `close` while the first waits for a handler returns only
    /// once the first is done: an app whose "quit" handler closes main,
    /// and whose `main` closes it too and then exits, does not cut the
    /// handlers off. (It returned at once.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_close_waits_for_the_first() {
        let (main, state) = app_main();
        let api = connect(&main, "window").await;
        api.app.stuck().await.unwrap();
        let started = || state.started.load(Ordering::SeqCst) == 1;
        assert!(eventually(Duration::from_secs(5), started).await);
        let first = tokio::spawn({
            let main = main.clone();
            async move { main.close().await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        main.close().await;
        assert!(
            state.dropped.load(Ordering::SeqCst),
            "the second close returned while a send handler still ran"
        );
        first.await.unwrap();
    }

    /// The `send` handler of a renderer gone before main closes is waited
    /// for and stopped like the others: only the renderers still connected
    /// were (the handler, and what it held, lived on).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_handlers_of_renderers_gone_before_are_stopped_too() {
        let (main, state) = app_main();
        let api = connect(&main, "window").await;
        let id = api.id();
        api.app.stuck().await.unwrap();
        let started = || state.started.load(Ordering::SeqCst) == 1;
        assert!(eventually(Duration::from_secs(5), started).await);
        drop(api);
        main.disconnected(id).await;
        main.close().await;
        assert!(state.dropped.load(Ordering::SeqCst));
    }

    fn runtime(workers: usize) -> tokio::runtime::Runtime {
        match workers {
            0 => tokio::runtime::Builder::new_current_thread(),
            n => {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(n);
                b
            }
        }
        .enable_all()
        .build()
        .unwrap()
    }

    /// A renderer accepted, served and gone on `runtime`.
    fn a_renderer_on(runtime: &tokio::runtime::Runtime, main: &Main) {
        runtime.block_on(async {
            let api = connect(main, "first").await;
            let id = api.id();
            drop(api);
            main.disconnected(id).await;
        });
    }

    /// A `Main` that served renderers on one runtime, then on another:
    /// `close` on the second does its work there. It ran it on the runtime
    /// of main's first renderer: one not running (a current-thread runtime
    /// outside `block_on`) left every `close` waiting for ever, and one
    /// shut down made `close` return at once, with a handler running.
    #[test]
    fn close_works_on_the_callers_runtime() {
        let (main, state) = app_main();
        let first = runtime(0);
        a_renderer_on(&first, &main);
        let second = runtime(2);
        second.block_on(async {
            let api = connect(&main, "second").await;
            api.app.stuck().await.unwrap();
            let started = || state.started.load(Ordering::SeqCst) == 1;
            assert!(eventually(Duration::from_secs(5), started).await);
            tokio::time::timeout(Duration::from_secs(10), main.close())
                .await
                .expect("close waited for a runtime that does not run");
            assert!(state.dropped.load(Ordering::SeqCst));
        });
        drop(first);
    }

    /// The same with the first runtime shut down.
    #[test]
    fn close_works_after_the_first_runtime_is_gone() {
        let (main, state) = app_main();
        let first = runtime(0);
        a_renderer_on(&first, &main);
        drop(first);
        runtime(2).block_on(async {
            let api = connect(&main, "second").await;
            api.app.stuck().await.unwrap();
            let started = || state.started.load(Ordering::SeqCst) == 1;
            assert!(eventually(Duration::from_secs(5), started).await);
            main.close().await;
            assert!(
                state.dropped.load(Ordering::SeqCst),
                "close returned with a handler running"
            );
            assert_eq!(main.renderer_count(), 0);
        });
    }

    /// A renderer stuck in `stuck` on `runtime`, once its handler runs.
    fn stuck_on(runtime: &tokio::runtime::Runtime, main: &Main, state: &State) -> AppApi {
        runtime.block_on(async {
            let api = connect(main, "stuck").await;
            api.app.stuck().await.unwrap();
            let started = || state.started.load(Ordering::SeqCst) == 1;
            assert!(eventually(Duration::from_secs(5), started).await);
            api
        })
    }

    /// Polls `close` once on a runtime of its own, which then stops.
    fn close_polled_once(main: &Main) -> tokio::runtime::Runtime {
        let once = runtime(0);
        once.block_on(async {
            tokio::select! {
                biased;
                () = main.close() => panic!("close returned with a handler stuck"),
                () = std::future::ready(()) => {}
            }
        });
        once
    }

    /// `close` does its waiting on a thread of its own: whichever runtime
    /// first polled it, or none, later calls return once the handlers are
    /// stopped. It ran on the caller's runtime: one polled once and left
    /// idle kept every later `close` waiting for ever, one dropped made
    /// them return at once with the handler running, and so did one
    /// without timers.
    #[test]
    fn close_does_not_depend_on_the_runtime_that_polled_it() {
        // Polled once on a runtime left idle.
        let (main, state) = app_main();
        let served = runtime(2);
        let _api = stuck_on(&served, &main, &state);
        let idle = close_polled_once(&main);
        let closed = served
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), main.close()).await });
        assert!(closed.is_ok(), "close waited for an idle runtime");
        assert!(state.dropped.load(Ordering::SeqCst));
        drop(idle);

        // Polled once on a runtime then dropped.
        let (main, state) = app_main();
        let _api = stuck_on(&served, &main, &state);
        drop(close_polled_once(&main));
        served.block_on(main.close());
        assert!(
            state.dropped.load(Ordering::SeqCst),
            "close returned with a handler running"
        );

        // Called on a runtime without timers.
        let (main, state) = app_main();
        let _api = stuck_on(&served, &main, &state);
        let no_timers = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        no_timers.block_on(main.close());
        assert!(
            state.dropped.load(Ordering::SeqCst),
            "close returned with a handler running"
        );
    }

    /// The same called outside any runtime, the runtime main last served a
    /// renderer on gone: it returned at once, with the handler running.
    #[test]
    fn close_outside_a_runtime_waits_for_the_handlers() {
        let (main, state) = app_main();
        let served = runtime(2);
        let _api = stuck_on(&served, &main, &state);
        let last = runtime(0);
        a_renderer_on(&last, &main);
        drop(last);
        ipc_suite::block_on(main.close());
        assert!(
            state.dropped.load(Ordering::SeqCst),
            "close returned with a handler running"
        );
    }
}

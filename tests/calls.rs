//! Calls on one connection: concurrency, typed errors, timeouts,
//! cancellation, panics, caller identity and send ordering.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Condvar, Mutex,
    },
    time::Duration,
};

use ipc_runtime::{codec, CallError, Connection, DisconnectCause, IpcError, Main, Transport};
use ipc_suite::{
    connect_memory, ends_disconnected, eventually, poll_once, probe_main, probe_main_with,
    raw::{
        framed, hello_body, invoke_body, kind, reply_ok_body, welcome, welcome_body, RawPeer,
        WireError,
    },
    MathError, ProbeApi,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_calls_each_get_their_own_reply() {
    let (main, _) = probe_main();
    let probe = connect_memory(&main, "busy").await.unwrap().probe;
    let calls = (0..100u64).map(|i| {
        let probe = probe.clone();
        async move {
            // Later calls finish first: replies come back out of order.
            let slept = probe.sleep(100 - i).await.unwrap();
            let sum = probe.add(i, 1000).await.unwrap();
            (i, slept, sum)
        }
    });
    for (i, slept, sum) in futures_join_all(calls).await {
        assert_eq!(slept, 100 - i);
        assert_eq!(sum, i + 1000);
    }
}

async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn typed_errors_arrive_typed() {
    let (main, _) = probe_main();
    let probe = connect_memory(&main, "math").await.unwrap().probe;
    assert_eq!(probe.divide(10, 2).await.unwrap(), 5);
    match probe.divide(10, 0).await {
        Err(CallError::Handler(e)) => {
            assert_eq!(e, MathError::DivideByZero(10));
            assert_eq!(e.to_string(), "cannot divide 10 by zero");
        }
        other => panic!("expected the handler's typed error, got {other:?}"),
    }
}

#[tokio::test]
async fn timeout_names_the_channel_and_duration_and_aborts_the_handler() {
    let (main, handler) = probe_main();
    let conn = connect_memory(&main, "impatient").await.unwrap();
    let probe = conn.probe.clone().with_timeout(Duration::from_millis(50));
    let err = probe.sleep(60_000).await.unwrap_err();
    match &err {
        IpcError::Timeout { channel, timeout } => {
            assert_eq!(channel, "probe:sleep");
            assert_eq!(*timeout, Duration::from_millis(50));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(err.to_string().contains("timed out after 50ms"), "{err}");
    // Main was told to cancel: the handler was aborted, nothing in flight.
    assert!(eventually(Duration::from_secs(5), || handler.aborted() == 1).await);
    assert!(
        eventually(Duration::from_secs(5), || main.in_flight(conn.id())
            == Some(0))
        .await
    );
    // The connection still works.
    assert_eq!(probe.add(1, 1).await.unwrap(), 2);
}

#[tokio::test]
async fn a_short_timeout_expires_on_time_behind_a_longer_one() {
    // The renderer keeps one timer per connection, set to the earliest
    // deadline: a call with a shorter timeout must move it earlier.
    let (main, handler) = probe_main();
    let conn = connect_memory(&main, "mixed").await.unwrap();
    let patient = conn.probe.clone().with_timeout(Duration::from_secs(3600));
    let hasty = conn.probe.clone().with_timeout(Duration::from_millis(50));
    let long = tokio::spawn(async move { patient.sleep(60_000).await });
    assert!(
        eventually(Duration::from_secs(5), || main.in_flight(conn.id())
            == Some(1))
        .await
    );
    let started = std::time::Instant::now();
    let err = hasty.sleep(60_000).await.unwrap_err();
    assert!(matches!(err, IpcError::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(eventually(Duration::from_secs(5), || handler.aborted() == 1).await);
    assert!(!long.is_finished(), "the longer call still waits");
    long.abort();
}

#[tokio::test]
async fn dropping_the_call_future_cancels_the_handler() {
    let (main, handler) = probe_main();
    let conn = connect_memory(&main, "fickle").await.unwrap();
    let probe = conn.probe.clone();
    let call = tokio::spawn({
        let probe = probe.clone();
        async move { probe.sleep(60_000).await }
    });
    assert!(eventually(Duration::from_secs(5), || handler.started() == 1).await);
    assert_eq!(main.in_flight(conn.id()), Some(1));
    call.abort();
    assert!(
        eventually(Duration::from_secs(5), || handler.aborted() == 1).await,
        "the handler observed its abort"
    );
    assert_eq!(
        handler.aborted_as_caller(),
        1,
        "its destructors ran with the caller set"
    );
    assert!(
        eventually(Duration::from_secs(5), || main.in_flight(conn.id())
            == Some(0))
        .await
    );
}

#[tokio::test]
async fn a_panicking_handler_fails_only_its_call() {
    let (main, _) = probe_main_with(|b| b.forward_failure_details(true));
    let conn = connect_memory(&main, "reckless").await.unwrap();
    let probe = conn.probe.clone();
    match probe.explode("boom".into()).await {
        Err(IpcError::HandlerPanicked { channel, message }) => {
            assert_eq!(channel, "probe:explode");
            assert_eq!(message, "boom");
        }
        other => panic!("expected a contained panic, got {other:?}"),
    }
    assert_eq!(probe.echo("still here".into()).await.unwrap(), "still here");
    // The same when the handler panics after waiting, in its own task.
    match probe.explode("later: boom".into()).await {
        Err(IpcError::HandlerPanicked { message, .. }) => assert_eq!(message, "later: boom"),
        other => panic!("expected a contained panic, got {other:?}"),
    }
    assert_eq!(main.in_flight(conn.id()), Some(0));
}

/// A panic's report is cut to 1024 characters of its message, so that it
/// fits a small frame; a failure report that still exceeds what the
/// renderer accepts is replaced by `FrameTooLarge`. Either way the call
/// fails at once: a report main could not send left it waiting for its
/// timeout.
#[tokio::test]
async fn long_failure_reports_reach_a_renderer_with_a_small_frame_limit() {
    let (main, _) = probe_main_with(|b| b.forward_failure_details(true));
    for (limit, message) in [(4096, "p".repeat(8000)), (256, "\n".repeat(900))] {
        let (main_end, renderer_end) = ipc_runtime::transport::memory_pair(64 * 1024);
        let (accepted, api) = tokio::join!(
            main.accept::<ProbeApi>(main_end, "small-frames"),
            Connection::builder()
                .max_frame_size(limit)
                .call_timeout(Duration::from_secs(60))
                .connect_as::<ProbeApi>(renderer_end)
        );
        accepted.unwrap();
        let probe = api.unwrap().probe;
        for message in [message.clone(), format!("later:{message}")] {
            let result =
                tokio::time::timeout(Duration::from_secs(5), probe.explode(message.clone()))
                    .await
                    .expect("the call failed at once, not at its timeout");
            match (limit, result) {
                (4096, Err(IpcError::HandlerPanicked { message: got, .. })) => {
                    let expected: String = message.chars().take(1024).chain(['…']).collect();
                    assert_eq!(got, expected);
                }
                (256, Err(IpcError::FrameTooLarge { size, limit })) => {
                    assert_eq!(limit, 256);
                    assert!(size > 256, "{size}");
                }
                (_, other) => panic!("limit {limit}: got {other:?}"),
            }
        }
        assert_eq!(probe.add(1, 2).await.unwrap(), 3);
    }
}

#[tokio::test]
async fn handlers_see_the_caller_main_recorded() {
    let (main, _) = probe_main();
    let a = connect_memory(&main, "window-a").await.unwrap();
    let b = connect_memory(&main, "window-b").await.unwrap();
    let who_a = a.probe.clone().whoami().await.unwrap();
    let who_b = b.probe.clone().whoami().await.unwrap();
    assert_eq!((who_a.id, who_a.label.as_str()), (a.id().get(), "window-a"));
    assert_eq!((who_b.id, who_b.label.as_str()), (b.id().get(), "window-b"));
    assert_ne!(who_a.id, who_b.id);
    // A number that crossed the wire maps back to the renderer main knows.
    assert_eq!(main.renderer_id(who_b.id), Some(b.id()));
    assert_eq!(main.renderer_id(u64::MAX), None);
    // Groups, as they are at the time of the call.
    assert!(who_a.groups.is_empty());
    assert!(main.join_group(a.id(), "editors"));
    assert!(main.join_group(a.id(), "admins"));
    assert_eq!(
        a.probe.clone().whoami().await.unwrap().groups,
        ["admins", "editors"]
    );
    assert!(b.probe.clone().whoami().await.unwrap().groups.is_empty());
    assert!(main.leave_group(a.id(), "admins"));
    assert_eq!(a.probe.clone().whoami().await.unwrap().groups, ["editors"]);
    // An in-memory pair has no OS credentials.
    assert_eq!((who_a.pid, who_a.uid), (None, None));
}

#[tokio::test]
async fn sends_are_handled_in_the_order_sent() {
    let (main, handler) = probe_main();
    let probe = connect_memory(&main, "chatty").await.unwrap().probe;
    for n in 0..500 {
        probe.record(n).await.unwrap();
    }
    assert!(
        eventually(Duration::from_secs(10), || handler.recorded_now().len()
            == 500)
        .await
    );
    assert_eq!(handler.recorded_now(), (0..500).collect::<Vec<_>>());
}

#[tokio::test]
async fn pending_calls_end_promptly_when_main_closes_the_connection() {
    let (main, handler) = probe_main();
    let conn = connect_memory(&main, "dropped").await.unwrap();
    let probe = conn.probe.clone();
    let pending = tokio::spawn({
        let probe = probe.clone();
        async move { probe.sleep(60_000).await }
    });
    assert!(eventually(Duration::from_secs(5), || handler.started() == 1).await);
    assert!(main.disconnect(conn.id()));
    ends_disconnected(pending).await;
    assert!(matches!(conn.closed().await, IpcError::Disconnected { .. }));
    // Main aborted the handler and released the renderer.
    assert!(eventually(Duration::from_secs(5), || handler.aborted() == 1).await);
    main.disconnected(conn.id()).await;
    assert_eq!(main.renderer_count(), 0);
    // New calls fail at once.
    assert!(matches!(
        probe.add(1, 2).await,
        Err(IpcError::Disconnected { .. })
    ));
}

/// `Main::close` disconnects every renderer (their pending calls fail,
/// their handlers are aborted), returns once all are released, and from
/// then on refuses renderers with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_main_disconnects_everyone_and_refuses_newcomers() {
    let (main, handler) = probe_main();
    let mut disconnections = main.disconnections();
    let first = connect_memory(&main, "first").await.unwrap();
    let second = connect_memory(&main, "second").await.unwrap();
    let pending = tokio::spawn({
        let probe = first.probe.clone();
        async move { probe.sleep(60_000).await }
    });
    assert!(eventually(Duration::from_secs(5), || handler.started() == 1).await);
    assert!(!main.is_closed());
    assert!(!first.is_closed());

    tokio::time::timeout(Duration::from_secs(5), main.close())
        .await
        .expect("close returns once every renderer is released");
    assert!(main.is_closed());
    assert_eq!(main.renderer_count(), 0);
    ends_disconnected(pending).await;
    assert!(eventually(Duration::from_secs(5), || handler.aborted() == 1).await);
    for api in [&first, &second] {
        assert!(matches!(api.closed().await, IpcError::Disconnected { .. }));
        assert!(api.is_closed());
    }
    for _ in 0..2 {
        let gone = disconnections.recv().await.unwrap();
        assert_eq!(gone.reason, ipc_runtime::DisconnectReason::ClosedByMain);
    }

    // A newcomer is told why at its handshake, and main refuses it too.
    let (main_end, renderer_end) = ipc_runtime::transport::memory_pair(64 * 1024);
    let (accepted, late) = tokio::join!(
        main.accept::<ProbeApi>(main_end, "late"),
        Connection::builder().connect_as::<ProbeApi>(renderer_end)
    );
    assert!(
        matches!(&accepted, Err(IpcError::Disconnected { .. })),
        "{accepted:?}"
    );
    let late = late.unwrap_err();
    assert!(matches!(late, IpcError::Disconnected { .. }), "{late:?}");
    assert!(late.to_string().contains("main is closed"), "{late}");
    // Closing again returns at once.
    tokio::time::timeout(Duration::from_secs(1), main.close())
        .await
        .unwrap();
}

/// A read half that passes bytes through until `reset` is set, and from
/// then on reports what a Unix socket reports when its peer closed with
/// data unread: a connection reset.
struct ResetAfter<R> {
    inner: R,
    reset: Arc<std::sync::atomic::AtomicBool>,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for ResetAfter<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = &mut *self;
        let mut scratch = [0u8; 64 * 1024];
        let mut inner_buf = tokio::io::ReadBuf::new(&mut scratch[..buf.remaining().min(64 * 1024)]);
        match std::pin::Pin::new(&mut this.inner).poll_read(cx, &mut inner_buf) {
            std::task::Poll::Ready(Ok(())) if this.reset.load(Ordering::SeqCst) => {
                std::task::Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()))
            }
            std::task::Poll::Ready(Ok(())) => {
                buf.put_slice(inner_buf.filled());
                std::task::Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// Main closing while something the renderer sent is unread there reaches
/// the renderer as a connection reset (sometimes, on a Unix socket); its
/// calls say that main closed the connection, not the OS's "connection
/// reset by peer".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_from_main_reads_as_main_closing_the_connection() {
    let (main, handler) = probe_main();
    let (main_side, renderer_side) = tokio::io::duplex(64 * 1024);
    let (main_read, main_write) = tokio::io::split(main_side);
    let (renderer_read, renderer_write) = tokio::io::split(renderer_side);
    let reset = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let renderer_transport = Transport::new(
        ResetAfter {
            inner: renderer_read,
            reset: Arc::clone(&reset),
        },
        renderer_write,
    );
    let (accepted, api) = tokio::join!(
        main.accept::<ProbeApi>(Transport::new(main_read, main_write), "reset"),
        Connection::builder().connect_as::<ProbeApi>(renderer_transport)
    );
    accepted.unwrap();
    let api = api.unwrap();
    let pending = tokio::spawn({
        let probe = api.probe.clone();
        async move { probe.sleep(60_000).await }
    });
    assert!(eventually(Duration::from_secs(5), || handler.started() == 1).await);
    reset.store(true, Ordering::SeqCst);
    main.close().await;
    let result = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("the call ended promptly")
        .unwrap();
    match result {
        // Main's farewell is lost with the reset: the cause is not known.
        Err(IpcError::Disconnected { reason, cause }) => assert!(
            reason.starts_with("main closed the connection")
                && reason.contains("reset")
                && cause == DisconnectCause::Lost,
            "{reason} ({cause:?})"
        ),
        other => panic!("expected a disconnection, got {other:?}"),
    }
}

/// A handler whose future takes a while to drop (its destructor closes
/// something slowly), and says when it has.
#[ipc_runtime::service(namespace = "teardown")]
trait Teardown {
    /// Waits for ever (until cancelled).
    async fn hold(&self);
}

ipc_runtime::expose! {
    /// Only `hold`.
    struct TeardownApi {
        teardown: Teardown { hold },
    }
}

#[derive(Default)]
struct Holder {
    dropped: Arc<AtomicU64>,
}

/// Sleeps 100 ms in its destructor, then counts itself dropped.
struct SlowDrop(Arc<AtomicU64>);

impl Drop for SlowDrop {
    fn drop(&mut self) {
        std::thread::sleep(Duration::from_millis(100));
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Teardown for Holder {
    async fn hold(&self) {
        let _slow = SlowDrop(Arc::clone(&self.dropped));
        std::future::pending::<()>().await
    }
}

/// `Main::close` and `Main::disconnected` return once main has released
/// what it held for the renderer: the aborted handlers have been dropped
/// (their destructors ran), not merely asked to stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_and_disconnected_return_after_the_aborted_handlers_are_dropped() {
    for close in [true, false] {
        let holder = Holder::default();
        let dropped = Arc::clone(&holder.dropped);
        let main = Main::builder()
            .service(TeardownServer::new(holder))
            .build()
            .unwrap();
        let (main_end, renderer_end) = ipc_runtime::transport::memory_pair(64 * 1024);
        let (accepted, api) = tokio::join!(
            main.accept::<TeardownApi>(main_end, "holding"),
            TeardownApi::connect(renderer_end)
        );
        let id = accepted.unwrap().id;
        let api = api.unwrap();
        let pending = tokio::spawn({
            let teardown = api.teardown.clone();
            async move { teardown.hold().await }
        });
        assert!(eventually(Duration::from_secs(5), || main.in_flight(id) == Some(1)).await);
        if close {
            main.close().await;
        } else {
            assert!(main.disconnect(id));
            main.disconnected(id).await;
        }
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "returned before the handler was dropped (close: {close})"
        );
        ends_disconnected(pending).await;
    }
}

#[tokio::test]
async fn payload_over_mains_limit_is_refused_before_sending() {
    let (main, _) = ipc_suite::probe_main_with(|b| b.max_frame_size(1024));
    let probe = connect_memory(&main, "big").await.unwrap().probe;
    match probe.len(vec![0; 4096]).await {
        Err(IpcError::FrameTooLarge { size, limit }) => {
            assert!(size > 4096);
            assert_eq!(limit, 1024);
        }
        other => panic!("expected frame-too-large, got {other:?}"),
    }
    assert_eq!(probe.len(vec![0; 100]).await.unwrap(), 100);
}

#[tokio::test]
async fn sends_queued_before_close_reach_main() {
    let (main, handler) = probe_main();
    let conn = connect_memory(&main, "leaving").await.unwrap();
    let probe = conn.probe.clone();
    for n in 0..200 {
        probe.record(n).await.unwrap();
    }
    drop(probe);
    let other = conn.clone();
    conn.close().await.unwrap();
    // The other handles see it closed here, not lost.
    let closed = other.closed().await;
    assert_eq!(
        closed.disconnect_cause(),
        Some(DisconnectCause::ClosedHere),
        "{closed}"
    );
    assert!(
        eventually(Duration::from_secs(5), || handler.recorded_now().len()
            == 200)
        .await
    );
    assert_eq!(handler.recorded_now(), (0..200).collect::<Vec<_>>());
}

#[tokio::test]
async fn sends_queued_before_the_last_handle_drops_still_reach_main() {
    let (main, handler) = probe_main();
    let conn = connect_memory(&main, "dropping").await.unwrap();
    let probe = conn.probe.clone();
    for n in 0..200 {
        probe.record(n).await.unwrap();
    }
    drop((probe, conn));
    assert!(
        eventually(Duration::from_secs(5), || handler.recorded_now().len()
            == 200)
        .await
    );
    assert!(eventually(Duration::from_secs(5), || main.renderer_count() == 0).await);
}

#[tokio::test]
async fn the_timeout_bounds_a_call_stuck_behind_a_main_that_stopped_reading() {
    use ipc_runtime::{codec, Connection, Transport};
    use ipc_suite::ProbeClient;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // A "main" that answers the handshake and then never reads again: the
    // renderer's outgoing queue fills, and later calls wait for room.
    let (main_end, renderer_end) = tokio::io::duplex(64);
    let (mut rd, mut wr) = tokio::io::split(main_end);
    let (renderer_rd, renderer_wr) = tokio::io::split(renderer_end);
    let renderer_end = Transport::new(renderer_rd, renderer_wr);
    let fake_main = tokio::spawn(async move {
        let len = rd.read_u32().await.unwrap();
        let mut hello = vec![0; len as usize];
        rd.read_exact(&mut hello).await.unwrap();
        // Welcome: kind 0x02, then (id, label, max_frame_size, max_in_flight).
        let mut body = vec![0x02];
        body.extend(
            codec::encode_to_vec(&(1u64, "stuck".to_string(), 1u64 << 20, 100_000u64)).unwrap(),
        );
        wr.write_u32(body.len() as u32).await.unwrap();
        wr.write_all(&body).await.unwrap();
        // Keep both halves open, unread, until the test ends.
        std::future::pending::<()>().await;
        drop((rd, wr));
    });
    let conn = Connection::builder()
        .service::<ipc_suite::ProbeContract>()
        .connect(renderer_end)
        .await
        .unwrap();
    let probe = ProbeClient::new(&conn).with_timeout(Duration::from_millis(200));
    let calls = (0..3000u64).map(|i| {
        let probe = probe.clone();
        tokio::spawn(async move { probe.add(i, i).await })
    });
    let started = std::time::Instant::now();
    for call in calls.collect::<Vec<_>>() {
        let result = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("every call ends, even those that never got into the queue")
            .unwrap();
        assert!(
            matches!(result, Err(IpcError::Timeout { .. })),
            "{result:?}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    fake_main.abort();
}

#[tokio::test]
async fn a_reply_that_arrives_just_before_main_closes_is_not_lost() {
    // Main played by hand, so that the reply and the end of the stream
    // arrive together: the renderer reads both before the caller runs.
    let (renderer_end, main_end) = tokio::net::UnixStream::pair().unwrap();
    let fake_main = tokio::spawn(async move {
        let mut main = RawPeer { stream: main_end };
        assert_eq!(main.read().await.unwrap().kind, kind::HELLO);
        main.frame(&welcome_body(1, "fake", 1 << 20, 8)).await;
        let call = main.read().await.unwrap();
        assert_eq!(call.kind, kind::INVOKE);
        main.frame(&reply_ok_body(call.call_id(), &5u64)).await;
    });
    let api = Connection::builder()
        .connect_as::<ProbeApi>(Transport::from_unix(renderer_end))
        .await
        .unwrap();
    assert_eq!(api.probe.add(2, 3).await.unwrap(), 5, "the reply that came");
    fake_main.await.unwrap();
    assert!(matches!(
        api.probe.add(1, 1).await,
        Err(IpcError::Disconnected { .. })
    ));
}

/// Main's farewell (its last frame) says why it ended the connection, in
/// words and as a cause the renderer can match on; a farewell the renderer
/// cannot read (a cause it does not know, from a hostile or newer main) is
/// ignored, and the end reads as main going without a word. Main is played
/// by hand, so that the frames are exactly these.
#[tokio::test]
async fn a_farewell_gives_its_cause_and_an_unreadable_one_is_ignored() {
    let readable = farewell_body(DisconnectCause::Misbehaved, "main's words".into());
    // The cause is the body's last byte (a variant index under 251 is one
    // byte): far past every cause this renderer knows.
    let mut unknown = farewell_body(DisconnectCause::Misbehaved, "main's words".into());
    *unknown.last_mut().unwrap() = 200;
    for (body, cause, reason) in [
        (readable, DisconnectCause::Misbehaved, "main's words"),
        (
            unknown,
            DisconnectCause::Lost,
            "main closed the connection without saying why (its process ended, or it failed)",
        ),
    ] {
        let (api, _) = fake_main(vec![body], true).await;
        let ended = tokio::time::timeout(Duration::from_secs(5), api.closed())
            .await
            .unwrap();
        assert_eq!(ended.disconnect_cause(), Some(cause), "{ended}");
        assert!(
            matches!(&ended, IpcError::Disconnected { reason: r, .. } if r == reason),
            "{ended}"
        );
        // A call made after the end says the same.
        let late = api.probe.add(1, 1).await.unwrap_err();
        assert_eq!(late.disconnect_cause(), Some(cause));
    }
}

/// A main played by hand: it welcomes the renderer, sends `frames`, and
/// then hangs up, or (`hang_up` false) stays connected, returned.
async fn fake_main(frames: Vec<Vec<u8>>, hang_up: bool) -> (ProbeApi, Option<RawPeer>) {
    let wire = frames.iter().flat_map(|body| framed(body)).collect();
    fake_main_writing(Connection::builder(), wire, hang_up).await
}

/// [`fake_main`] with the renderer built by `builder`, main writing the
/// bytes `wire` after its welcome.
async fn fake_main_writing(
    builder: ipc_runtime::ConnectionBuilder,
    wire: Vec<u8>,
    hang_up: bool,
) -> (ProbeApi, Option<RawPeer>) {
    let (renderer_end, main_end) = tokio::net::UnixStream::pair().unwrap();
    let fake_main = tokio::spawn(async move {
        let mut main = RawPeer { stream: main_end };
        assert_eq!(main.read().await.unwrap().kind, kind::HELLO);
        main.frame(&welcome_body(1, "fake", 1 << 26, 8)).await;
        main.bytes(&wire).await;
        (!hang_up).then_some(main)
    });
    let api = builder
        .connect_as::<ProbeApi>(Transport::from_unix(renderer_end))
        .await
        .unwrap();
    (api, fake_main.await.unwrap())
}

fn farewell_body(cause: DisconnectCause, reason: String) -> Vec<u8> {
    let mut body = vec![kind::NOTICE];
    body.extend(codec::encode_to_vec(&WireError::Disconnected { reason, cause }).unwrap());
    body
}

/// Farewells a hostile main could send: cut short, with bytes after it, a
/// reason of megabytes, cut in the middle of its reason, empty. None
/// panics or hangs the renderer; one it can read gives its cause (and its
/// words, cut to a bound), the others are ignored.
#[tokio::test]
async fn malformed_and_huge_farewells_are_bounded_or_ignored() {
    let readable = farewell_body(DisconnectCause::MainClosed, "w".into());
    let mut cut_short = readable.clone();
    cut_short.pop();
    let mut trailing = readable.clone();
    trailing.push(0);
    let huge = farewell_body(DisconnectCause::MainFailed, "x".repeat(8 << 20));
    let mut cut_in_reason = huge.clone();
    cut_in_reason.truncate(1000);
    for (name, body, cause) in [
        ("cut short", cut_short, DisconnectCause::Lost),
        ("trailing bytes", trailing, DisconnectCause::Lost),
        ("huge", huge, DisconnectCause::MainFailed),
        ("cut in its reason", cut_in_reason, DisconnectCause::Lost),
        ("empty", vec![kind::NOTICE], DisconnectCause::Lost),
    ] {
        let (api, _) = fake_main(vec![body], true).await;
        let ended = tokio::time::timeout(Duration::from_secs(5), api.closed())
            .await
            .unwrap_or_else(|_| panic!("{name}: the renderer hangs"));
        assert_eq!(ended.disconnect_cause(), Some(cause), "{name}: {ended}");
        match &ended {
            IpcError::Disconnected { reason, .. } => {
                assert!(
                    reason.chars().count() <= 2001,
                    "{name}: {} chars",
                    reason.len()
                )
            }
            other => panic!("{name}: {other}"),
        }
    }
}

/// A farewell that is not main's last frame (a hostile main that goes on
/// serving): the renderer's own close, later, is reported as its own.
#[tokio::test]
async fn a_close_here_after_an_early_farewell_is_reported_as_such() {
    let body = farewell_body(DisconnectCause::MainClosed, "main shut down".into());
    let (api, main) = fake_main(vec![body], false).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let other = api.clone();
    api.close().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), other.closed())
        .await
        .unwrap();
    drop(main);
    assert_eq!(
        ended.disconnect_cause(),
        Some(DisconnectCause::ClosedHere),
        "{ended}"
    );
}

/// A handler that works without awaiting, so that it finishes on its first
/// poll and main queues its reply at once, as most handlers do.
#[ipc_runtime::service(namespace = "burst")]
trait Burst {
    /// Blocks for `ms` milliseconds, or until the test opens the gate;
    /// returns how many calls have finished.
    async fn work(&self, ms: u64) -> u64;
}

ipc_runtime::expose! {
    /// Only `work`.
    struct BurstApi {
        burst: Burst { work },
    }
}

/// The `Burst` handler. Once `hold_after` calls have finished, the next
/// ones wait until the test opens the gate (at most 5 s) before working.
struct Worker {
    finished: AtomicU64,
    hold_after: u64,
    gate: (Mutex<bool>, Condvar),
}

impl Burst for Worker {
    async fn work(&self, ms: u64) -> u64 {
        if self.finished.load(Ordering::SeqCst) >= self.hold_after {
            let (open, opened) = &self.gate;
            let open = open.lock().unwrap();
            let _open = opened
                .wait_timeout_while(open, Duration::from_secs(5), |open| !*open)
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(ms));
        self.finished.fetch_add(1, Ordering::SeqCst) + 1
    }
}

impl Worker {
    fn open_gate(&self) {
        *self.gate.0.lock().unwrap() = true;
        self.gate.1.notify_all();
    }
}

/// Sends `calls` calls of `work(ms)` in one write to a main built with
/// `configure`, whose handler holds every call after the first
/// `hold_after` until the first reply has arrived. Returns how many calls
/// had finished when it arrived.
///
/// Main runs on a runtime of its own, as in its own process: its handlers
/// block its only worker, and this test's runtime must go on reading.
async fn finished_at_the_first_reply(
    configure: impl FnOnce(ipc_runtime::MainBuilder) -> ipc_runtime::MainBuilder,
    calls: u64,
    ms: u64,
    hold_after: u64,
) -> u64 {
    let worker = Arc::new(Worker {
        finished: AtomicU64::new(0),
        hold_after,
        gate: (Mutex::new(false), Condvar::new()),
    });
    let main = configure(Main::builder())
        .service(BurstServer::from_arc(Arc::clone(&worker)))
        .build()
        .unwrap();
    let main_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let accept = main_runtime.spawn(async move {
        let a = tokio::net::UnixStream::from_std(a).unwrap();
        main.accept::<BurstApi>(Transport::from_unix(a), "burst")
            .await
    });
    let mut raw = RawPeer {
        stream: tokio::net::UnixStream::from_std(b).unwrap(),
    };
    raw.frame(&hello_body::<BurstContract>(None)).await;
    assert_eq!(raw.read().await.unwrap().kind, kind::WELCOME);
    accept.await.unwrap().unwrap();
    let args = ipc_runtime::codec::encode_to_vec(&(ms,)).unwrap();
    let burst: Vec<u8> = (1..=calls)
        .flat_map(|id| framed(&invoke_body(id, "burst:work", &args)))
        .collect();
    raw.bytes(&burst).await;
    let first = raw
        .read()
        .await
        .expect("a reply while later calls are held");
    assert_eq!(first.kind, kind::REPLY_OK);
    let at_first = worker.finished.load(Ordering::SeqCst);
    worker.open_gate();
    for _ in 1..calls {
        assert_eq!(raw.read().await.expect("a reply").kind, kind::REPLY_OK);
    }
    main_runtime.shutdown_background();
    at_first
}

#[tokio::test]
async fn replies_to_a_burst_leave_together_when_asked() {
    // Written once, when the whole burst is handled: the first reply
    // comes after the twelfth call (nothing is held).
    let together = |b: ipc_runtime::MainBuilder| b.flush_replies_every(0);
    assert_eq!(finished_at_the_first_reply(together, 12, 10, 12).await, 12);
}

#[tokio::test]
async fn replies_to_a_long_burst_leave_every_few_frames_when_asked() {
    // Written after every 4 calls: the first 4 replies leave before the
    // fifth call starts, which waits for them.
    let every_4 = |b: ipc_runtime::MainBuilder| b.flush_replies_every(4);
    assert_eq!(finished_at_the_first_reply(every_4, 12, 1, 4).await, 4);
}

#[tokio::test]
async fn by_default_replies_leave_every_16_frames_only_with_more_than_one_cpu() {
    let default = |b: ipc_runtime::MainBuilder| b;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus > 1 {
        assert_eq!(ipc_runtime::DEFAULT_FLUSH_REPLIES_EVERY, 16);
        assert_eq!(finished_at_the_first_reply(default, 20, 1, 16).await, 16);
    } else {
        assert_eq!(finished_at_the_first_reply(default, 20, 1, 20).await, 20);
    }
}

/// An `expose!` type clones into another handle on the same connection:
/// one for each task, one connection (one id) for main.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloned_api_shares_its_connection() {
    let (main, _) = probe_main();
    let api = connect_memory(&main, "window").await.unwrap();
    let copy = api.clone();
    let other_task = tokio::spawn(async move { copy.probe.whoami().await.unwrap() });
    let here = api.probe.whoami().await.unwrap();
    let there = other_task.await.unwrap();
    assert_eq!((here.id, here.label.as_str()), (there.id, "window"));
    assert_eq!(main.renderer_count(), 1);
}

/// A "main" that answers the handshake, then never reads. Sending on the
/// returned channel ends its side of the stream (the renderer reads EOF).
fn main_that_stops_reading() -> (
    Transport,
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    use tokio::io::AsyncWriteExt;
    let (main_end, renderer_end) = tokio::io::duplex(64);
    let (mut rd, mut wr) = tokio::io::split(main_end);
    let (renderer_rd, renderer_wr) = tokio::io::split(renderer_end);
    let (end_tx, end_rx) = tokio::sync::oneshot::channel();
    let fake = tokio::spawn(async move {
        welcome(&mut rd, &mut wr, "stuck", 100_000).await;
        if end_rx.await.is_ok() {
            wr.shutdown().await.unwrap();
        }
        std::future::pending::<()>().await;
        drop(rd);
    });
    (Transport::new(renderer_rd, renderer_wr), fake, end_tx)
}

/// A connection over `transport` whose calls never time out.
async fn patient_connection(transport: Transport) -> Connection {
    Connection::builder()
        .service::<ipc_suite::ProbeContract>()
        .call_timeout(Duration::MAX)
        .connect(transport)
        .await
        .unwrap()
}

/// Calls that main never reads, each polled once: the first fill the
/// write queue up to the point where callers wait (256 KiB), and every
/// later one is waiting for room in it, with no sleep to hope so.
async fn calls_main_never_reads(
    probe: &ipc_suite::ProbeClient,
) -> Vec<ipc_runtime::BoxFuture<'_, Result<u64, IpcError>>> {
    // 200 calls of 4 KiB: about 800 KiB, three times what is queued
    // before callers wait (the fake main's pipe holds 64 bytes).
    let mut calls = Vec::new();
    for _ in 0..200 {
        let mut call = probe.len(vec![0; 4096]);
        assert!(poll_once(&mut call).await.is_none(), "main never answers");
        calls.push(call);
    }
    calls
}

/// Polls each call once: every one must have failed with `Disconnected`
/// already, not be waiting any more.
async fn all_failed_already(calls: Vec<ipc_runtime::BoxFuture<'_, Result<u64, IpcError>>>) {
    for (i, mut call) in calls.into_iter().enumerate() {
        match poll_once(&mut call).await {
            Some(Err(IpcError::Disconnected { .. })) => {}
            other => panic!("call {i}: {other:?}"),
        }
    }
}

/// `Connection::close` ends even when main has stopped reading: it fails
/// the pending calls (those waiting for room in the write queue too) and
/// gives the writer a second, not forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_connection_main_stopped_reading_ends_and_fails_every_call() {
    let (transport, fake, _end) = main_that_stops_reading();
    let conn = patient_connection(transport).await;
    let probe = ipc_suite::ProbeClient::new(&conn);
    let calls = calls_main_never_reads(&probe).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), conn.close())
        .await
        .expect("close returns");
    let closed = closed.unwrap_err();
    assert!(
        closed.to_string().contains("did not take what was sent"),
        "{closed}"
    );
    all_failed_already(calls).await;
    fake.abort();
}

/// When main's side of the stream ends, calls waiting for room in the
/// write queue fail as the connection closes, not when the writer gives
/// up draining (a second later): once `closed()` returns, every call has
/// its error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_waiting_for_room_end_promptly_when_the_connection_ends() {
    let (transport, fake, end) = main_that_stops_reading();
    let conn = patient_connection(transport).await;
    let probe = ipc_suite::ProbeClient::new(&conn);
    let calls = calls_main_never_reads(&probe).await;
    end.send(()).unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(5), conn.closed())
        .await
        .expect("the connection closes when main's side ends");
    assert!(
        matches!(reason, IpcError::Disconnected { .. }),
        "{reason:?}"
    );
    all_failed_already(calls).await;
    fake.abort();
}

/// A transport whose write half fails while its read half stays open (two
/// separate pipes): the connection closes as a whole, with the write
/// error as its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_cannot_write_any_more_is_closed() {
    let (renderer_write, mut main_read) = tokio::io::duplex(1 << 16);
    let (mut main_write, renderer_read) = tokio::io::duplex(1 << 16);
    let handshake = async move {
        welcome(&mut main_read, &mut main_write, "half", 8).await;
        // Main's reading end goes; its writing end stays open.
        drop(main_read);
        main_write
    };
    let (main_write, conn) = tokio::join!(
        handshake,
        Connection::builder()
            .service::<ipc_suite::ProbeContract>()
            .connect(Transport::new(renderer_read, renderer_write))
    );
    let conn = conn.unwrap();
    let probe = ipc_suite::ProbeClient::new(&conn);
    let call = probe.add(1, 2).await;
    assert!(
        matches!(call, Err(IpcError::Disconnected { .. })),
        "{call:?}"
    );
    let reason = tokio::time::timeout(Duration::from_secs(5), conn.closed())
        .await
        .expect("the connection is closed");
    assert!(
        reason.to_string().contains("writing to main failed"),
        "{reason}"
    );
    drop(main_write);
}

/// `send` messages main had received but held back (its send budget full
/// behind a slow handler) when it closed are still handled, in order,
/// before `Main::close` returns; a handler that never finishes is aborted
/// after the grace, and dropped before `close` returns.
mod sends_held_at_close {
    use std::{
        sync::{Arc, Mutex},
        time::Duration,
    };

    use ipc_runtime::{expose, service, Limits, Main};
    use ipc_suite::{connect_memory_as, eventually};

    #[service(namespace = "slowsend")]
    pub trait SlowSend {
        /// Records `n` once the test lets it through.
        #[ipc(send)]
        async fn hold(&self, n: u64, data: Vec<u8>);
    }

    expose! {
        pub struct SlowSendApi {
            slow: SlowSend { hold },
        }
    }

    struct Holder {
        gate: Arc<tokio::sync::Semaphore>,
        started: Arc<Mutex<Vec<u64>>>,
        done: Arc<Mutex<Vec<u64>>>,
    }

    impl SlowSend for Holder {
        async fn hold(&self, n: u64, _data: Vec<u8>) {
            self.started.lock().unwrap().push(n);
            self.gate.acquire().await.unwrap().forget();
            self.done.lock().unwrap().push(n);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn are_still_handled() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let started = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(Mutex::new(Vec::new()));
        let mut limits = Limits::default();
        limits.max_queued_send_bytes = 1000;
        let main = Main::builder()
            .service(SlowSendServer::new(Holder {
                gate: Arc::clone(&gate),
                started: Arc::clone(&started),
                done: Arc::clone(&done),
            }))
            .limits(limits)
            .build()
            .unwrap();
        let api = connect_memory_as::<SlowSendApi>(&main, "sender")
            .await
            .unwrap();
        for n in 1..=3 {
            api.slow.hold(n, vec![0; 600]).await.unwrap();
        }
        api.flush().await.unwrap();
        // 1 runs (held at the gate); main has read 2, which waits for its
        // share of the 1000-byte budget (and so 3 is not read).
        assert!(eventually(Duration::from_secs(5), || *started.lock().unwrap() == [1]).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The handler goes on once main has begun to close.
        let opens = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                gate.add_permits(10);
            }
        });
        main.close().await;
        // 3 was never read: only what main had received is handled, and
        // all of it by the time `close` returns.
        assert_eq!(*done.lock().unwrap(), [1, 2]);
        opens.await.unwrap();
    }

    /// Never finishes: sets `started`, and `dropped` once its future is
    /// dropped.
    struct Forever {
        started: Arc<std::sync::atomic::AtomicBool>,
        dropped: Arc<std::sync::atomic::AtomicBool>,
    }

    impl SlowSend for Forever {
        async fn hold(&self, _n: u64, _data: Vec<u8>) {
            let _flag = ipc_suite::DropFlag(Arc::clone(&self.dropped));
            self.started
                .store(true, std::sync::atomic::Ordering::SeqCst);
            std::future::pending::<()>().await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stuck_one_is_aborted_before_close_returns() {
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let main = Main::builder()
            .service(SlowSendServer::new(Forever {
                started: Arc::clone(&started),
                dropped: Arc::clone(&dropped),
            }))
            .build()
            .unwrap();
        let api = connect_memory_as::<SlowSendApi>(&main, "sender")
            .await
            .unwrap();
        api.slow.hold(1, vec![0; 10]).await.unwrap();
        assert!(
            eventually(Duration::from_secs(5), || started
                .load(std::sync::atomic::Ordering::SeqCst))
            .await
        );
        let closing = tokio::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(30), main.close())
            .await
            .expect("close gives up on a stuck send handler");
        assert!(
            dropped.load(std::sync::atomic::Ordering::SeqCst),
            "the stuck handler was dropped before close returned"
        );
        // It was given its grace (5 s) first.
        assert!(
            closing.elapsed() >= Duration::from_secs(4),
            "{:?}",
            closing.elapsed()
        );
    }
}

/// A write half that starts failing on demand, and then never shuts (nor
/// closes when dropped: it is leaked), so that a renderer's writer dies
/// while main's reading, and so the renderer's, go on.
struct Breakable<W> {
    inner: std::mem::ManuallyDrop<W>,
    broken: Arc<std::sync::atomic::AtomicBool>,
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Breakable<W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.broken.load(Ordering::SeqCst) {
            return std::task::Poll::Ready(Err(std::io::Error::other("broken on purpose")));
        }
        std::pin::Pin::new(&mut *self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Once a renderer's writing has failed, but its reading goes on (a
/// transport of two pipes, main's still open), a call or send that finds
/// the queue closed waits for the connection's end only as long as its own
/// timeout: not the second the reader gives a dead writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_writing_failed_calls_fail_within_their_timeout() {
    let (main, _) = probe_main();
    let (main_out, renderer_in) = tokio::io::duplex(256 * 1024);
    let (renderer_out, main_in) = tokio::io::duplex(256 * 1024);
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let renderer = Transport::new(
        renderer_in,
        Breakable {
            inner: std::mem::ManuallyDrop::new(renderer_out),
            broken: Arc::clone(&broken),
        },
    );
    let (accepted, api) = tokio::join!(
        main.accept::<ProbeApi>(Transport::new(main_in, main_out), "r"),
        Connection::builder()
            .call_timeout(Duration::from_millis(50))
            .connect_as::<ProbeApi>(renderer)
    );
    accepted.unwrap();
    let api = api.unwrap();
    broken.store(true, Ordering::SeqCst);
    // Written by the writer, which fails on it.
    let _ = api.probe.record(1).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = std::time::Instant::now();
    let call = api.probe.add(1, 2).await;
    assert!(call.is_err(), "{call:?}");
    let sent = api.probe.record(2).await;
    assert!(sent.is_err(), "{sent:?}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "took {:?}",
        started.elapsed()
    );
}

/// A frame from main over the renderer's limit ends the connection as a
/// disconnection, saying so (it was reported as `FrameTooLarge`, the error
/// of one call, with no cause to match on).
#[tokio::test]
async fn a_frame_from_main_over_the_renderers_limit_ends_the_connection() {
    // 8 KiB announced; the renderer accepts 4 KiB.
    let (api, _main) = fake_main_writing(
        Connection::builder().max_frame_size(4096),
        vec![0, 0, 0x20, 0, kind::EVENT],
        false,
    )
    .await;
    let ended = tokio::time::timeout(Duration::from_secs(5), api.closed())
        .await
        .unwrap();
    assert_eq!(
        ended.disconnect_cause(),
        Some(DisconnectCause::Lost),
        "{ended}"
    );
    assert!(
        ended
            .to_string()
            .contains("main sent a frame of 8192 bytes, over the 4096 bytes this renderer accepts"),
        "{ended}"
    );
}

//! `#[ipc(timeout_secs = N)]`: a method whose work legitimately takes
//! long (a file dialog waiting for the user) declares how long its calls
//! wait. Its calls wait that long, or the connection's `call_timeout` if
//! that is longer; a client's `with_timeout` overrides both.

use std::time::Duration;

use ipc_runtime::{expose, service, transport, Connection, IpcError, Limits, Main};

#[service(namespace = "dialog")]
pub trait Dialog {
    /// Answers after `ms` milliseconds; its calls wait up to a second.
    #[ipc(timeout_secs = 1)]
    async fn pick(&self, ms: u64) -> u64;
    /// The same, waiting as long as the connection says.
    async fn quick(&self, ms: u64) -> u64;
    /// A message handled after `ms` milliseconds; waits up to a second for
    /// room.
    #[ipc(send, timeout_secs = 1)]
    async fn note(&self, ms: u64);
}

expose! {
    pub struct DialogApi {
        dialog: Dialog { pick, quick, note },
    }
}

struct Slow;

impl Dialog for Slow {
    async fn pick(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }

    async fn quick(&self, ms: u64) -> u64 {
        self.pick(ms).await
    }

    async fn note(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// A renderer whose connection gives calls 100 ms.
async fn impatient_renderer() -> (Main, DialogApi) {
    renderer_waiting(Duration::from_millis(100)).await
}

/// A renderer whose connection gives calls `call_timeout`. Main stops
/// reading from it while 1000 bytes of its `note`s wait for their handler.
async fn renderer_waiting(call_timeout: Duration) -> (Main, DialogApi) {
    let mut limits = Limits::default();
    limits.max_queued_send_bytes = 1000;
    let main = Main::builder()
        .service(DialogServer::new(Slow))
        .limits(limits)
        .build()
        .unwrap();
    let (main_end, renderer_end) = transport::memory_pair(64 * 1024);
    let (accepted, api) = tokio::join!(
        main.accept::<DialogApi>(main_end, "window"),
        Connection::builder()
            .call_timeout(call_timeout)
            .connect_as::<DialogApi>(renderer_end)
    );
    accepted.unwrap();
    (main, api.unwrap())
}

fn timed_out_after<T: std::fmt::Debug>(result: Result<T, IpcError>) -> Duration {
    match result {
        Err(IpcError::Timeout { timeout, .. }) => timeout,
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_timeout_overrides_the_connections() {
    let (_main, api) = impatient_renderer().await;
    // 300 ms: over the connection's 100 ms, within the method's second.
    assert_eq!(api.dialog.pick(300).await.unwrap(), 300);
    let undeclared = api.dialog.quick(300).await;
    assert_eq!(timed_out_after(undeclared), Duration::from_millis(100));
    let too_long = api.dialog.pick(1500).await;
    assert_eq!(timed_out_after(too_long), Duration::from_secs(1));
}

/// A declaration does not cut short a connection made to wait longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_longer_connection_timeout_outlasts_the_declared_one() {
    let (_main, api) = renderer_waiting(Duration::from_secs(3)).await;
    assert_eq!(api.dialog.pick(1500).await.unwrap(), 1500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_timeout_overrides_the_declared_one() {
    let (_main, api) = impatient_renderer().await;
    let hasty = api.dialog.with_timeout(Duration::from_millis(50));
    assert_eq!(
        timed_out_after(hasty.pick(300).await),
        Duration::from_millis(50)
    );
    let patient = api.dialog.with_timeout(Duration::from_secs(5));
    assert_eq!(patient.pick(1500).await.unwrap(), 1500);
}

/// A `send` waits for room in the queue (main has stopped reading) as
/// long as its method declares.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_waits_for_room_as_long_as_declared() {
    let (main, api) = impatient_renderer().await;
    let id = api.id();
    // The first holds its handler; those behind it fill main's budget,
    // then the pipe, then this renderer's queue.
    let mut failed = None;
    for _ in 0..1_000_000 {
        if let Err(e) = api.dialog.note(60_000).await {
            failed = Some(e);
            break;
        }
    }
    match failed.expect("main never stopped reading") {
        IpcError::SendTimeout { timeout, .. } => assert_eq!(timeout, Duration::from_secs(1)),
        other => panic!("expected SendTimeout, got {other:?}"),
    }
    assert!(main.disconnect(id));
}

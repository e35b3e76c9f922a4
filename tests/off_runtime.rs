//! A renderer's API used from a thread outside any tokio runtime (a GUI
//! thread polling calls with an executor of its own). A call waits on a
//! timer only when it must wait (for one of main's slots, for room in the
//! outgoing queue) and closing waits on one too: those timers are made in
//! the connection's runtime. Before, such a caller worked until the first
//! time it had to wait, then panicked ("there is no reactor running").
//!
//! Main, whose tasks serve each renderer, needs a runtime to accept one:
//! outside any, `spawn_renderer` and `accept` fail with a `Config` error
//! saying so. `spawn_renderer` used to panic after starting the child.
//! So does a renderer connecting outside any runtime.

use std::{future::Future, pin::Pin, task::Poll, time::Duration};

use ipc_runtime::{transport, IpcError, Limits};
use ipc_suite::{
    block_on, connect_memory, connect_memory_as, probe_main, probe_main_with,
    stuck::{stuck_main, StuckApi},
    ProbeApi,
};

const RENDERER: &str = env!("CARGO_BIN_EXE_ipc-test-renderer");

/// Runs `work` on a plain thread, outside any runtime, and returns what it
/// returned; a panic there fails the test with its message.
async fn off_runtime<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let thread = std::thread::spawn(work);
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .unwrap()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Polls both futures until both are done (what `join!` does, without
/// tokio).
async fn both<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = Pin::new(&mut a).poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = Pin::new(&mut b).poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            Poll::Ready((ra.take().unwrap(), rb.take().unwrap()))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// A main with one in-flight slot per renderer: a second call waits for
/// the first's reply.
fn one_slot_main() -> (ipc_runtime::Main, std::sync::Arc<ipc_suite::ProbeHandler>) {
    probe_main_with(|b| {
        let mut limits = Limits::default();
        limits.max_in_flight = 1;
        b.limits(limits)
    })
}

/// With one slot on main, the second call waits for the first's reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_for_a_slot_off_any_runtime_gets_its_reply() {
    let (main, _) = one_slot_main();
    let api = connect_memory(&main, "gui").await.unwrap();
    let (slept, sum) =
        off_runtime(move || block_on(both(api.probe.sleep(100), api.probe.add(1, 2)))).await;
    assert_eq!((slept.unwrap(), sum.unwrap()), (100, 3));
}

/// A call that waits for a slot off any runtime still times out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_for_a_slot_off_any_runtime_times_out() {
    let (main, _) = one_slot_main();
    let api = connect_memory(&main, "gui").await.unwrap();
    let patient = api.probe.clone();
    let hasty = api.probe.with_timeout(Duration::from_millis(100));
    let (slept, sum) =
        off_runtime(move || block_on(both(patient.sleep(1000), hasty.add(1, 2)))).await;
    assert_eq!(slept.unwrap(), 1000);
    assert!(matches!(sum, Err(IpcError::Timeout { .. })), "{sum:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_off_any_runtime_works() {
    let (main, _) = probe_main_with(|b| b);
    let api = connect_memory(&main, "gui").await.unwrap();
    let closed = off_runtime(move || {
        block_on(async {
            assert_eq!(api.probe.add(2, 3).await.unwrap(), 5);
            api.close().await
        })
    })
    .await;
    assert!(closed.is_ok(), "{closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_or_call_waiting_for_room_off_any_runtime_times_out() {
    let main = stuck_main();
    let api = connect_memory_as::<StuckApi>(&main, "gui").await.unwrap();
    let id = api.id();
    let stuck = api.stuck.with_timeout(Duration::from_millis(200));
    let (sent, e, pinged) = off_runtime(move || {
        block_on(async {
            for sent in 0u64.. {
                if let Err(e) = stuck.put(vec![0; 600]).await {
                    // The queue is full: a call waits for room too.
                    return (sent, e, stuck.ping().await);
                }
            }
            unreachable!()
        })
    })
    .await;
    assert!(sent > 0);
    assert!(matches!(e, IpcError::SendTimeout { .. }), "{e:?}");
    assert!(
        matches!(pinged, Err(IpcError::Timeout { .. })),
        "{pinged:?}"
    );
    assert!(main.disconnect(id));
}

/// The same wait for a slot, from a runtime of the caller's own that has
/// no timers (`enable_io` only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_for_a_slot_in_a_runtime_without_timers_gets_its_reply() {
    let (main, _) = one_slot_main();
    let api = connect_memory(&main, "gui").await.unwrap();
    let (slept, sum) = off_runtime(move || {
        let io_only = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        io_only.block_on(both(api.probe.sleep(100), api.probe.add(1, 2)))
    })
    .await;
    assert_eq!((slept.unwrap(), sum.unwrap()), (100, 3));
}

/// A plain `#[test]`: its thread has no runtime.
#[test]
fn main_accepts_no_renderer_outside_a_runtime() {
    let (main, _) = probe_main();
    let mut command = std::process::Command::new(RENDERER);
    command.arg("calls");
    let refused = |e: IpcError, what: &str| {
        match e {
        IpcError::Config { reason } => assert_eq!(
            reason,
            format!(
                "{what} must be called inside a tokio runtime (with I/O and time enabled: `#[tokio::main]`, \
                 or `enable_all()` on a runtime builder), whose tasks then serve the renderers"
            )
        ),
        other => panic!("expected a Config error, got {other:?}"),
    }
    };
    let spawned = block_on(main.spawn_renderer::<ProbeApi>(command, "window"));
    refused(spawned.unwrap_err(), "Main::spawn_renderer");
    let (ours, _theirs) = transport::memory_pair(4096);
    let accepted = block_on(main.accept::<ProbeApi>(ours, "window"));
    refused(accepted.unwrap_err(), "Main::accept");
    assert_eq!(main.renderer_count(), 0);
}

/// In a runtime without I/O, tokio panics when main registers the
/// renderer's socket (it offers no way to ask first): before the child is
/// started, so that no renderer is left running with no one to wait for
/// or kill it.
#[test]
fn spawning_in_a_runtime_without_io_starts_no_child() {
    let (main, _) = probe_main();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!("touch '{}'", marker.display()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let spawned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(main.spawn_renderer::<ProbeApi>(command, "window"))
    }));
    let panic = spawned
        .map(drop)
        .expect_err("tokio refuses I/O it has no driver for");
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    assert!(message.contains("IO is disabled"), "{message}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!marker.exists(), "the child was started");
    assert_eq!(main.renderer_count(), 0);
}

/// A renderer, whose connection is carried by tasks of its runtime, is
/// told so when it connects from outside one; the message names the
/// builder's method, and says an API type's `connect_…` calls it.
#[test]
fn a_renderer_connects_only_inside_a_runtime() {
    let connected = block_on(ProbeApi::connect_inherited());
    match connected.map(drop) {
        Err(IpcError::Config { reason }) => assert!(
            reason.starts_with(
                "ConnectionBuilder::connect_inherited (which the `connect…` functions of `expose!` types call) \
                 must be called inside a tokio runtime"
            ),
            "{reason}"
        ),
        other => panic!("expected a Config error, got {other:?}"),
    }
    let (_ours, theirs) = transport::memory_pair(4096);
    let connected = block_on(ipc_runtime::Connection::builder().connect(theirs));
    match connected.map(drop) {
        Err(IpcError::Config { reason }) => assert!(
            reason.starts_with("ConnectionBuilder::connect (which"),
            "{reason}"
        ),
        other => panic!("expected a Config error, got {other:?}"),
    }
}

//! `Main::close` does its waiting on a thread of its own: once the first
//! `close` call returns, that thread is gone too. Alone in its test binary,
//! so that no other test's `close` thread is counted.

use std::time::Duration;

use ipc_suite::{connect_memory, probe_main};

/// The threads of this process named as main's close thread. Counted
/// once: the thread, when not joined, ended within a few microseconds of
/// `close` returning, so a retry would hide it. (In theory a joined thread
/// can stay listed in `/proc` for a moment after the join returns; 2000
/// rounds of this test have not seen it.)
fn close_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "ipc-main-close")
        .count()
}

/// The thread marked its work done and then ended; `close` returned on
/// the mark, so for some microseconds the thread (its thread-locals,
/// tokio's parker among them) outlived it: most rounds here, and a leak
/// to the `handshake` fuzz target's leak checker once in its 10^6 runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_close_thread_outlives_close() {
    for round in 0..600 {
        let (main, _) = probe_main();
        let api = connect_memory(&main, "r").await.unwrap();
        match round % 3 {
            // A first call dropped once its thread is started: the next
            // call to finish joins it.
            1 => {
                let _ = tokio::time::timeout(Duration::ZERO, main.close()).await;
            }
            // A second call at the same time: whichever does not join waits
            // for the other's join.
            2 => {
                let other = main.clone();
                let second = tokio::spawn(async move {
                    other.close().await;
                    close_threads()
                });
                main.close().await;
                assert_eq!(close_threads(), 0, "round {round}: the first call");
                assert_eq!(second.await.unwrap(), 0, "round {round}: the second call");
            }
            _ => {}
        }
        main.close().await;
        assert_eq!(close_threads(), 0, "round {round}");
        let _ = tokio::time::timeout(Duration::from_secs(5), api.closed()).await;
    }
}

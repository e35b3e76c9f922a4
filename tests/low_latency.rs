//! The low-latency option (`spin_before_parking`): when a waiting call
//! spins, and when it parks at once.
//!
//! Spinning is seen as CPU time: a call that spins keeps a worker thread
//! busy while main holds its reply back; a call that parks leaves it idle.
//! Each test runs its own runtime, whose threads have a name of their own,
//! and counts only those threads' CPU time, so that the other tests of
//! this binary running meanwhile do not count.

use std::{sync::Arc, time::Duration};

use ipc_runtime::{transport, Connection};
use ipc_suite::{eventually, probe_main, ProbeApi, ProbeHandler};

/// Long enough that a spinning call is still spinning when it is measured.
const SPIN: Duration = Duration::from_secs(2);
/// How long the calls are left waiting while CPU time is counted.
const WINDOW: Duration = Duration::from_millis(500);

/// CPU time (user and system) used so far by this process's threads whose
/// name starts with `prefix`, read from `/proc`.
fn cpu_time_of_threads(prefix: &str) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let mut ticks = 0;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc is mounted") {
        let Ok(stat) = std::fs::read_to_string(task.unwrap().path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        // `pid (comm) state ppid …`: the name may hold spaces, so split
        // after its closing parenthesis; utime and stime are fields 14 and
        // 15, the 12th and 13th after it.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    Duration::from_millis(ticks * 1000 / ticks_per_s)
}

/// The CPU time this test's runtime uses while `calls` calls of a renderer
/// set to spin for [`SPIN`] wait [`WINDOW`] for main, which holds them at
/// its gate.
fn cpu_while_calls_wait(calls: usize, threads: &'static str) -> Duration {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(threads)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (main, handler) = probe_main();
        let (main_end, renderer_end) = transport::memory_pair(256 * 1024);
        let renderer = Connection::builder().spin_before_parking(SPIN);
        let (accepted, api) = tokio::join!(
            main.accept::<ProbeApi>(main_end, "spinner"),
            renderer.connect_as::<ProbeApi>(renderer_end)
        );
        accepted.unwrap();
        let api = api.unwrap();
        let waiting: Vec<_> = (0..calls)
            .map(|_| {
                let probe = api.probe.clone();
                tokio::spawn(async move { probe.gated(8).await })
            })
            .collect();
        let handler: Arc<ProbeHandler> = handler;
        assert!(
            eventually(Duration::from_secs(5), || handler.at_gate() == calls).await,
            "main got the {calls} calls"
        );
        let before = cpu_time_of_threads(threads);
        tokio::time::sleep(WINDOW).await;
        let used = cpu_time_of_threads(threads) - before;
        handler.open_gate(calls);
        for call in waiting {
            assert_eq!(call.await.unwrap().unwrap(), vec![0x5a; 8]);
        }
        used
    })
}

fn more_than_one_cpu() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
}

#[test]
fn a_lone_call_spins_while_it_waits_if_the_process_has_more_than_one_cpu() {
    let used = cpu_while_calls_wait(1, "spin-lone");
    if more_than_one_cpu() {
        // About the whole window; a quarter leaves room for a busy
        // machine (`/proc` counts in ticks of 10 ms here).
        assert!(used >= WINDOW / 4, "{used:?} of CPU in {WINDOW:?}");
    } else {
        // On one CPU, spinning would keep main (here, the same process's
        // other thread) from answering: the call parks at once.
        assert!(used <= WINDOW / 10, "{used:?} of CPU in {WINDOW:?}");
    }
}

#[test]
fn calls_that_are_not_alone_park_at_once() {
    let used = cpu_while_calls_wait(2, "spin-pair");
    assert!(used <= WINDOW / 10, "{used:?} of CPU in {WINDOW:?}");
}

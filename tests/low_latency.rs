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

/// The threads of this process whose name starts with `prefix`: the
/// contents of `file` in each one's `/proc/self/task/<tid>/` directory.
fn per_thread(prefix: &str, file: &str) -> Vec<String> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc is mounted") {
        let dir = task.unwrap().path();
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue; // the thread ended meanwhile
        };
        // `pid (comm) state ppid …`: the name may hold spaces.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        if file == "stat" {
            out.push(stat[close + 1..].to_string());
        } else if let Ok(text) = std::fs::read_to_string(dir.join(file)) {
            out.push(text);
        }
    }
    out
}

/// CPU time (user and system) used so far by this process's threads whose
/// name starts with `prefix`, read from `/proc`.
fn cpu_time_of_threads(prefix: &str) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let mut ticks = 0;
    for stat in per_thread(prefix, "stat") {
        // utime and stime are fields 14 and 15, the 12th and 13th after
        // the name.
        let fields: Vec<&str> = stat.split_whitespace().collect();
        ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    Duration::from_millis(ticks * 1000 / ticks_per_s)
}

/// How long this process's threads whose name starts with `prefix` have
/// been runnable so far: on a CPU, or waiting in the run queue for one
/// (`/proc/<tid>/schedstat`), or `None` without schedstat. A spinning
/// thread is runnable all the time, however little CPU a busy machine
/// gives it; a parked one is not.
fn runnable_time_of_threads(prefix: &str) -> Option<Duration> {
    let stats = per_thread(prefix, "schedstat");
    if stats.is_empty() {
        return None;
    }
    let mut ns = 0u64;
    for stat in stats {
        let fields: Vec<u64> = stat
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        ns += fields[0] + fields[1];
    }
    Some(Duration::from_nanos(ns))
}

/// What the threads of a runtime did over a window: CPU time used, and
/// time runnable (if the kernel says).
struct Used {
    cpu: Duration,
    runnable: Option<Duration>,
}

/// The CPU time this test's runtime uses while `calls` calls of a renderer
/// set to spin for [`SPIN`] wait [`WINDOW`] for main, which holds them at
/// its gate.
fn cpu_while_calls_wait(calls: usize, threads: &'static str) -> Used {
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
        let (cpu, runnable) = (
            cpu_time_of_threads(threads),
            runnable_time_of_threads(threads),
        );
        tokio::time::sleep(WINDOW).await;
        let used = Used {
            cpu: cpu_time_of_threads(threads) - cpu,
            runnable: runnable_time_of_threads(threads)
                .zip(runnable)
                .map(|(a, b)| a - b),
        };
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
    let Used { cpu, runnable } = cpu_while_calls_wait(1, "spin-lone");
    if more_than_one_cpu() {
        // Runnable about the whole window, whether or not a busy machine
        // gives it a CPU for all of it (it got 80 ms of CPU in 500 ms with
        // two busy loops on two cores). Without schedstat, CPU time: a
        // quarter of the window (`/proc` counts in ticks of 10 ms here).
        match runnable {
            Some(runnable) => assert!(
                runnable >= WINDOW / 2,
                "runnable {runnable:?} ({cpu:?} of CPU) in {WINDOW:?}"
            ),
            None => assert!(cpu >= WINDOW / 4, "{cpu:?} of CPU in {WINDOW:?}"),
        }
    } else {
        // On one CPU, spinning would keep main (here, the same process's
        // other thread) from answering: the call parks at once.
        assert!(cpu <= WINDOW / 10, "{cpu:?} of CPU in {WINDOW:?}");
    }
}

#[test]
fn calls_that_are_not_alone_park_at_once() {
    let Used { cpu, runnable } = cpu_while_calls_wait(2, "spin-pair");
    assert!(
        cpu <= WINDOW / 10,
        "{cpu:?} of CPU in {WINDOW:?} (runnable {runnable:?})"
    );
}

//! Renderers that come and go leave nothing behind: after many renderers
//! of every kind have connected, worked and gone (closed by themselves,
//! disconnected by main, refused, hostile, killed child processes), the
//! process has as many open file descriptors and live tokio tasks as
//! before them. A desktop app opens and closes windows for days; one
//! socket or task kept per window would end it.
//!
//! The only test in its own binary: the counts are the whole process's.

use std::{process::Command, time::Duration};

use ipc_runtime::{Main, TcpEndpoint, UnixEndpoint};
use ipc_suite::{
    eventually, probe_main,
    raw::{self, RawPeer},
    ticks_of, ProbeApi, ProbeContract, ProbeEventsEmitter,
};

const RENDERER: &str = env!("CARGO_BIN_EXE_ipc-test-renderer");

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd lists this process's descriptors")
        .count()
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// One of each way a renderer comes and goes, `n` times over.
async fn round(main: &Main, (unix, tcp): (&UnixEndpoint, &TcpEndpoint), n: usize) {
    for i in 0..n {
        // A renderer in this process, over the Unix socket or TCP: calls,
        // listens, receives an event, then leaves (even) or is
        // disconnected by main (odd).
        let api = if i % 4 < 2 {
            let token = unix.issue_token::<ProbeApi>("window").unwrap();
            ProbeApi::connect_unix(unix.path(), &token).await
        } else {
            let token = tcp.issue_token::<ProbeApi>("window").unwrap();
            ProbeApi::connect_tcp(tcp.local_addr(), &token).await
        }
        .unwrap();
        assert_eq!(api.probe.add(2, 3).await.unwrap(), 5);
        let (guard, mut ticks) = ticks_of(&api).await;
        let id = api.id();
        assert!(main.subscribed(id, "probe:tick").await);
        ProbeEventsEmitter::new(main, ipc_runtime::Target::Renderer(id)).tick(i as u64);
        let tick = tokio::time::timeout(Duration::from_secs(5), ticks.recv()).await;
        assert_eq!(tick.ok().flatten(), Some(i as u64));
        if i % 2 == 0 {
            drop(guard);
            drop(api);
        } else {
            assert!(main.disconnect(id));
            let _ = tokio::time::timeout(Duration::from_secs(5), api.closed()).await;
        }
        let gone = tokio::time::timeout(Duration::from_secs(5), main.disconnected(id)).await;
        assert!(gone.is_ok(), "renderer {i} unregistered");

        // Connections without a token, refused.
        let refused = ProbeApi::connect_unix(unix.path(), "not-a-token").await;
        assert!(refused.is_err());
        let refused = ProbeApi::connect_tcp(tcp.local_addr(), "not-a-token").await;
        assert!(refused.is_err());

        // A hostile peer announcing a frame larger than anything main
        // accepts, disconnected.
        let (mut peer, _): (RawPeer, _) =
            raw::accepted::<ProbeApi, ProbeContract>(main, "hostile").await;
        peer.bytes(&u32::MAX.to_be_bytes()).await;
        assert!(peer.closed_by_main().await);
    }
    // Child processes: one runs to its end, one is killed mid-life.
    let mut done = main
        .spawn_renderer::<ProbeApi>(child("calls"), "child")
        .await
        .unwrap();
    assert!(done.wait().await.unwrap().success());
    let mut killed = main
        .spawn_renderer::<ProbeApi>(child("idle"), "killed")
        .await
        .unwrap();
    killed.kill().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), killed.disconnected()).await;
}

fn child(mode: &str) -> Command {
    let mut c = Command::new(RENDERER);
    c.arg(mode);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renderers_that_come_and_go_leave_no_descriptors_or_tasks_behind() {
    let (main, _) = probe_main();
    let unix = main.listen_unix().unwrap();
    let tcp = main.listen_tcp("127.0.0.1:0").unwrap();
    let endpoints = (&unix, &tcp);
    // Before any renderer: main's tasks (the endpoints' accept loops).
    let tasks = alive_tasks();
    // Warm-up: descriptors made once and kept (the signal pipe that
    // child processes need) exist from here.
    round(&main, endpoints, 2).await;
    let settled = |main: &Main| main.renderer_count() == 0;
    assert!(eventually(Duration::from_secs(5), || settled(&main)).await);
    let fds = open_fds();

    for _ in 0..4 {
        round(&main, endpoints, 10).await;
    }

    // Everything is given back, if not at the very moment the last
    // renderer went (its tasks end as they notice).
    let back = eventually(Duration::from_secs(5), || {
        settled(&main) && open_fds() <= fds && alive_tasks() <= tasks
    })
    .await;
    assert!(
        back,
        "after 48 renderers: {} descriptors open (were {fds}), {} tasks alive (were {tasks}), {} renderers registered",
        open_fds(),
        alive_tasks(),
        main.renderer_count()
    );
}

//! Renderers as real child processes, wired by an inherited socket.

use std::{process::Command, time::Duration};

use ipc_suite::{eventually, probe_main, KillOnDrop, ProbeApi};

const RENDERER: &str = env!("CARGO_BIN_EXE_ipc-test-renderer");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process_round_trip() {
    let (main, handler) = probe_main();
    let mut child = main
        .spawn_renderer::<ProbeApi>(
            {
                let mut c = Command::new(RENDERER);
                c.arg("calls");
                c
            },
            "child-renderer",
        )
        .await
        .unwrap();
    let pid = child.pid().expect("running");
    assert_ne!(pid, std::process::id(), "a separate OS process");
    assert_eq!(child.info().peer.and_then(|p| p.pid), Some(pid));
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata("/proc/self").unwrap().uid();
        assert_eq!(child.info().peer.and_then(|p| p.uid), Some(uid));
    }
    let status = child.wait().await.unwrap();
    assert!(
        status.success(),
        "the renderer's own checks failed: {status}"
    );
    // What the child sent reached this process's handler, in order.
    assert_eq!(handler.recorded_now(), [1, 2, 3, 4, 5]);
    // The reason stays on the process handle after main has let go.
    assert_eq!(
        child.disconnected().await,
        Some(ipc_runtime::DisconnectReason::Closed)
    );
    assert_eq!(main.renderer_count(), 0);
    assert_eq!(main.renderer_id(child.id().get()), None);
}

/// A renderer gone as soon as it has connected may be unregistered
/// before `spawn_renderer` returns: its handle still has the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renderer_that_exits_at_once_still_leaves_its_reason() {
    let (main, _) = probe_main();
    for _ in 0..8 {
        let mut command = Command::new(RENDERER);
        command.arg("connect-and-exit");
        let mut child = main
            .spawn_renderer::<ProbeApi>(command, "brief")
            .await
            .unwrap();
        assert!(child.wait().await.unwrap().success());
        assert_eq!(
            child.disconnected().await,
            Some(ipc_runtime::DisconnectReason::Closed)
        );
    }
    assert_eq!(main.renderer_count(), 0);
}

/// A renderer that sends and returns from `main` straight away (no
/// `close`, no `flush`): its runtime shuts down with the messages still
/// queued, and they reach main all the same. Few messages (the writer task
/// may never have run) and more than the queue holds (the sender waited
/// for room, so the writer ran).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_queued_when_a_renderer_returns_from_main_still_arrive() {
    for sends in [1u64, 5, 100, 2000, 2000] {
        let (main, handler) = probe_main();
        let mut command = Command::new(RENDERER);
        command.args(["send-and-return", &sends.to_string()]);
        let mut child = main
            .spawn_renderer::<ProbeApi>(command, "brief")
            .await
            .unwrap();
        assert!(child.wait().await.unwrap().success());
        // Main handles the messages it received after the disconnection.
        let all = eventually(Duration::from_secs(5), || {
            handler.recorded_now().len() as u64 >= sends
        })
        .await;
        let seen = handler.recorded_now();
        assert!(all, "main got {} of {sends} sends", seen.len());
        assert_eq!(seen, (1..=sends).collect::<Vec<_>>(), "{sends} sends");
    }
}

/// A renderer main refuses is told why, and has the time to say so
/// before main gives up on it: its own error path runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_renderer_reads_why_before_it_is_stopped() {
    let (main, _) = probe_main();
    let stderr = tempfile::NamedTempFile::new().unwrap();
    let mut command = Command::new(RENDERER);
    command
        .arg("connect-and-exit")
        .stderr(stderr.reopen().unwrap());
    // The renderer connects as `ProbeApi`; main grants it less.
    let err = main
        .spawn_renderer::<ipc_suite::NarrowApi>(command, "refused")
        .await
        .unwrap_err();
    assert!(
        matches!(err, ipc_runtime::IpcError::ApiNotGranted(_)),
        "{err}"
    );
    let printed = std::fs::read_to_string(stderr.path()).unwrap();
    assert!(
        printed.contains("ipc-test-renderer: the renderer connected as `ProbeApi`"),
        "the renderer printed: {printed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_children_at_once() {
    let (main, handler) = probe_main();
    let spawn = |label: &'static str| {
        let main = main.clone();
        async move {
            let mut c = Command::new(RENDERER);
            c.arg("calls");
            main.spawn_renderer::<ProbeApi>(c, label).await.unwrap()
        }
    };
    let (mut a, mut b) = tokio::join!(spawn("a"), spawn("b"));
    assert_ne!(a.id(), b.id());
    assert!(a.wait().await.unwrap().success());
    assert!(b.wait().await.unwrap().success());
    // Each child's sends 1..=5 were handled in its own order: the merged
    // sequence interleaves two increasing runs, so every `n` comes after
    // as many `n - 1`s as `n`s seen so far.
    let seen = handler.recorded_now();
    assert_eq!(seen.len(), 10, "{seen:?}");
    let mut count = [0usize; 6];
    for &n in &seen {
        let n = n as usize;
        assert!(n == 1 || count[n - 1] > count[n], "out of order: {seen:?}");
        count[n] += 1;
    }
}

#[tokio::test]
async fn connect_inherited_outside_a_spawned_process_is_a_clear_error() {
    let err = ipc_runtime::Connection::builder()
        .connect_inherited()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Main::spawn_renderer"), "{err}");
}

/// A program that exits instead of connecting: the error says how it
/// exited, not only that the connection closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renderer_that_exits_before_its_handshake_is_reported_with_its_exit_status() {
    let (main, _) = probe_main();
    let mut command = Command::new(RENDERER);
    command
        .arg("no-such-mode")
        .stderr(std::process::Stdio::null());
    let err = main
        .spawn_renderer::<ProbeApi>(command, "confused")
        .await
        .unwrap_err();
    assert!(
        matches!(err, ipc_runtime::IpcError::Disconnected { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("before its handshake: renderer `confused` exited (exit status: 1); the program spawned must connect with `connect_inherited`"),
        "{err}"
    );
    assert_eq!(main.renderer_count(), 0);
}

/// A program that misreads its role plays main in the child too: the
/// child's `spawn_renderer` is refused, so there is one child, not a chain
/// of copies, and the child's own error says what to check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renderer_playing_main_by_mistake_cannot_spawn_copies_of_itself() {
    let (main, _) = probe_main();
    let dir = tempfile::tempdir().unwrap();
    let stderr_path = dir.path().join("stderr");
    let mut command = Command::new(RENDERER);
    command
        .arg("main-by-mistake")
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    let err = main
        .spawn_renderer::<ProbeApi>(command, "confused")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("renderer `confused` exited (exit status: 1)"),
        "{err}"
    );
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        stderr.contains("spawn_renderer refused: invalid configuration: this process was started by Main::spawn_renderer as a renderer")
            && stderr.contains("check how the program decides which part to play"),
        "{stderr}"
    );
}

/// A renderer that has connected may be a main of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_renderer_may_spawn_renderers_of_its_own() {
    let (main, _) = probe_main();
    let mut command = Command::new(RENDERER);
    command.arg("nested-main");
    let mut child = main
        .spawn_renderer::<ProbeApi>(command, "nested")
        .await
        .unwrap();
    let status = child.wait().await.unwrap();
    assert!(
        status.success(),
        "the nested main's checks failed: {status}"
    );
}

/// A main that does not serve everything an API draws from (here its
/// builder forgot `.events::<ProbeEventsContract>()`) would refuse every
/// renderer accepted as that API at its handshake. Granting the API says
/// so at once instead: no process is started, no token issued.
#[tokio::test]
async fn granting_an_api_main_does_not_fully_serve_fails_before_anything_starts() {
    use std::sync::Arc;

    use ipc_runtime::{IpcError, Main};
    use ipc_suite::{ProbeHandler, ProbeServer};

    let main = Main::builder()
        .service(ProbeServer::from_arc(Arc::new(ProbeHandler::default())))
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("touch '{}'", marker.display()));
    let expected = "main cannot accept renderers as `ProbeApi`: `ProbeEvents` is not registered on main (register it with `MainBuilder::service`, or `MainBuilder::events` for an events trait)";
    match main.spawn_renderer::<ProbeApi>(command, "forgotten").await {
        Err(IpcError::Config { reason }) => assert_eq!(reason, expected),
        other => panic!("expected a configuration error, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!marker.exists(), "the renderer's program was started");

    let endpoint = main.listen_unix_in(dir.path()).unwrap();
    match endpoint.issue_token::<ProbeApi>("forgotten") {
        Err(IpcError::Config { reason }) => assert_eq!(reason, expected),
        other => panic!("expected a configuration error, got {other:?}"),
    }
    // What main does serve is granted as before.
    let (full, _) = probe_main();
    let endpoint = full.listen_unix_in(dir.path()).unwrap();
    assert!(endpoint.issue_token::<ProbeApi>("complete").is_ok());
}

/// A closed main, or one not built yet, would refuse the renderer: its
/// program is not started (it was, then refused, or left to fail on a
/// broken pipe without being told why).
#[tokio::test]
async fn a_closed_or_unbuilt_main_starts_no_renderer() {
    use ipc_runtime::{DisconnectCause, IpcError, Main};

    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let touch = || {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("touch '{}'", marker.display()));
        command
    };

    let (main, _) = probe_main();
    main.close().await;
    match main.spawn_renderer::<ProbeApi>(touch(), "late").await {
        Err(IpcError::Disconnected { reason, cause }) => {
            assert!(reason.contains("main is closed"), "{reason}");
            assert_eq!(cause, DisconnectCause::MainClosed);
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }

    let builder = Main::builder();
    let unbuilt = builder.main();
    match unbuilt.spawn_renderer::<ProbeApi>(touch(), "early").await {
        Err(IpcError::Config { reason }) => {
            assert!(reason.contains("not built yet"), "{reason}")
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!marker.exists(), "the renderer's program was started");
}

/// A process the renderer's program started before connecting (here a
/// wrapper script's `sleep`) holds a copy of its socket: killing the
/// renderer closed only its own copy, and main kept the dead renderer
/// registered for as long as the helper ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_renderer_is_released_though_a_process_it_started_holds_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let helper = dir.path().join("helper.pid");
    let wrapped = || {
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!(
            "sleep 60 & echo $! > '{}'; exec '{RENDERER}' idle",
            helper.display()
        ));
        c
    };
    // Killed however the test ends.
    let helper_of = || KillOnDrop::from_pid_file(&helper);

    let (main, _) = probe_main();
    let mut child = main
        .spawn_renderer::<ProbeApi>(wrapped(), "killed")
        .await
        .unwrap();
    let _helper = helper_of();
    child.kill().await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(5), child.disconnected()).await;
    assert_eq!(
        reason.expect("main kept the killed renderer"),
        Some(ipc_runtime::DisconnectReason::ClosedByMain)
    );
    assert_eq!(main.renderer_count(), 0);

    // Dropping the handle kills it as well.
    let mut gone = main.disconnections();
    let child = main
        .spawn_renderer::<ProbeApi>(wrapped(), "dropped")
        .await
        .unwrap();
    let _helper = helper_of();
    drop(child);
    ipc_suite::next_disconnection(&mut gone, "main releases the dropped renderer").await;
    assert_eq!(main.renderer_count(), 0);
}

/// A launcher that hands its connection to a process it starts, then exits
/// by itself: `kill` afterwards finds nothing to kill, and leaves the
/// handed-over renderer connected (it dropped it a second later).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_after_the_child_exited_by_itself_leaves_its_connection_alone() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("renderer.pid");
    let mut launcher = Command::new("sh");
    launcher.arg("-c").arg(format!(
        "'{RENDERER}' idle & echo $! > '{}'; exit 0",
        pidfile.display()
    ));
    let (main, _) = probe_main();
    let mut child = main
        .spawn_renderer::<ProbeApi>(launcher, "launched")
        .await
        .unwrap();
    // Killed however the test ends.
    let _renderer = KillOnDrop::from_pid_file(&pidfile);
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    assert!(status.unwrap().unwrap().success());
    let _ = child.kill().await;
    // Past the grace after which a kill releases the connection.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        main.renderer_count(),
        1,
        "the handed-over renderer was dropped"
    );
}

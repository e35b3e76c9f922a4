//! The Unix-socket transport: a private socket, one-time tokens, and a real
//! renderer process connecting to it.

use std::os::unix::fs::PermissionsExt;

use ipc_runtime::IpcError;
use ipc_suite::{
    probe_main,
    raw::{kind, RawPeer, WireError},
    ProbeApi,
};

const RENDERER: &str = env!("CARGO_BIN_EXE_ipc-test-renderer");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_from_another_process() {
    let (main, _) = probe_main();
    let endpoint = main.listen_unix().unwrap();
    let token = endpoint.issue_token::<ProbeApi>("socket-renderer").unwrap();
    let args = [
        std::ffi::OsStr::new("unix"),
        endpoint.path().as_os_str(),
        token.as_ref(),
    ];
    // The renderer printed the label main gave it, learned through a call.
    assert_eq!(
        ipc_suite::renderer_output(RENDERER, args).await,
        "socket-renderer"
    );
}

#[tokio::test]
async fn socket_and_directory_are_private() {
    let (main, _) = probe_main();
    let endpoint = main.listen_unix().unwrap();
    let file_mode = std::fs::metadata(endpoint.path())
        .unwrap()
        .permissions()
        .mode();
    let dir = endpoint.path().parent().unwrap().to_path_buf();
    let dir_mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(file_mode & 0o777, 0o600, "socket mode {file_mode:o}");
    assert_eq!(dir_mode & 0o777, 0o700, "directory mode {dir_mode:o}");
    drop(endpoint);
    assert!(
        !dir.exists(),
        "the endpoint removes its directory when dropped"
    );
}

#[tokio::test]
async fn tokens_are_required_and_single_use() {
    let (main, _) = probe_main();
    let endpoint = main.listen_unix().unwrap();
    let token = endpoint.issue_token::<ProbeApi>("once").unwrap();
    let connect = |token: String| {
        let path = endpoint.path().to_path_buf();
        async move { ProbeApi::connect_unix(path, &token).await }
    };

    let wrong = connect("not-a-token".into()).await.unwrap_err();
    assert!(matches!(wrong, IpcError::Unauthorized { .. }), "{wrong}");

    let conn = connect(token.clone()).await.unwrap();
    assert_eq!(conn.label(), "once");
    assert_eq!(conn.probe.add(1, 2).await.unwrap(), 3);

    let reused = connect(token).await.unwrap_err();
    assert!(matches!(reused, IpcError::Unauthorized { .. }), "{reused}");
    assert!(reused.to_string().contains("already used"), "{reused}");
}

/// A raw connection to main's socket that says nothing.
async fn silent(path: &std::path::Path) -> RawPeer {
    RawPeer {
        stream: tokio::net::UnixStream::connect(path).await.unwrap(),
    }
}

/// Reads the rejection main sends a connection without a token and the
/// error it carries.
async fn rejection(peer: &mut RawPeer) -> WireError {
    let frame = peer.read().await.expect("main answers before closing");
    assert_eq!(frame.kind, kind::REJECTED);
    frame.error()
}

/// Connections to the socket that show no token wait in the endpoint's
/// waiting room: however many a process opens, renderers main spawns or
/// accepts itself still get in, and so does a renderer with a token (the
/// connection that waited longest is refused to make room).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_without_a_token_cannot_take_the_renderers_places() {
    let mut limits = ipc_runtime::Limits::default();
    limits.max_renderers = 2;
    let (main, _) = ipc_suite::probe_main_with(|b| b.limits(limits));
    let endpoint = main.listen_unix().unwrap();
    // Two places in the waiting room: the third silent connection takes
    // the first one's.
    let mut first = silent(endpoint.path()).await;
    let _second = silent(endpoint.path()).await;
    let _third = silent(endpoint.path()).await;
    match rejection(&mut first).await {
        WireError::Unauthorized { reason } => {
            assert!(reason.contains("waited longest"), "{reason}")
        }
        other => panic!("the first silent connection was refused with {other:?}"),
    }
    assert!(first.closed_by_main().await);

    let trusted = ipc_suite::connect_memory(&main, "trusted").await;
    assert!(trusted.is_ok(), "{:?}", trusted.err());
    let token = endpoint.issue_token::<ProbeApi>("with-token").unwrap();
    let with_token = ProbeApi::connect_unix(endpoint.path(), &token).await;
    assert!(with_token.is_ok(), "{:?}", with_token.err());
    assert_eq!(main.renderer_count(), 2);
}

/// An endpoint opened on main before it was built (from
/// `MainBuilder::main`) follows the limits main was then built with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_opened_before_build_follows_mains_limits() {
    let builder = ipc_runtime::Main::builder();
    let endpoint = builder.main().listen_unix().unwrap();
    let mut limits = ipc_runtime::Limits::default();
    limits.max_renderers = 1;
    let handler = std::sync::Arc::new(ipc_suite::ProbeHandler::default());
    let _main = builder
        .service(ipc_suite::ProbeServer::from_arc(handler))
        .events::<ipc_suite::ProbeEventsContract>()
        .limits(limits)
        .build()
        .unwrap();
    // One place in the waiting room: the second silent connection takes
    // the first one's.
    let mut first = silent(endpoint.path()).await;
    let _second = silent(endpoint.path()).await;
    assert!(matches!(
        rejection(&mut first).await,
        WireError::Unauthorized { .. }
    ));
}

/// A listen that fails (here: a socket path longer than the system takes)
/// leaves no directory behind.
#[tokio::test]
async fn a_failed_listen_leaves_nothing_behind() {
    let (main, _) = probe_main();
    let parent = tempfile::tempdir().unwrap();
    let long = parent.path().join("p".repeat(100));
    std::fs::create_dir(&long).unwrap();
    let err = main.listen_unix_in(&long).unwrap_err();
    assert!(err.to_string().contains("listening on"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&long)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left {left:?} behind");
}

/// A token admits a renderer only within its lifetime: one given to a
/// renderer that never connected stops being a way in.
#[tokio::test]
async fn a_token_expires() {
    use std::time::Duration;
    let (main, _) = probe_main();
    let endpoint = main.listen_unix().unwrap();
    endpoint.set_token_lifetime(Duration::from_millis(200));
    let late = endpoint.issue_token::<ProbeApi>("late").unwrap();
    let prompt = endpoint.issue_token::<ProbeApi>("prompt").unwrap();
    assert!(ProbeApi::connect_unix(endpoint.path(), &prompt)
        .await
        .is_ok());
    tokio::time::sleep(Duration::from_millis(400)).await;
    match ProbeApi::connect_unix(endpoint.path(), &late).await {
        Err(IpcError::Unauthorized { reason }) => {
            assert!(reason.contains("expired"), "{reason}")
        }
        other => panic!("an expired token admitted a renderer: {other:?}"),
    }
}

/// A main that is killed cannot remove its socket directory; the next
/// listen in the same place does, because nobody holds the lock file in
/// it any more. Directories of live mains (even of this same process),
/// directories without a lock file and links are left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_mains_socket_directory_is_removed_by_the_next_listen() {
    use std::path::Path;
    use tokio::io::{AsyncBufReadExt, BufReader};

    let parent = tempfile::tempdir().unwrap();
    let mut killed = tokio::process::Command::new(RENDERER)
        .arg("serve-unix")
        .env("TMPDIR", parent.path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(killed.stdout.take().unwrap()).lines();
    let socket = lines.next_line().await.unwrap().unwrap();
    let stale = Path::new(&socket).parent().unwrap().to_path_buf();
    assert_eq!(stale.parent(), Some(parent.path()));
    // Listening elsewhere meanwhile does not touch it: it is still in use.
    let (main, _) = probe_main();
    drop(main.listen_unix_in(parent.path()).unwrap());
    assert!(stale.exists(), "a live main's directory was removed");
    killed.kill().await.unwrap();
    assert!(stale.exists(), "a killed main cannot clean up");

    // Not ours to remove: a directory without a lock file (as older
    // versions made), and a link to a directory whose lock nobody holds.
    let legacy = parent.path().join("ipc-runtime-1-0000000000000000");
    std::fs::create_dir(&legacy).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("main.lock"), b"").unwrap();
    let link = parent.path().join("ipc-runtime-2-0000000000000000");
    std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();

    let first = main.listen_unix_in(parent.path()).unwrap();
    assert!(
        !stale.exists(),
        "the killed main's directory is still there"
    );
    let second = main.listen_unix_in(parent.path()).unwrap();
    let first_dir = first.path().parent().unwrap();
    assert!(
        first.path().exists(),
        "a live endpoint's socket was removed"
    );
    assert!(second.path().exists());
    assert!(legacy.exists() && link.exists());
    assert!(elsewhere.path().join("main.lock").exists());
    // The first endpoint still admits renderers.
    let token = first.issue_token::<ProbeApi>("after-sweep").unwrap();
    let api = ProbeApi::connect_unix(first.path(), &token).await.unwrap();
    assert_eq!(api.probe.add(2, 3).await.unwrap(), 5);

    drop(second);
    let first_dir = first_dir.to_path_buf();
    drop(first);
    assert!(!first_dir.exists());
    let mut left: Vec<_> = std::fs::read_dir(parent.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "ipc-runtime-1-0000000000000000",
            "ipc-runtime-2-0000000000000000"
        ]
    );
}

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
    let output = tokio::process::Command::new(RENDERER)
        .arg("unix")
        .arg(endpoint.path())
        .arg(&token)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The renderer printed the label main gave it, learned through a call.
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
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

/// Connections to the socket that show no token wait on places of their
/// own: however many a process of the same user opens, renderers main
/// spawns or accepts itself still get in, and once those connections time
/// out a renderer with a token does too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_without_a_token_cannot_take_the_renderers_places() {
    use std::time::Duration;
    let mut limits = ipc_runtime::Limits::default();
    limits.max_renderers = 2;
    limits.handshake_timeout = Duration::from_millis(300);
    let (main, _) = ipc_suite::probe_main_with(|b| b.limits(limits));
    let endpoint = main.listen_unix().unwrap();
    // Two silent connections hold both places for connections without a
    // token once a third is refused for want of one. Main hands places out
    // as its handshake tasks run, and tokio runs the task spawned last
    // first: when main accepts all three at once, the third gets a place
    // and a squatter is refused. Then all three are let time out and the
    // squatters come again (one try in five here).
    let mut attempts = 0;
    let mut squatters = loop {
        let mut group = vec![silent(endpoint.path()).await, silent(endpoint.path()).await];
        let mut third = silent(endpoint.path()).await;
        if let WireError::TooManyRenderers { limit: 2 } = rejection(&mut third).await {
            break group;
        }
        attempts += 1;
        assert!(
            attempts < 5,
            "two silent connections never held both places"
        );
        group.push(third);
        for peer in &mut group {
            assert!(peer.closed_by_main().await);
        }
    };
    let trusted = ipc_suite::connect_memory(&main, "trusted").await;
    assert!(trusted.is_ok(), "{:?}", trusted.err());
    // The squatters' handshake time runs out; a token renderer gets in.
    for squatter in &mut squatters {
        match rejection(squatter).await {
            WireError::Protocol { reason } => {
                assert!(reason.contains("no handshake within"), "{reason}")
            }
            other => panic!("a squatter was refused with {other:?}"),
        }
        assert!(squatter.closed_by_main().await);
    }
    let token = endpoint.issue_token::<ProbeApi>("with-token").unwrap();
    let with_token = ProbeApi::connect_unix(endpoint.path(), &token).await;
    assert!(with_token.is_ok(), "{:?}", with_token.err());
    assert_eq!(main.renderer_count(), 2);
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

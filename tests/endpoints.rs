//! Listening endpoints against other local processes (from a security
//! review): connections that never show a token cannot keep renderers
//! out, on their endpoint or another (that refusals cannot flood main's
//! log is in `tracing_records.rs`); the stale-directory sweep touches only directories a main made; a
//! parent directory where another user could swap the socket directory is
//! refused; a token grants only its own API; spawned renderers inherit no
//! other descriptor of main's.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use ipc_runtime::{codec, IpcError, Limits};
use ipc_suite::{
    probe_main, probe_main_with,
    raw::{hello_body, invoke_body, kind, RawPeer, WireError},
    NarrowApi, ProbeApi, ProbeContract,
};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(5);

/// Any local user can connect to a TCP endpoint. Connections that never
/// say hello fill its waiting room; a renderer with a token still gets in
/// there (the longest-waiting connection makes room), and on the Unix
/// socket, whose waiting room is its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_keep_no_renderer_out() {
    let (main, _) = probe_main(); // 64 places per waiting room
    let unix = main.listen_unix().unwrap();
    let tcp = main.listen_tcp("127.0.0.1:0").unwrap();
    let mut silent = Vec::new();
    for _ in 0..70 {
        silent.push(TcpStream::connect(tcp.local_addr()).await.unwrap());
    }

    let token = unix.issue_token::<ProbeApi>("by-unix").unwrap();
    let api = tokio::time::timeout(T, ProbeApi::connect_unix(unix.path(), &token)).await;
    assert_eq!(api.unwrap().unwrap().probe.add(1, 2).await.unwrap(), 3);

    let token = tcp.issue_token::<ProbeApi>("by-tcp").unwrap();
    let api = tokio::time::timeout(T, ProbeApi::connect_tcp(tcp.local_addr(), &token)).await;
    assert_eq!(api.unwrap().unwrap().probe.add(2, 2).await.unwrap(), 4);
}

/// Silent connections that reconnect as soon as main refuses them, for
/// several handshake timeouts: renderers with tokens keep getting in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_silent_connections_keeps_no_renderer_out() {
    let mut limits = Limits::default();
    limits.handshake_timeout = Duration::from_millis(500);
    let (main, _) = probe_main_with(|b| b.limits(limits));
    let tcp = main.listen_tcp("127.0.0.1:0").unwrap();
    let addr = tcp.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let flood: Vec<_> = (0..72)
        .map(|_| {
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut s) = TcpStream::connect(addr).await else {
                        continue;
                    };
                    // Until main refuses it (its rejection, then the end).
                    let mut buf = [0u8; 512];
                    while let Ok(Ok(n)) =
                        tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await
                    {
                        if n == 0 {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (mut admitted, mut refused) = (0, Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while tokio::time::Instant::now() < deadline {
        let token = tcp.issue_token::<ProbeApi>("renderer").unwrap();
        match tokio::time::timeout(T, ProbeApi::connect_tcp(addr, &token))
            .await
            .expect("connect ends")
        {
            Ok(_) => admitted += 1,
            Err(e) => refused.push(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in flood {
        task.abort();
    }
    assert!(
        admitted > 0 && refused.len() <= admitted,
        "{admitted} admitted, {} refused: {refused:?}",
        refused.len()
    );
}

/// The sweep of directories killed mains left behind takes only
/// directories holding nothing but a main's lock and socket: one of the
/// user's own that shares the name keeps every file.
#[tokio::test]
async fn the_sweep_leaves_other_directories_alone() {
    let parent = tempfile::tempdir().unwrap();
    let other = parent.path().join("ipc-runtime-backups");
    std::fs::create_dir(&other).unwrap();
    for file in ["main.lock", "main.sock", "notes.txt"] {
        std::fs::write(other.join(file), b"user data").unwrap();
    }
    let (main, _) = probe_main();
    let _endpoint = main.listen_unix_in(parent.path()).unwrap();
    let mut left: Vec<String> = std::fs::read_dir(&other)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["main.lock", "main.sock", "notes.txt"]);
}

/// A parent directory others can write to without the sticky bit would
/// let another user rename main's socket directory away and put their own
/// in its place (and receive the tokens): refused. With the sticky bit,
/// as `/tmp` has, it is fine.
#[tokio::test]
async fn a_parent_where_others_could_swap_the_socket_directory_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let (main, _) = probe_main();
    let parent = tempfile::tempdir().unwrap();
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    match main.listen_unix_in(parent.path()) {
        Err(IpcError::Config { reason }) => assert!(reason.contains("sticky"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let endpoint = main.listen_unix_in(parent.path()).unwrap();
    let token = endpoint.issue_token::<ProbeApi>("sticky").unwrap();
    let api = ProbeApi::connect_unix(endpoint.path(), &token)
        .await
        .unwrap();
    assert_eq!(api.probe.add(1, 1).await.unwrap(), 2);
}

/// A token issued for a narrow API admits only that API: asked as a wider
/// one it is refused (and used up); a raw hello that claims the whole
/// contract without naming an API is admitted as the narrow one, and
/// frames outside it are not allowed.
#[tokio::test]
async fn a_token_grants_only_its_own_api() {
    let (main, _) = probe_main();
    let unix = main.listen_unix().unwrap();
    let token = unix.issue_token::<NarrowApi>("narrow").unwrap();
    let wider = ProbeApi::connect_unix(unix.path(), &token)
        .await
        .unwrap_err();
    assert!(matches!(wider, IpcError::ApiNotGranted(_)), "{wider}");
    let again = NarrowApi::connect_unix(unix.path(), &token)
        .await
        .unwrap_err();
    assert!(matches!(again, IpcError::Unauthorized { .. }), "{again}");

    let token = unix.issue_token::<NarrowApi>("narrow-raw").unwrap();
    let mut peer = RawPeer {
        stream: tokio::net::UnixStream::connect(unix.path()).await.unwrap(),
    };
    peer.frame(&hello_body::<ProbeContract>(Some(&token))).await;
    assert_eq!(peer.read().await.map(|f| f.kind), Some(kind::WELCOME));
    let args = codec::encode_to_vec(&(1u64, 2u64)).unwrap();
    peer.frame(&invoke_body(7, "probe:add", &args)).await;
    let reply = peer.read().await.expect("a reply");
    assert_eq!(reply.kind, kind::REPLY_FAILED);
    assert!(matches!(reply.error(), WireError::NotAllowed { .. }));
    assert_eq!(main.renderers()[0].api, "NarrowApi");
}

/// A spawned renderer inherits its standard streams and its own socket,
/// and none of main's other descriptors (listening sockets, lock file,
/// other renderers' connections), even when two are spawned at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_renderers_inherit_no_other_descriptor() {
    let mut limits = Limits::default();
    limits.handshake_timeout = Duration::from_millis(1500);
    let (main, _) = probe_main_with(|b| b.limits(limits));
    let unix = main.listen_unix().unwrap();
    let tcp = main.listen_tcp("127.0.0.1:0").unwrap();
    let token = unix.issue_token::<ProbeApi>("a").unwrap();
    let _a = ProbeApi::connect_unix(unix.path(), &token).await.unwrap();
    let token = tcp.issue_token::<ProbeApi>("b").unwrap();
    let _b = ProbeApi::connect_tcp(tcp.local_addr(), &token)
        .await
        .unwrap();

    // Descriptors this test process lets children inherit anyway (from the
    // harness that started it): not main's.
    let inheritable: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|fd| {
            let info =
                std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .unwrap_or("0");
            u32::from_str_radix(flags.trim(), 8).unwrap_or(0) & libc::O_CLOEXEC as u32 == 0
        })
        .collect();
    let out = tempfile::tempdir().unwrap();
    let listing = |n: u32| {
        let mut c = std::process::Command::new("sh");
        // No redirection in the shell: it would open descriptors of its own.
        c.arg("-c")
            .arg("ls /proc/$$/fd; echo ENV=$IPC_RUNTIME_FD")
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(out.path().join(n.to_string())).unwrap());
        c
    };
    // `sh` does not speak the protocol: both spawns fail, after it wrote.
    let (first, second) = tokio::join!(
        main.spawn_renderer::<ProbeApi>(listing(1), "sh1"),
        main.spawn_renderer::<ProbeApi>(listing(2), "sh2")
    );
    assert!(first.is_err() && second.is_err());
    for n in [1, 2] {
        let listed = std::fs::read_to_string(out.path().join(n.to_string())).unwrap();
        let env = listed.lines().find_map(|l| l.strip_prefix("ENV=")).unwrap();
        let own = env.split(':').next().unwrap();
        let extra: Vec<&str> = listed
            .lines()
            .filter(|l| !l.starts_with("ENV="))
            .filter(|fd| !["0", "1", "2", own].contains(fd) && !inheritable.iter().any(|i| i == fd))
            .collect();
        assert!(extra.is_empty(), "renderer {n} inherited {extra:?}");
    }
}

/// A renderer sends its token only to a socket served by its own user (or
/// root): another user's process listening where main's socket was
/// expected gets nothing. Needs a second user, so runs only as root (the
/// impostor is the test renderer started as `nobody`).
#[tokio::test]
async fn a_renderer_sends_no_token_to_another_users_socket() {
    use std::os::unix::{fs::PermissionsExt, process::CommandExt};
    // SAFETY: `geteuid` has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: starting a process as another user needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.path().join("main.sock");
    let mut impostor = std::process::Command::new(env!("CARGO_BIN_EXE_ipc-test-renderer"));
    impostor
        .arg("impostor")
        .arg(&path)
        .uid(65534)
        .gid(65534)
        .stdout(std::process::Stdio::piped());
    let mut impostor = tokio::process::Command::from(impostor)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(impostor.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(T, lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ready.as_deref(), Some("ready"));

    let refused = ProbeApi::connect_unix(&path, "the-secret-token")
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, IpcError::Unauthorized { reason } if reason.contains("another user")),
        "{refused}"
    );
    let received = tokio::time::timeout(T, lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        received.as_deref(),
        Some("0"),
        "bytes the impostor received"
    );
}

/// Main checks a hello's token before it decodes the rest (the contract
/// lists, the costly part): a connection with no token, or a wrong one,
/// is refused as unauthorized however malformed what follows it is; one
/// with a good token is refused for the malformed rest, and its token is
/// used up.
#[tokio::test]
async fn the_token_is_checked_before_the_rest_of_the_hello() {
    use ipc_suite::raw::hello_head;
    let (main, _) = probe_main();
    let unix = main.listen_unix().unwrap();
    let good = unix.issue_token::<ProbeApi>("good").unwrap();
    let bad = "f".repeat(good.len());
    for (token, refused_for) in [
        (None, "none was presented"),
        (Some(bad.as_str()), "the token is unknown"),
        (Some(good.as_str()), "malformed frame"),
        (
            Some(good.as_str()),
            "the token is unknown, was already used",
        ),
    ] {
        let mut peer = RawPeer {
            stream: tokio::net::UnixStream::connect(unix.path()).await.unwrap(),
        };
        let mut body = hello_head(token);
        body.extend_from_slice(&[0xff; 64]);
        peer.frame(&body).await;
        let answer = tokio::time::timeout(T, peer.read()).await.unwrap().unwrap();
        assert_eq!(answer.kind, kind::REJECTED);
        let reason = match answer.error() {
            WireError::Unauthorized { reason } | WireError::Protocol { reason } => reason,
            other => panic!("{other:?}"),
        };
        assert!(reason.contains(refused_for), "{token:?}: {reason}");
    }
    assert_eq!(main.renderer_count(), 0);
}

//! The loopback TCP transport: one-time tokens, a real renderer process
//! connecting to it, and the addresses it refuses.

use ipc_runtime::IpcError;
use ipc_suite::{probe_main, ProbeApi};

const RENDERER: &str = env!("CARGO_BIN_EXE_ipc-test-renderer");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_from_another_process() {
    let (main, _) = probe_main();
    let endpoint = main.listen_tcp("127.0.0.1:0").unwrap();
    assert!(endpoint.local_addr().ip().is_loopback());
    assert_ne!(endpoint.local_addr().port(), 0, "the chosen port is known");
    let token = endpoint.issue_token::<ProbeApi>("tcp-renderer").unwrap();
    let args = ["tcp".to_string(), endpoint.local_addr().to_string(), token];
    assert_eq!(
        ipc_suite::renderer_output(RENDERER, args).await,
        "tcp-renderer"
    );
}

/// Any local process can reach a TCP port: only a token main issued
/// admits a renderer, once.
#[tokio::test]
async fn a_token_is_required_and_works_once() {
    let (main, _) = probe_main();
    let endpoint = main.listen_tcp("127.0.0.1:0").unwrap();
    let addr = endpoint.local_addr();
    match ProbeApi::connect_tcp(addr, "not-a-token").await {
        Err(IpcError::Unauthorized { reason }) => assert!(reason.contains("unknown"), "{reason}"),
        other => panic!("an unknown token admitted a renderer: {:?}", other.err()),
    }
    let token = endpoint.issue_token::<ProbeApi>("once").unwrap();
    let api = ProbeApi::connect_tcp(addr, &token).await.unwrap();
    assert_eq!(api.label(), "once");
    assert_eq!(api.probe.add(1, 2).await.unwrap(), 3);
    assert!(matches!(
        ProbeApi::connect_tcp(addr, &token).await,
        Err(IpcError::Unauthorized { .. })
    ));
    assert_eq!(main.renderer_count(), 1);

    // Dropping the endpoint stops accepting; the renderer stays connected.
    drop(endpoint);
    // (A connect racing the close may be accepted by the kernel and then
    // reset; the port is closed once connects are refused.)
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match tokio::net::TcpStream::connect(addr).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
                _ => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
    })
    .await
    .expect("the port closes");
    assert_eq!(api.probe.add(2, 2).await.unwrap(), 4);
}

/// Frames and tokens cross TCP unencrypted: only loopback addresses are
/// listened on.
#[tokio::test]
async fn addresses_other_than_loopback_are_refused() {
    let (main, _) = probe_main();
    for addr in ["0.0.0.0:0", "[::]:0"] {
        match main.listen_tcp(addr) {
            Err(IpcError::Config { reason }) => {
                assert!(reason.contains("loopback addresses only"), "{reason}");
                assert!(reason.contains("Main::accept"), "{reason}");
            }
            other => panic!("{addr}: {other:?}"),
        }
    }
    assert!(main.listen_tcp("[::1]:0").is_ok() || main.listen_tcp("127.0.0.1:0").is_ok());
}

/// The token travels in the hello, unencrypted: a renderer connects only
/// to loopback addresses, and sends nothing anywhere else.
#[tokio::test]
async fn a_renderer_connects_to_loopback_addresses_only() {
    let refused = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        ProbeApi::connect_tcp("192.0.2.2:4000", "a-token"),
    )
    .await
    .expect("refused without trying the network");
    match refused {
        Err(IpcError::Config { reason }) => {
            assert!(reason.contains("loopback addresses only"), "{reason}")
        }
        other => panic!("expected a configuration error, got {:?}", other.err()),
    }
}

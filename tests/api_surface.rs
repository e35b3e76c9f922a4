//! What the public types offer besides their main job: `Debug` output that
//! says something, a generated server that can be cloned into a second
//! main, an I/O error that hands over the operating system's error, and a
//! builder that generic code can finish.

use std::{error::Error, sync::Arc};

use ipc_runtime::{ContractList, IpcError, Main, MainBuilder};
use ipc_suite::{connect_memory, ProbeEventsContract, ProbeHandler, ProbeServer};

#[test]
fn a_builder_shows_its_contracts_and_limits() {
    let builder = Main::builder()
        .service(ProbeServer::new(ProbeHandler::default()))
        .events::<ProbeEventsContract>();
    let shown = format!("{builder:?}");
    assert!(
        shown.starts_with("MainBuilder {")
            && shown.contains(r#"contracts: ["Probe", "ProbeEvents"]"#)
            && shown.contains("max_frame_size"),
        "{shown}"
    );
}

/// A clone of a server serves the same handler value: what one main's
/// renderer records, the other's reads back.
#[tokio::test]
async fn a_cloned_server_shares_its_handler_between_two_mains() {
    let server = ProbeServer::from_arc(Arc::new(ProbeHandler::default()));
    assert_eq!(format!("{server:?}"), "ProbeServer { .. }");
    let build = |server| {
        Main::builder()
            .service(server)
            .events::<ProbeEventsContract>()
            .build()
            .unwrap()
    };
    let (first, second) = (build(server.clone()), build(server));
    let on_first = connect_memory(&first, "first").await.unwrap();
    let on_second = connect_memory(&second, "second").await.unwrap();
    on_first.probe.record(6).await.unwrap();
    on_first.flush().await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..500 {
        seen = on_second.probe.recorded().await.unwrap();
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(seen, vec![6]);
}

/// The message carries the operating system's words, so the error has no
/// `source` to print them a second time; `io_error` reaches the error.
#[tokio::test]
async fn an_io_error_hands_over_the_operating_systems_error() {
    let err = ipc_suite::ProbeApi::connect_unix("/nonexistent/ipc/main.sock", "token")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, IpcError::Io { .. }), "{err:?}");
    assert_eq!(
        err.io_error().map(std::io::Error::kind),
        Some(std::io::ErrorKind::NotFound)
    );
    assert!(err.source().is_none());
    assert!(
        err.to_string().contains("No such file or directory"),
        "{err}"
    );
    let other = IpcError::Config { reason: "x".into() };
    assert!(other.io_error().is_none());
}

fn finish<C: ContractList>(builder: MainBuilder<C>) -> Result<Main, IpcError> {
    builder.build()
}

#[test]
fn generic_code_can_finish_a_builder() {
    let main = finish(Main::builder().service(ProbeServer::new(ProbeHandler::default())));
    assert_eq!(main.unwrap().renderer_count(), 0);
}

/// Weak handles go where callbacks go (other threads), say which API and
/// connection they are for, and the connection under them is the API's.
#[tokio::test]
async fn weak_handles_are_sendable_and_say_what_they_hold() {
    fn sendable<T: Send + Sync + Clone + 'static>(_: &T) {}
    let (main, _) = ipc_suite::probe_main();
    let api = connect_memory(&main, "window").await.unwrap();
    let weak = api.downgrade();
    sendable(&weak);
    let shown = format!("{weak:?}");
    assert!(
        shown.starts_with(
            r#"WeakApi { api: "ProbeApi", connection: WeakConnection(Connection { id: "#
        ) && shown.contains(r#"label: "window""#),
        "{shown}"
    );
    let again = weak.upgrade().unwrap();
    assert_eq!(again.id(), api.id());
}

//! Round trip over the in-memory transport.

use ipc_suite::{connect_memory, probe_main};

#[tokio::test]
async fn round_trip_in_memory() {
    let (main, _) = probe_main();
    let conn = connect_memory(&main, "in-memory").await.unwrap();
    let probe = &conn.probe;
    assert_eq!(
        probe.echo("over a pipe".into()).await.unwrap(),
        "over a pipe"
    );
    assert_eq!(probe.len(vec![7; 1000]).await.unwrap(), 1000);
    assert_eq!(main.renderers()[0].label, "in-memory");
}

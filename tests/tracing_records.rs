//! Every rejected frame leaves a `tracing` record on main that names the
//! renderer (README, "Limits"). Alone in its test binary: the subscriber
//! is the process's global one, so that no other test's thread decides,
//! first, that main's log statements are never enabled.

use std::sync::{Arc, Mutex};

use ipc_suite::{
    probe_main,
    raw::{accepted, invoke_body, kind},
    ProbeApi, ProbeContract,
};

/// What the subscriber wrote.
#[derive(Clone, Default)]
struct Records(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Records {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn rejected_frames_leave_a_record_naming_the_renderer() {
    let records = Records::default();
    let writer = records.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .init();
    let (main, _) = probe_main();
    let (mut raw, id) = accepted::<ProbeApi, ProbeContract>(&main, "hostile").await;
    raw.frame(&invoke_body(7, "probe:does-not-exist", &[]))
        .await;
    assert_eq!(raw.read().await.unwrap().kind, kind::REPLY_FAILED);
    raw.frame(&invoke_body(8, "probe:add", &[0xff])).await;
    assert_eq!(raw.read().await.unwrap().kind, kind::REPLY_FAILED);
    let text = String::from_utf8(records.0.lock().unwrap().clone()).unwrap();
    let naming = |what: &str| {
        text.lines()
            .any(|l| l.contains(what) && l.contains(&format!("renderer={id}")))
    };
    assert!(naming("probe:does-not-exist"), "{text}");
    assert!(naming("probe:add"), "{text}");
}

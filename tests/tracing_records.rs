//! Every rejected frame, and every limit hit, leaves a `tracing` record on
//! main that names the renderer (README, "Limits"). Alone in its test binary: the subscriber
//! is the process's global one, so that no other test's thread decides,
//! first, that main's log statements are never enabled.

use std::{
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use ipc_runtime::IpcError;
use ipc_suite::{
    connect_memory, probe_main, probe_main_with,
    raw::{accepted, invoke_body, kind, WireError},
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

/// The records written since the subscriber was installed (once, for
/// every test here, at `DEBUG`), and a guard that runs the tests one at a
/// time: renderer ids start at 1 in each test's main, so records are told
/// apart by when they were written.
async fn records() -> (Records, tokio::sync::MutexGuard<'static, ()>) {
    static RECORDS: OnceLock<Records> = OnceLock::new();
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let guard = ONE_AT_A_TIME.lock().await;
    let records = RECORDS
        .get_or_init(|| {
            let records = Records::default();
            let writer = records.clone();
            tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::DEBUG)
                .init();
            records
        })
        .clone();
    records.0.lock().unwrap().clear();
    (records, guard)
}

impl Records {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test]
async fn rejected_frames_leave_a_record_naming_the_renderer() {
    let (records, _one_at_a_time) = records().await;
    let (main, _) = probe_main();
    let (mut raw, id) = accepted::<ProbeApi, ProbeContract>(&main, "hostile").await;
    raw.frame(&invoke_body(7, "probe:does-not-exist", &[]))
        .await;
    assert_eq!(raw.read().await.unwrap().kind, kind::REPLY_FAILED);
    raw.frame(&invoke_body(8, "probe:add", &[0xff])).await;
    assert_eq!(raw.read().await.unwrap().kind, kind::REPLY_FAILED);
    let text = records.text();
    let naming = |what: &str| {
        text.lines()
            .any(|l| l.contains(what) && l.contains(&format!("renderer={id}")))
    };
    assert!(naming("probe:does-not-exist"), "{text}");
    assert!(naming("probe:add"), "{text}");
}

/// A renderer that does not read its replies: once they fill its queue,
/// main says so (and starts no more calls for it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_filling_a_renderers_queue_leave_a_record() {
    let (records, _one_at_a_time) = records().await;
    let mut limits = ipc_runtime::Limits::default();
    limits.max_queued_frames = 1;
    let (main, handler) = ipc_suite::probe_main_with(|b| b.limits(limits));
    let (main_end, peer) = tokio::io::duplex(4096);
    let (read, write) = tokio::io::split(main_end);
    let (mut raw, id) = ipc_suite::raw::accepted_over::<ProbeApi, ProbeContract, _>(
        &main,
        "deaf",
        ipc_runtime::Transport::new(read, write),
        peer,
    )
    .await;
    let args = ipc_runtime::codec::encode_to_vec(&(10_000u32,)).unwrap();
    for call in 1..=3 {
        raw.frame(&invoke_body(call, "probe:gated", &args)).await;
    }
    assert!(ipc_suite::eventually(Duration::from_secs(5), || handler.at_gate() == 3).await);
    handler.open_gate(3);
    // Their replies (10 KB each) fill the 4 KiB pipe, then the queue.
    assert!(ipc_suite::eventually(Duration::from_secs(5), || handler.at_gate() == 0).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    raw.frame(&invoke_body(4, "probe:add", &[1, 2])).await;
    let recorded = ipc_suite::eventually(Duration::from_secs(5), || {
        records
            .text()
            .lines()
            .any(|l| l.contains("max_queued_frames") && l.contains(&format!("renderer={id}")))
    });
    assert!(recorded.await, "{}", records.text());
}

/// `send` messages whose handler is slow fill their budget: main stops
/// reading from that renderer, and says so.
mod send_budget {
    use super::*;
    use ipc_runtime::{expose, service, Limits, Main};

    #[service(namespace = "slowsend")]
    pub trait SlowSend {
        /// Waits until the test lets it through.
        #[ipc(send)]
        async fn hold(&self, data: Vec<u8>);
    }

    expose! {
        pub struct SlowSendApi {
            slow: SlowSend { hold },
        }
    }

    struct Gate(Arc<tokio::sync::Semaphore>);

    impl SlowSend for Gate {
        async fn hold(&self, _data: Vec<u8>) {
            self.0.acquire().await.unwrap().forget();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_send_budget_leaves_a_record() {
        let (records, _one_at_a_time) = records().await;
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let mut limits = Limits::default();
        limits.max_queued_send_bytes = 1000;
        let main = Main::builder()
            .service(SlowSendServer::new(Gate(Arc::clone(&gate))))
            .limits(limits)
            .build()
            .unwrap();
        let api = ipc_suite::connect_memory_as::<SlowSendApi>(&main, "sender")
            .await
            .unwrap();
        for _ in 0..3 {
            api.slow.hold(vec![0; 600]).await.unwrap();
        }
        let id = api.id();
        let recorded = ipc_suite::eventually(Duration::from_secs(5), || {
            records.text().lines().any(|l| {
                l.contains("max_queued_send_bytes") && l.contains(&format!("renderer={id}"))
            })
        });
        assert!(recorded.await, "{}", records.text());
        gate.add_permits(10);
    }
}

/// Subscriptions refused for `max_subscriptions` are not violations, so a
/// renderer may repeat them at will: only the first is a warning, the
/// rest debug records (main's log cannot be flooded at warning level).
#[tokio::test]
async fn refused_subscriptions_warn_once() {
    let (records, _one_at_a_time) = records().await;
    let mut limits = ipc_runtime::Limits::default();
    limits.max_subscriptions = 1;
    let (main, _) = ipc_suite::probe_main_with(|b| b.limits(limits));
    let (mut raw, id) = accepted::<ProbeApi, ProbeContract>(&main, "greedy").await;
    raw.frame(&ipc_suite::raw::subscribe_body(1, "probe:tick"))
        .await;
    assert_eq!(raw.read().await.unwrap().kind, kind::REPLY_OK);
    for call in 2..50 {
        raw.frame(&ipc_suite::raw::subscribe_body(call, "probe:note"))
            .await;
        assert_eq!(raw.read().await.unwrap().kind, kind::REPLY_FAILED);
    }
    assert_eq!(main.renderer_stats(id).unwrap().violations, 0);
    let text = records.text();
    let refused = |level: &str| {
        text.lines()
            .filter(|l| l.contains(level) && l.contains("subscription refused"))
            .count()
    };
    assert_eq!(refused(" WARN "), 1, "{text}");
    assert_eq!(refused(" DEBUG "), 47, "{text}");
}

/// A renderer's own `max_frame_size` may refuse every reply, error reply
/// and event main has for it: that is its choice, so main neither logs an
/// error or a warning per call (it logged one each) nor a warning per
/// event, but one warning of each, then debug records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_and_events_larger_than_a_renderer_accepts_warn_once() {
    let (records, _one_at_a_time) = records().await;
    // Forwarded, so that a long panic message makes a long error reply.
    let (main, _) = probe_main_with(|b| b.forward_failure_details(true));
    let (main_end, renderer_end) = ipc_runtime::transport::memory_pair(64 * 1024);
    let (accepted, api) = tokio::join!(
        main.accept::<ProbeApi>(main_end, "small"),
        ipc_runtime::Connection::builder()
            .max_frame_size(256)
            .connect_as::<ProbeApi>(renderer_end)
    );
    accepted.unwrap();
    let api = api.unwrap();
    for _ in 0..20 {
        let e = api.probe.echo("x".repeat(300)).await.unwrap_err();
        assert!(
            matches!(e, ipc_runtime::IpcError::FrameTooLarge { .. }),
            "{e:?}"
        );
    }
    // Error replies too: a handler's long panic message.
    for _ in 0..5 {
        let e = api.probe.explode("z".repeat(300)).await.unwrap_err();
        assert!(
            matches!(e, ipc_runtime::IpcError::FrameTooLarge { .. }),
            "{e:?}"
        );
    }
    let _listening = api.events.on_note(|_| {}).await.unwrap();
    assert!(main.subscribed(api.id(), "probe:note").await);
    let notes = ipc_suite::ProbeEventsEmitter::new(&main, ipc_runtime::Target::All);
    for _ in 0..20 {
        assert_eq!(notes.note("y".repeat(300)), 0);
    }
    assert_eq!(main.renderer_stats(api.id()).unwrap().events_dropped, 20);
    let text = records.text();
    let count = |level: &str, what: &str| {
        text.lines()
            .filter(|l| l.contains(level) && l.contains(what))
            .count()
    };
    let reply = "the reply could not be sent";
    assert_eq!(count(" ERROR ", reply), 0, "{text}");
    assert_eq!(count(" WARN ", reply), 1, "{text}");
    assert_eq!(count(" DEBUG ", reply), 19, "{text}");
    // One warning for replies of either kind: the first was a value's.
    let error_reply = "an error reply was larger than the renderer accepts";
    assert_eq!(count(" WARN ", error_reply), 0, "{text}");
    assert_eq!(count(" DEBUG ", error_reply), 5, "{text}");
    let event = "event not sent: larger than the renderer accepts";
    assert_eq!(count(" WARN ", event), 1, "{text}");
    assert_eq!(count(" DEBUG ", event), 19, "{text}");
}

/// A panic message is for main's developer: by default the renderer
/// learns only that its call's handler panicked, and main's log has the
/// message (escaped: it may quote the renderer's input).
#[tokio::test]
async fn panic_messages_stay_in_mains_log_by_default() {
    let (records, _one_at_a_time) = records().await;
    let (main, _) = probe_main();
    let api = connect_memory(&main, "curious").await.unwrap();
    // Panicking on the first poll, and later in a task of its own.
    for secret in ["db password hunter2", "later: /home/main/secret.key"] {
        match api.probe.explode(secret.into()).await {
            Err(IpcError::HandlerPanicked { channel, message }) => {
                assert_eq!(channel, "probe:explode");
                assert!(!message.contains("hunter2") && !message.contains("secret"));
                assert!(
                    message.contains("withheld by main (its log has it")
                        && message.contains("MainBuilder::forward_failure_details(true)"),
                    "{message}"
                );
            }
            other => panic!("expected a contained panic, got {other:?}"),
        }
        let text = records.text();
        assert!(
            text.lines().any(|l| l.contains(" ERROR ")
                && l.contains("handler panicked")
                && l.contains(secret)),
            "{text}"
        );
    }
    assert_eq!(api.probe.add(1, 2).await.unwrap(), 3);
}

/// Refusals before a token is shown (any local user can connect to a TCP
/// endpoint) are logged at `WARN` at most once a second, the rest at
/// `DEBUG`: connecting in a loop cannot flood main's log.
#[tokio::test]
async fn handshake_refusals_warn_at_most_once_a_second() {
    let (records, _one_at_a_time) = records().await;
    let (main, _) = ipc_suite::probe_main();
    let tcp = main.listen_tcp("127.0.0.1:0").unwrap();
    let started = std::time::Instant::now();
    for _ in 0..500 {
        let stream = tokio::net::TcpStream::connect(tcp.local_addr())
            .await
            .unwrap();
        let mut peer = ipc_suite::raw::RawPeer { stream };
        peer.frame(&ipc_suite::raw::hello_body::<ProbeContract>(Some(
            "a guess",
        )))
        .await;
        assert_eq!(peer.read().await.unwrap().kind, kind::REJECTED);
    }
    let seconds = started.elapsed().as_secs() as usize;
    // The last refusals may be logged just after their rejection was read.
    let text = records.text();
    let refused = |level: &str| {
        text.lines()
            .filter(|l| l.contains(level) && l.contains("renderer refused at handshake"))
            .count()
    };
    let warned = refused(" WARN ");
    assert!(
        (1..=seconds + 1).contains(&warned),
        "{warned} in {seconds} s"
    );
    assert!(
        ipc_suite::eventually(Duration::from_secs(5), || {
            let text = records.text();
            text.matches("renderer refused at handshake").count() == 500
        })
        .await,
        "every refusal is logged, at one level or the other"
    );
    let _ = refused;
}

/// An `EventStream` kept and never read grows without bound (its docs
/// say so); a warning says so too, on the renderer, at 10 000 unread
/// events, once until ten times as many or until the reader catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_event_stream_warns_at_10_000_events() {
    let (records, _one_at_a_time) = records().await;
    let (main, _) = probe_main();
    let api = ipc_suite::connect_memory(&main, "hoarder").await.unwrap();
    let mut ticks = api.events.stream_tick().await.unwrap();
    let emitter = ipc_suite::ProbeEventsEmitter::new(&main, ipc_runtime::Target::All);
    let target = ipc_runtime::Target::Renderer(api.id());
    let warned = |text: &str| {
        text.lines()
            .filter(|l| l.contains(" WARN ") && l.contains("unread events"))
            .count()
    };
    for n in 0..9_999 {
        emitter.tick(n);
        if n % 256 == 255 {
            main.room_for_events(&target).await;
        }
    }
    assert!(ipc_suite::eventually(Duration::from_secs(10), || ticks.len() == 9_999).await);
    // One read: the next event leaves 9 999 unread, the one after 10 000.
    assert_eq!(ticks.recv().await, Some(0));
    emitter.tick(9_999);
    assert!(ipc_suite::eventually(Duration::from_secs(10), || ticks.len() == 9_999).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(warned(&records.text()), 0, "{}", records.text());
    emitter.tick(10_000);
    let text = || records.text();
    assert!(
        ipc_suite::eventually(Duration::from_secs(10), || warned(&text()) == 1).await,
        "{}",
        text()
    );
    assert!(text().contains("holds 10000 unread events"), "{}", text());
    assert!(text().contains("probe:tick"), "{}", text());
    // Not again for the next events.
    for n in 10_001..10_100 {
        emitter.tick(n);
    }
    assert!(ipc_suite::eventually(Duration::from_secs(10), || ticks.len() == 10_099).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(warned(&text()), 1, "{}", text());
    // Caught up, then stalled again: warned again at 10 000.
    while ticks.try_recv().is_some() {}
    for n in 0..10_000 {
        emitter.tick(n);
        if n % 256 == 255 {
            main.room_for_events(&target).await;
        }
    }
    assert!(
        ipc_suite::eventually(Duration::from_secs(10), || warned(&text()) == 2).await,
        "{}",
        text()
    );
}

/// Dropping a `RendererProcess` kills the renderer: an info record says
/// so (at the level of the disconnection it causes, which reads as the
/// renderer closing), for the program that dropped it by accident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_running_renderer_process_leaves_a_record() {
    let (records, _one_at_a_time) = records().await;
    let (main, _) = probe_main();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ipc-test-renderer"));
    command.arg("idle");
    let child = main
        .spawn_renderer::<ProbeApi>(command, "dropped")
        .await
        .unwrap();
    let id = child.id();
    drop(child);
    let text = records.text();
    assert!(
        text.lines().any(|l| l.contains(" INFO ")
            && l.contains("killing the renderer")
            && l.contains(&format!("renderer={id}"))
            && l.contains("label=dropped")),
        "{text}"
    );
}

/// An emitter made from the `Main` of a builder that is then dropped
/// unbuilt reaches no one, ever: the first such emit warns (it looked like
/// "nobody listens"), and accepting a renderer there says why.
#[tokio::test]
async fn emitting_through_a_main_that_was_never_built_warns_once() {
    let (records, _one_at_a_time) = records().await;
    let builder = ipc_runtime::Main::builder();
    let unbuilt = builder.main();
    let emitter = ipc_suite::ProbeEventsEmitter::new(&unbuilt, ipc_runtime::Target::All);
    // Not yet abandoned: a builder still being configured.
    assert_eq!(emitter.tick(1), 0);
    assert!(!records.text().contains("never built"));
    drop(builder);
    assert_eq!(emitter.tick(2), 0);
    assert_eq!(emitter.tick(3), 0);
    let text = records.text();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("never built")).collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(
        warnings[0].contains("WARN") && warnings[0].contains("channel=probe:tick"),
        "{text}"
    );
    let (main_end, _renderer_end) = ipc_runtime::transport::memory_pair(1024);
    let err = unbuilt
        .accept::<ProbeApi>(main_end, "late")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("main was never built"), "{err}");
}

/// A built main whose emits reach no one (nobody listens) does not warn.
#[tokio::test]
async fn emitting_to_no_listener_through_a_built_main_does_not_warn() {
    let (records, _one_at_a_time) = records().await;
    let builder = ipc_runtime::Main::builder();
    let emitter = ipc_suite::ProbeEventsEmitter::new(&builder.main(), ipc_runtime::Target::All);
    let _main = builder
        .events::<ipc_suite::ProbeEventsContract>()
        .build()
        .unwrap();
    assert_eq!(emitter.tick(1), 0);
    assert!(
        !records.text().contains("never built"),
        "{}",
        records.text()
    );
}

/// An address that checks itself as it is decoded, and whose error quotes
/// what it was given: the common `#[serde(try_from)]` pattern.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Email(String);

impl TryFrom<String> for Email {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.contains('@') {
            true => Ok(Email(text)),
            false => Err(format!("not an email address: {text}")),
        }
    }
}

/// Internally tagged: no bytes decode it (it needs a self-describing
/// format), whatever an honest renderer sends.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind")]
pub enum Shape {
    Circle { r: u32 },
}

/// A reply whose `Serialize` panics, quoting its value.
#[derive(Debug, serde::Deserialize)]
pub struct Loud(String);

impl serde::Serialize for Loud {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("cannot encode {}", self.0)
    }
}

#[ipc_runtime::service(namespace = "mail")]
pub trait Mail {
    async fn send_to(&self, to: Email) -> u64;
    async fn lookup(&self, id: u64) -> Email;
    async fn draw(&self, shape: Shape, points: Vec<(u32, u32)>) -> u64;
    async fn shout(&self, text: String) -> Loud;
}

ipc_runtime::expose! {
    pub struct MailApi { mail: Mail { send_to, lookup, draw, shout } }
}

struct Outbox;

impl Mail for Outbox {
    async fn send_to(&self, _to: Email) -> u64 {
        1
    }
    async fn lookup(&self, _id: u64) -> Email {
        Email("a@b".into())
    }
    async fn draw(&self, _shape: Shape, _points: Vec<(u32, u32)>) -> u64 {
        1
    }
    async fn shout(&self, text: String) -> Loud {
        Loud(text)
    }
}

async fn mail_renderer() -> ipc_suite::raw::RawPeer {
    let main = ipc_runtime::Main::builder()
        .service(MailServer::new(Outbox))
        .build()
        .unwrap();
    let (raw, _) = accepted::<MailApi, MailContract>(&main, "hostile").await;
    // Main lives on in the connection's tasks.
    raw
}

/// A line a renderer would like main's log to show.
const FORGED: &str =
    "x\n2099-01-01T00:00:00Z  INFO ipc_runtime: renderer connected label=\"admin\"";

/// No line of `log` is one a peer wrote.
fn assert_no_forged_line(log: &str) {
    assert!(!log.lines().any(|l| l.starts_with("2099")), "{log}");
    for c in ['\u{2028}', '\u{2029}', '\u{202e}'] {
        assert!(!log.contains(c), "{c:?} in {log}");
    }
}

/// What a payload's `Deserialize` says of it reaches main's log and the
/// renderer's error escaped and cut short: a renderer cannot write lines
/// of its own into main's log (a forged record, a Unicode line separator,
/// a bidirectional override), nor make one of megabytes.
#[tokio::test]
async fn a_decode_error_quoting_the_payload_cannot_forge_or_flood_the_log() {
    let (records, _one_at_a_time) = records().await;
    let mut raw = mail_renderer().await;
    let long = "y".repeat(100_000);
    let disguised = "a\u{2028}2099 forged\u{202e}desrever";
    for text in [FORGED, &long, disguised] {
        let args = ipc_runtime::codec::encode_to_vec(&(text,)).unwrap();
        raw.frame(&invoke_body(1, "mail:send-to", &args)).await;
        let reply = raw.read().await.unwrap();
        assert_eq!(reply.kind, kind::REPLY_FAILED);
        let WireError::BadPayload { reason, .. } = reply.error() else {
            panic!("expected BadPayload, got {:?}", reply.error());
        };
        assert!(reason.contains("not an email address"), "{reason}");
        assert!(
            !reason.contains('\n') && reason.chars().count() < 600,
            "{reason}"
        );
    }
    let text = records.text();
    assert!(text.contains("not an email address: x\\n2099"), "{text}");
    assert!(text.contains("\\u{2028}2099"), "{text}");
    assert_no_forged_line(&text);
    assert!(
        text.lines().all(|l| l.len() < 2_000),
        "a record of {} bytes",
        text.len()
    );
}

/// Main's own advice for a contract type that no bytes decode is told to
/// the renderer whole: only a value's own words are cut.
#[tokio::test]
async fn main_s_advice_for_an_undecodable_type_is_not_cut() {
    let (_records, _one_at_a_time) = records().await;
    let mut raw = mail_renderer().await;
    raw.frame(&invoke_body(1, "mail:draw", &[0, 0, 0])).await;
    let reply = raw.read().await.unwrap();
    let WireError::BadPayload { reason, .. } = reply.error() else {
        panic!("expected BadPayload, got {:?}", reply.error());
    };
    assert!(
        reason.ends_with("send such data as a `String` of JSON"),
        "{reason}"
    );
}

/// A reply whose `Serialize` panics with the renderer's words in its
/// message is logged (and answered) with them escaped.
#[tokio::test]
async fn a_reply_that_cannot_be_encoded_cannot_forge_the_log() {
    let (records, _one_at_a_time) = records().await;
    let mut raw = mail_renderer().await;
    let args = ipc_runtime::codec::encode_to_vec(&(FORGED,)).unwrap();
    raw.frame(&invoke_body(1, "mail:shout", &args)).await;
    let reply = raw.read().await.unwrap();
    assert_eq!(reply.kind, kind::REPLY_FAILED);
    let text = records.text();
    assert!(text.contains("cannot encode x\\n2099"), "{text}");
    assert_no_forged_line(&text);
}

/// The other way: what main's bytes make a reply's `Deserialize` say, and
/// main's notices, reach the renderer's log and errors escaped and cut.
#[tokio::test]
async fn main_s_words_reach_the_renderer_escaped_and_cut() {
    use ipc_suite::raw::{reply_ok_body, welcome_body, RawPeer};
    let (records, _one_at_a_time) = records().await;
    let (renderer_end, main_end) = tokio::net::UnixStream::pair().unwrap();
    let long = format!("{FORGED}{}", "y".repeat(100_000));
    let fake_main = tokio::spawn(async move {
        let mut main = RawPeer { stream: main_end };
        assert_eq!(main.read().await.unwrap().kind, kind::HELLO);
        main.frame(&welcome_body(1, "fake", 1 << 20, 8)).await;
        let error = WireError::Protocol {
            reason: FORGED.into(),
        };
        let mut notice = vec![kind::NOTICE];
        notice.extend_from_slice(&ipc_runtime::codec::encode_to_vec(&error).unwrap());
        main.frame(&notice).await;
        let call = main.read().await.unwrap();
        main.frame(&reply_ok_body(call.call_id(), &long)).await;
        main
    });
    let api = ipc_runtime::Connection::builder()
        .connect_as::<MailApi>(ipc_runtime::Transport::from_unix(renderer_end))
        .await
        .unwrap();
    let err = api.mail.lookup(1).await.unwrap_err();
    let ipc_runtime::IpcError::BadPayload { reason, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        !reason.contains('\n') && reason.chars().count() < 600,
        "{reason}"
    );
    let _main = fake_main.await.unwrap();
    assert_no_forged_line(&records.text());
}

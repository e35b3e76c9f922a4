//! Shared pieces of the workspace's end-to-end tests: a probe service whose
//! handler records what happened to it, helpers to start main and connect
//! renderers, and a raw client that writes hand-made frames the way a
//! hostile renderer would.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use ipc_runtime::{events, expose, service, transport, Caller, IpcError, Main};
use serde::{Deserialize, Serialize};

pub mod raw;

/// The typed error of [`Probe::divide`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MathError {
    /// Division by zero.
    #[error("cannot divide {0} by zero")]
    DivideByZero(i64),
}

/// What a handler saw of its caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The renderer id main assigned.
    pub id: u64,
    /// The label main assigned.
    pub label: String,
    /// The groups main has put the renderer in, sorted.
    pub groups: Vec<String>,
    /// The peer's process id, as the OS reported it to main.
    pub pid: Option<u32>,
    /// The peer's user id, as the OS reported it to main.
    pub uid: Option<u32>,
}

/// The service every end-to-end test talks to.
#[service(namespace = "probe")]
pub trait Probe {
    /// Returns its argument.
    async fn echo(&self, text: String) -> String;
    /// Adds two numbers.
    async fn add(&self, a: u64, b: u64) -> u64;
    /// Divides, with a typed error for division by zero.
    async fn divide(&self, a: i64, b: i64) -> Result<i64, MathError>;
    /// Sleeps `ms` milliseconds; the handler counts sleeps that were aborted.
    async fn sleep(&self, ms: u64) -> u64;
    /// Panics with `message`.
    async fn explode(&self, message: String) -> u32;
    /// Reports the caller as main recorded it.
    async fn whoami(&self) -> WhoAmI;
    /// Records `n` (fire and forget), to check ordering.
    #[ipc(send)]
    async fn record(&self, n: u64);
    /// The numbers recorded so far.
    async fn recorded(&self) -> Vec<u64>;
    /// The length of a byte buffer, on an explicitly named channel.
    #[ipc(rename = "byte-count")]
    async fn len(&self, data: Vec<u8>) -> u64;
    /// Waits until the test opens the gate ([`ProbeHandler::open_gate`]),
    /// then returns `len` bytes.
    async fn gated(&self, len: u32) -> Vec<u8>;
}

/// Events main pushes to probe renderers.
#[events(namespace = "probe")]
pub trait ProbeEvents {
    /// A counter.
    fn tick(&self, n: u64);
    /// A line of text.
    fn note(&self, text: String);
}

expose! {
    /// Everything the probe offers.
    pub struct ProbeApi {
        probe: Probe { echo, add, divide, sleep, explode, whoami, record, recorded, len, gated },
        events: ProbeEvents { tick, note },
    }

    /// A narrow API, like a settings window's: `echo` and `tick` only.
    pub struct NarrowApi {
        probe: Probe { echo },
        events: ProbeEvents { tick },
    }
}

/// The probe handler: plain state, observable by tests.
#[derive(Default)]
pub struct ProbeHandler {
    recorded: Mutex<Vec<u64>>,
    aborted: AtomicUsize,
    aborted_as_caller: AtomicUsize,
    started: AtomicUsize,
    gate: Gate,
}

/// The gate `gated` calls wait at: closed until the test opens it.
struct Gate {
    open: tokio::sync::Semaphore,
    waiting: AtomicUsize,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            open: tokio::sync::Semaphore::new(0),
            waiting: AtomicUsize::new(0),
        }
    }
}

impl ProbeHandler {
    /// How many `gated` calls are waiting at the gate.
    pub fn at_gate(&self) -> usize {
        self.gate.waiting.load(Ordering::SeqCst)
    }

    /// Lets `calls` of the `gated` calls (waiting, or to come) through.
    pub fn open_gate(&self, calls: usize) {
        self.gate.open.add_permits(calls);
    }

    /// How many `sleep` calls were aborted before finishing.
    pub fn aborted(&self) -> usize {
        self.aborted.load(Ordering::SeqCst)
    }

    /// How many of the aborted `sleep` calls saw their caller
    /// ([`Caller::current`]) while they were dropped.
    pub fn aborted_as_caller(&self) -> usize {
        self.aborted_as_caller.load(Ordering::SeqCst)
    }

    /// How many `sleep` calls have started.
    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// The numbers recorded so far.
    pub fn recorded_now(&self) -> Vec<u64> {
        self.recorded.lock().unwrap().clone()
    }
}

/// Counts an abort if dropped before `done` is set.
struct AbortWitness<'a> {
    handler: &'a ProbeHandler,
    done: bool,
}

impl Drop for AbortWitness<'_> {
    fn drop(&mut self) {
        if !self.done {
            if Caller::current().is_some() {
                self.handler
                    .aborted_as_caller
                    .fetch_add(1, Ordering::SeqCst);
            }
            self.handler.aborted.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Probe for ProbeHandler {
    async fn echo(&self, text: String) -> String {
        text
    }

    async fn add(&self, a: u64, b: u64) -> u64 {
        a.wrapping_add(b)
    }

    async fn divide(&self, a: i64, b: i64) -> Result<i64, MathError> {
        a.checked_div(b).ok_or(MathError::DivideByZero(a))
    }

    async fn sleep(&self, ms: u64) -> u64 {
        self.started.fetch_add(1, Ordering::SeqCst);
        let mut witness = AbortWitness {
            handler: self,
            done: false,
        };
        tokio::time::sleep(Duration::from_millis(ms)).await;
        witness.done = true;
        ms
    }

    async fn explode(&self, message: String) -> u32 {
        // Main polls a handler once inline and finishes it in a task if it
        // waits: `later:` panics in the task, anything else in that first
        // poll.
        if message.starts_with("later:") {
            tokio::task::yield_now().await;
        }
        panic!("{message}")
    }

    async fn whoami(&self) -> WhoAmI {
        let caller = Caller::current().expect("called by main");
        // Still the caller once the handler has waited (and main has moved
        // it from its first, inline poll to a task of its own).
        tokio::task::yield_now().await;
        let again = Caller::current().expect("still called by main");
        assert_eq!((caller.id(), caller.label()), (again.id(), again.label()));
        WhoAmI {
            id: caller.id().get(),
            label: caller.label().to_string(),
            groups: caller.groups(),
            pid: caller.peer().and_then(|p| p.pid),
            uid: caller.peer().and_then(|p| p.uid),
        }
    }

    async fn record(&self, n: u64) {
        // Every third message waits first: later ones, which main would
        // otherwise run inline, must queue behind it to keep the order.
        if n % 3 == 1 {
            tokio::task::yield_now().await;
        }
        self.recorded.lock().unwrap().push(n);
    }

    async fn recorded(&self) -> Vec<u64> {
        self.recorded_now()
    }

    async fn len(&self, data: Vec<u8>) -> u64 {
        data.len() as u64
    }

    async fn gated(&self, len: u32) -> Vec<u8> {
        /// Counts the call out of the gate however it leaves (let through,
        /// or aborted while waiting).
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.gate.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.gate.waiting);
        let permit = self.gate.open.acquire().await;
        permit.expect("the gate is never closed").forget();
        vec![0x5a; len as usize]
    }
}

/// Main serving one shared [`ProbeHandler`].
pub fn probe_main() -> (Main, Arc<ProbeHandler>) {
    probe_main_with(|b| b)
}

/// The builder of [`probe_main`], its contracts registered.
pub type ProbeBuilder = ipc_runtime::MainBuilder<(ProbeEventsContract, (ProbeContract, ()))>;

/// Like [`probe_main`], with extra builder settings.
pub fn probe_main_with(
    configure: impl FnOnce(ProbeBuilder) -> ProbeBuilder,
) -> (Main, Arc<ProbeHandler>) {
    let handler = Arc::new(ProbeHandler::default());
    let main = configure(
        Main::builder()
            .service(ProbeServer::from_arc(Arc::clone(&handler)))
            .events::<ProbeEventsContract>(),
    )
    .build()
    .expect("valid configuration");
    (main, handler)
}

/// A renderer connected to `main` over an in-memory pipe as [`ProbeApi`].
pub async fn connect_memory(main: &Main, label: &str) -> Result<ProbeApi, IpcError> {
    connect_memory_as::<ProbeApi>(main, label).await
}

/// A renderer connected to `main` over an in-memory pipe as API `A`.
pub async fn connect_memory_as<A: ipc_runtime::Api>(
    main: &Main,
    label: &str,
) -> Result<A, IpcError> {
    let (main_end, renderer_end) = transport::memory_pair(256 * 1024);
    let (accepted, api) = tokio::join!(
        main.accept::<A>(main_end, label),
        ipc_runtime::Connection::builder().connect_as::<A>(renderer_end)
    );
    accepted?;
    api
}

/// Waits (at most 5 s) for the call running as `call` to end, and checks
/// that it failed with `Disconnected`.
pub async fn ends_disconnected<T: std::fmt::Debug>(
    call: tokio::task::JoinHandle<Result<T, IpcError>>,
) {
    call_ends_disconnected(async { call.await.unwrap() }).await;
}

/// [`ends_disconnected`] for a call future the test holds itself.
pub async fn call_ends_disconnected<T: std::fmt::Debug>(
    call: impl std::future::Future<Output = Result<T, IpcError>>,
) {
    let result = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("the call ended promptly");
    assert!(
        matches!(result, Err(IpcError::Disconnected { .. })),
        "{result:?}"
    );
}

/// The next disconnection main reports on `gone` (from
/// [`Main::disconnections`]), waiting at most 5 s for it; `what` says
/// which one the test expects, for the failure message.
pub async fn next_disconnection(
    gone: &mut tokio::sync::broadcast::Receiver<ipc_runtime::Disconnection>,
    what: &str,
) -> ipc_runtime::Disconnection {
    tokio::time::timeout(Duration::from_secs(5), gone.recv())
        .await
        .unwrap_or_else(|_| panic!("within 5 s: {what}"))
        .expect("main's disconnections channel is open")
}

/// Polls `fut` once, on the calling task; `None` if it is still pending.
/// A call polled once has done what it does before waiting (taken a slot
/// or its place in line, queued its frame), with no sleep to hope so.
pub async fn poll_once<F: std::future::Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut *fut).poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

/// Runs `fut` to completion on the calling thread, with no tokio runtime
/// around it: what a GUI toolkit's own executor does on its thread.
/// Called from a plain thread (`std::thread::spawn`).
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark()
        }
    }
    assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "block_on is for threads outside any runtime"
    );
    let mut fut = std::pin::pin!(fut);
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Sets its flag when dropped: whether a handler's future (which holds
/// one) is gone.
pub struct DropFlag(pub Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Polls `check` every 10 ms until it holds or `within` passes.
pub async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs the test renderer `exe` with `args` to its end, checks that it
/// succeeded (its standard error is the message if not), and returns what
/// it printed, trimmed.
pub async fn renderer_output<I, S>(exe: &str, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let output = tokio::process::Command::new(exe)
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Listens to `tick` on `api`: the guard, and a receiver of the ticks.
pub async fn ticks_of(
    api: &ProbeApi,
) -> (
    ipc_runtime::Subscription,
    tokio::sync::mpsc::UnboundedReceiver<u64>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let guard = api
        .events
        .on_tick(move |n| {
            let _ = tx.send(n);
        })
        .await
        .unwrap();
    (guard, rx)
}

/// Runs `test` on a current-thread runtime in a thread of its own, with
/// `layer` (over a `tracing` registry) as that thread's subscriber, so
/// that every task the test starts logs to it. Returns what `test` gave,
/// or `None` if it had not finished within `limit` (the thread is then
/// left behind: main froze).
pub fn with_layer_on_own_thread<L, F, T>(
    layer: L,
    limit: Duration,
    test: impl FnOnce() -> F + Send + 'static,
) -> Option<T>
where
    L: tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
    F: std::future::Future<Output = T>,
    T: Send + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;

    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let subscriber = tracing_subscriber::registry().with(layer);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let _ = done.send(rt.block_on(test()));
        });
    });
    finished.recv_timeout(limit).ok()
}

/// A process a test's script started (not a child of the test): killed
/// (SIGKILL) when this is dropped, however the test ends.
pub struct KillOnDrop(pub i32);

impl KillOnDrop {
    /// The process whose pid the script writes to `path` (`echo $! >
    /// path`), waiting up to 5 s for the whole line: a process started in
    /// the background may connect before its pid is written.
    pub fn from_pid_file(path: &std::path::Path) -> Self {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let written = std::fs::read_to_string(path).unwrap_or_default();
            if written.ends_with('\n') {
                return KillOnDrop(written.trim().parse().expect("a pid"));
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no pid in {}",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is
        // one a test's own script started.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

/// A service whose one `send` handler never finishes: with main's send
/// budget full, main stops reading from the renderer, and its `send`s wait
/// for room in its own queue.
pub mod stuck {
    use ipc_runtime::{expose, service, Limits, Main};

    /// Takes messages it never finishes handling.
    #[service(namespace = "stuck")]
    pub trait Stuck {
        /// Never returns.
        #[ipc(send)]
        async fn put(&self, data: Vec<u8>);
        /// Answers 0: a call that main answers at once once it reads it.
        async fn ping(&self) -> u64;
    }

    expose! {
        /// All of [`Stuck`].
        pub struct StuckApi {
            stuck: Stuck { put, ping },
        }
    }

    struct Never;

    impl Stuck for Never {
        async fn put(&self, _data: Vec<u8>) {
            std::future::pending::<()>().await
        }

        async fn ping(&self) -> u64 {
            0
        }
    }

    /// A main whose `put` never finishes, which stops reading from a
    /// renderer once 1000 bytes of its messages wait.
    pub fn stuck_main() -> Main {
        let mut limits = Limits::default();
        limits.max_queued_send_bytes = 1000;
        Main::builder()
            .service(StuckServer::new(Never))
            .limits(limits)
            .build()
            .unwrap()
    }
}

//! The side-by-side IPC benchmark (issue 7). See `BENCHMARKS.md`.
//!
//! ```text
//! cargo bench --bench ipc                 # full run, about two minutes
//! cargo bench --bench ipc -- --quick      # smoke run, well under a minute
//! IPC_BENCH_QUICK=1 cargo bench --bench ipc
//! cargo bench --bench ipc -- --aggregate a.json b.json c.json [--svg out.svg]
//! ```
//!
//! The binary plays both parts. Started by cargo, it is **main**: it builds
//! a [`Main`] serving the `bench` service, starts raw echo servers (tokio
//! and blocking std) on Unix sockets in a private temporary directory, and
//! spawns itself as the **renderer** (`IPC_BENCH_ROLE=renderer`) with
//! [`Main::spawn_renderer`]. Renderers call main, so the timing loops run in
//! the renderer; it prints its samples as one JSON line on its standard
//! output, and main turns them into the table, `summary.json`,
//! `memory.json` and `ratio.svg` under `<target>/ipc-bench/`.
//!
//! Both processes run a multi-thread tokio runtime with two workers, and
//! the renderer's driver is a task on it (not the `block_on` thread). The
//! systems are interleaved: every round runs every system on every payload,
//! in an order rotated each round, after a discarded warm-up round, and in
//! two placements (both processes pinned to one CPU, and unpinned; see
//! [`Placement`]). A round during which other processes used the CPUs is
//! run again.

#[path = "ipc/alloc.rs"]
mod alloc;
#[path = "ipc/report.rs"]
mod report;

use std::{
    collections::HashMap,
    error::Error,
    io::{self, Write as _},
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering::SeqCst},
        Arc,
    },
    time::{Duration, Instant},
};

use futures_util::{stream::FuturesUnordered, StreamExt};
use ipc_runtime::{events, expose, service, Blob, Caller, Main, Target};
use report::{Cell, ChildReport, Config, MemSnapshot, MemoryReport, PerCall, RssPoint};
use serde_bytes::ByteBuf;

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter},
    net::UnixStream,
    sync::{Notify, Semaphore},
};

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

type BoxError = Box<dyn Error + Send + Sync>;

/// Payload sizes, in bytes.
const PAYLOADS: [usize; 4] = [8, 1024, 64 * 1024, 1024 * 1024];
/// Calls kept in flight for the throughput case.
const IN_FLIGHT: usize = 64;
/// Tokio worker threads, in both processes (see [`RENDERER_WORKERS_ENV`]).
const WORKERS: usize = 2;
/// Buffer size of the raw baselines' buffered readers and writers.
const IO_BUF: usize = 64 * 1024;
/// Events main may push beyond the renderer's last acknowledgement.
const EVENT_WINDOW: u64 = 512;
/// The renderer acknowledges events every this many.
const ACK_EVERY: u64 = 128;
/// Payload of the one-way cases.
const ONE_WAY_PAYLOAD: usize = 8;
/// Messages per `send` in the `ipc-send-batch` system.
const SEND_BATCH: u64 = 64;

/// How long both sides of the `ipc-spin` system spin before parking (the
/// low-latency option).
const SPIN: Duration = Duration::from_micros(50);
/// Payloads the `ipc-spin` system is measured at.
const SPIN_PAYLOADS: [usize; 2] = [8, 1024];
/// Payloads the `ipc-bytebuf` system is measured at (below
/// [`Blob::SHARE_MIN`] a `Blob` is copied just the same).
const BYTEBUF_PAYLOADS: [usize; 2] = [64 * 1024, 1024 * 1024];

const ROLE_ENV: &str = "IPC_BENCH_ROLE";
/// Tokio worker threads of the renderer's runtime, if not [`WORKERS`] (an
/// experiment knob: the published runs use the default).
const RENDERER_WORKERS_ENV: &str = "IPC_BENCH_RENDERER_WORKERS";
/// Main's socket and the renderer's token for the `ipc-spin` connection.
const SPIN_SOCKET_ENV: &str = "IPC_BENCH_SPIN_SOCKET";
const SPIN_TOKEN_ENV: &str = "IPC_BENCH_SPIN_TOKEN";
const DIR_ENV: &str = "IPC_BENCH_SOCKET_DIR";
const QUICK_ENV: &str = "IPC_BENCH_QUICK";
const ROUNDS_ENV: &str = "IPC_BENCH_ROUNDS";
/// A round during which other processes used more than this share of the
/// CPUs (in %, default 10) is discarded and run again.
const MAX_FOREIGN_ENV: &str = "IPC_BENCH_MAX_FOREIGN";
/// `1`: print the median of every block as it is measured.
const VERBOSE_ENV: &str = "IPC_BENCH_VERBOSE";
/// `one-cpu` or `free`: measure in that placement only (default: both).
const PLACEMENTS_ENV: &str = "IPC_BENCH_PLACEMENTS";
/// Comma-separated prefixes of `case/system/payload` (for example
/// `latency/ipc/1048576`): run only the matching blocks (for profiling).
const FILTER_ENV: &str = "IPC_BENCH_FILTER";
/// `1`: the raw baselines' sockets get the send buffer `ipc`'s do
/// (`ipc_runtime::transport::SEND_BUFFER`) instead of the system default,
/// to see what of a ratio that setting makes (see BENCHMARKS.md).
const RAW_SEND_BUFFER_ENV: &str = "IPC_BENCH_RAW_SEND_BUFFER";

/// Whether the switch `name` (one of the `IPC_BENCH_…` knobs) is set to `1`.
fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

/// Gives a raw baseline's socket `ipc`'s send buffer, if
/// [`RAW_SEND_BUFFER_ENV`] asks for it.
fn raw_send_buffer(socket: &impl std::os::fd::AsFd) -> io::Result<()> {
    if env_flag(RAW_SEND_BUFFER_ENV) {
        socket2::SockRef::from(socket).set_send_buffer_size(ipc_runtime::transport::SEND_BUFFER)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The contract.
// ---------------------------------------------------------------------------

/// What the benchmark asks main to do.
#[service(namespace = "bench")]
pub trait Bench {
    /// Returns its argument: the round trip being measured.
    async fn echo(&self, data: Blob) -> Blob;
    /// The same with `serde_bytes::ByteBuf`, which is copied out of every
    /// frame (the `ipc-bytebuf` system).
    async fn echo_vec(&self, data: ByteBuf) -> ByteBuf;
    /// A one-way message; main counts it.
    #[ipc(send)]
    async fn sink(&self, data: Blob);
    /// Many one-way messages in one: main counts each.
    #[ipc(send)]
    async fn sink_batch(&self, data: Vec<Blob>);
    /// Waits until main has counted `total` messages in all (`sink`,
    /// and each of a `sink_batch`).
    async fn sunk(&self, total: u64) -> u64;
    /// Pushes `tick` events numbered `first..first + count` of `size`
    /// bytes to the caller, at most [`EVENT_WINDOW`] beyond its last
    /// acknowledgement; returns how many pushes found the queue full.
    async fn push(&self, first: u64, count: u64, size: u32) -> u64;
    /// The renderer has received `received` events in all.
    #[ipc(send)]
    async fn ack(&self, received: u64);
    /// Switches main's allocation counting, optionally resets its peak
    /// RSS, and reports its memory.
    async fn memory(&self, counting: bool, reset_peak: bool) -> MemSnapshot;
}

/// What main pushes.
#[events(namespace = "bench")]
pub trait BenchEvents {
    /// One event of the one-way push case.
    fn tick(&self, data: Blob);
}

expose! {
    /// The benchmark renderer's API.
    pub struct BenchApi {
        bench: Bench { echo, echo_vec, sink, sink_batch, sunk, push, ack, memory },
        events: BenchEvents { tick },
    }
}

// ---------------------------------------------------------------------------
// Main's side of the contract.
// ---------------------------------------------------------------------------

struct BenchMain {
    main: Main,
    sunk: AtomicU64,
    sunk_goal: AtomicU64,
    sunk_reached: Notify,
    acked: AtomicU64,
    credit: Notify,
}

impl BenchMain {
    /// Counts `k` one-way messages handled, waking `sunk` at its goal.
    fn count_sunk(&self, k: u64) {
        let n = self.sunk.fetch_add(k, SeqCst) + k;
        if n >= self.sunk_goal.load(SeqCst) {
            self.sunk_reached.notify_waiters();
        }
    }
}

impl Bench for BenchMain {
    async fn echo(&self, data: Blob) -> Blob {
        data
    }

    async fn echo_vec(&self, data: ByteBuf) -> ByteBuf {
        data
    }

    async fn sink(&self, _data: Blob) {
        self.count_sunk(1);
    }

    async fn sink_batch(&self, data: Vec<Blob>) {
        self.count_sunk(data.len() as u64);
    }

    async fn sunk(&self, total: u64) -> u64 {
        self.sunk_goal.store(total, SeqCst);
        loop {
            let reached = self.sunk_reached.notified();
            tokio::pin!(reached);
            reached.as_mut().enable();
            let n = self.sunk.load(SeqCst);
            if n >= total {
                self.sunk_goal.store(u64::MAX, SeqCst);
                return n;
            }
            reached.await;
        }
    }

    async fn push(&self, first: u64, count: u64, size: u32) -> u64 {
        let Some(caller) = Caller::current() else {
            return 0;
        };
        let emitter = BenchEventsEmitter::new(&self.main, Target::Renderer(caller.id()));
        let data = Blob::from(vec![0x5a; size as usize]);
        let end = first + count;
        let mut next = first;
        let mut full = 0;
        while next < end {
            let credit = self.credit.notified();
            tokio::pin!(credit);
            credit.as_mut().enable();
            let limit = (self.acked.load(SeqCst) + EVENT_WINDOW).min(end);
            if next >= limit {
                credit.await;
                continue;
            }
            while next < limit {
                if emitter.tick(data.clone()) == 1 {
                    next += 1;
                } else {
                    // The renderer's queue is full: let the writer drain it.
                    full += 1;
                    tokio::task::yield_now().await;
                    break;
                }
            }
        }
        full
    }

    async fn ack(&self, received: u64) {
        self.acked.fetch_max(received, SeqCst);
        self.credit.notify_waiters();
    }

    async fn memory(&self, counting: bool, reset_peak: bool) -> MemSnapshot {
        alloc::set_counting(counting);
        if reset_peak {
            alloc::reset_peak_rss();
        }
        snapshot()
    }
}

fn snapshot() -> MemSnapshot {
    let c = alloc::counters();
    let (vm_hwm_kib, vm_rss_kib) = alloc::rss_kib();
    MemSnapshot {
        alloc_bytes: c.bytes,
        allocs: c.count,
        live_bytes: c.live,
        vm_hwm_kib,
        vm_rss_kib,
    }
}

// ---------------------------------------------------------------------------
// Raw baselines: u32 big-endian length prefix, then the payload.
// ---------------------------------------------------------------------------

fn frame_of(payload: usize) -> Vec<u8> {
    let mut frame = Vec::with_capacity(4 + payload);
    frame.extend_from_slice(&(payload as u32).to_be_bytes());
    frame.resize(4 + payload, 0xa5);
    frame
}

async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, body: &mut Vec<u8>) -> io::Result<usize> {
    let len = r.read_u32().await? as usize;
    body.resize(len, 0);
    r.read_exact(body).await?;
    Ok(len)
}

fn eof_is_end(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(()),
        other => other,
    }
}

/// One raw tokio connection on main's side. The first byte picks the mode:
/// `E` echo (flushing whenever no further request is buffered, so pipelined
/// replies are batched), `U` one-way up (count `n`, then `n` frames, then a
/// one-byte acknowledgement), `D` one-way down (`n` and a size, answered
/// with `n` frames).
async fn raw_tokio_serve(mut stream: UnixStream) -> io::Result<()> {
    let mode = stream.read_u8().await?;
    let (rd, wr) = stream.into_split();
    let mut r = BufReader::with_capacity(IO_BUF, rd);
    let mut w = BufWriter::with_capacity(IO_BUF, wr);
    let mut body = Vec::new();
    eof_is_end(
        async {
            loop {
                match mode {
                    b'E' => {
                        let len = read_frame(&mut r, &mut body).await?;
                        w.write_all(&(len as u32).to_be_bytes()).await?;
                        w.write_all(&body).await?;
                        if r.buffer().is_empty() {
                            w.flush().await?;
                        }
                    }
                    b'U' => {
                        let n = r.read_u32().await?;
                        for _ in 0..n {
                            read_frame(&mut r, &mut body).await?;
                        }
                        w.write_u8(1).await?;
                        w.flush().await?;
                    }
                    b'D' => {
                        let n = r.read_u32().await?;
                        let frame = frame_of(r.read_u32().await? as usize);
                        for _ in 0..n {
                            w.write_all(&frame).await?;
                        }
                        w.flush().await?;
                    }
                    _ => return Err(io::Error::other("unknown raw mode")),
                }
            }
        }
        .await,
    )
}

fn std_read_frame(r: &mut impl io::Read, body: &mut Vec<u8>) -> io::Result<usize> {
    let mut header = [0u8; 4];
    r.read_exact(&mut header)?;
    let len = u32::from_be_bytes(header) as usize;
    body.resize(len, 0);
    r.read_exact(body)?;
    Ok(len)
}

/// One blocking echo connection on main's side, on its own thread.
fn raw_std_serve(stream: std::os::unix::net::UnixStream) -> io::Result<()> {
    let mut r = io::BufReader::with_capacity(IO_BUF, stream.try_clone()?);
    let mut w = io::BufWriter::with_capacity(IO_BUF, stream);
    let mut body = Vec::new();
    eof_is_end((|| loop {
        let len = std_read_frame(&mut r, &mut body)?;
        w.write_all(&(len as u32).to_be_bytes())?;
        w.write_all(&body)?;
        if r.buffer().is_empty() {
            w.flush()?;
        }
    })())
}

// ---------------------------------------------------------------------------
// Main (the parent process).
// ---------------------------------------------------------------------------

fn out_dir() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                std::env::current_dir().unwrap_or_default().join(dir)
            }
        }
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
    };
    target.join("ipc-bench")
}

async fn run_main(quick: bool) -> Result<(), BoxError> {
    let load_before = report::loadavg();
    let dir = tempfile::tempdir()?;
    let tokio_listener = tokio::net::UnixListener::bind(dir.path().join("raw-tokio.sock"))?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = tokio_listener.accept().await {
            if let Err(e) = raw_send_buffer(&stream) {
                eprintln!("raw tokio server: {e}");
            }
            tokio::spawn(async move {
                if let Err(e) = raw_tokio_serve(stream).await {
                    eprintln!("raw tokio server: {e}");
                }
            });
        }
    });
    let std_listener = std::os::unix::net::UnixListener::bind(dir.path().join("raw-std.sock"))?;
    std::thread::spawn(move || {
        for stream in std_listener.incoming().flatten() {
            if let Err(e) = raw_send_buffer(&stream) {
                eprintln!("raw std server: {e}");
            }
            std::thread::spawn(move || {
                if let Err(e) = raw_std_serve(stream) {
                    eprintln!("raw std server: {e}");
                }
            });
        }
    });

    let bench_main = |builder: ipc_runtime::MainBuilder| -> Result<Main, ipc_runtime::IpcError> {
        let handler = BenchMain {
            main: builder.main(),
            sunk: AtomicU64::new(0),
            sunk_goal: AtomicU64::new(u64::MAX),
            sunk_reached: Notify::new(),
            acked: AtomicU64::new(0),
            credit: Notify::new(),
        };
        builder
            .service(BenchServer::new(handler))
            .events::<BenchEventsContract>()
            .build()
    };
    let main = bench_main(Main::builder())?;
    // A second main, with the low-latency option, that the renderer
    // reaches over a Unix socket for the `ipc-spin` system.
    let spin_main = bench_main(Main::builder().spin_before_parking(SPIN))?;
    let spin_endpoint = spin_main.listen_unix_in(dir.path())?;
    let spin_token = spin_endpoint.issue_token::<BenchApi>("bench-spin")?;

    let mut command = Command::new(std::env::current_exe()?);
    command
        .env(ROLE_ENV, "renderer")
        .env(DIR_ENV, dir.path())
        .env(QUICK_ENV, if quick { "1" } else { "0" })
        .env(SPIN_SOCKET_ENV, spin_endpoint.path())
        .env(SPIN_TOKEN_ENV, &spin_token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut renderer = main.spawn_renderer::<BenchApi>(command, "bench").await?;
    let mut stdout = renderer
        .child_mut()
        .stdout
        .take()
        .ok_or("the renderer's standard output is not piped")?;
    let output = tokio::spawn(async move {
        let mut text = String::new();
        stdout.read_to_string(&mut text).await.map(|_| text)
    });
    let status = renderer.wait().await?;
    let output = output.await??;
    if !status.success() {
        return Err(format!("the renderer failed ({status})").into());
    }
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .ok_or("the renderer printed no result")?;
    let child: ChildReport = serde_json::from_str(line)?;

    let machine = report::Machine::here(WORKERS, renderer_workers(), load_before);
    let rows = report::rows(&child);
    println!();
    println!("{}", report::table(&rows));
    println!("{}", report::targets_text(std::slice::from_ref(&rows)));
    println!("{}", report::memory_text(&child.memory));
    println!(
        "event pushes retried because the renderer's queue was full: {}",
        child.event_queue_full
    );
    let percents = |v: &[f64]| {
        v.iter()
            .map(|p| format!("{p:.0}%"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "rounds kept: {} (other processes' CPU share: {}); discarded as too noisy (over {}%): {} ({})",
        child.kept_foreign.len(),
        percents(&child.kept_foreign),
        child.config.max_foreign_percent,
        child.discarded_foreign.len(),
        percents(&child.discarded_foreign)
    );
    let workers = match machine.renderer_tokio_workers {
        Some(r) if r != machine.tokio_workers => {
            format!(
                "{} tokio workers in main, {r} in the renderer",
                machine.tokio_workers
            )
        }
        _ => format!("{} tokio workers per process", machine.tokio_workers),
    };
    println!(
        "{} CPUs, kernel {}, {workers}; load average {} before, {} after",
        machine.cpus, machine.kernel, machine.loadavg_before, machine.loadavg_after
    );
    if env_flag(RAW_SEND_BUFFER_ENV) {
        println!(
            "{RAW_SEND_BUFFER_ENV}=1: the raw baselines' sockets asked for ipc's send buffer ({} KiB)",
            ipc_runtime::transport::SEND_BUFFER / 1024
        );
    }

    let out = out_dir();
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&rows)?,
    )?;
    let details = serde_json::json!({
        "machine": machine,
        "config": child.config,
        "memory": child.memory,
        "event_queue_full": child.event_queue_full,
        "rounds_kept_foreign_cpu_percent": child.kept_foreign,
        "rounds_discarded_foreign_cpu_percent": child.discarded_foreign,
    });
    std::fs::write(
        out.join("memory.json"),
        serde_json::to_string_pretty(&details)?,
    )?;
    std::fs::write(out.join("ratio.svg"), report::svg(&[rows]))?;
    println!(
        "wrote {}/{{summary.json, memory.json, ratio.svg}}",
        out.display()
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// The renderer (the child process): every timing loop.
// ---------------------------------------------------------------------------

/// The blocking std connection, moved to a blocking thread for each block.
struct StdConn {
    reader: io::BufReader<std::os::unix::net::UnixStream>,
    writer: std::os::unix::net::UnixStream,
}

/// Counts the `tick` events received and sends the acknowledgements.
struct Ticks {
    received: Arc<AtomicU64>,
    goal: Arc<AtomicU64>,
    reached: Arc<Notify>,
}

struct Renderer {
    api: BenchApi,
    /// The connection with the low-latency option, to the second main.
    spin_api: BenchApi,
    config: Config,
    /// Tokio echo connection for one call in flight.
    lat: BufReader<UnixStream>,
    /// Tokio echo connection for the pipelined case (split per block).
    pipe: Option<UnixStream>,
    up: UnixStream,
    down: BufReader<UnixStream>,
    std: Option<StdConn>,
    ticks: Ticks,
    _subscription: ipc_runtime::Subscription,
    sunk_total: u64,
    body: Vec<u8>,
    /// Seconds per call (or message) last measured, by case, system and
    /// payload: sizes the next block to its time budget.
    pace: HashMap<(&'static str, String, usize), f64>,
    /// The placement the blocks now run in (see [`Placement`]).
    placement: Placement,
    /// Pushes main found the renderer's queue full for (and retried).
    event_queue_full: u64,
    /// Calls (or messages) made, by case and system, to normalise
    /// profiles (printed when `IPC_BENCH_FILTER` is set).
    made: HashMap<String, u64>,
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn raw_connect(dir: &Path, mode: u8) -> io::Result<UnixStream> {
    let mut stream = UnixStream::connect(dir.join("raw-tokio.sock")).await?;
    raw_send_buffer(&stream)?;
    stream.write_u8(mode).await?;
    Ok(stream)
}

impl Renderer {
    async fn connect(config: Config) -> Result<Self, BoxError> {
        let api = BenchApi::connect_inherited().await?;
        let spin_api = ipc_runtime::Connection::builder()
            .spin_before_parking(SPIN)
            .connect_unix_as::<BenchApi>(
                std::env::var(SPIN_SOCKET_ENV)?,
                &std::env::var(SPIN_TOKEN_ENV)?,
            )
            .await?;
        let dir = PathBuf::from(std::env::var(DIR_ENV)?);
        let std_stream = std::os::unix::net::UnixStream::connect(dir.join("raw-std.sock"))?;
        raw_send_buffer(&std_stream)?;
        let std = StdConn {
            reader: io::BufReader::with_capacity(IO_BUF, std_stream.try_clone()?),
            writer: std_stream,
        };

        let received = Arc::new(AtomicU64::new(0));
        let goal = Arc::new(AtomicU64::new(u64::MAX));
        let reached = Arc::new(Notify::new());
        let (ack_tx, mut ack_rx) = tokio::sync::mpsc::unbounded_channel();
        let bench = api.bench.clone();
        tokio::spawn(async move {
            while let Some(n) = ack_rx.recv().await {
                if bench.ack(n).await.is_err() {
                    break;
                }
            }
        });
        let subscription = {
            let (received, goal, reached) = (received.clone(), goal.clone(), reached.clone());
            api.events
                .on_tick(move |data: Blob| {
                    debug_assert_eq!(data.len(), ONE_WAY_PAYLOAD);
                    let n = received.fetch_add(1, SeqCst) + 1;
                    if n % ACK_EVERY == 0 {
                        let _ = ack_tx.send(n);
                    }
                    if n >= goal.load(SeqCst) {
                        reached.notify_one();
                    }
                })
                .await?
        };

        Ok(Renderer {
            api,
            spin_api,
            config,
            lat: BufReader::with_capacity(IO_BUF, raw_connect(&dir, b'E').await?),
            pipe: Some(raw_connect(&dir, b'E').await?),
            up: raw_connect(&dir, b'U').await?,
            down: BufReader::with_capacity(IO_BUF, raw_connect(&dir, b'D').await?),
            std: Some(std),
            ticks: Ticks {
                received,
                goal,
                reached,
            },
            _subscription: subscription,
            sunk_total: 0,
            body: Vec::new(),
            pace: HashMap::new(),
            placement: Placement::Free,
            event_queue_full: 0,
            made: HashMap::new(),
        })
    }

    /// How many calls (or messages) fill `budget_ms` at this system's last
    /// measured pace; `default` before it was measured (the warm-up round).
    fn units(
        &self,
        case: &'static str,
        system: &str,
        payload: usize,
        budget_ms: f64,
        (default, min, max): (usize, usize, usize),
    ) -> usize {
        let key = format!("{}/{system}", self.placement.name());
        match self.pace.get(&(case, key, payload)) {
            Some(secs) => ((budget_ms / 1e3 / secs) as usize).clamp(min, max),
            None => default,
        }
    }

    fn set_pace(&mut self, case: &'static str, system: &str, payload: usize, secs: f64) {
        let key = format!("{}/{system}", self.placement.name());
        self.pace.insert((case, key, payload), secs);
    }

    fn count(&mut self, case: &str, system: &str, payload: usize, n: usize) {
        *self
            .made
            .entry(format!(
                "{}/{case}/{system}/{payload}",
                self.placement.name()
            ))
            .or_default() += n as u64;
    }

    /// One call in flight: the latency of each of `calls` round trips, in
    /// microseconds, after `skip` untimed ones.
    async fn latency(&mut self, system: &str, payload: usize) -> Result<Vec<f64>, BoxError> {
        let calls = self.units(
            "latency",
            system,
            payload,
            self.config.latency_block_ms,
            (20, 5, 100_000),
        );
        let skip = 2;
        let mut out = Vec::with_capacity(calls);
        match system {
            "ipc" | "ipc-spin" => {
                let api = if system == "ipc" {
                    &self.api
                } else {
                    &self.spin_api
                };
                let echo = |data| api.bench.echo(data);
                out = ipc_latency(echo, Blob::from(vec![0xa5; payload]), calls, skip).await?;
            }
            "ipc-bytebuf" => {
                let echo = |data| self.api.bench.echo_vec(data);
                out = ipc_latency(echo, ByteBuf::from(vec![0xa5; payload]), calls, skip).await?;
            }
            "raw-tokio" => {
                let frame = frame_of(payload);
                for i in 0..calls + skip {
                    let start = Instant::now();
                    self.lat.get_mut().write_all(&frame).await?;
                    let len = read_frame(&mut self.lat, &mut self.body).await?;
                    let elapsed = start.elapsed();
                    assert_eq!(len, payload, "echoed payload");
                    if i >= skip {
                        out.push(micros(elapsed));
                    }
                }
            }
            "raw-std" => {
                let mut conn = self.std.take().ok_or("std connection in use")?;
                let (conn, result) = tokio::task::spawn_blocking(move || {
                    let result = (|| {
                        let frame = frame_of(payload);
                        let mut body = Vec::new();
                        let mut out = Vec::with_capacity(calls);
                        for i in 0..calls + skip {
                            let start = Instant::now();
                            conn.writer.write_all(&frame)?;
                            let len = std_read_frame(&mut conn.reader, &mut body)?;
                            let elapsed = start.elapsed();
                            assert_eq!(len, payload, "echoed payload");
                            if i >= skip {
                                out.push(micros(elapsed));
                            }
                        }
                        Ok::<_, io::Error>(out)
                    })();
                    (conn, result)
                })
                .await?;
                self.std = Some(conn);
                out = result?;
            }
            other => return Err(format!("unknown system {other}").into()),
        }
        self.count("latency", system, payload, calls + skip);
        let mean = out.iter().sum::<f64>() / out.len() as f64 / 1e6;
        self.set_pace("latency", system, payload, mean);
        Ok(out)
    }

    /// [`IN_FLIGHT`] calls in flight, replaced as they complete: calls per
    /// second over each of the timed windows (see [`Windows`]), in the
    /// steady state (after the ramp-up, before the drain).
    async fn throughput(&mut self, system: &str, payload: usize) -> Result<Vec<f64>, BoxError> {
        let size = self.units(
            "throughput",
            system,
            payload,
            self.config.window_ms,
            (64, 16, 1 << 22),
        );
        let windows = Windows::new(size, self.config.windows);
        let rates = match system {
            "ipc" => {
                let echo = |data| self.api.bench.echo(data);
                ipc_throughput(echo, Blob::from, Next::Clone, payload, windows).await?
            }
            "ipc-spin" => {
                let echo = |data| self.spin_api.bench.echo(data);
                ipc_throughput(echo, Blob::from, Next::Clone, payload, windows).await?
            }
            "ipc-bytebuf" => {
                let echo = |data| self.api.bench.echo_vec(data);
                ipc_throughput(echo, ByteBuf::from, Next::Reply, payload, windows).await?
            }
            "raw-tokio" => {
                let stream = self.pipe.take().ok_or("pipelined connection in use")?;
                let (stream, rates) = raw_throughput(stream, payload, windows).await?;
                self.pipe = Some(stream);
                rates
            }
            other => return Err(format!("unknown system {other}").into()),
        };
        self.count("throughput", system, payload, windows.calls());
        self.set_pace("throughput", system, payload, 1.0 / median(&rates));
        Ok(rates)
    }

    /// One way, [`ONE_WAY_PAYLOAD`] bytes: messages per second from the
    /// first send until the receiver has the last one.
    async fn one_way(&mut self, system: &str) -> Result<f64, BoxError> {
        let mut n = self.units(
            "one-way",
            system,
            ONE_WAY_PAYLOAD,
            self.config.one_way_ms,
            (10_000, 1_000, 50_000_000),
        ) as u64;
        let start = Instant::now();
        match system {
            "ipc-send" => {
                // Like the raw stream's, the message is copied from bytes
                // at hand (a blob this small is held inline: no allocation).
                let bytes = [0xa5; ONE_WAY_PAYLOAD];
                for _ in 0..n {
                    self.api.bench.sink(Blob::copy_from_slice(&bytes)).await?;
                }
                self.sunk_total += n;
                let sunk = self.api.bench.sunk(self.sunk_total).await?;
                assert_eq!(sunk, self.sunk_total, "main handled every send");
            }
            "ipc-send-batch" => {
                // What a user who needs the rate does: collect messages
                // and send them together (one frame, one handler call).
                let bytes = [0xa5; ONE_WAY_PAYLOAD];
                let batches = n.div_ceil(SEND_BATCH);
                for _ in 0..batches {
                    let batch = (0..SEND_BATCH)
                        .map(|_| Blob::copy_from_slice(&bytes))
                        .collect();
                    self.api.bench.sink_batch(batch).await?;
                }
                n = batches * SEND_BATCH;
                self.sunk_total += n;
                let sunk = self.api.bench.sunk(self.sunk_total).await?;
                assert_eq!(sunk, self.sunk_total, "main counted every message");
            }
            "raw-send" => {
                let frame = frame_of(ONE_WAY_PAYLOAD);
                let mut w = BufWriter::with_capacity(IO_BUF, &mut self.up);
                w.write_u32(n as u32).await?;
                for _ in 0..n {
                    w.write_all(&frame).await?;
                }
                w.flush().await?;
                drop(w);
                self.up.read_u8().await?;
            }
            "ipc-event" => {
                let first = self.ticks.received.load(SeqCst);
                let goal = first + n;
                self.ticks.goal.store(goal, SeqCst);
                let wait = async {
                    while self.ticks.received.load(SeqCst) < goal {
                        self.ticks.reached.notified().await;
                    }
                };
                let (full, ()) =
                    tokio::join!(self.api.bench.push(first, n, ONE_WAY_PAYLOAD as u32), wait);
                self.event_queue_full += full?;
                self.ticks.goal.store(u64::MAX, SeqCst);
            }
            "raw-push" => {
                let stream = self.down.get_mut();
                stream.write_u32(n as u32).await?;
                stream.write_u32(ONE_WAY_PAYLOAD as u32).await?;
                for _ in 0..n {
                    read_frame(&mut self.down, &mut self.body).await?;
                }
            }
            other => return Err(format!("unknown system {other}").into()),
        }
        let rate = n as f64 / start.elapsed().as_secs_f64();
        self.count("one-way", system, ONE_WAY_PAYLOAD, n as usize);
        self.set_pace("one-way", system, ONE_WAY_PAYLOAD, 1.0 / rate);
        Ok(rate)
    }
}

/// Times `calls` round trips of `echo`, one at a time, after `skip`
/// untimed ones; each call sends the reply of the last.
async fn ipc_latency<T, F, E>(
    echo: impl Fn(T) -> F,
    mut data: T,
    calls: usize,
    skip: usize,
) -> Result<Vec<f64>, BoxError>
where
    T: AsRef<[u8]>,
    F: std::future::Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    let payload = data.as_ref().len();
    let mut out = Vec::with_capacity(calls);
    for i in 0..calls + skip {
        let start = Instant::now();
        data = echo(data).await.map_err(Into::into)?;
        let elapsed = start.elapsed();
        assert_eq!(data.as_ref().len(), payload, "echoed payload");
        if i >= skip {
            out.push(micros(elapsed));
        }
    }
    Ok(out)
}

/// How a block of [`IN_FLIGHT`] calls in flight is timed: `timed` windows
/// of `size` completions each, after `ramp` windows of ramp-up.
#[derive(Clone, Copy, Debug)]
struct Windows {
    size: usize,
    ramp: usize,
    timed: usize,
}

impl Windows {
    /// `timed` windows of `size` completions, after enough ramp-up that
    /// every in-flight slot has completed at least twice. (A window is
    /// sized by time: at 1 MiB, 15 ms hold about 60 calls, fewer than are
    /// in flight, so one window of ramp-up started the timing before every
    /// slot had completed once.)
    fn new(size: usize, timed: usize) -> Self {
        Windows {
            size,
            ramp: (2 * IN_FLIGHT).div_ceil(size).max(1),
            timed,
        }
    }

    /// Completions until the last timed window closes.
    fn measured(&self) -> usize {
        self.size * (self.ramp + self.timed)
    }

    /// Calls the block makes, the drain included.
    fn calls(&self) -> usize {
        self.measured() + IN_FLIGHT
    }
}

/// Calls per second over each timed window of a block, fed one
/// completion at a time.
struct Rates {
    windows: Windows,
    done: usize,
    mark: Instant,
    rates: Vec<f64>,
}

impl Rates {
    fn new(windows: Windows) -> Self {
        Rates {
            windows,
            done: 0,
            mark: Instant::now(),
            rates: Vec::with_capacity(windows.timed),
        }
    }

    fn completed(&mut self) {
        self.done += 1;
        let w = self.windows;
        if self.done % w.size == 0 && self.done <= w.measured() {
            let now = Instant::now();
            if self.done > w.size * w.ramp {
                let elapsed = (now - self.mark).as_secs_f64();
                self.rates.push(w.size as f64 / elapsed);
            }
            self.mark = now;
        }
    }
}

/// What each new call of a throughput block sends.
#[derive(Clone, Copy, PartialEq)]
enum Next {
    /// A clone of one value made before the block, as the raw writer
    /// re-sends one frame buffer; for a `Blob` that is a reference count,
    /// and the reply is dropped once checked.
    Clone,
    /// The reply of the call that just completed (for types whose clone
    /// would copy the payload).
    Reply,
}

/// Keeps [`IN_FLIGHT`] calls of `echo` in flight, with payloads `make`
/// builds, each new call sending what `next` says.
async fn ipc_throughput<T, F, E>(
    echo: impl Fn(T) -> F,
    make: impl Fn(Vec<u8>) -> T,
    next: Next,
    payload: usize,
    windows: Windows,
) -> Result<Vec<f64>, BoxError>
where
    T: AsRef<[u8]> + Clone,
    F: std::future::Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    let total = windows.calls();
    let one = (next == Next::Clone).then(|| make(vec![0xa5; payload]));
    let first = || match &one {
        Some(one) => one.clone(),
        None => make(vec![0xa5; payload]),
    };
    let mut calls = FuturesUnordered::new();
    for _ in 0..IN_FLIGHT {
        calls.push(echo(first()));
    }
    let mut issued = IN_FLIGHT;
    let mut rates = Rates::new(windows);
    while let Some(reply) = calls.next().await {
        let data = reply.map_err(Into::into)?;
        assert_eq!(data.as_ref().len(), payload, "echoed payload");
        rates.completed();
        if issued < total {
            let data = match &one {
                Some(one) => one.clone(),
                None => data,
            };
            calls.push(echo(data));
            issued += 1;
        }
    }
    Ok(rates.rates)
}

/// The raw pipelined baseline: a writer task keeps [`IN_FLIGHT`] requests
/// outstanding (batching its writes while it has credit), and this task
/// reads the replies.
async fn raw_throughput(
    stream: UnixStream,
    payload: usize,
    windows: Windows,
) -> Result<(UnixStream, Vec<f64>), BoxError> {
    let total = windows.calls();
    let (rd, wr) = stream.into_split();
    let credit = Arc::new(Semaphore::new(IN_FLIGHT));
    let writer = tokio::spawn({
        let credit = Arc::clone(&credit);
        let frame = frame_of(payload);
        async move {
            let mut w = BufWriter::with_capacity(IO_BUF, wr);
            for _ in 0..total {
                match credit.try_acquire() {
                    Ok(permit) => permit.forget(),
                    Err(_) => {
                        w.flush().await?;
                        credit.acquire().await.expect("never closed").forget();
                    }
                }
                w.write_all(&frame).await?;
            }
            w.flush().await?;
            Ok::<_, io::Error>(w.into_inner())
        }
    });
    let mut r = BufReader::with_capacity(IO_BUF, rd);
    let mut body = Vec::new();
    let mut rates = Rates::new(windows);
    for _ in 0..total {
        let len = read_frame(&mut r, &mut body).await?;
        assert_eq!(len, payload, "echoed payload");
        credit.add_permits(1);
        rates.completed();
    }
    let wr = writer.await??;
    let stream = r.into_inner().reunite(wr)?;
    Ok((stream, rates.rates))
}

/// Whether `system` is measured at `payload` bytes.
fn measured_at(system: &str, payload: usize) -> bool {
    match system {
        "ipc-spin" => SPIN_PAYLOADS.contains(&payload),
        "ipc-bytebuf" => BYTEBUF_PAYLOADS.contains(&payload),
        _ => true,
    }
}

fn median(v: &[f64]) -> f64 {
    report::median(v)
}

/// CPU time of the whole machine and of this benchmark's two processes, in
/// clock ticks (`/proc/stat`, `/proc/PID/stat`).
struct CpuTimes {
    busy: u64,
    total: u64,
    ours: u64,
}

impl CpuTimes {
    fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let cpu: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        let at = |i: usize| cpu.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal
        let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
        let process = |pid: u32| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let fields: Vec<u64> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest)
                .unwrap_or_default()
                .split_whitespace()
                .map(|v| v.parse().unwrap_or(0))
                .collect();
            // utime and stime: fields 14 and 15, counting from the pid.
            fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0)
        };
        CpuTimes {
            busy,
            total: busy + at(3) + at(4),
            ours: process(std::process::id()) + process(std::os::unix::process::parent_id()),
        }
    }

    /// The share of all CPUs' time that other processes used since `self`.
    fn foreign_percent(&self, later: &CpuTimes) -> f64 {
        let total = later.total.saturating_sub(self.total).max(1);
        let busy = later.busy.saturating_sub(self.busy);
        let ours = later.ours.saturating_sub(self.ours);
        100.0 * busy.saturating_sub(ours) as f64 / total as f64
    }
}

/// `items` rotated left by `by`.
fn rotated<T: Copy>(items: &[T], by: usize) -> Vec<T> {
    let mut v = items.to_vec();
    let by = by % v.len();
    v.rotate_left(by);
    v
}

async fn run_renderer(config: Config) -> Result<ChildReport, BoxError> {
    let filter: Vec<String> = std::env::var(FILTER_ENV)
        .unwrap_or_default()
        .split(',')
        .filter(|f| !f.is_empty())
        .map(String::from)
        .collect();
    let wanted = |case: &str, system: &str, payload: usize| {
        let id = format!("{case}/{system}/{payload}");
        filter.is_empty() || filter.iter().any(|f| id.starts_with(f.as_str()))
    };
    let verbose = env_flag(VERBOSE_ENV);
    let placements: Vec<Placement> = match std::env::var(PLACEMENTS_ENV).as_deref() {
        Ok("one-cpu") => vec![Placement::OneCpu],
        Ok("free") => vec![Placement::Free],
        _ => Placement::ALL.to_vec(),
    };
    let all_cpus = allowed_cpus()?;
    let mut r = Renderer::connect(config.clone()).await?;
    let mut cells: Vec<Cell> = Vec::new();
    let mut cell = |placement: Placement, case: &str, system: &str, payload: usize| -> usize {
        match cells.iter().position(|c| {
            c.placement == placement.name()
                && c.case == case
                && c.system == system
                && c.payload == payload
        }) {
            Some(i) => i,
            None => {
                cells.push(Cell {
                    placement: placement.name().to_string(),
                    case: case.to_string(),
                    system: system.to_string(),
                    payload,
                    samples: Vec::new(),
                    round_medians: Vec::new(),
                });
                cells.len() - 1
            }
        }
    };
    let mut results: Vec<(usize, Vec<f64>)> = Vec::new();
    let started = Instant::now();
    let mut kept_foreign = Vec::new();
    let mut discarded_foreign = Vec::new();
    let mut attempt = 0;
    while kept_foreign.len() < config.rounds {
        let warm_up = attempt == 0;
        let round = attempt;
        attempt += 1;
        let cpu = CpuTimes::now();
        let mut this_round = Vec::new();
        for placement in rotated(&placements, round) {
            place(placement, &all_cpus)?;
            // The runtime looks up the CPUs it may use at most every
            // 100 ms (to decide whether to spin and how to write replies):
            // let both processes see the new placement before timing.
            tokio::time::sleep(CPUS_RECHECKED).await;
            r.placement = placement;
            let p = placement.name();
            for payload in PAYLOADS {
                for system in rotated(
                    &["ipc", "raw-tokio", "raw-std", "ipc-spin", "ipc-bytebuf"],
                    round,
                ) {
                    if !measured_at(system, payload) {
                        continue;
                    }
                    if !wanted("latency", system, payload) {
                        continue;
                    }
                    let samples = r.latency(system, payload).await?;
                    if verbose {
                        eprintln!(
                            "  {p}/latency/{system}/{payload}: {:.1} µs",
                            median(&samples)
                        );
                    }
                    this_round.push((cell(placement, "latency", system, payload), samples));
                }
                for system in rotated(&["ipc", "raw-tokio", "ipc-spin", "ipc-bytebuf"], round) {
                    if !measured_at(system, payload) {
                        continue;
                    }
                    if !wanted("throughput", system, payload) {
                        continue;
                    }
                    let samples = r.throughput(system, payload).await?;
                    if verbose {
                        eprintln!(
                            "  {p}/throughput/{system}/{payload}: {:.0} calls/s",
                            median(&samples)
                        );
                    }
                    this_round.push((cell(placement, "throughput", system, payload), samples));
                }
            }
            for system in rotated(
                &[
                    "ipc-send",
                    "ipc-send-batch",
                    "raw-send",
                    "ipc-event",
                    "raw-push",
                ],
                round,
            ) {
                if !wanted("one-way", system, ONE_WAY_PAYLOAD) {
                    continue;
                }
                let mut samples = Vec::new();
                for _ in 0..config.one_way_samples {
                    samples.push(r.one_way(system).await?);
                }
                if verbose {
                    eprintln!("  {p}/one-way/{system}: {:.0} msgs/s", median(&samples));
                }
                this_round.push((cell(placement, "one-way", system, ONE_WAY_PAYLOAD), samples));
            }
        }
        // Other processes' share of the machine during the round: a round
        // that shared the CPUs with them is run again (up to twice the
        // number of rounds in all), so that noise does not reach the medians.
        let foreign = cpu.foreign_percent(&CpuTimes::now());
        let verdict = if warm_up {
            "warm-up"
        } else if foreign > config.max_foreign_percent
            && discarded_foreign.len() < 2 * config.rounds
        {
            discarded_foreign.push(foreign);
            "discarded, run again"
        } else {
            kept_foreign.push(foreign);
            results.extend(this_round);
            "kept"
        };
        eprintln!(
            "[ipc bench] round {}/{} ({:.0} s): other processes used {foreign:.1}% of the CPUs: {verdict}",
            kept_foreign.len(),
            config.rounds,
            started.elapsed().as_secs_f64()
        );
    }
    for (i, samples) in results {
        let c = &mut cells[i];
        c.round_medians.push(median(&samples));
        c.samples.extend(samples);
    }
    let memory = if filter.is_empty() {
        eprintln!(
            "[ipc bench] memory phase ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
        place(Placement::Free, &all_cpus)?;
        memory_phase(&r).await?
    } else {
        let mut made: Vec<_> = r.made.iter().collect();
        made.sort();
        for (what, n) in made {
            eprintln!("[ipc bench] made {n} calls or messages: {what}");
        }
        MemoryReport {
            per_call: Vec::new(),
            rss: Vec::new(),
        }
    };
    r.api.bench.memory(false, false).await?;
    Ok(ChildReport {
        config,
        cells,
        memory,
        event_queue_full: r.event_queue_full,
        kept_foreign,
        discarded_foreign,
    })
}

/// Allocations per 8 B call on both sides, over two batches of different
/// sizes; then main's peak RSS with 64 × 1 MiB calls in flight, round
/// after round.
async fn memory_phase(r: &Renderer) -> Result<MemoryReport, BoxError> {
    let bench = &r.api.bench;
    let mut data = Blob::from(vec![0xa5; 8]);
    for _ in 0..1000 {
        data = bench.echo(data).await?;
    }
    let mut per_call = Vec::new();
    alloc::set_counting(true);
    let mut main_before = bench.memory(true, false).await?;
    let mut mine_before = alloc::counters();
    for &calls in &r.config.memory_batches {
        for _ in 0..calls {
            data = bench.echo(data).await?;
        }
        let mine = alloc::counters();
        let main = bench.memory(true, false).await?;
        let n = calls as f64;
        per_call.push(PerCall {
            calls,
            main_bytes_per_call: (main.alloc_bytes - main_before.alloc_bytes) as f64 / n,
            main_allocs_per_call: (main.allocs - main_before.allocs) as f64 / n,
            main_live_delta: main.live_bytes - main_before.live_bytes,
            renderer_bytes_per_call: (mine.bytes - mine_before.bytes) as f64 / n,
            renderer_allocs_per_call: (mine.count - mine_before.count) as f64 / n,
            renderer_live_delta: mine.live - mine_before.live,
        });
        main_before = main;
        mine_before = alloc::counters();
    }

    let payload = 1024 * 1024;
    let start = bench.memory(true, true).await?;
    alloc::reset_peak_rss();
    // Room for every point first, so that the list's own growth does not
    // count as the renderer's heap.
    let mut rss = Vec::with_capacity(r.config.rss_rounds + 1);
    let mine_start = alloc::counters();
    rss.push(RssPoint {
        calls: 0,
        main_hwm_kib: start.vm_hwm_kib,
        main_rss_kib: start.vm_rss_kib,
        main_live_delta: 0,
        renderer_hwm_kib: alloc::rss_kib().0,
        renderer_live_delta: 0,
    });
    let mut calls = 0;
    for _ in 0..r.config.rss_rounds {
        // 256 calls, 64 in flight throughout.
        let batch = Windows {
            size: 64,
            ramp: 1,
            timed: 2,
        };
        let echo = |data| r.api.bench.echo(data);
        ipc_throughput(echo, Blob::from, Next::Clone, payload, batch).await?;
        calls += batch.calls() as u64;
        let main = bench.memory(true, false).await?;
        rss.push(RssPoint {
            calls,
            main_hwm_kib: main.vm_hwm_kib,
            main_rss_kib: main.vm_rss_kib,
            main_live_delta: main.live_bytes - start.live_bytes,
            renderer_hwm_kib: alloc::rss_kib().0,
            renderer_live_delta: alloc::counters().live - mine_start.live,
        });
    }
    alloc::set_counting(false);
    Ok(MemoryReport { per_call, rss })
}

// ---------------------------------------------------------------------------
// Entry point.
// ---------------------------------------------------------------------------

/// Where the two processes' threads may run.
///
/// On this 2-vCPU VM a round trip whose two ends run on different CPUs
/// pays for waking an idle vCPU (tens of µs, at random per block), which
/// swamps the libraries' own costs and makes medians flip between runs. So
/// every case is measured twice in each round: with both processes pinned
/// to one CPU (every round trip takes the same path, a same-CPU context
/// switch, so ratios measure the software) and with no pinning (what an
/// application gets; both CPUs work in parallel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    OneCpu,
    Free,
}

impl Placement {
    const ALL: [Placement; 2] = [Placement::OneCpu, Placement::Free];

    fn name(self) -> &'static str {
        match self {
            Placement::OneCpu => "one-cpu",
            Placement::Free => "free",
        }
    }
}

/// Longer than the runtime keeps its answer to "may this process use more
/// than one CPU?" (100 ms).
const CPUS_RECHECKED: Duration = Duration::from_millis(120);

/// The CPUs this process may use, as a mask.
fn allowed_cpus() -> io::Result<libc::cpu_set_t> {
    // SAFETY: `set` is a zeroed `cpu_set_t` that we own and whose size we
    // pass; the kernel writes within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(set)
    }
}

/// Applies `placement` to every thread of this process and of main (the
/// parent); threads started later inherit their creator's mask.
fn place(placement: Placement, all: &libc::cpu_set_t) -> io::Result<()> {
    let set = match placement {
        Placement::Free => *all,
        Placement::OneCpu => {
            let first = (0..libc::CPU_SETSIZE as usize)
                // SAFETY: CPU_ISSET reads bit `cpu` of a set we own.
                .find(|cpu| unsafe { libc::CPU_ISSET(*cpu, all) })
                .unwrap_or(0);
            // SAFETY: a zeroed set we own; CPU_SET writes within it.
            unsafe {
                let mut one: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(first, &mut one);
                one
            }
        }
    };
    for pid in [std::process::id(), std::os::unix::process::parent_id()] {
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            let Some(tid) = task?.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            // SAFETY: sched_setaffinity reads `set`, which we own; a thread
            // that exited meanwhile gets ESRCH, which is fine.
            unsafe {
                libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set);
            }
        }
    }
    Ok(())
}

/// The renderer's worker threads: [`WORKERS`] unless
/// [`RENDERER_WORKERS_ENV`] sets another number.
fn renderer_workers() -> usize {
    std::env::var(RENDERER_WORKERS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(WORKERS)
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick")
        || std::env::var(QUICK_ENV).is_ok_and(|v| v == "1" || v == "true");
    let renderer = std::env::var(ROLE_ENV).is_ok_and(|r| r == "renderer");
    let result: Result<(), BoxError> = if renderer {
        let config = Config::new(
            quick,
            std::env::var(ROUNDS_ENV).ok(),
            std::env::var(MAX_FOREIGN_ENV).ok(),
        );
        runtime(renderer_workers())
            .block_on(async { tokio::spawn(run_renderer(config)).await })
            .map_err(BoxError::from)
            .and_then(|r| r)
            .and_then(|report| {
                let line = serde_json::to_string(&report)?;
                let mut out = io::stdout().lock();
                writeln!(out, "RESULT {line}")?;
                out.flush()?;
                Ok(())
            })
    } else if let Some(at) = args.iter().position(|a| a == "--aggregate") {
        report::aggregate(&args[at + 1..])
    } else if !args.iter().any(|a| a == "--bench") {
        // `cargo test --benches` runs this binary without `--bench`: time
        // nothing there.
        eprintln!("the IPC benchmark runs under `cargo bench --bench ipc` (see BENCHMARKS.md)");
        Ok(())
    } else {
        runtime(WORKERS)
            .block_on(async { tokio::spawn(run_main(quick)).await })
            .map_err(BoxError::from)
            .and_then(|r| r)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipc bench: {e}");
            ExitCode::FAILURE
        }
    }
}

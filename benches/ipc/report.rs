//! What the renderer reports, and what main makes of it: the summary rows,
//! the printed tables, the targets of issue 7, the SVG plot, and the
//! aggregation of several runs for BENCHMARKS.md.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Sizes of one run. `quick` is the smoke run.
///
/// Blocks are sized by time, not by count: the warm-up round measures each
/// system's speed, and every later block of that system is given as many
/// calls (or messages) as fill its time budget. Every system therefore gets
/// about the same wall-clock share of each round, however fast it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub quick: bool,
    /// Measured rounds (after one warm-up round).
    pub rounds: usize,
    /// Time budget of one latency block (one call in flight), in ms.
    pub latency_block_ms: f64,
    /// Time budget of one throughput window (64 in flight), in ms.
    pub window_ms: f64,
    /// Throughput windows per block (plus one untimed window of ramp-up,
    /// and the drain).
    pub windows: usize,
    /// Time budget of one one-way sample, in ms.
    pub one_way_ms: f64,
    /// One-way samples per block.
    pub one_way_samples: usize,
    /// Batches of 8 B calls for the allocation counts.
    pub memory_batches: Vec<u64>,
    /// Rounds of 256 calls of 1 MiB, 64 in flight, for the RSS check.
    pub rss_rounds: usize,
    /// A round during which other processes used more than this share of
    /// the CPUs (in %) is discarded and run again.
    pub max_foreign_percent: f64,
}

impl Config {
    pub fn new(quick: bool, rounds: Option<String>, max_foreign: Option<String>) -> Self {
        let mut config = if quick {
            Config {
                quick,
                rounds: 5,
                latency_block_ms: 15.0,
                window_ms: 5.0,
                windows: 3,
                one_way_ms: 10.0,
                one_way_samples: 1,
                memory_batches: vec![2_000, 10_000],
                rss_rounds: 4,
                max_foreign_percent: 10.0,
            }
        } else {
            Config {
                quick,
                rounds: 24,
                latency_block_ms: 60.0,
                window_ms: 15.0,
                windows: 6,
                one_way_ms: 25.0,
                one_way_samples: 2,
                memory_batches: vec![10_000, 50_000],
                rss_rounds: 8,
                max_foreign_percent: 10.0,
            }
        };
        if let Some(rounds) = rounds.and_then(|r| r.parse().ok()).filter(|r| *r > 0) {
            config.rounds = rounds;
        }
        if let Some(percent) = max_foreign.and_then(|p| p.parse().ok()) {
            config.max_foreign_percent = percent;
        }
        config
    }
}

/// The samples of one system on one case and payload, over all rounds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    /// `one-cpu` (both processes pinned to one CPU) or `free` (no pinning).
    pub placement: String,
    /// `latency` (µs per call), `throughput` (calls/s per window) or
    /// `one-way` (messages/s per sample).
    pub case: String,
    pub system: String,
    pub payload: usize,
    pub samples: Vec<f64>,
    /// The median of each round's samples, in round order.
    pub round_medians: Vec<f64>,
}

/// A process's memory as its allocator and the kernel see it.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct MemSnapshot {
    pub alloc_bytes: u64,
    pub allocs: u64,
    pub live_bytes: i64,
    pub vm_hwm_kib: u64,
    pub vm_rss_kib: u64,
}

/// Allocations per 8 B echo call over a batch of `calls`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PerCall {
    pub calls: u64,
    pub main_bytes_per_call: f64,
    pub main_allocs_per_call: f64,
    /// Live heap after the batch minus before it, in bytes.
    pub main_live_delta: i64,
    pub renderer_bytes_per_call: f64,
    pub renderer_allocs_per_call: f64,
    pub renderer_live_delta: i64,
}

/// Memory after `calls` calls of 1 MiB, 64 in flight.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RssPoint {
    pub calls: u64,
    pub main_hwm_kib: u64,
    pub main_rss_kib: u64,
    pub main_live_delta: i64,
    pub renderer_hwm_kib: u64,
    pub renderer_live_delta: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryReport {
    pub per_call: Vec<PerCall>,
    pub rss: Vec<RssPoint>,
}

/// Everything the renderer sends back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildReport {
    pub config: Config,
    pub cells: Vec<Cell>,
    pub memory: MemoryReport,
    /// Event pushes that found the renderer's queue full and were retried
    /// (0 when the acknowledgement window keeps main within the queue).
    pub event_queue_full: u64,
    /// Other processes' share of the CPUs during each kept round, in %.
    pub kept_foreign: Vec<f64>,
    /// The same for rounds discarded (and run again) as too noisy.
    pub discarded_foreign: Vec<f64>,
}

/// The machine, for the record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub kernel: String,
    /// Main's worker threads (and the renderer's, unless the next field
    /// says otherwise).
    pub tokio_workers: usize,
    /// The renderer's worker threads (absent in runs made before it was
    /// recorded).
    #[serde(default)]
    pub renderer_tokio_workers: Option<usize>,
    /// `/proc/loadavg` before and after the run: other work on the machine.
    pub loadavg_before: String,
    pub loadavg_after: String,
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

impl Machine {
    pub fn here(tokio_workers: usize, renderer_workers: usize, loadavg_before: String) -> Self {
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            tokio_workers,
            renderer_tokio_workers: Some(renderer_workers),
            loadavg_before,
            loadavg_after: loadavg(),
        }
    }
}

/// One line of `summary.json`.
///
/// `ratio_to_raw` is this system's median divided by its raw baseline's
/// median in the same run: latency ÷ latency for one call in flight (lower
/// is better), calls/s ÷ calls/s for 64 in flight and messages/s ÷
/// messages/s for one-way (higher is better). `ratio_min`/`ratio_max` are
/// the extremes of the same ratio taken round by round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub payload: usize,
    /// 1 or 64; `null` for one-way messages.
    pub in_flight: Option<usize>,
    pub system: String,
    /// Median round trip for one in flight; for 64 in flight the mean time
    /// a call spends in flight (64 ÷ calls/s); for one-way, 1 ÷ messages/s.
    pub median_us: f64,
    /// Calls (or messages) per second: 1 ÷ median latency for one in flight.
    pub calls_per_s: f64,
    pub ratio_to_raw: f64,
    /// `one-cpu` (both processes pinned to the same CPU) or `free` (no
    /// pinning); ratios compare systems within one placement.
    pub placement: String,
    /// `latency`, `throughput` or `one-way`.
    pub case: String,
    /// Payload bytes per second each way (MB = 10^6 bytes).
    pub mb_per_s: f64,
    /// The system `ratio_to_raw` compares with.
    pub raw: String,
    pub ratio_min: f64,
    pub ratio_max: f64,
    pub samples: usize,
}

pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

fn baseline_of(case: &str, system: &str) -> &'static str {
    match (case, system) {
        ("one-way", "ipc-send" | "ipc-send-batch" | "raw-send") => "raw-send",
        ("one-way", _) => "raw-push",
        _ => "raw-tokio",
    }
}

/// The summary rows of one run.
pub fn rows(report: &ChildReport) -> Vec<Row> {
    let find = |placement: &str, case: &str, system: &str, payload: usize| {
        report.cells.iter().find(|c| {
            c.placement == placement && c.case == case && c.system == system && c.payload == payload
        })
    };
    let mut rows = Vec::new();
    for cell in &report.cells {
        let raw = baseline_of(&cell.case, &cell.system);
        let Some(base) = find(&cell.placement, &cell.case, raw, cell.payload) else {
            continue;
        };
        let m = median(&cell.samples);
        let ratio = m / median(&base.samples);
        let by_round: Vec<f64> = cell
            .round_medians
            .iter()
            .zip(&base.round_medians)
            .map(|(a, b)| a / b)
            .collect();
        let (median_us, calls_per_s, in_flight) = match cell.case.as_str() {
            "latency" => (m, 1e6 / m, Some(1)),
            "throughput" => (64.0 * 1e6 / m, m, Some(64)),
            _ => (1e6 / m, m, None),
        };
        rows.push(Row {
            payload: cell.payload,
            in_flight,
            system: cell.system.clone(),
            median_us,
            calls_per_s,
            ratio_to_raw: ratio,
            placement: cell.placement.clone(),
            case: cell.case.clone(),
            mb_per_s: calls_per_s * cell.payload as f64 / 1e6,
            raw: raw.to_string(),
            ratio_min: by_round.iter().copied().fold(f64::INFINITY, f64::min),
            ratio_max: by_round.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            samples: cell.samples.len(),
        });
    }
    let order = |r: &Row| {
        let case = ["latency", "throughput", "one-way"]
            .iter()
            .position(|c| *c == r.case)
            .unwrap_or(9);
        let system = [
            "ipc",
            "ipc-spin",
            "ipc-bytebuf",
            "raw-tokio",
            "raw-std",
            "ipc-send",
            "ipc-send-batch",
            "raw-send",
            "ipc-event",
            "raw-push",
        ]
        .iter()
        .position(|s| *s == r.system)
        .unwrap_or(9);
        (placement_order(&r.placement), case, r.payload, system)
    };
    rows.sort_by_key(order);
    rows
}

/// The placements, in the order tables show them.
pub const PLACEMENTS: [&str; 2] = ["one-cpu", "free"];

fn placement_order(placement: &str) -> usize {
    PLACEMENTS.iter().position(|p| *p == placement).unwrap_or(9)
}

fn size(payload: usize) -> String {
    match payload {
        p if p >= 1 << 20 => format!("{} MiB", p >> 20),
        p if p >= 1 << 10 => format!("{} KiB", p >> 10),
        p => format!("{p} B"),
    }
}

/// Microseconds: three decimals below 1 µs (one-way messages), else one.
fn micros(us: f64) -> String {
    if us < 1.0 {
        format!("{us:.3}")
    } else {
        format!("{us:.1}")
    }
}

fn flight(r: &Row) -> String {
    r.in_flight.map_or("one-way".into(), |n| n.to_string())
}

/// The table of one run, as printed.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<8} {:>7}  {:>9}  {:<10} {:>10} {:>11} {:>9}  {:>7}  {:<15} vs",
        "placed",
        "payload",
        "in flight",
        "system",
        "median µs",
        "calls/s",
        "MB/s",
        "ratio",
        "rounds min–max"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<8} {:>7}  {:>9}  {:<10} {:>10} {:>11.0} {:>9.1}  {:>6.2}×  {:<15} {}",
            r.placement,
            size(r.payload),
            flight(r),
            r.system,
            micros(r.median_us),
            r.calls_per_s,
            r.mb_per_s,
            r.ratio_to_raw,
            format!("{:.2}–{:.2}", r.ratio_min, r.ratio_max),
            r.raw,
        );
    }
    s
}

/// One target of issue 7.
struct Target {
    case: &'static str,
    /// `<=` or `>=`.
    le: bool,
    goal: f64,
    /// The measured value of one run, in one placement.
    measure: fn(&[Row], &str) -> Option<f64>,
}

fn ratio(rows: &[Row], placement: &str, case: &str, system: &str, payload: usize) -> Option<f64> {
    rows.iter()
        .find(|r| {
            r.placement == placement && r.case == case && r.system == system && r.payload == payload
        })
        .map(|r| r.ratio_to_raw)
}

fn targets() -> Vec<Target> {
    vec![
        Target {
            case: "1 in flight, 8 B, latency",
            le: true,
            goal: 1.10,
            measure: |r, p| ratio(r, p, "latency", "ipc", 8),
        },
        Target {
            case: "1 in flight, 1 KiB, latency",
            le: true,
            goal: 1.10,
            measure: |r, p| ratio(r, p, "latency", "ipc", 1024),
        },
        Target {
            case: "1 in flight, 64 KiB, latency",
            le: true,
            goal: 1.3,
            measure: |r, p| ratio(r, p, "latency", "ipc", 65536),
        },
        Target {
            case: "1 in flight, 1 MiB, latency",
            le: true,
            goal: 1.5,
            measure: |r, p| ratio(r, p, "latency", "ipc", 1 << 20),
        },
        Target {
            case: "64 in flight, 8 B, calls/s",
            le: false,
            goal: 0.5,
            measure: |r, p| ratio(r, p, "throughput", "ipc", 8),
        },
        Target {
            case: "64 in flight, 1 KiB, calls/s",
            le: false,
            goal: 0.5,
            measure: |r, p| ratio(r, p, "throughput", "ipc", 1024),
        },
        Target {
            case: "64 in flight, 64 KiB, MB/s",
            le: false,
            goal: 0.8,
            measure: |r, p| ratio(r, p, "throughput", "ipc", 65536),
        },
        Target {
            case: "64 in flight, 1 MiB, MB/s",
            le: false,
            goal: 0.9,
            measure: |r, p| ratio(r, p, "throughput", "ipc", 1 << 20),
        },
        Target {
            case: "`send`, 8 B, messages/s (vs raw one-way)",
            le: false,
            goal: 0.6,
            measure: |r, p| ratio(r, p, "one-way", "ipc-send", 8),
        },
        Target {
            case: "event push, 8 B, messages/s (vs raw one-way)",
            le: false,
            goal: 0.6,
            measure: |r, p| ratio(r, p, "one-way", "ipc-event", 8),
        },
        Target {
            case: "stretch: 1 in flight, 8 B, latency vs blocking std",
            le: true,
            goal: 2.0,
            measure: |r, p| {
                Some(ratio(r, p, "latency", "ipc", 8)? / ratio(r, p, "latency", "raw-std", 8)?)
            },
        },
        Target {
            case: "stretch, low-latency option (50 µs spin): 8 B vs blocking std",
            le: true,
            goal: 2.0,
            measure: |r, p| {
                Some(ratio(r, p, "latency", "ipc-spin", 8)? / ratio(r, p, "latency", "raw-std", 8)?)
            },
        },
        Target {
            case: "low-latency option (50 µs spin): 8 B latency vs raw tokio",
            le: true,
            goal: 1.1,
            measure: |r, p| ratio(r, p, "latency", "ipc-spin", 8),
        },
        Target {
            case: "(context) raw tokio 8 B latency vs blocking std",
            le: true,
            goal: f64::NAN,
            measure: |r, p| Some(1.0 / ratio(r, p, "latency", "raw-std", 8)?),
        },
    ]
}

/// The targets table over one or more runs: for each placement, the
/// median of the runs' ratios, and their range when there are several.
pub fn targets_text(runs: &[Vec<Row>]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| case | target | measured, one CPU | met | measured, free | met |"
    );
    let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- |");
    for t in targets() {
        let mut cells = Vec::new();
        for placement in PLACEMENTS {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|r| (t.measure)(r, placement))
                .collect();
            if values.is_empty() {
                cells.push("—".to_string());
                cells.push("—".to_string());
                continue;
            }
            // Judged at the precision shown.
            let m = (median(&values) * 100.0).round() / 100.0;
            let range = if values.len() > 1 {
                let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                format!(" ({lo:.2}–{hi:.2})")
            } else {
                String::new()
            };
            cells.push(format!("{m:.2}×{range}"));
            cells.push(if t.goal.is_nan() {
                "—".to_string()
            } else if (t.le && m <= t.goal) || (!t.le && m >= t.goal) {
                "yes".to_string()
            } else {
                "**no**".to_string()
            });
        }
        let goal = if t.goal.is_nan() {
            "—".to_string()
        } else {
            format!("{} {:.2}×", if t.le { "≤" } else { "≥" }, t.goal)
        };
        let _ = writeln!(s, "| {} | {goal} | {} |", t.case, cells.join(" | "));
    }
    s
}

/// The memory numbers of one run, as printed.
pub fn memory_text(m: &MemoryReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "allocations per 8 B echo call:");
    let _ = writeln!(
        s,
        "| calls | main bytes/call | main allocs/call | main live Δ | renderer bytes/call | renderer allocs/call | renderer live Δ |"
    );
    let _ = writeln!(s, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for p in &m.per_call {
        let _ = writeln!(
            s,
            "| {} | {:.1} | {:.2} | {} B | {:.1} | {:.2} | {} B |",
            p.calls,
            p.main_bytes_per_call,
            p.main_allocs_per_call,
            p.main_live_delta,
            p.renderer_bytes_per_call,
            p.renderer_allocs_per_call,
            p.renderer_live_delta
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "memory with 64 × 1 MiB calls in flight (peak reset before the first batch):"
    );
    let _ = writeln!(
        s,
        "| calls made | main peak RSS (VmHWM) | main RSS | main live heap Δ | renderer peak RSS | renderer live heap Δ |"
    );
    let _ = writeln!(s, "| ---: | ---: | ---: | ---: | ---: | ---: |");
    let mib = |kib: u64| kib as f64 / 1024.0;
    for p in &m.rss {
        let _ = writeln!(
            s,
            "| {} | {:.1} MiB | {:.1} MiB | {} B | {:.1} MiB | {} B |",
            p.calls,
            mib(p.main_hwm_kib),
            mib(p.main_rss_kib),
            p.main_live_delta,
            mib(p.renderer_hwm_kib),
            p.renderer_live_delta,
        );
    }
    s
}

// ---------------------------------------------------------------------------
// The plot.
// ---------------------------------------------------------------------------

const SIZES: [usize; 4] = [8, 1024, 65536, 1 << 20];

/// Median over runs, and min–max over runs (or, for a single run, over its
/// rounds).
fn point(runs: &[Vec<Row>], se: &Series, payload: usize) -> Option<(f64, f64, f64)> {
    let found: Vec<&Row> = runs
        .iter()
        .filter_map(|rows| {
            rows.iter().find(|r| {
                r.placement == se.placement
                    && r.case == se.case
                    && r.system == se.system
                    && r.payload == payload
            })
        })
        .collect();
    match found.as_slice() {
        [] => None,
        [one] => Some((one.ratio_to_raw, one.ratio_min, one.ratio_max)),
        many => {
            let v: Vec<f64> = many.iter().map(|r| r.ratio_to_raw).collect();
            Some((
                median(&v),
                v.iter().copied().fold(f64::INFINITY, f64::min),
                v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            ))
        }
    }
}

struct Series {
    label: &'static str,
    color: &'static str,
    /// Dashed for the one-CPU placement.
    dashed: bool,
    placement: &'static str,
    case: &'static str,
    system: &'static str,
}

struct Panel {
    title: &'static str,
    series: Vec<Series>,
    targets: [f64; 4],
    target_is_max: bool,
}

fn panel(runs: &[Vec<Row>], p: &Panel, x0: f64, y0: f64, w: f64, h: f64) -> String {
    let mut s = String::new();
    let points: Vec<Vec<Option<(f64, f64, f64)>>> = p
        .series
        .iter()
        .map(|se| SIZES.iter().map(|&sz| point(runs, se, sz)).collect())
        .collect();
    // A log scale: ratios are multiplicative, and they span 0.01–10.
    let values = || {
        points
            .iter()
            .flatten()
            .flatten()
            .flat_map(|&(m, lo, hi)| [m, lo, hi])
            .chain(p.targets)
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    let ticks = [
        0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0,
        100.0,
    ];
    let low = values().fold(0.8_f64, f64::min);
    let high = values().fold(1.25_f64, f64::max);
    let bottom = ticks
        .iter()
        .rev()
        .copied()
        .find(|t| *t <= low)
        .unwrap_or(ticks[0]);
    let top = ticks.iter().copied().find(|t| *t >= high).unwrap_or(100.0);
    let (lb, lt) = (bottom.ln(), top.ln());
    let xs = |payload: usize| {
        let l = (payload as f64).log2();
        x0 + 30.0 + (l - 3.0) / 17.0 * (w - 60.0)
    };
    let ys = |v: f64| y0 + h - (v.clamp(bottom, top).ln() - lb) / (lt - lb) * h;
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" font-size="14" text-anchor="middle" font-weight="bold">{}</text>"##,
        x0 + w / 2.0,
        y0 - 12.0,
        p.title
    );
    let _ = writeln!(
        s,
        r##"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#444"/>"##
    );
    for v in ticks.iter().copied().filter(|t| (bottom..=top).contains(t)) {
        let y = ys(v);
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{v}×</text>"##,
            x0 + w,
            x0 - 4.0,
            y + 4.0
        );
    }
    let y1 = ys(1.0);
    let _ = writeln!(
        s,
        r##"<line x1="{x0}" y1="{y1:.1}" x2="{:.1}" y2="{y1:.1}" stroke="#000" stroke-width="1.5"/>"##,
        x0 + w
    );
    for sz in SIZES {
        let x = xs(sz);
        let _ = writeln!(
            s,
            r##"<text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"##,
            y0 + h + 16.0,
            size(sz)
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">payload (log scale); ratio on a log scale</text>"##,
        x0 + w / 2.0,
        y0 + h + 32.0
    );
    // Targets: short dashed red bars.
    for (i, &t) in p.targets.iter().enumerate() {
        let x = xs(SIZES[i]);
        let y = ys(t);
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#d62728" stroke-width="2" stroke-dasharray="4,3"/>"##,
            x - 14.0,
            x + 14.0
        );
    }
    for (se, pts) in p.series.iter().zip(&points) {
        let path: Vec<String> = SIZES
            .iter()
            .zip(pts)
            .filter_map(|(&sz, pt)| pt.map(|(m, _, _)| format!("{:.1},{:.1}", xs(sz), ys(m))))
            .collect();
        if path.len() > 1 {
            let _ = writeln!(
                s,
                r##"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{}/>"##,
                path.join(" "),
                se.color,
                if se.dashed {
                    r#" stroke-dasharray="6,4""#
                } else {
                    ""
                }
            );
        }
        for (&sz, pt) in SIZES.iter().zip(pts) {
            if let Some((m, lo, hi)) = pt {
                let x = xs(sz);
                let _ = writeln!(
                    s,
                    r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{c}" stroke-width="1.5"/><circle cx="{x:.1}" cy="{:.1}" r="4" fill="{c}"><title>{} {}: {m:.2}× ({lo:.2}–{hi:.2})</title></circle>"##,
                    ys(*lo),
                    ys(*hi),
                    ys(*m),
                    se.label,
                    size(sz),
                    c = se.color
                );
            }
        }
    }
    // Legend, under the panel.
    for (i, se) in p.series.iter().enumerate() {
        let lx = x0 + 8.0 + (i % 2) as f64 * 200.0;
        let ly = y0 + h + 52.0 + (i / 2) as f64 * 15.0;
        let _ = writeln!(
            s,
            r##"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"{}/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"##,
            lx + 20.0,
            se.color,
            if se.dashed {
                r#" stroke-dasharray="6,4""#
            } else {
                ""
            },
            lx + 24.0,
            ly + 4.0,
            se.label
        );
    }
    let ly = y0 + h + 52.0 + p.series.len().div_ceil(2) as f64 * 15.0;
    let _ = writeln!(
        s,
        r##"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="#d62728" stroke-width="2" stroke-dasharray="4,3"/><text x="{:.1}" y="{:.1}" font-size="11">target ({})</text>"##,
        x0 + 8.0,
        x0 + 28.0,
        x0 + 32.0,
        ly + 4.0,
        if p.target_is_max {
            "at most"
        } else {
            "at least"
        }
    );
    s
}

/// Ratio to raw tokio against payload size, as SVG text.
pub fn svg(runs: &[Vec<Row>]) -> String {
    let series = |label, color, dashed, placement, case, system| Series {
        label,
        color,
        dashed,
        placement,
        case,
        system,
    };
    let left = Panel {
        title: "1 call in flight: latency ÷ raw tokio (lower is better)",
        series: vec![
            series("ipc, one CPU", "#1f77b4", true, "one-cpu", "latency", "ipc"),
            series("ipc, free", "#1f77b4", false, "free", "latency", "ipc"),
            series(
                "blocking std, one CPU",
                "#2ca02c",
                true,
                "one-cpu",
                "latency",
                "raw-std",
            ),
            series(
                "blocking std, free",
                "#2ca02c",
                false,
                "free",
                "latency",
                "raw-std",
            ),
        ],
        targets: [1.10, 1.10, 1.3, 1.5],
        target_is_max: true,
    };
    let right = Panel {
        title: "64 calls in flight: calls/s ÷ raw tokio (higher is better)",
        series: vec![
            series(
                "ipc, one CPU",
                "#1f77b4",
                true,
                "one-cpu",
                "throughput",
                "ipc",
            ),
            series("ipc, free", "#1f77b4", false, "free", "throughput", "ipc"),
            series(
                "send ÷ raw one-way, free",
                "#9467bd",
                false,
                "free",
                "one-way",
                "ipc-send",
            ),
            series(
                "event ÷ raw one-way, free",
                "#ff7f0e",
                false,
                "free",
                "one-way",
                "ipc-event",
            ),
        ],
        targets: [0.5, 0.5, 0.8, 0.9],
        target_is_max: false,
    };
    let spread = if runs.len() > 1 {
        format!(
            "points: median of {} runs; bars: min–max over the runs",
            runs.len()
        )
    } else {
        "points: median of the run; bars: min–max of the per-round ratios".to_string()
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="530" viewBox="0 0 1000 530" font-family="sans-serif">"##
    );
    let _ = writeln!(s, r##"<rect width="1000" height="530" fill="#fff"/>"##);
    s.push_str(&panel(runs, &left, 60.0, 40.0, 400.0, 300.0));
    s.push_str(&panel(runs, &right, 560.0, 40.0, 400.0, 300.0));
    let _ = writeln!(
        s,
        r##"<text x="500" y="500" font-size="11" text-anchor="middle">ipc-runtime ÷ a raw length-prefixed echo on tokio, same run and runtime flavour. Dashed: both processes on one CPU; solid: free.</text>"##
    );
    let _ = writeln!(
        s,
        r##"<text x="500" y="516" font-size="11" text-anchor="middle">{spread}; the send and event points are 8 B messages/s ÷ a raw one-way stream.</text>"##
    );
    s.push_str("</svg>\n");
    s
}

// ---------------------------------------------------------------------------
// Several runs.
// ---------------------------------------------------------------------------

/// `--aggregate a.json b.json … [--svg out.svg]`: reads `summary.json`
/// files of separate runs, prints the markdown tables of BENCHMARKS.md and
/// writes the plot.
pub fn aggregate(args: &[String]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut files = Vec::new();
    let mut svg_path = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--svg" => svg_path = it.next().cloned(),
            "--bench" | "--quick" => {}
            f => files.push(f.to_string()),
        }
    }
    if files.is_empty() {
        return Err("usage: --aggregate summary1.json summary2.json ... [--svg out.svg]".into());
    }
    let mut runs: Vec<Vec<Row>> = Vec::new();
    for f in &files {
        runs.push(serde_json::from_str(&std::fs::read_to_string(f)?)?);
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| placed | payload | in flight | system | median µs | calls/s | MB/s | ratio to raw | spread of the ratio over {} runs |",
        runs.len()
    );
    let _ = writeln!(
        s,
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
    );
    for r in &runs[0] {
        let same: Vec<&Row> = runs
            .iter()
            .filter_map(|rows| {
                rows.iter().find(|x| {
                    x.placement == r.placement
                        && x.case == r.case
                        && x.system == r.system
                        && x.payload == r.payload
                })
            })
            .collect();
        let med = |f: fn(&Row) -> f64| median(&same.iter().map(|x| f(x)).collect::<Vec<_>>());
        let ratios: Vec<f64> = same.iter().map(|x| x.ratio_to_raw).collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let ratio_cell = if r.system == r.raw {
            "1 (baseline)".to_string()
        } else {
            format!("{:.2}×", median(&ratios))
        };
        let spread = if r.system == r.raw {
            "—".to_string()
        } else {
            format!("{lo:.2}–{hi:.2}")
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.0} | {:.1} | {ratio_cell} | {spread} |",
            r.placement,
            size(r.payload),
            flight(r),
            r.system,
            micros(med(|x| x.median_us)),
            med(|x| x.calls_per_s),
            med(|x| x.mb_per_s),
        );
    }
    let _ = writeln!(s);
    s.push_str(&targets_text(&runs));
    println!("{s}");
    let path = svg_path.unwrap_or_else(|| "ratio.svg".to_string());
    std::fs::write(&path, svg(&runs))?;
    eprintln!("wrote {path}");
    Ok(())
}

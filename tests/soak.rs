//! Soak test, ignored by default. Run it with:
//!
//! ```text
//! cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! A main process (the test renderer binary in `soak-main` mode) serves 4
//! well-behaved renderer processes that call and receive events for 60
//! seconds, while a fifth renderer misbehaves in a loop (garbage frames
//! until main disconnects it, then a new one). At the end, main's resident
//! memory must be within 16 MiB of its memory after warm-up, and no
//! well-behaved call may have failed. `IPC_SOAK_SECS` shortens or lengthens
//! the run.

use std::process::Command;

const RENDERER: &str = env!("CARGO_BIN_EXE_ipc-test-renderer");

/// How much main's resident memory may grow between the end of warm-up and
/// the end of the run.
const GROWTH_BOUND_KIB: u64 = 16 * 1024;

#[test]
#[ignore = "takes a minute; run with --ignored"]
fn four_renderers_for_a_minute_beside_a_misbehaving_one() {
    let secs: u64 = std::env::var("IPC_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let output = Command::new(RENDERER)
        .args(["soak-main", &secs.to_string()])
        .output()
        .expect("the soak main runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "soak main failed: {stderr}");
    let fields: Vec<u64> = stdout
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let [warm, end, bad_spawns, failures, elapsed] = fields[..] else {
        panic!("unexpected soak output: {stdout}");
    };
    println!(
        "soak: {elapsed} s, main RSS {warm} KiB after warm-up, {end} KiB at the end \
         ({:+} KiB), {bad_spawns} misbehaving renderers disconnected, {failures} failed renderers",
        end as i64 - warm as i64
    );
    assert_eq!(failures, 0, "every well-behaved renderer succeeded");
    assert!(
        bad_spawns > 0,
        "main disconnected misbehaving renderers as Misbehaved"
    );
    assert!(
        end <= warm + GROWTH_BOUND_KIB,
        "main grew from {warm} KiB to {end} KiB"
    );
}

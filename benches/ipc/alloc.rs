//! A counting global allocator, and the kernel's view of the process's
//! memory (`/proc/self/status`).
//!
//! Counting is off by default, so the timed runs pay one relaxed atomic load
//! per allocation and nothing else; the memory phase switches it on in both
//! processes.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed},
};

/// The system allocator, counting while [`set_counting`] is on.
pub struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static BYTES: AtomicU64 = AtomicU64::new(0);
static COUNT: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);

fn allocated(size: usize) {
    if ON.load(Relaxed) {
        BYTES.fetch_add(size as u64, Relaxed);
        COUNT.fetch_add(1, Relaxed);
        LIVE.fetch_add(size as i64, Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the counters have no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            allocated(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            allocated(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        if ON.load(Relaxed) {
            LIVE.fetch_sub(layout.size() as i64, Relaxed);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() && ON.load(Relaxed) {
            // A reallocation counts as one allocation of the new size.
            BYTES.fetch_add(new_size as u64, Relaxed);
            COUNT.fetch_add(1, Relaxed);
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
        }
        p
    }
}

/// Switches counting on or off for this process.
pub fn set_counting(on: bool) {
    ON.store(on, Relaxed);
}

/// Counters since the process started (only while counting was on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Bytes requested from the allocator.
    pub bytes: u64,
    /// Allocations (and reallocations).
    pub count: u64,
    /// Bytes allocated minus bytes freed: the change in live heap.
    pub live: i64,
}

/// The counters now.
pub fn counters() -> Counters {
    Counters {
        bytes: BYTES.load(Relaxed),
        count: COUNT.load(Relaxed),
        live: LIVE.load(Relaxed),
    }
}

/// `(VmHWM, VmRSS)` of this process in KiB: peak and current resident set.
pub fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Resets this process's peak resident set (VmHWM) to its current value
/// (Linux `clear_refs`, value 5). Returns whether the kernel accepted it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

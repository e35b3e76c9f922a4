//! Measures the allocations `codec::decode` makes for hostile payloads: a
//! length field claiming far more bytes than the payload holds must not make
//! the decoder allocate anything close to the claimed size.
//!
//! A counting global allocator records the largest single allocation request.
//! It counts only on the thread that is measuring (a `const` thread-local flag,
//! which needs no allocation or destructor and so is safe to read inside the
//! allocator), so the tests of this file may run in parallel.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::mem::size_of;

use ipc_runtime::codec::{decode, encode_to_vec};
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;

struct PeakAllocator;

thread_local! {
    /// Whether this thread is measuring.
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    /// The largest allocation request this thread made while measuring.
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    let _ = MEASURING.try_with(|measuring| {
        if measuring.get() {
            PEAK.with(|peak| peak.set(peak.get().max(size)));
        }
    });
}

// SAFETY: every method forwards to `System` unchanged; `record` only touches
// `const` thread-locals, which neither allocate nor register destructors.
unsafe impl GlobalAlloc for PeakAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakAllocator = PeakAllocator;

/// Runs `f` and returns its result with the largest single allocation it
/// requested on this thread.
fn peak_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    PEAK.with(|peak| peak.set(0));
    MEASURING.with(|measuring| measuring.set(true));
    let result = f();
    MEASURING.with(|measuring| measuring.set(false));
    (result, PEAK.with(Cell::get))
}

/// A payload whose first length field claims `len` items but that holds only
/// `rest` after it.
fn hostile(len: u64, rest: &[u8]) -> Vec<u8> {
    let mut bytes = encode_to_vec(&len).expect("a u64 encodes");
    bytes.extend_from_slice(rest);
    assert!(bytes.len() <= 32);
    bytes
}

/// Slack for the one allocation the decoder makes that no length field
/// drives: the text of the error (`CodecError::Decode`), with the hint
/// added to bincode's own errors, a few hundred bytes.
const SLACK: usize = 1024;

/// Decodes `bytes` as a `T`, expecting an error, and checks the largest
/// allocation made meanwhile. `item_size` is the in-memory size of one item of
/// the claimed collection: the guard caps serde's preallocation at one item
/// per payload byte (what a legitimate payload of that size could hold), so
/// the allowed peak is `bytes.len() * item_size` plus the error text.
fn check<T: DeserializeOwned + std::fmt::Debug>(what: &str, bytes: &[u8], item_size: usize) {
    let (result, peak) = peak_allocation(|| decode::<T>(bytes));
    let bound = bytes.len() * item_size + SLACK;
    println!(
        "{what}: {} byte payload, largest allocation {peak} bytes",
        bytes.len()
    );
    assert!(result.is_err(), "{what}: decoded as {result:?}");
    assert!(
        peak <= bound,
        "{what}: allocated {peak} bytes (bound {bound})"
    );
}

#[test]
fn hostile_length_fields_do_not_drive_allocations() {
    for (name, len) in [("2^40", 1u64 << 40), ("2^31", 1 << 31), ("1 MiB", 1 << 20)] {
        check::<String>(&format!("String claiming {name}"), &hostile(len, b"abc"), 1);
        check::<Vec<u8>>(
            &format!("Vec<u8> claiming {name}"),
            &hostile(len, b"abc"),
            1,
        );
        check::<ByteBuf>(
            &format!("ByteBuf claiming {name}"),
            &hostile(len, b"abc"),
            1,
        );
        check::<Vec<u64>>(
            &format!("Vec<u64> claiming {name}"),
            &hostile(len, &[1, 2, 3]),
            size_of::<u64>(),
        );
        check::<Vec<String>>(
            &format!("Vec<String> claiming {name}"),
            &hostile(len, b"\x03abc\x01d"),
            size_of::<String>(),
        );
        // Each inner String claims `len` bytes too.
        check::<Vec<String>>(
            &format!("Vec<String> with an item claiming {name}"),
            &[&[1u8][..], &hostile(len, b"abc")].concat(),
            size_of::<String>(),
        );
        // A hashbrown table of `n` entries takes a little over
        // `2 * n * (entry + 1 control byte)`: bound it at four entries'
        // worth of bytes per payload byte.
        check::<HashMap<String, String>>(
            &format!("HashMap<String, String> claiming {name}"),
            &hostile(len, b"\x01k\x01v"),
            4 * size_of::<(String, String)>(),
        );
    }
}

/// The controls: bincode on its own does allocate what a hostile length field
/// claims (so the guard is what makes the difference above), the meter sees
/// it, and values that really are large still decode.
#[test]
fn controls() {
    let bytes = hostile(1 << 20, b"abc");
    let (result, peak) = peak_allocation(|| {
        bincode::serde::borrow_decode_from_slice::<String, _>(&bytes, bincode::config::standard())
    });
    assert!(result.is_err());
    assert!(
        peak >= 1 << 20,
        "unguarded bincode allocated only {peak} bytes"
    );

    let text = "x".repeat(1 << 20);
    let bytes = encode_to_vec(&text).unwrap();
    let (decoded, peak) = peak_allocation(|| decode::<String>(&bytes));
    assert_eq!(decoded.as_deref(), Ok(text.as_str()));
    assert!(
        peak >= 1 << 20,
        "the meter missed a 1 MiB allocation: {peak}"
    );
}

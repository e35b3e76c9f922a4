//! Compile-fail tests for the macros: each `tests/ui/<category>/<case>.rs`
//! must fail to compile with exactly the diagnostics in its `.stderr`
//! snapshot beside it.
//!
//! Regenerate snapshots after an intended change to a message with
//! `TRYBUILD=overwrite cargo test --test compiletest`, then read every
//! changed `.stderr` as a newcomer would before committing it.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/*.rs");
}

/// Main's builder checks that no two registered contracts share a channel
/// when the program is built (the check needs the concrete list of
/// contracts, so `cargo check` does not run it). A pass case makes trybuild
/// build these instead of checking them.
#[test]
fn main_builder() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui-main/*-build.rs");
    t.compile_fail("tests/ui-main/same-*.rs");
}

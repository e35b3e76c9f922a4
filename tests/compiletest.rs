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

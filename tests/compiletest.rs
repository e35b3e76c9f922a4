//! Compile-fail tests for the macros: each `tests/ui/<category>/<case>.rs`
//! must fail to compile with exactly the diagnostics in its `.stderr`
//! snapshot beside it.
//!
//! Regenerate snapshots after an intended change to a message with
//! `TRYBUILD=overwrite cargo test --test compiletest`, then read every
//! changed `.stderr` as a newcomer would before committing it.
//!
//! trybuild allows `dead_code` in the files it builds, so the one check
//! about that lint is made on this file itself, below.
#![deny(dead_code)]

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/*.rs");
}

/// Contracts that must build without a warning (each file denies them).
#[test]
fn clean() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui-pass/*.rs");
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

/// Contracts declared in a private module of a binary, of which the
/// program names only the generated types (a renderer that never serves,
/// a main that never listens): the traits are declarations, and
/// `dead_code` must not call them unused (this file denies it).
mod partly_used {
    use ipc_runtime::{events, service};

    #[service(namespace = "notes")]
    pub trait Notes {
        async fn get(&self, id: u64) -> String;
    }

    #[events(namespace = "notes")]
    pub trait NotesEvents {
        fn changed(&self, id: u64);
    }
}

#[test]
fn contracts_used_only_through_generated_types_are_not_dead_code() {
    assert_eq!(partly_used::NotesContract::GET, "notes:get");
    assert_eq!(partly_used::NotesEventsContract::CHANGED, "notes:changed");
}

//! A main that closed its standard input and output (a daemon; Rust's
//! start-up code reopens closed ones as `/dev/null`, so a process does not
//! start that way): the socket pair of `spawn_renderer` took
//! descriptors 0 and 1, so the child's end became its standard output and
//! the renderer refused it ("does not name a descriptor main passed").
//! The pair now moves above the standard streams.
//!
//! Alone in its test binary: it closes this process's descriptors 0 and 1
//! for the time it takes to spawn, which no other test may see.

use std::process::Command;

use ipc_suite::{probe_main, ProbeApi};

const RENDERER: &str = env!("CARGO_BIN_EXE_ipc-test-renderer");

/// Closes descriptors 0 and 1, and puts them back when dropped.
struct StdioClosed {
    saved: [libc::c_int; 2],
}

impl StdioClosed {
    fn new() -> Self {
        // SAFETY: plain descriptor calls on descriptors this process owns;
        // each result is checked.
        unsafe {
            let saved = [0, 1].map(|fd| {
                let copy = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
                assert!(copy >= 10, "saving descriptor {fd}");
                copy
            });
            for fd in [0, 1] {
                assert_eq!(libc::close(fd), 0);
            }
            StdioClosed { saved }
        }
    }
}

impl Drop for StdioClosed {
    /// Puts back each of 0 and 1 that is still free: one that something
    /// else now holds (tokio keeps a child's pidfd on the lowest free
    /// number) must not be closed under it.
    fn drop(&mut self) {
        // SAFETY: as above; `saved` are this process's own copies.
        unsafe {
            for (fd, copy) in [0, 1].into_iter().zip(self.saved) {
                if libc::fcntl(fd, libc::F_GETFD) == -1 {
                    libc::dup2(copy, fd);
                }
                libc::close(copy);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_main_with_stdin_and_stdout_closed_spawns_renderers() {
    let (main, _) = probe_main();
    let mut command = Command::new(RENDERER);
    command.arg("calls");
    // Closed until the renderer is gone (the test prints nothing).
    let closed = StdioClosed::new();
    let spawned = main
        .spawn_renderer::<ProbeApi>(command, "daemon's window")
        .await;
    let status = match spawned {
        Ok(mut renderer) => renderer.wait().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    drop(main);
    drop(closed);
    let status = status.expect("spawning with stdin and stdout closed");
    assert!(status.success(), "{status}");
}

//! A renderer process for the end-to-end tests, started by them as a real
//! child process. It checks what it receives itself and reports through its
//! exit status (0: every check held) and standard error.
//!
//! Modes (first argument):
//! - `calls`: connect over the inherited socket and exercise every kind of
//!   call;
//! - `unix PATH TOKEN`, `tcp ADDRESS TOKEN`: connect to main's Unix or
//!   TCP socket with a token, print the label main gave it, make a call;
//! - `idle`: connect, then wait until main goes away;
//! - `listen`: listen to `tick` and `note`; on the note "stop", print the
//!   ticks received (comma-separated, in arrival order) and exit;
//! - `busy`: listen to `tick`, start a call that never finishes, print
//!   "ready" and wait (to be killed);
//! - `send-and-return N`: send `record(1..=N)` and return from `main` at
//!   once, without closing or flushing;
//! - `main-by-mistake`: play main instead of connecting, as a program that
//!   misreads its role would: spawn this program in the same mode (at most
//!   two levels deep, should the runtime fail to refuse), and report what
//!   `spawn_renderer` said;
//! - `nested-main`: connect, then be a main of its own and spawn a `calls`
//!   renderer;
//! - `flood`, `half-frame`, `half-hello PATH`, `serve-unix`, `soak-main SECS`,
//!   `soak-good SECS`, `soak-bad`, `impostor PATH`: see `faults.rs`.

mod faults;

use std::process::ExitCode;

use ipc_runtime::{CallError, IpcError};
use ipc_suite::{MathError, ProbeApi};

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("check failed: {what}"))
    }
}

async fn calls(conn: ProbeApi) -> Result<(), String> {
    let probe = conn.probe.clone();
    let e = |e: IpcError| e.to_string();
    check(probe.echo("hi".into()).await.map_err(e)? == "hi", "echo")?;
    check(probe.add(40, 2).await.map_err(e)? == 42, "add")?;
    match probe.divide(1, 0).await {
        Err(CallError::Handler(MathError::DivideByZero(1))) => {}
        other => return Err(format!("divide by zero gave {other:?}")),
    }
    let me = probe.whoami().await.map_err(e)?;
    check(me.id == conn.id().get(), "whoami id")?;
    check(me.label == conn.label(), "whoami label")?;
    for n in 1..=5 {
        probe.record(n).await.map_err(e)?;
    }
    // Sends are handled in order, but not ordered against later invokes:
    // poll until main has handled all five.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let seen = probe.recorded().await.map_err(e)?;
        let mine: Vec<u64> = seen.into_iter().collect();
        if mine.len() >= 5 {
            break;
        }
        check(
            std::time::Instant::now() < deadline,
            "sends handled within 10 s",
        )?;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    println!(
        "renderer {} ({}) pid {}: all calls answered",
        conn.id(),
        conn.label(),
        std::process::id()
    );
    conn.close().await.map_err(e)
}

async fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("calls") => {
            let api = ProbeApi::connect_inherited()
                .await
                .map_err(|e| e.to_string())?;
            calls(api).await
        }
        Some(socket @ ("unix" | "tcp")) => {
            let (address, token) = match args {
                [_, address, token] => (address, token),
                _ => return Err(format!("usage: {socket} ADDRESS TOKEN")),
            };
            let conn = if socket == "unix" {
                ProbeApi::connect_unix(address, token).await
            } else {
                ProbeApi::connect_tcp(address.as_str(), token).await
            }
            .map_err(|e| e.to_string())?;
            let probe = &conn.probe;
            let me = probe.whoami().await.map_err(|e| e.to_string())?;
            println!("{}", me.label);
            if socket == "unix" {
                // Main learned who is calling from the socket (SO_PEERCRED),
                // not from anything this process said.
                let mine = (Some(std::process::id()), Some(unsafe { libc::getuid() }));
                check((me.pid, me.uid) == mine, "main recorded this process's pid and uid")?;
            }
            check(matches!(probe.add(40, 2).await, Ok(42)), "a call over the socket")?;
            Ok(())
        }
        Some("connect-and-exit") => {
            ProbeApi::connect_inherited()
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        }
        Some("send-and-return") => {
            let n: u64 = match args {
                [_, n] => n.parse().map_err(|e| format!("N: {e}"))?,
                _ => return Err("usage: send-and-return N".into()),
            };
            let api = ProbeApi::connect_inherited()
                .await
                .map_err(|e| e.to_string())?;
            for i in 1..=n {
                api.probe.record(i).await.map_err(|e| e.to_string())?;
            }
            // Returning drops `api`, then the runtime: what was queued
            // must still reach main.
            Ok(())
        }
        Some("main-by-mistake") => {
            let depth: u32 = std::env::var("IPC_TEST_COPY_DEPTH")
                .ok()
                .and_then(|d| d.parse().ok())
                .unwrap_or(0);
            if depth >= 2 {
                return Err("started copies of itself without end".into());
            }
            let (main, _) = ipc_suite::probe_main();
            let mut command = std::process::Command::new(std::env::current_exe().unwrap());
            command
                .arg("main-by-mistake")
                .env("IPC_TEST_COPY_DEPTH", (depth + 1).to_string());
            match main.spawn_renderer::<ProbeApi>(command, "copy").await {
                Ok(_) => Err("spawn_renderer started a copy".into()),
                Err(e) => Err(format!("spawn_renderer refused: {e}")),
            }
        }
        Some("nested-main") => {
            let api = ProbeApi::connect_inherited()
                .await
                .map_err(|e| e.to_string())?;
            let (main, handler) = ipc_suite::probe_main();
            let mut command = std::process::Command::new(std::env::current_exe().unwrap());
            command.arg("calls");
            let mut child = main
                .spawn_renderer::<ProbeApi>(command, "grandchild")
                .await
                .map_err(|e| format!("a connected renderer could not spawn: {e}"))?;
            let status = child.wait().await.map_err(|e| e.to_string())?;
            check(status.success(), "the grandchild's calls")?;
            check(handler.recorded_now() == [1, 2, 3, 4, 5], "the grandchild reached this main")?;
            api.close().await.map_err(|e| e.to_string())
        }
        Some("idle") => {
            let conn = ProbeApi::connect_inherited()
                .await
                .map_err(|e| e.to_string())?;
            let reason = conn.closed().await;
            println!("main went away: {reason}");
            Ok(())
        }
        Some("listen") => {
            let api = ProbeApi::connect_inherited()
                .await
                .map_err(|e| e.to_string())?;
            let ticks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let (stop_tx, mut stop_rx) = tokio::sync::mpsc::channel::<()>(1);
            let _ticks = api
                .events
                .on_tick({
                    let ticks = ticks.clone();
                    move |n| ticks.lock().unwrap().push(n.to_string())
                })
                .await
                .map_err(|e| e.to_string())?;
            let _notes = api
                .events
                .on_note(move |text| {
                    if text == "stop" {
                        let _ = stop_tx.try_send(());
                    }
                })
                .await
                .map_err(|e| e.to_string())?;
            stop_rx.recv().await;
            println!("{}", ticks.lock().unwrap().join(","));
            Ok(())
        }
        Some("stream") => {
            // The `listen` mode with streams: ticks until the note "stop",
            // or until main ends the connection (then "ended").
            let api = ProbeApi::connect_inherited()
                .await
                .map_err(|e| e.to_string())?;
            let mut ticks = api.events.stream_tick().await.map_err(|e| e.to_string())?;
            let mut notes = api.events.stream_note().await.map_err(|e| e.to_string())?;
            let mut got = Vec::new();
            loop {
                tokio::select! {
                    // Ticks first: those main sent before the note are
                    // all in their stream by the time the note is.
                    biased;
                    tick = ticks.recv() => match tick {
                        Some(n) => got.push(n.to_string()),
                        None => {
                            println!("{}", got.join(","));
                            println!("ended");
                            return Ok(());
                        }
                    },
                    note = notes.recv() => {
                        if note.as_deref() == Some("stop") {
                            println!("{}", got.join(","));
                            return Ok(());
                        }
                    }
                }
            }
        }
        Some("busy") => {
            let api = ProbeApi::connect_inherited()
                .await
                .map_err(|e| e.to_string())?;
            let _ticks = api
                .events
                .on_tick(|_| {})
                .await
                .map_err(|e| e.to_string())?;
            let probe = api.probe.clone();
            tokio::spawn(async move { probe.sleep(3_600_000).await });
            println!("ready");
            let reason = api.closed().await;
            Err(format!("main went away: {reason}"))
        }
        Some("half-frame") => faults::half_frame(),
        Some("flood") => faults::flood().await,
        Some("half-hello") => faults::half_hello(args.get(1).map_or("", String::as_str)),
        Some("serve-unix") => faults::serve_unix().await,
        Some("impostor") => faults::impostor(args.get(1).map_or("", String::as_str)),
        Some("soak-main") => faults::soak_main(secs(args)?).await,
        Some("soak-good") => faults::soak_good(secs(args)?).await,
        Some("soak-bad") => faults::soak_bad(),
        _ => Err("usage: ipc-test-renderer calls|unix PATH TOKEN|tcp ADDRESS TOKEN|connect-and-exit|send-and-return N|main-by-mistake|nested-main|idle|listen|busy|flood|half-frame|half-hello PATH|serve-unix|impostor PATH|soak-main SECS|soak-good SECS|soak-bad".into()),
    }
}

fn secs(args: &[String]) -> Result<u64, String> {
    args.get(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "expected a number of seconds".to_string())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipc-test-renderer: {e}");
            ExitCode::FAILURE
        }
    }
}

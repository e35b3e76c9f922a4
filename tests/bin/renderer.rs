//! A renderer process for the end-to-end tests, started by them as a real
//! child process. It checks what it receives itself and reports through its
//! exit status (0: every check held) and standard error.
//!
//! Modes (first argument):
//! - `calls`: connect over the inherited socket and exercise every kind of
//!   call;
//! - `unix PATH TOKEN`: connect to main's Unix socket with a token;
//! - `idle`: connect, then wait until main goes away.

use std::process::ExitCode;

use ipc_runtime::{CallError, Connection, IpcError};
use ipc_suite::{MathError, ProbeClient, ProbeContract};

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("check failed: {what}"))
    }
}

async fn calls(conn: Connection) -> Result<(), String> {
    let probe = ProbeClient::new(&conn);
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
    let builder = Connection::builder().service::<ProbeContract>();
    match args.first().map(String::as_str) {
        Some("calls") => {
            calls(
                builder
                    .connect_inherited()
                    .await
                    .map_err(|e| e.to_string())?,
            )
            .await
        }
        Some("unix") => {
            let (path, token) = match args {
                [_, path, token] => (path, token),
                _ => return Err("usage: unix PATH TOKEN".into()),
            };
            let conn = builder
                .connect_unix(path, token)
                .await
                .map_err(|e| e.to_string())?;
            let probe = ProbeClient::new(&conn);
            let me = probe.whoami().await.map_err(|e| e.to_string())?;
            println!("{}", me.label);
            Ok(())
        }
        Some("idle") => {
            let conn = builder
                .connect_inherited()
                .await
                .map_err(|e| e.to_string())?;
            let reason = conn.closed().await;
            println!("main went away: {reason}");
            Ok(())
        }
        _ => Err("usage: ipc-test-renderer calls|unix PATH TOKEN|idle".into()),
    }
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

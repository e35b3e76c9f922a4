//! Modes of the test renderer that misbehave or play main, for the
//! hardening and soak tests.

use std::{
    io::{Read, Write},
    os::{fd::FromRawFd, unix::net::UnixStream},
    time::{Duration, Instant},
};

use ipc_runtime::{Main, Target};
use ipc_suite::{
    probe_main,
    raw::{hello_body, invoke_body},
    ProbeApi, ProbeContract, ProbeEventsEmitter,
};

/// The socket inherited from main, taken raw (no client library).
fn inherited_raw() -> Result<UnixStream, String> {
    // `FD:DEVICE:INODE`; this raw peer trusts the number.
    let fd: i32 = std::env::var(ipc_runtime::transport::child::FD_ENV)
        .map_err(|e| e.to_string())?
        .split(':')
        .next()
        .unwrap_or_default()
        .parse()
        .map_err(|e: std::num::ParseIntError| e.to_string())?;
    // SAFETY: main handed this descriptor to this process for this purpose,
    // and nothing else in this process uses it.
    Ok(unsafe { UnixStream::from_raw_fd(fd) })
}

fn write_frame(stream: &mut UnixStream, body: &[u8]) -> Result<(), String> {
    stream
        .write_all(&(body.len() as u32).to_be_bytes())
        .and_then(|()| stream.write_all(body))
        .map_err(|e| e.to_string())
}

fn read_frame(stream: &mut UnixStream) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).map_err(|e| e.to_string())?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).map_err(|e| e.to_string())?;
    Ok(body)
}

fn ready_then_sleep() -> ! {
    println!("ready");
    let _ = std::io::stdout().flush();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Completes the handshake by hand, then sends half of a frame and waits
/// (to be killed mid-frame).
pub fn half_frame() -> Result<(), String> {
    let mut stream = inherited_raw()?;
    write_frame(&mut stream, &hello_body::<ProbeContract>(None))?;
    read_frame(&mut stream)?;
    let body = invoke_body(1, "probe:echo", &[3, b'a', b'b', b'c']);
    stream
        .write_all(&(body.len() as u32).to_be_bytes())
        .and_then(|()| stream.write_all(&body[..body.len() / 2]))
        .map_err(|e| e.to_string())?;
    ready_then_sleep()
}

/// Floods main: 64 calls to a slow handler in flight at all times, and
/// fire-and-forget messages as fast as the connection takes them.
pub async fn flood() -> Result<(), String> {
    let api = ProbeApi::connect_inherited()
        .await
        .map_err(|e| e.to_string())?;
    for i in 0..64u64 {
        let probe = api.probe.clone();
        tokio::spawn(async move {
            loop {
                let _ = probe.sleep(20 + i % 5).await;
            }
        });
    }
    let probe = api.probe.clone();
    tokio::spawn(async move {
        for n in 0u64.. {
            if probe.record(n).await.is_err() {
                return;
            }
        }
    });
    println!("ready");
    let _ = std::io::stdout().flush();
    let reason = api.closed().await;
    Err(format!("main went away: {reason}"))
}

/// Connects to main's Unix socket and sends half of a hello (to be killed
/// mid-handshake).
pub fn half_hello(path: &str) -> Result<(), String> {
    let mut stream = UnixStream::connect(path).map_err(|e| e.to_string())?;
    let body = hello_body::<ProbeContract>(Some("whatever"));
    stream
        .write_all(&(body.len() as u32).to_be_bytes())
        .and_then(|()| stream.write_all(&body[..body.len() / 2]))
        .map_err(|e| e.to_string())?;
    ready_then_sleep()
}

/// Plays an impostor of main: listens on a Unix socket at `path`, prints
/// `ready`, and prints how many bytes the first connection sent before it
/// closed (or in a second).
pub fn impostor(path: &str) -> Result<(), String> {
    let listener = std::os::unix::net::UnixListener::bind(path).map_err(|e| e.to_string())?;
    println!("ready");
    let (mut stream, _) = listener.accept().map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    println!("{}", received.len());
    Ok(())
}

/// Plays main: serves the probe on a Unix socket, prints the socket's path
/// and a token, pushes a `tick` every 20 ms, and runs until killed.
pub async fn serve_unix() -> Result<(), String> {
    let (main, _handler) = probe_main();
    let endpoint = main.listen_unix().map_err(|e| e.to_string())?;
    let token = endpoint
        .issue_token::<ProbeApi>("far-renderer")
        .map_err(|e| e.to_string())?;
    println!("{}", endpoint.path().display());
    println!("{token}");
    let _ = std::io::stdout().flush();
    let ticks = ProbeEventsEmitter::new(&main, Target::All);
    for n in 0.. {
        ticks.tick(n);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// This process's resident memory in KiB, from /proc.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Plays main for the soak test: serves 4 well-behaved renderers (this
/// binary in `soak-good` mode) and re-spawns a misbehaving one (`soak-bad`)
/// in a loop, pushes events to all, and after `secs` seconds prints one
/// line: `rss_after_warmup_kib rss_end_kib bad_spawns good_failures secs`.
pub async fn soak_main(secs: u64) -> Result<(), String> {
    let (main, _) = probe_main();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut good = Vec::new();
    for i in 0..4 {
        let mut command = std::process::Command::new(&exe);
        command.args(["soak-good", &secs.to_string()]);
        let child = main
            .spawn_renderer::<ProbeApi>(command, &format!("good-{i}"))
            .await
            .map_err(|e| e.to_string())?;
        good.push(child);
    }
    let ticks = ProbeEventsEmitter::new(&main, Target::All);
    let emit = tokio::spawn(async move {
        for n in 0.. {
            ticks.tick(n);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let spawns = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let bad = tokio::spawn(misbehave_in_a_loop(
        main.clone(),
        exe.clone(),
        spawns.clone(),
    ));
    let start = Instant::now();
    let warmup = Duration::from_secs((secs / 6).max(2));
    tokio::time::sleep(warmup).await;
    let after_warmup = rss_kib();
    let mut failures = 0;
    for mut child in good {
        let status = child.wait().await.map_err(|e| e.to_string())?;
        if !status.success() {
            failures += 1;
        }
    }
    let end = rss_kib();
    emit.abort();
    bad.abort();
    let spawns = spawns.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "{after_warmup} {end} {spawns} {failures} {}",
        start.elapsed().as_secs()
    );
    Ok(())
}

/// Spawns `soak-bad` renderers one after another until aborted, counting
/// in `spawns` those main disconnected as `Misbehaved`.
async fn misbehave_in_a_loop(
    main: Main,
    exe: std::path::PathBuf,
    spawns: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    loop {
        let mut command = std::process::Command::new(&exe);
        command.arg("soak-bad");
        if let Ok(mut child) = main.spawn_renderer::<ProbeApi>(command, "bad").await {
            if let Some(ipc_runtime::DisconnectReason::Misbehaved { .. }) =
                child.disconnected().await
            {
                spawns.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let _ = child.kill().await;
        }
    }
}

/// A well-behaved soak renderer: calls and listens for `secs` seconds;
/// fails (exit 1) if any call fails or no event arrives.
pub async fn soak_good(secs: u64) -> Result<(), String> {
    let api = ProbeApi::connect_inherited()
        .await
        .map_err(|e| e.to_string())?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _ticks = api
        .events
        .on_tick(move |n| {
            let _ = tx.send(n);
        })
        .await
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut calls = 0u64;
    while Instant::now() < deadline {
        let text = format!("call {calls}");
        let echoed = api
            .probe
            .echo(text.clone())
            .await
            .map_err(|e| e.to_string())?;
        if echoed != text {
            return Err(format!("echo returned {echoed:?}"));
        }
        api.probe.record(calls).await.map_err(|e| e.to_string())?;
        calls += 1;
    }
    let mut events = 0;
    while rx.try_recv().is_ok() {
        events += 1;
    }
    if events == 0 {
        return Err("no event arrived".into());
    }
    api.close().await.map_err(|e| e.to_string())
}

/// A misbehaving soak renderer: garbage frames until main disconnects it.
pub fn soak_bad() -> Result<(), String> {
    let mut stream = inherited_raw()?;
    write_frame(&mut stream, &hello_body::<ProbeContract>(None))?;
    read_frame(&mut stream)?;
    for i in 0u64.. {
        let body = match i % 3 {
            0 => vec![0x7f, 1, 2, 3],
            1 => invoke_body(i, "probe:nope", &[]),
            _ => invoke_body(i, "probe:add", &[0xff]),
        };
        if write_frame(&mut stream, &body).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

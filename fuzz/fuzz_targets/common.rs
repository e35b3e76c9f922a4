//! What every fuzz target shares: one runtime for all inputs, and a panic
//! hook that aborts, so that the fuzzer sees a panic (in main or in the
//! renderer) as a crash.

use std::sync::OnceLock;

use ipc_runtime::{Api, IpcError, Main, RendererInfo, Transport};
use tokio::{io::DuplexStream, task::JoinHandle};

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        std::panic::set_hook(Box::new(|info| {
            eprintln!("panic: {info}");
            std::process::abort();
        }));
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

/// A frame on the wire: a big-endian `u32` length, then the body.
pub fn framed(body: &[u8]) -> Vec<u8> {
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

/// `main` accepting a renderer as `A` on an in-memory pipe, in a task of
/// its own; the other end of the pipe, for the fuzz input. (Not every
/// target has a main.)
#[allow(dead_code)]
pub fn accepting<A: Api>(
    main: &Main,
) -> (DuplexStream, JoinHandle<Result<RendererInfo, IpcError>>) {
    let (main_end, peer) = tokio::io::duplex(1 << 20);
    let (r, w) = tokio::io::split(main_end);
    let main = main.clone();
    let accept = tokio::spawn(async move { main.accept::<A>(Transport::new(r, w), "fuzz").await });
    (peer, accept)
}

//! TCP on the loopback interface: a listening socket on main, with one-time
//! tokens, and the renderer's connect.
//!
//! For platforms or set-ups where a Unix socket will not do (a renderer in
//! a container that shares only the network, say). Only loopback addresses
//! are accepted: any local process can reach them, which the one-time
//! tokens deal with, but frames and tokens cross unencrypted, so another
//! network needs a secured stream instead (TLS, handed to
//! [`Main::accept`] as a [`Transport`]).

use std::net::{SocketAddr, ToSocketAddrs};

use tokio::net::TcpListener;

use super::tokens::{Gate, Listener};
use crate::{Api, IpcError, Main, Transport};

/// Main's listening TCP socket on a loopback address. Renderers connect
/// with [`ConnectionBuilder::connect_tcp`](crate::ConnectionBuilder::connect_tcp)
/// and a token from [`TcpEndpoint::issue_token`].
///
/// Dropping the endpoint stops accepting; renderers already connected stay
/// connected.
#[derive(Debug)]
pub struct TcpEndpoint {
    addr: SocketAddr,
    gate: Gate,
}

impl TcpEndpoint {
    /// The address it listens on (with the port the system chose, if it
    /// was asked for port 0), to hand to a renderer.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Issues a one-time token for a renderer that main will label `label`
    /// and accept as API `A`, exactly as
    /// [`UnixEndpoint::issue_token`](super::unix::UnixEndpoint::issue_token)
    /// does (see there). Hand it to that renderer only: on TCP, any local
    /// process can connect, and the token is what tells the renderer apart.
    pub fn issue_token<A: Api>(&self, label: &str) -> Result<String, IpcError> {
        self.gate.issue_token::<A>(label)
    }

    /// How long tokens issued from now on admit a renderer (default
    /// [`DEFAULT_TOKEN_LIFETIME`](super::unix::DEFAULT_TOKEN_LIFETIME)).
    pub fn set_token_lifetime(&self, lifetime: std::time::Duration) {
        self.gate.set_token_lifetime(lifetime);
    }
}

impl Main {
    /// Listens on a TCP socket at `addr`, which must be a loopback address
    /// (`127.0.0.1:0` for a port the system chooses, `[::1]:0`). Must be
    /// called inside a tokio runtime.
    ///
    /// Prefer [`Main::spawn_renderer`] or [`Main::listen_unix`] where they
    /// work: a Unix socket lives in a private directory, a TCP port can be
    /// reached by every local user, so the one-time token
    /// ([`TcpEndpoint::issue_token`]) is all that keeps other processes
    /// out. Other addresses are refused with [`IpcError::Config`]: frames
    /// and tokens cross unencrypted. Fails with [`IpcError::Disconnected`]
    /// once main is closed (it may be called before main is built).
    pub fn listen_tcp(&self, addr: impl ToSocketAddrs) -> Result<TcpEndpoint, IpcError> {
        self.check_open()?;
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| IpcError::io("resolving the address to listen on", e))?
            .collect();
        loopback_only(
            &addrs,
            "listen_tcp listens on",
            "frames and tokens cross unencrypted; over another network, secure the stream \
             yourself (TLS) and hand it to Main::accept",
        )?;
        let runtime = crate::main_process::current_runtime("Main::listen_tcp")?;
        let std_listener = std::net::TcpListener::bind(&addrs[..])
            .map_err(|e| IpcError::io(format!("listening on {}", list(&addrs)), e))?;
        let addr = std_listener
            .local_addr()
            .map_err(|e| IpcError::io("reading the listening address", e))?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| IpcError::io(format!("configuring {addr}"), e))?;
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(std_listener)
                .map_err(|e| IpcError::io(format!("registering {addr}"), e))?
        };
        Ok(TcpEndpoint {
            addr,
            gate: Gate::open(self, &runtime, Listener::Tcp(listener)),
        })
    }
}

/// Refuses `addrs` unless all are loopback addresses: "`what` loopback
/// addresses only …, not X: `why`".
fn loopback_only(addrs: &[SocketAddr], what: &str, why: &str) -> Result<(), IpcError> {
    match addrs.iter().find(|a| !a.ip().is_loopback()) {
        None => Ok(()),
        Some(not_loopback) => Err(IpcError::Config {
            reason: format!(
                "{what} loopback addresses only (127.0.0.1, ::1), not {not_loopback}: {why}"
            ),
        }),
    }
}

fn list(addrs: &[SocketAddr]) -> String {
    let names: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    names.join(", ")
}

/// Connects to main's TCP socket at `addr`, which must be a loopback
/// address: the hello carries the renderer's token in clear, so it is
/// never sent anywhere else.
pub(crate) async fn connect(addr: impl tokio::net::ToSocketAddrs) -> Result<Transport, IpcError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| IpcError::io("resolving main's address", e))?
        .collect();
    loopback_only(
        &addrs,
        "connect_tcp connects to",
        "the token and frames would cross unencrypted",
    )?;
    let stream = tokio::net::TcpStream::connect(&addrs[..])
        .await
        .map_err(|e| IpcError::io(format!("connecting to main at {}", list(&addrs)), e))?;
    Ok(Transport::from_tcp(stream))
}

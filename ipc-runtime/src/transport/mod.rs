//! Transports: the byte streams that frames travel on.
//!
//! A [`Transport`] is any pair of async byte streams. This module builds
//! them from an in-memory pipe ([`memory_pair`]), a Unix domain socket
//! ([`unix`]), a loopback TCP socket ([`tcp`]) or a socket pair shared
//! with a child process ([`child`]).
//! Only this module and its children do I/O set-up; the rest of the runtime
//! sees a `Transport`.

pub mod child;
pub(crate) mod reader;
pub mod tcp;
pub(crate) mod tokens;
pub mod unix;
pub(crate) mod writer;

use std::{fmt, pin::Pin};

use tokio::io::{AsyncRead, AsyncWrite};

use crate::caller::Peer;

pub(crate) type BoxRead = Pin<Box<dyn AsyncRead + Send>>;
pub(crate) type BoxWrite = Pin<Box<dyn AsyncWrite + Send>>;

/// A connection's byte streams, and what the OS says about the peer.
pub struct Transport {
    read: BoxRead,
    write: BoxWrite,
    peer: Option<Peer>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport from separate read and write halves.
    pub fn new(
        read: impl AsyncRead + Send + 'static,
        write: impl AsyncWrite + Send + 'static,
    ) -> Self {
        Transport {
            read: Box::pin(read),
            write: Box::pin(write),
            peer: None,
        }
    }

    /// A transport over a connected Unix domain socket. The peer's
    /// credentials (`SO_PEERCRED`) are recorded when the OS reports them.
    ///
    /// The socket's send buffer is raised to [`SEND_BUFFER`] bytes (see
    /// there for why; the kernel may grant less).
    pub fn from_unix(stream: tokio::net::UnixStream) -> Self {
        let peer = stream.peer_cred().ok().map(|cred| Peer {
            pid: cred.pid().and_then(|pid| u32::try_from(pid).ok()),
            uid: Some(cred.uid()),
        });
        enlarge_send_buffer(&stream);
        let (read, write) = stream.into_split();
        Transport {
            peer,
            ..Transport::new(read, write)
        }
    }

    /// A transport over a connected TCP stream, with Nagle's algorithm off
    /// (`TCP_NODELAY`): the writer already sends what is queued in one
    /// write, and a small reply must not wait for the peer's
    /// acknowledgement. No peer credentials are recorded (TCP has none).
    pub fn from_tcp(stream: tokio::net::TcpStream) -> Self {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not turn off Nagle's algorithm on a TCP stream");
        }
        let (read, write) = stream.into_split();
        Transport::new(read, write)
    }

    /// Replaces what is recorded about the peer.
    pub(crate) fn with_peer(mut self, peer: Option<Peer>) -> Self {
        self.peer = peer;
        self
    }

    /// The peer's credentials, when known.
    pub fn peer(&self) -> Option<Peer> {
        self.peer
    }

    pub(crate) fn into_parts(self) -> (BoxRead, BoxWrite, Option<Peer>) {
        (self.read, self.write, self.peer)
    }
}

/// The send buffer [`Transport::from_unix`] asks of the kernel for its
/// socket, in bytes.
///
/// A Unix stream socket holds at most its sender's send buffer in flight,
/// by default 208 KiB (`net.core.wmem_default`): a 1 MiB frame then leaves
/// in five or more writes, each waiting for the peer to read, and on one CPU
/// each is a switch between the processes. With this value (which Linux
/// doubles for its own bookkeeping) a large frame leaves in one or two
/// writes. The kernel caps it at `net.core.wmem_max` (on many systems also
/// 208 KiB, which still doubles the default); memory is only used while the
/// peer has not read. Larger values were slower in the benchmark (the data
/// in flight no longer fits the caches): see `BENCHMARKS.md`.
pub const SEND_BUFFER: usize = 512 * 1024;

/// Raises `stream`'s send buffer to [`SEND_BUFFER`]. A failure only costs
/// speed, so it is logged and otherwise ignored.
fn enlarge_send_buffer(stream: &tokio::net::UnixStream) {
    let socket = socket2::SockRef::from(stream);
    let current = socket.send_buffer_size().unwrap_or(0);
    if current >= SEND_BUFFER {
        return;
    }
    if let Err(e) = socket.set_send_buffer_size(SEND_BUFFER) {
        tracing::debug!(error = %e, "could not enlarge the socket's send buffer");
    }
}

/// Two connected in-memory transports, for main and a renderer in the same
/// process (tests, or a renderer that runs as a task). Each direction
/// buffers up to `buffer` bytes before the writer waits.
///
/// ```
/// let (main_end, renderer_end) = ipc_runtime::transport::memory_pair(64 * 1024);
/// # drop((main_end, renderer_end));
/// ```
pub fn memory_pair(buffer: usize) -> (Transport, Transport) {
    let (a, b) = tokio::io::duplex(buffer);
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    (Transport::new(ar, aw), Transport::new(br, bw))
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, BorrowedFd};

    use super::*;

    fn send_buffer(fd: BorrowedFd<'_>) -> usize {
        socket2::SockRef::from(&fd).send_buffer_size().unwrap()
    }

    #[tokio::test]
    async fn unix_transports_get_a_larger_send_buffer() {
        let (a, _b) = tokio::net::UnixStream::pair().unwrap();
        let before = send_buffer(std::os::fd::AsFd::as_fd(&a));
        let fd = a.as_raw_fd();
        let transport = Transport::from_unix(a);
        // SAFETY: `transport` owns the descriptor and outlives this borrow.
        let after = send_buffer(unsafe { BorrowedFd::borrow_raw(fd) });
        drop(transport);
        // Linux grants twice what is asked, capped by `net.core.wmem_max`
        // (208 KiB on many systems, so at least 416 KiB granted), against
        // 208 KiB by default.
        assert!(
            after > before,
            "send buffer {before} bytes before, {after} after from_unix"
        );
    }

    #[tokio::test]
    async fn tcp_transports_turn_off_nagle() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        assert!(!stream.nodelay().unwrap(), "the default has Nagle on");
        let fd = stream.as_raw_fd();
        let transport = Transport::from_tcp(stream);
        // SAFETY: `transport` owns the descriptor and outlives this borrow.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        assert!(socket2::SockRef::from(&fd).tcp_nodelay().unwrap());
        drop(transport);
    }
}

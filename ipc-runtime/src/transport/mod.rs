//! Transports: the byte streams that frames travel on.
//!
//! A [`Transport`] is any pair of async byte streams. This module builds
//! them from an in-memory pipe ([`memory_pair`]), a Unix domain socket
//! ([`unix`]) or a socket pair shared with a child process ([`child`]).
//! Only this module and its children do I/O set-up; the rest of the runtime
//! sees a `Transport`.

pub mod child;
pub(crate) mod reader;
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
    pub fn from_unix(stream: tokio::net::UnixStream) -> Self {
        let peer = stream.peer_cred().ok().map(|cred| Peer {
            pid: cred.pid(),
            uid: Some(cred.uid()),
        });
        let (read, write) = stream.into_split();
        Transport {
            peer,
            ..Transport::new(read, write)
        }
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

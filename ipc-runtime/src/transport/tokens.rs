//! One-time tokens, and what every listening endpoint (Unix or TCP
//! socket) shares: the tokens it issued, the main it admits renderers to,
//! and the task that accepts connections and runs their handshakes.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::{
    net::{TcpListener, UnixListener},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::{
    contract::Grant, deadline::capped, main_process::Auth, Api, IpcError, Main, Transport,
};

/// How long a token admits a renderer unless the endpoint says otherwise
/// ([`UnixEndpoint::set_token_lifetime`](super::unix::UnixEndpoint::set_token_lifetime),
/// [`TcpEndpoint::set_token_lifetime`](super::tcp::TcpEndpoint::set_token_lifetime)).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// Every token is this many random bytes…
const TOKEN_BYTES: usize = 32;
/// …in hex: a presented token of another length is refused before it is
/// looked up.
const TOKEN_LEN: usize = 2 * TOKEN_BYTES;

/// A token main issued: what it admits, and until when.
struct Issued {
    label: String,
    grant: Arc<Grant>,
    expires: Instant,
}

/// The one-time tokens main has issued and not yet seen used or expire.
pub(crate) struct Tokens {
    issued: Mutex<HashMap<String, Issued>>,
    lifetime: Mutex<Duration>,
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens {
            issued: Mutex::default(),
            lifetime: Mutex::new(DEFAULT_TOKEN_LIFETIME),
        }
    }
}

impl Tokens {
    fn issue(&self, label: &str, grant: Grant) -> Result<String, IpcError> {
        let mut raw = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut raw).map_err(|e| {
            IpcError::io("generating a token", std::io::Error::other(e.to_string()))
        })?;
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let lifetime = *self.lifetime.lock().unwrap_or_else(|e| e.into_inner());
        let mut issued = self.lock();
        // Tokens never used are forgotten once expired: what the map holds
        // is bounded by how many are issued in one lifetime.
        issued.retain(|_, t| t.expires > now);
        issued.insert(
            token.clone(),
            Issued {
                label: label.to_string(),
                grant: Arc::new(grant),
                expires: now + capped(lifetime),
            },
        );
        Ok(token)
    }

    /// The label and grant the token was issued for, if it is valid (not
    /// used yet, not expired); a token works once.
    pub(crate) fn redeem(&self, token: &str) -> Option<(String, Arc<Grant>)> {
        if token.len() != TOKEN_LEN {
            // Not one of ours: not even hashed.
            return None;
        }
        let issued = self.lock().remove(token)?;
        (issued.expires > Instant::now()).then_some((issued.label, issued.grant))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Issued>> {
        // Critical sections are single map operations: never inconsistent.
        self.issued.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} outstanding)", self.lock().len())
    }
}

/// A listening socket of either kind.
pub(crate) enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Listener {
    async fn accept(&self) -> std::io::Result<Transport> {
        match self {
            Listener::Unix(l) => l.accept().await.map(|(s, _)| Transport::from_unix(s)),
            Listener::Tcp(l) => l.accept().await.map(|(s, _)| Transport::from_tcp(s)),
        }
    }
}

/// The connections an endpoint accepted that have not shown a token yet:
/// at most `limit` at a time. When one more comes, the one that has waited
/// longest is refused to make room, so that connections which never show
/// a token (any local user can open them on a TCP port) cannot keep a
/// renderer out: a renderer sends its token at once, and would have to be
/// outlasted by `limit` newer connections before main has read it.
#[derive(Debug, Default)]
pub(crate) struct WaitingRoom {
    waiting: Mutex<VecDeque<(u64, CancellationToken)>>,
    next: std::sync::atomic::AtomicU64,
}

/// A connection's place in a [`WaitingRoom`], given up when dropped.
pub(crate) struct Waiting {
    room: Arc<WaitingRoom>,
    number: u64,
    limit: usize,
    evicted: CancellationToken,
}

impl WaitingRoom {
    /// A place for a new connection in a room of `limit` places (main's
    /// `max_renderers`, read as each connection comes, so that an endpoint
    /// opened before main was built follows its limits), refusing the
    /// longest-waiting connection if the room is full.
    pub(crate) fn enter(self: &Arc<Self>, limit: usize) -> Waiting {
        let limit = limit.max(1);
        let number = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let evicted = CancellationToken::new();
        let mut waiting = self.lock();
        while waiting.len() >= limit {
            if let Some((_, oldest)) = waiting.pop_front() {
                oldest.cancel();
            }
        }
        waiting.push_back((number, evicted.clone()));
        Waiting {
            room: Arc::clone(self),
            number,
            limit,
            evicted,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, CancellationToken)>> {
        // Single queue operations: never inconsistent.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Waiting {
    /// Resolves when a newer connection took this one's place.
    pub(crate) async fn evicted(&self) {
        self.evicted.cancelled().await;
    }

    /// How many connections the room held at most when this one came.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut waiting = self.room.lock();
        if let Some(at) = waiting.iter().position(|(n, _)| *n == self.number) {
            waiting.remove(at);
        }
    }
}

/// The part of an endpoint that admits renderers: accepts connections in a
/// task of its own (stopped when the gate is dropped) and lets in those
/// that present a token it issued.
#[derive(Debug)]
pub(crate) struct Gate {
    tokens: Arc<Tokens>,
    /// The main renderers are admitted to, to check what tokens grant.
    main: Main,
    task: JoinHandle<()>,
}

impl Gate {
    /// Starts accepting on `listener` for `main`, on `runtime`.
    pub(crate) fn open(main: &Main, runtime: &tokio::runtime::Handle, listener: Listener) -> Self {
        let tokens = Arc::new(Tokens::default());
        let room = Arc::new(WaitingRoom::default());
        let task = runtime.spawn(accept_loop(
            main.clone(),
            listener,
            Arc::clone(&tokens),
            room,
        ));
        Gate {
            tokens,
            main: main.clone(),
            task,
        }
    }

    /// A token for one renderer labelled `label`, accepted as API `A`.
    pub(crate) fn issue_token<A: Api>(&self, label: &str) -> Result<String, IpcError> {
        self.main.check_open()?;
        self.main.check_serves::<A>()?;
        self.tokens.issue(label, Grant::of::<A>())
    }

    pub(crate) fn set_token_lifetime(&self, lifetime: Duration) {
        *self
            .tokens
            .lifetime
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = lifetime;
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(main: Main, listener: Listener, tokens: Arc<Tokens>, room: Arc<WaitingRoom>) {
    loop {
        match listener.accept().await {
            Ok(transport) => {
                let main = main.clone();
                // Taken here, in the order connections came.
                let auth = Auth::Token(Arc::clone(&tokens), room.enter(main.max_renderers()));
                // The handshake runs in its own task so that a slow renderer
                // does not hold up the next one.
                tokio::spawn(async move {
                    let _ = main.accept_with(transport, auth).await;
                });
            }
            Err(e) => {
                warn!(error = %e, "accepting a renderer connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

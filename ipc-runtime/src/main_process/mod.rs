//! The main process: registers services, accepts renderers and serves their
//! calls.
//!
//! Build a [`Main`] with [`Main::builder`], register each service's
//! generated `…Server`, then accept renderers: spawned as child processes
//! ([`Main::spawn_renderer`]), connecting to a private Unix socket
//! ([`Main::listen_unix`]), or over any [`Transport`] ([`Main::accept`]).

mod connection;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    caller::{Peer, RendererId},
    contract::ServiceSummary,
    dispatch::{Dispatch, Router},
    IpcError, Transport,
};

/// The default largest frame main accepts: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;
/// The default time a renderer has to complete its handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds a [`Main`]: the services it serves and its limits.
pub struct MainBuilder {
    router: Router,
    errors: Vec<IpcError>,
    config: Config,
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub max_frame_size: usize,
    pub handshake_timeout: Duration,
}

impl MainBuilder {
    /// Serves a service: pass the `…Server` that `#[service]` generated,
    /// wrapping your handler (`NotesServer::new(MyNotes { .. })`).
    ///
    /// A channel served by two services is reported by [`Self::build`].
    pub fn service(mut self, service: impl Dispatch) -> Self {
        if let Err(e) = self.router.add(Arc::new(service)) {
            self.errors.push(e);
        }
        self
    }

    /// The largest frame accepted from a renderer, in bytes (default
    /// [`DEFAULT_MAX_FRAME_SIZE`]). Larger frames are refused from their
    /// length prefix, before any memory is set aside for them.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.config.max_frame_size = bytes.min(u32::MAX as usize);
        self
    }

    /// How long a renderer has to complete the handshake after connecting
    /// (default [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.config.handshake_timeout = timeout;
        self
    }

    /// Finishes the configuration. Fails if two services define the same
    /// channel or a service was registered twice.
    pub fn build(self) -> Result<Main, IpcError> {
        if let Some(e) = self.errors.into_iter().next() {
            return Err(e);
        }
        let summaries = self.router.descriptors().map(ServiceSummary::of).collect();
        Ok(Main {
            inner: Arc::new(Inner {
                router: self.router,
                summaries,
                config: self.config,
                next_id: AtomicU64::new(1),
                renderers: Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// The main process's IPC hub: serves registered services to every
/// accepted renderer.
///
/// Cheap to clone; clones share the same services and renderers.
#[derive(Clone)]
pub struct Main {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Main {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Main")
            .field("services", &self.inner.summaries.len())
            .field("renderers", &self.renderer_count())
            .finish()
    }
}

pub(crate) struct Inner {
    pub router: Router,
    pub summaries: Vec<ServiceSummary>,
    pub config: Config,
    next_id: AtomicU64,
    renderers: Mutex<HashMap<RendererId, Entry>>,
}

struct Entry {
    info: RendererInfo,
    closed: watch::Receiver<bool>,
    in_flight: Arc<connection::InFlight>,
    stop: CancellationToken,
}

impl Inner {
    fn renderers(&self) -> MutexGuard<'_, HashMap<RendererId, Entry>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every critical section is a single insert, remove or read).
        self.renderers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What main knows about one connected renderer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RendererInfo {
    /// The id main assigned.
    pub id: RendererId,
    /// The label main gave it.
    pub label: String,
    /// The peer process, when the transport reports it.
    pub peer: Option<Peer>,
}

/// How a connection proves it may talk to main.
pub(crate) enum Auth {
    /// The transport itself is the credential (an inherited socket, an
    /// in-memory pipe); the label is main's.
    Trusted(String),
    /// The renderer must present a one-time token from this store.
    Token(Arc<crate::transport::unix::Tokens>),
}

impl Main {
    /// Starts configuring a main process.
    pub fn builder() -> MainBuilder {
        MainBuilder {
            router: Router::default(),
            errors: Vec::new(),
            config: Config {
                max_frame_size: DEFAULT_MAX_FRAME_SIZE,
                handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            },
        }
    }

    /// Accepts a renderer on `transport` and labels it `label`: runs the
    /// handshake, then serves the renderer in a background task.
    ///
    /// The transport is trusted as the renderer's credential, so use this
    /// for in-memory pipes and sockets that only the intended renderer can
    /// hold. Fails if the handshake fails (the renderer is told why).
    pub async fn accept(
        &self,
        transport: Transport,
        label: &str,
    ) -> Result<RendererInfo, IpcError> {
        connection::accept(&self.inner, transport, Auth::Trusted(label.to_string())).await
    }

    pub(crate) async fn accept_with(
        &self,
        transport: Transport,
        auth: Auth,
    ) -> Result<RendererInfo, IpcError> {
        connection::accept(&self.inner, transport, auth).await
    }

    /// The renderers connected now.
    pub fn renderers(&self) -> Vec<RendererInfo> {
        let mut list: Vec<_> = self
            .inner
            .renderers()
            .values()
            .map(|e| e.info.clone())
            .collect();
        list.sort_by_key(|r| r.id);
        list
    }

    /// How many renderers are connected now.
    pub fn renderer_count(&self) -> usize {
        self.inner.renderers().len()
    }

    /// How many calls from renderer `id` are being handled now, or `None`
    /// if it is not connected.
    pub fn in_flight(&self, id: RendererId) -> Option<usize> {
        self.inner.renderers().get(&id).map(|e| e.in_flight.len())
    }

    /// Closes the connection to renderer `id`: its in-flight handlers are
    /// aborted and its pending calls fail with [`IpcError::Disconnected`].
    /// Returns `false` if it was not connected.
    pub fn disconnect(&self, id: RendererId) -> bool {
        match self.inner.renderers().get(&id) {
            Some(entry) => {
                entry.stop.cancel();
                true
            }
            None => false,
        }
    }

    /// Waits until renderer `id` has disconnected and main has released
    /// everything it held for it. Returns at once if it is not connected.
    pub async fn disconnected(&self, id: RendererId) {
        let rx = self.inner.renderers().get(&id).map(|e| e.closed.clone());
        if let Some(mut rx) = rx {
            // An error means the sender is gone, which also means closed.
            let _ = rx.wait_for(|closed| *closed).await;
        }
    }
}

impl Inner {
    pub(crate) fn next_id(&self) -> RendererId {
        RendererId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn register(
        &self,
        info: RendererInfo,
        closed: watch::Receiver<bool>,
        in_flight: Arc<connection::InFlight>,
        stop: CancellationToken,
    ) {
        self.renderers().insert(
            info.id,
            Entry {
                info,
                closed,
                in_flight,
                stop,
            },
        );
    }

    pub(crate) fn unregister(&self, id: RendererId) {
        self.renderers().remove(&id);
    }
}

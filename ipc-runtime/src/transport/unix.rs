//! Unix domain sockets: a private listening socket on main, with one-time
//! tokens, and the renderer's connect.
//!
//! The socket lives in a fresh directory that only the owner can enter
//! (mode `0700`), and the socket file itself is `0600`. That keeps other
//! users out; the one-time token keeps out other processes of the same user
//! that did not get a token from main.

use std::{
    collections::HashMap,
    fs,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::{net::UnixListener, task::JoinHandle};
use tracing::warn;

use crate::{contract::Grant, main_process::Auth, Api, IpcError, Main, Transport};

/// How long a token admits a renderer unless the endpoint says otherwise
/// ([`UnixEndpoint::set_token_lifetime`]).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

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
        let mut raw = [0u8; 32];
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
                expires: now + lifetime,
            },
        );
        Ok(token)
    }

    /// The label and grant the token was issued for, if it is valid (not
    /// used yet, not expired); a token works once.
    pub(crate) fn redeem(&self, token: &str) -> Option<(String, Arc<Grant>)> {
        let issued = self.lock().remove(token)?;
        (issued.expires > Instant::now()).then_some((issued.label, issued.grant))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Issued>> {
        // Critical sections are single map operations: never inconsistent.
        self.issued.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Main's listening Unix socket. Renderers connect with
/// [`ConnectionBuilder::connect_unix`](crate::ConnectionBuilder::connect_unix)
/// and a token from [`UnixEndpoint::issue_token`].
///
/// Dropping the endpoint stops accepting and removes the socket and its
/// directory; renderers already connected stay connected.
#[derive(Debug)]
pub struct UnixEndpoint {
    path: PathBuf,
    dir: PathBuf,
    tokens: Arc<Tokens>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} outstanding)", self.lock().len())
    }
}

impl UnixEndpoint {
    /// The socket's path, to hand to a renderer.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Issues a one-time token for a renderer that main will label `label`
    /// and accept as API `A` (an `expose!` type). Hand it to that renderer
    /// only (for example in its environment); it admits exactly one
    /// connection, made within the token lifetime (60 s unless
    /// [`UnixEndpoint::set_token_lifetime`] says otherwise).
    ///
    /// The first handshake that presents the token uses it up, whether or
    /// not main then admits the renderer: one refused (say with
    /// [`IpcError::ApiNotGranted`]), or one that gave up waiting for a
    /// busy main before main read its hello, needs a new token to try
    /// again. A token is never good for a second attempt, so that one seen
    /// by someone else cannot be replayed after a failure either.
    pub fn issue_token<A: Api>(&self, label: &str) -> Result<String, IpcError> {
        self.tokens.issue(label, Grant::of::<A>())
    }

    /// How long tokens issued from now on admit a renderer (default
    /// [`DEFAULT_TOKEN_LIFETIME`]). A token given to a renderer that never
    /// connected (it crashed, say) stops being a way in.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        *self
            .tokens
            .lifetime
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = lifetime;
    }
}

impl Drop for UnixEndpoint {
    fn drop(&mut self) {
        self.task.abort();
        let _ = fs::remove_file(&self.path);
        let _ = fs::remove_dir(&self.dir);
    }
}

impl Main {
    /// Listens on a new Unix socket in a private directory under the system's
    /// temporary directory. Must be called inside a tokio runtime.
    ///
    /// The directory (`ipc-runtime-<pid>-<random>`, mode 0700) is removed
    /// when the [`UnixEndpoint`] is dropped. A main that ends without
    /// running destructors (killed, or stopped by a signal it does not
    /// handle) leaves it behind: each listen makes a new one, so a new main
    /// still starts, but nothing removes the old one except the system's
    /// cleaning of its temporary directory. Use [`Main::listen_unix_in`]
    /// with a directory of the app's own to keep them in one place.
    pub fn listen_unix(&self) -> Result<UnixEndpoint, IpcError> {
        self.listen_unix_in(&std::env::temp_dir())
    }

    /// Like [`Main::listen_unix`], with the private directory created inside
    /// `parent`.
    pub fn listen_unix_in(&self, parent: &Path) -> Result<UnixEndpoint, IpcError> {
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|e| {
            IpcError::io(
                "naming the socket directory",
                std::io::Error::other(e.to_string()),
            )
        })?;
        let name: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let dir = parent.join(format!("ipc-runtime-{}-{name}", std::process::id()));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| {
                IpcError::io(
                    format!("creating the socket directory {}", dir.display()),
                    e,
                )
            })?;
        let path = dir.join("main.sock");
        let listening = tokio::runtime::Handle::try_current()
            .map_err(|_| IpcError::Config {
                reason: "listen_unix must be called inside a tokio runtime".into(),
            })
            .and_then(|runtime| {
                let _entered = runtime.enter();
                let listener = UnixListener::bind(&path)
                    .map_err(|e| IpcError::io(format!("listening on {}", path.display()), e))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                    .map_err(|e| IpcError::io(format!("restricting {}", path.display()), e))?;
                Ok((runtime, listener))
            });
        let (runtime, listener) = match listening {
            Ok(listening) => listening,
            Err(e) => {
                // Nothing is left behind by a listen that failed.
                let _ = fs::remove_file(&path);
                let _ = fs::remove_dir(&dir);
                return Err(e);
            }
        };
        let tokens = Arc::new(Tokens::default());
        let task = runtime.spawn(accept_loop(self.clone(), listener, Arc::clone(&tokens)));
        Ok(UnixEndpoint {
            path,
            dir,
            tokens,
            task,
        })
    }
}

async fn accept_loop(main: Main, listener: UnixListener, tokens: Arc<Tokens>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let main = main.clone();
                let auth = Auth::Token(Arc::clone(&tokens));
                // The handshake runs in its own task so that a slow renderer
                // does not hold up the next one.
                tokio::spawn(async move {
                    let _ = main.accept_with(Transport::from_unix(stream), auth).await;
                });
            }
            Err(e) => {
                warn!(error = %e, "accepting a renderer connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Connects to main's socket at `path`.
pub(crate) async fn connect(path: &Path) -> Result<Transport, IpcError> {
    let stream = tokio::net::UnixStream::connect(path)
        .await
        .map_err(|e| IpcError::io(format!("connecting to main at {}", path.display()), e))?;
    Ok(Transport::from_unix(stream))
}

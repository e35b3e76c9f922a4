//! Unix domain sockets: a private listening socket on main, with one-time
//! tokens, and the renderer's connect.
//!
//! The socket lives in a fresh directory that only the owner can enter
//! (mode `0700`), and the socket file itself is `0600`. That keeps other
//! users out; the one-time token keeps out other processes of the same user
//! that did not get a token from main.

use std::{
    fs,
    os::{
        fd::AsRawFd,
        unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    },
    path::{Path, PathBuf},
    time::Duration,
};

use tokio::net::UnixListener;
use tracing::debug;

pub use super::tokens::DEFAULT_TOKEN_LIFETIME;
use super::tokens::{Gate, Listener};
use crate::{Api, IpcError, Main, Transport};

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
    gate: Gate,
    /// Locked for as long as the endpoint lives: marks `dir` as in use.
    _lock: fs::File,
    /// Keeps this process's own sweeps away from `dir`.
    _live: LiveDir,
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
    /// The first handshake that presents the token uses it up (one of a
    /// renderer of another protocol version is refused before its token
    /// is read), whether or not main then admits the renderer: one refused (say with
    /// [`IpcError::ApiNotGranted`]), or one that gave up waiting for a
    /// busy main before main read its hello, needs a new token to try
    /// again. A token is never good for a second attempt, so that one seen
    /// by someone else cannot be replayed after a failure either.
    ///
    /// Fails with [`IpcError::Disconnected`] once main is closed, and, once
    /// main is built, with [`IpcError::Config`] if it does not serve every
    /// contract `A` draws from (every renderer connecting as `A` would be
    /// refused). A token issued before [`build`](crate::MainBuilder::build)
    /// is not checked: a renderer presenting it for such an `A` is refused
    /// at its handshake instead.
    pub fn issue_token<A: Api>(&self, label: &str) -> Result<String, IpcError> {
        self.gate.issue_token::<A>(label)
    }

    /// How long tokens issued from now on admit a renderer (default
    /// [`DEFAULT_TOKEN_LIFETIME`]). A token given to a renderer that never
    /// connected (it crashed, say) stops being a way in. `Duration::MAX`:
    /// tokens never expire (each still admits one renderer, and main keeps
    /// each one it issued until it is used).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.gate.set_token_lifetime(lifetime);
    }
}

impl Drop for UnixEndpoint {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        let _ = remove_dir_of(&self.dir);
        // The gate (accepting) and `_lock` go after this, when the fields
        // drop: the directory was never unlocked while it held a socket.
    }
}

/// What every socket directory's name starts with.
const DIR_PREFIX: &str = "ipc-runtime-";
/// The file in a socket directory that its main keeps locked for as long
/// as it listens there.
const LOCK_FILE: &str = "main.lock";
/// The socket's file name in its directory.
const SOCKET_FILE: &str = "main.sock";

/// The socket directories this process listens in, by device and inode:
/// its own sweeps never try their locks. Where `flock` locks belong to the
/// process rather than to the open file (NFS emulates them with POSIX
/// locks), this process would get its own directory's lock, and closing
/// that file would release the lock its endpoint holds.
static LIVE_DIRS: std::sync::Mutex<Vec<(u64, u64)>> = std::sync::Mutex::new(Vec::new());

/// A directory in [`LIVE_DIRS`] for as long as this lives.
#[derive(Debug)]
struct LiveDir((u64, u64));

impl LiveDir {
    fn register(dir: &Path) -> std::io::Result<LiveDir> {
        let meta = fs::metadata(dir)?;
        let id = (meta.dev(), meta.ino());
        live_dirs().push(id);
        Ok(LiveDir(id))
    }

    fn is_live(meta: &fs::Metadata) -> bool {
        live_dirs().contains(&(meta.dev(), meta.ino()))
    }
}

impl Drop for LiveDir {
    fn drop(&mut self) {
        let mut dirs = live_dirs();
        if let Some(at) = dirs.iter().position(|d| *d == self.0) {
            dirs.swap_remove(at);
        }
    }
}

fn live_dirs() -> std::sync::MutexGuard<'static, Vec<(u64, u64)>> {
    // Single pushes and removals: never left inconsistent by a panic.
    LIVE_DIRS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes what a socket directory may hold, then the directory (which
/// fails, leaving it, if something else is in it); whether this call
/// removed the directory.
fn remove_dir_of(dir: &Path) -> bool {
    let _ = fs::remove_file(dir.join(SOCKET_FILE));
    let _ = fs::remove_file(dir.join(LOCK_FILE));
    fs::remove_dir(dir).is_ok()
}

/// Takes an exclusive `flock` on `file` without waiting: `Ok(false)` if
/// another open file (in any process) holds one.
///
/// The lock belongs to the open file, so the kernel releases it when the
/// last descriptor of it closes, whatever ends the process (a kill
/// included); it is not inherited across `exec` (std opens files
/// close-on-exec), so a renderer started by main does not keep it.
fn try_lock(file: &fs::File) -> std::io::Result<bool> {
    // SAFETY: `flock` only reads the descriptor, which `file` keeps open
    // for the duration of the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        _ => Err(e),
    }
}

/// Makes the socket directory `parent/ipc-runtime-<pid>-<name>`, mode
/// 0700, holding a locked [`LOCK_FILE`], and returns it with the lock.
///
/// The directory is made and locked under a hidden name and then renamed
/// into place, so a directory under the final name holds a locked file
/// from its first moment: [`remove_stale_dirs`] never mistakes the
/// directory of a main that is still starting for an abandoned one.
fn make_locked_dir(parent: &Path, name: &str) -> Result<(PathBuf, fs::File), IpcError> {
    let final_name = format!("{DIR_PREFIX}{}-{name}", std::process::id());
    let dir = parent.join(&final_name);
    let staging = parent.join(format!(".{final_name}.new"));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(|e| {
            IpcError::io(
                format!("creating the socket directory {}", staging.display()),
                e,
            )
        })?;
    let locked = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(staging.join(LOCK_FILE))
        .and_then(|file| match try_lock(&file)? {
            true => Ok(file),
            false => Err(std::io::Error::other("another process holds its lock")),
        })
        .map_err(|e| IpcError::io(format!("locking {}", staging.join(LOCK_FILE).display()), e))
        .and_then(|file| {
            fs::rename(&staging, &dir)
                .map_err(|e| IpcError::io(format!("creating {}", dir.display()), e))?;
            Ok(file)
        });
    match locked {
        Ok(file) => Ok((dir, file)),
        Err(e) => {
            let _ = remove_dir_of(&staging);
            Err(e)
        }
    }
}

/// Removes the socket directories in `parent` that mains which ended
/// without cleaning up (killed, say) left behind: those whose
/// [`LOCK_FILE`] nobody holds.
///
/// A live main holds its lock from before its directory has its name
/// until after it is removed, so only abandoned directories are taken,
/// whichever process or PID namespace made them. Directories of other
/// users, and those without a lock file (made by versions of this crate
/// from before the lock), are left alone. Errors only skip a directory.
fn remove_stale_dirs(parent: &Path, uid: u32) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .as_encoded_bytes()
            .starts_with(DIR_PREFIX.as_bytes())
        {
            continue;
        }
        let dir = entry.path();
        // Not followed if a link: only real directories of this user, and
        // not this process's own.
        let ours = fs::symlink_metadata(&dir)
            .is_ok_and(|m| m.is_dir() && m.uid() == uid && !LiveDir::is_live(&m));
        if !ours {
            continue;
        }
        // Not followed if a link, never waiting (a FIFO), a regular file.
        let lock = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(dir.join(LOCK_FILE));
        let Ok(lock) = lock else {
            continue;
        };
        if !lock.metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        // Only a directory holding nothing but what a main puts there (a
        // socket and its lock): one of the user's own that merely shares
        // the name is left alone.
        if !only_main_files(&dir) {
            continue;
        }
        if let Ok(true) = try_lock(&lock) {
            if remove_dir_of(&dir) {
                debug!(dir = %dir.display(), "removed a socket directory a main left behind");
            }
        }
    }
}

/// Whether `dir` holds its [`LOCK_FILE`] and at most a socket called
/// [`SOCKET_FILE`], and nothing else.
fn only_main_files(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.into_iter().all(|entry| {
        let Ok(entry) = entry else { return false };
        let Ok(kind) = entry.file_type() else {
            return false;
        };
        let name = entry.file_name();
        (name == LOCK_FILE && kind.is_file()) || (name == SOCKET_FILE && kind.is_socket())
    })
}

/// Refuses a parent directory where another user could replace the socket
/// directory (rename it away and put one of their own under its name, to
/// receive the tokens renderers send): one writable by others without the
/// sticky bit (which `/tmp` has), or owned by another user than this one
/// or root.
fn check_parent(parent: &Path) -> Result<(), IpcError> {
    let meta = fs::metadata(parent).map_err(|e| {
        IpcError::io(
            format!("reading the socket directory's parent {}", parent.display()),
            e,
        )
    })?;
    let me = effective_uid();
    let mode = meta.mode();
    let others_write = mode & 0o022 != 0;
    let sticky = mode & 0o1000 != 0;
    let reason = if meta.uid() != me && meta.uid() != 0 {
        Some(format!("it belongs to another user (uid {})", meta.uid()))
    } else if others_write && !sticky {
        Some(format!(
            "other users can write to it (mode {:o}) and it lacks the sticky bit that stops them renaming what is not theirs",
            mode & 0o7777
        ))
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(IpcError::Config {
            reason: format!(
                "refusing to listen in {}: {reason}, so another user could put a socket of their own in place of main's and receive the renderers' tokens; \
                 use a directory of this user's (or one with the sticky bit, like /tmp)",
                parent.display()
            ),
        }),
    }
}

impl Main {
    /// Listens on a new Unix socket in a private directory under the system's
    /// temporary directory. Must be called inside a tokio runtime.
    ///
    /// The directory (`ipc-runtime-<pid>-<random>`, mode 0700) is removed
    /// when the [`UnixEndpoint`] is dropped. A main that ends without
    /// running destructors (killed, or stopped by a signal it does not
    /// handle) cannot remove it; the next listen in the same place does:
    /// each main keeps a lock on a file in its directory for as long as
    /// it listens, the kernel releases it however the main ends, and a
    /// listen removes the directories whose lock nobody holds. Use
    /// [`Main::listen_unix_in`] with a directory of the app's own to keep
    /// them in one place.
    ///
    /// A renderer that main did not start itself (one launched by a
    /// launcher, a shell script, or a test) connects with the socket's
    /// path and a one-time token issued for it:
    ///
    /// ```
    /// use ipc_runtime::{expose, service, Main};
    ///
    /// #[service(namespace = "clock")]
    /// pub trait Clock {
    ///     async fn now(&self) -> u64;
    /// }
    ///
    /// expose! {
    ///     pub struct ClockApi { clock: Clock { now } }
    /// }
    ///
    /// struct Fixed;
    /// impl Clock for Fixed {
    ///     async fn now(&self) -> u64 { 42 }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ipc_runtime::IpcError> {
    /// let main = Main::builder().service(ClockServer::new(Fixed)).build()?;
    /// let endpoint = main.listen_unix()?;
    /// // Hand both to the renderer, for example in its environment:
    /// let path = endpoint.path().to_owned();
    /// let token = endpoint.issue_token::<ClockApi>("clock-window")?;
    ///
    /// // In the renderer's process (here a task of the same one):
    /// let api = ClockApi::connect_unix(&path, &token).await?;
    /// assert_eq!(api.clock.now().await?, 42);
    /// // The token is used up: a second connect with it is refused.
    /// assert!(ClockApi::connect_unix(&path, &token).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn listen_unix(&self) -> Result<UnixEndpoint, IpcError> {
        self.listen_unix_in(&std::env::temp_dir())
    }

    /// Like [`Main::listen_unix`], with the private directory created inside
    /// `parent` (and directories left there by mains that were killed
    /// removed, as [`Main::listen_unix`] says).
    ///
    /// Fails with [`IpcError::Disconnected`] once main is closed (it may be
    /// called before main is built), and with [`IpcError::Config`] if
    /// `parent` belongs to another user
    /// (root aside), or others can write to it and it lacks the sticky bit:
    /// another user could then replace the socket directory with one of
    /// their own and receive the renderers' tokens.
    pub fn listen_unix_in(&self, parent: &Path) -> Result<UnixEndpoint, IpcError> {
        self.check_open()?;
        check_parent(parent)?;
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|e| {
            IpcError::io(
                "naming the socket directory",
                std::io::Error::other(e.to_string()),
            )
        })?;
        let name: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let (dir, lock) = make_locked_dir(parent, &name)?;
        let live = match LiveDir::register(&dir) {
            Ok(live) => live,
            Err(e) => {
                let _ = remove_dir_of(&dir);
                return Err(IpcError::io(format!("reading {}", dir.display()), e));
            }
        };
        let path = dir.join(SOCKET_FILE);
        let listening =
            crate::main_process::current_runtime("Main::listen_unix").and_then(|runtime| {
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
                let _ = remove_dir_of(&dir);
                return Err(e);
            }
        };
        // Our own directory says who "this user" is; it is locked, so the
        // sweep leaves it alone.
        if let Ok(meta) = fs::metadata(&dir) {
            remove_stale_dirs(parent, meta.uid());
        }
        Ok(UnixEndpoint {
            path,
            dir,
            gate: Gate::open(self, &runtime, Listener::Unix(listener)),
            _lock: lock,
            _live: live,
        })
    }
}

/// Connects to main's socket at `path`, after checking that the process
/// listening there is this user's (or root's): the token is sent to no one
/// else.
pub(crate) async fn connect(path: &Path) -> Result<Transport, IpcError> {
    let stream = tokio::net::UnixStream::connect(path)
        .await
        .map_err(|e| IpcError::io(format!("connecting to main at {}", path.display()), e))?;
    let peer = stream
        .peer_cred()
        .map_err(|e| IpcError::io(format!("reading who listens at {}", path.display()), e))?;
    let me = effective_uid();
    if !trusted_peer(peer.uid(), me) {
        return Err(IpcError::Unauthorized {
            reason: format!(
                "the socket at {} is served by another user's process (uid {}), not main's; not sending it the token",
                path.display(),
                peer.uid()
            ),
        });
    }
    Ok(Transport::from_unix(stream))
}

/// This process's effective user id.
fn effective_uid() -> u32 {
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether a renderer running as user `me` may send its token to a socket
/// served by user `peer`: this user's main, or root's.
fn trusted_peer(peer: u32, me: u32) -> bool {
    peer == me || peer == 0
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    fn with_lock_file(parent: &Path, name: &str) -> PathBuf {
        let dir = parent.join(name);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join(LOCK_FILE), b"").unwrap();
        dir
    }

    /// The sweep takes a directory whose lock nobody holds, but never one
    /// this process listens in (where locks belong to the process, as on
    /// NFS, it would get that lock), and never waits on, or takes, a lock
    /// "file" that is not a regular file.
    #[test]
    fn a_renderer_sends_its_token_only_to_its_own_user_or_root() {
        assert!(trusted_peer(1000, 1000));
        assert!(trusted_peer(0, 1000));
        assert!(!trusted_peer(1001, 1000));
        assert!(!trusted_peer(65534, 0));
    }

    #[test]
    fn the_sweep_skips_this_processs_directories_and_odd_lock_files() {
        let parent = tempfile::tempdir().unwrap();
        let uid = fs::metadata(parent.path()).unwrap().uid();
        let stale = with_lock_file(parent.path(), "ipc-runtime-1-stale");
        let live = with_lock_file(parent.path(), "ipc-runtime-2-live");
        let _live = LiveDir::register(&live).unwrap();
        let fifo = parent.path().join("ipc-runtime-3-fifo");
        fs::create_dir(&fifo).unwrap();
        let fifo_path =
            std::ffi::CString::new(fifo.join(LOCK_FILE).as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid, NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo_path.as_ptr(), 0o600) }, 0);

        remove_stale_dirs(parent.path(), uid);
        assert!(!stale.exists(), "a directory nobody holds is removed");
        assert!(live.exists(), "this process's own directory is kept");
        assert!(fifo.join(LOCK_FILE).exists(), "a FIFO is not a lock file");

        // Once this process no longer listens there, it goes too.
        drop(_live);
        remove_stale_dirs(parent.path(), uid);
        assert!(!live.exists());
    }
}

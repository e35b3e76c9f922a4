//! Renderers as child processes, wired to main by an inherited socket.
//!
//! Main creates a connected socket pair and starts the child with one end
//! inherited at a descriptor number named in the [`FD_ENV`] environment
//! variable, with the socket's identity (device and inode). No path is
//! involved, so no other process can connect in the renderer's place; and
//! a process that inherits the variable but not the socket (a renderer's
//! own child, say, where that number is now another file) is refused
//! instead of taking over whatever the number names.

use std::{
    os::{
        fd::{AsRawFd, FromRawFd, RawFd},
        unix::net::UnixStream as StdUnixStream,
    },
    sync::atomic::{AtomicBool, Ordering},
};

use crate::{
    caller::Peer,
    main_process::{Auth, ClosedWatch, DisconnectReason, RendererInfo},
    Api, IpcError, Main, RendererId, Transport,
};

/// The environment variable that tells a spawned renderer which descriptor
/// holds its socket, as `FD:DEVICE:INODE` (the socket's identity, checked
/// before the descriptor is used).
pub const FD_ENV: &str = "IPC_RUNTIME_FD";

/// A descriptor's identity: its device and inode numbers, if it is open.
fn identity(fd: RawFd) -> Option<(u64, u64, bool)> {
    // SAFETY: fstat writes into a zeroed stat buffer we own; an invalid
    // descriptor makes it fail, which we check.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then(|| {
            let socket = (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK;
            (st.st_dev as u64, st.st_ino as u64, socket)
        })
    }
}

/// A renderer running as a child process of main.
///
/// The child is killed if this value is dropped while it still runs; call
/// [`RendererProcess::wait`] to let it finish on its own.
///
/// A child that exits (or crashes) stays a zombie, its exit status kept
/// for [`RendererProcess::wait`], until `wait`, [`RendererProcess::kill`]
/// or dropping this value collects it. An app that keeps its windows'
/// `RendererProcess`es in a table should take a window out when it ends
/// (its [`RendererProcess::disconnected`] returns, or
/// [`Main::disconnections`] names it) rather than when the user closes it.
///
/// Main sees the renderer leave when every copy of the child's socket is
/// closed. A process the child starts before it connects (a wrapper
/// script's helper, say) inherits a copy; so when main kills the child
/// ([`RendererProcess::kill`], or dropping this value), it also ends the
/// connection itself if it is still open a second later
/// ([`DisconnectReason::ClosedByMain`]). A child that exits by itself is
/// not second-guessed: its connection ends when its socket closes.
#[derive(Debug)]
#[must_use = "dropping the RendererProcess kills the child at once: bind it to a name that lives as long as the renderer should run (`let window = ...`; `let _ = ...` drops it at once)"]
pub struct RendererProcess {
    info: RendererInfo,
    child: tokio::process::Child,
    closed: ClosedWatch,
    main: Main,
}

impl RendererProcess {
    /// The connection's id.
    pub fn id(&self) -> RendererId {
        self.info.id
    }

    /// What main recorded about the renderer.
    pub fn info(&self) -> &RendererInfo {
        &self.info
    }

    /// The child's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the child to exit.
    pub async fn wait(&mut self) -> Result<std::process::ExitStatus, IpcError> {
        self.child
            .wait()
            .await
            .map_err(|e| IpcError::io(format!("waiting for renderer {}", self.info.id), e))
    }

    /// Kills the child (SIGKILL) and waits for it. Main then ends the
    /// renderer's connection, if a process the child started keeps it open
    /// (see the type's docs).
    pub async fn kill(&mut self) -> Result<(), IpcError> {
        // A child that already exited by itself is not second-guessed (it
        // may have handed its connection to a process it started).
        let running = matches!(self.child.try_wait(), Ok(None));
        let killed = self.child.kill().await;
        if running {
            self.release_when_killed();
        }
        killed.map_err(|e| IpcError::io(format!("killing renderer {}", self.info.id), e))
    }

    /// Once killed, the child's copy of its socket is closed: main sees the
    /// renderer leave at once unless another process holds a copy. Gives
    /// that `EXIT_GRACE`, then ends the connection from main's side.
    fn release_when_killed(&self) {
        let (main, id, mut closed) = (self.main.clone(), self.info.id, self.closed.clone());
        let release = async move {
            let ended = closed.wait_for(Option::is_some);
            if tokio::time::timeout(EXIT_GRACE, ended).await.is_err() {
                main.disconnect(id);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(release);
            }
            // Dropped outside a runtime: no waiting, then.
            Err(_) => {
                self.main.disconnect(id);
            }
        }
    }

    /// Waits until main has released the renderer's connection, and
    /// returns why it ended. Unlike [`Main::disconnected`], the reason is
    /// kept here after the renderer is gone, however soon it went: `None`
    /// only if main's runtime shut down before the connection ended.
    pub async fn disconnected(&self) -> Option<DisconnectReason> {
        let mut rx = self.closed.clone();
        let reason = rx.wait_for(Option::is_some).await.ok()?.clone();
        reason
    }

    /// The child process handle, for anything else.
    pub fn child_mut(&mut self) -> &mut tokio::process::Child {
        &mut self.child
    }
}

impl Drop for RendererProcess {
    fn drop(&mut self) {
        // `child` kills the process as it drops, right after this, if it
        // still runs.
        // At the level of "renderer connected" and "renderer
        // disconnected": the disconnection that follows reads as the
        // renderer closing its connection, which the kill made it do.
        if let Ok(None) = self.child.try_wait() {
            tracing::info!(
                renderer = %self.info.id,
                label = %self.info.label,
                pid = self.child.id(),
                "killing the renderer: its RendererProcess was dropped while it still ran \
                 (keep the value, or `wait` for the renderer, to let it run)"
            );
            self.release_when_killed();
        }
    }
}

impl Main {
    /// Starts `command` as a renderer process labelled `label`, wired to
    /// main by an inherited socket, and waits for its handshake. The
    /// renderer is accepted as API `A` (an `expose!` type): every frame from
    /// it is checked against `A`'s whitelist.
    ///
    /// The child connects with
    /// [`ConnectionBuilder::connect_inherited`](crate::ConnectionBuilder::connect_inherited).
    /// Its standard streams are left as `command` set them. If the
    /// handshake fails (main refuses the renderer, or it never connects),
    /// the error is returned and the child, told why where main could tell
    /// it, is given a second to exit by itself before it is killed.
    ///
    /// Main kills the child when the returned [`RendererProcess`] is
    /// dropped, but a main that is killed itself (or calls
    /// `std::process::exit`) drops nothing: the renderer learns that main
    /// is gone only from its connection, when it waits on
    /// [`Connection::closed`](crate::Connection::closed) or a call fails
    /// with [`IpcError::Disconnected`]. A renderer that must not outlive
    /// main should exit then (as the demo's windows do); on Linux, one that
    /// may ignore its connection for long can also have the kernel signal
    /// it when main's thread that started it exits (`prctl(PR_SET_PDEATHSIG)`
    /// in the command's `pre_exec`).
    ///
    /// Fails before starting anything if the renderer would be refused:
    /// with [`IpcError::Config`] outside a tokio runtime, if this main is
    /// not built yet, or if it does not serve every contract `A` draws
    /// from, with
    /// [`IpcError::Disconnected`] if it is closed. Also fails with
    /// [`IpcError::Config`] in a process that main started as a renderer
    /// and that has not connected yet: a program that misreads which part
    /// it plays would otherwise start copies of itself without end.
    pub async fn spawn_renderer<A: Api>(
        &self,
        command: std::process::Command,
        label: &str,
    ) -> Result<RendererProcess, IpcError> {
        self.check_accepting("Main::spawn_renderer")?;
        self.check_serves::<A>()?;
        check_not_an_unconnected_renderer()?;
        let (main_end, child_end) = StdUnixStream::pair()
            .and_then(|(a, b)| Ok((above_stdio(a)?, above_stdio(b)?)))
            .map_err(|e| IpcError::io("creating a socket pair", e))?;
        let fd = child_end.as_raw_fd();
        let mut command = tokio::process::Command::from(command);
        let (device, inode, _) = identity(fd).ok_or_else(|| {
            IpcError::io(
                "reading the renderer socket",
                std::io::Error::last_os_error(),
            )
        })?;
        command
            .env(FD_ENV, format!("{fd}:{device}:{inode}"))
            .kill_on_drop(true);
        // SAFETY: the closure runs in the child between fork and exec and
        // only calls fcntl, which is async-signal-safe. It clears
        // close-on-exec on the child's end of the socket pair so that the
        // renderer inherits it; main's end keeps close-on-exec.
        unsafe {
            command.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // Registered with tokio before the child exists: in a runtime
        // without I/O, tokio panics here, and not after starting a child
        // that nothing would then wait for or kill.
        main_end
            .set_nonblocking(true)
            .map_err(|e| IpcError::io("configuring the renderer socket", e))?;
        let stream = tokio::net::UnixStream::from_std(main_end)
            .map_err(|e| IpcError::io("registering the renderer socket", e))?;
        let mut child = command
            .spawn()
            .map_err(|e| IpcError::io(format!("starting renderer `{label}`"), e))?;
        drop(child_end);
        // Not `SO_PEERCRED`: on a socket pair it names the process that
        // made the pair, main itself.
        let peer = Peer {
            pid: child.id(),
            uid: child.id().and_then(uid_of),
        };
        let transport = Transport::from_unix(stream).with_peer(Some(peer));
        // If the handshake fails, the child is given `EXIT_GRACE` to exit
        // by itself (a refused renderer reads why, and may report it),
        // then `child` is dropped and so killed.
        let (info, closed) = match self.accept_with(transport, Auth::trusted::<A>(label)).await {
            Ok(accepted) => accepted,
            Err(e) => {
                let exited = tokio::time::timeout(EXIT_GRACE, child.wait()).await;
                return Err(match (e, exited) {
                    // Most often the program exited (or is not a
                    // renderer): its exit status says more than the
                    // closed socket.
                    (IpcError::Disconnected { reason, cause }, Ok(Ok(status))) => IpcError::Disconnected {
                        reason: format!(
                            "{reason}: renderer `{label}` exited ({status}); the program spawned must \
                             connect with `connect_inherited` (is it the renderer, and did it print an error?)"
                        ),
                        cause,
                    },
                    (e, _) => e,
                });
            }
        };
        Ok(RendererProcess {
            info,
            child,
            closed,
            main: self.clone(),
        })
    }
}

/// `stream`, moved above the standard streams' numbers if it took one of
/// them (main started with stdin or stdout closed): the child's standard
/// streams, set up on 0–2 after the fork, would replace its end of the
/// socket, and inherit main's end as one of them.
fn above_stdio(stream: StdUnixStream) -> std::io::Result<StdUnixStream> {
    if stream.as_raw_fd() > 2 {
        return Ok(stream);
    }
    // SAFETY: fcntl only reads `stream`'s descriptor, which is open; on
    // success the new descriptor is ours alone, and owned from here on.
    unsafe {
        match libc::fcntl(stream.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) {
            -1 => Err(std::io::Error::last_os_error()),
            fd => Ok(StdUnixStream::from_raw_fd(fd)),
        }
    }
}

/// How long a renderer whose handshake failed is given to exit by itself
/// before it is killed: a refused renderer reads why and may report it, and
/// the error for one that closed its connection carries its exit status.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The user process `pid` runs as, where the OS says: on Linux, the owner
/// of `/proc/PID` (read once the child has started its program, so after
/// any change of user made while spawning it).
fn uid_of(pid: u32) -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/proc/{pid}"))
            .ok()
            .map(|m| m.uid())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// Set once the inherited socket has been taken, so that it is never
/// wrapped twice (two owners of one descriptor).
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The descriptor of the socket main handed this process, as [`FD_ENV`]
/// names it and checked to be that socket; or why there is none.
fn inherited_fd() -> Result<RawFd, String> {
    let value = std::env::var(FD_ENV).map_err(|_| format!("{FD_ENV} is not set"))?;
    let mut parts = value.split(':').map(str::parse::<u64>);
    let (Some(Ok(fd)), Some(Ok(device)), Some(Ok(inode)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!(
            "{FD_ENV}={value:?} is not what main passes (FD:DEVICE:INODE)"
        ));
    };
    let fd = RawFd::try_from(fd)
        .ok()
        .filter(|fd| *fd > 2)
        .ok_or_else(|| {
            format!(
                "{FD_ENV}={value:?} does not name a descriptor main passed (one above 2: 0 to 2 are the standard streams)"
            )
        })?;
    match identity(fd) {
        Some((_, _, false)) => Err(format!("descriptor {fd} from {FD_ENV} is not a socket")),
        Some((d, i, true)) if (d, i) == (device, inode) => Ok(fd),
        _ => Err(format!(
            "descriptor {fd} is not the socket main handed over (this process inherited {FD_ENV} but not that socket)"
        )),
    }
}

/// Refuses to spawn a renderer from a process that main started as one
/// and that has not connected yet: a program that misreads its role (say,
/// it checks for `--render` where main passes `--renderer`) runs main's
/// code in the child, which would spawn another child, and so on without
/// end.
fn check_not_an_unconnected_renderer() -> Result<(), IpcError> {
    if TAKEN.load(Ordering::SeqCst) || inherited_fd().is_err() {
        return Ok(());
    }
    Err(IpcError::Config {
        reason: format!(
            "this process was started by Main::spawn_renderer as a renderer ({FD_ENV} names its \
             socket, not yet connected), yet it is spawning a renderer itself, as main would: check \
             how the program decides which part to play (the argument or environment variable its \
             main passes to the renderer's command); a renderer that is meant to start renderers of \
             its own must connect with connect_inherited first"
        ),
    })
}

/// The socket this process inherited from main.
pub(crate) fn inherited() -> Result<Transport, IpcError> {
    let fd = inherited_fd().map_err(|why| IpcError::Config {
        reason: format!(
            "{why}; connect_inherited works only in a process started by Main::spawn_renderer"
        ),
    })?;
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Err(IpcError::Config {
            reason: "the inherited socket was already used by an earlier connect_inherited".into(),
        });
    }
    // SAFETY: `fd` is the socket main handed to this process for this
    // purpose (its identity checked above), and `TAKEN` guarantees that it
    // gets exactly one owner.
    let stream = unsafe { StdUnixStream::from_raw_fd(fd) };
    // SAFETY: fcntl on a descriptor we own; keeps it from leaking into
    // processes this renderer starts.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
    stream
        .set_nonblocking(true)
        .map_err(|e| IpcError::io("configuring the inherited socket", e))?;
    let stream = tokio::net::UnixStream::from_std(stream)
        .map_err(|e| IpcError::io("registering the inherited socket", e))?;
    Ok(Transport::from_unix(stream))
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    /// The only test in this crate that sets `FD_ENV` (the environment is
    /// the process's).
    #[tokio::test]
    async fn only_the_socket_main_named_is_taken_over() {
        let (mine, _peer) = StdUnixStream::pair().unwrap();
        let fd = mine.as_raw_fd();
        let (device, inode, _) = identity(fd).unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        let cases = [
            (format!("{fd}"), "FD:DEVICE:INODE"),
            (
                format!("{fd}:{device}:{}", inode + 1),
                "not the socket main handed over",
            ),
            (format!("{}:0:0", file.as_raw_fd()), "is not a socket"),
            ("2:0:0".to_string(), "one above 2"),
        ];
        for (value, expected) in cases {
            std::env::set_var(FD_ENV, &value);
            let err = inherited().unwrap_err();
            assert!(err.to_string().contains(expected), "{value}: {err}");
            // Refused before anything was taken: still open, still ours.
            assert!(identity(fd).is_some());
            assert!(!TAKEN.load(Ordering::SeqCst));
        }
        std::env::set_var(FD_ENV, format!("{fd}:{device}:{inode}"));
        let taken = inherited();
        std::mem::forget(mine); // `taken` owns the descriptor now
        assert!(taken.is_ok(), "{taken:?}");
    }
}

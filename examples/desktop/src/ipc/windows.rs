//! `windows`: each window is a renderer process that main spawns, accepted
//! as its role's API. Main keeps the list, opens and closes windows for
//! renderers that ask, relays commands between them, and reaps every
//! process it started.
//!
//! No window outlives main:
//! - main closes every window before it exits ([`WindowsHandler::close_all`]);
//! - each process is owned by a task here, and `spawn_renderer` starts it
//!   with `kill_on_drop`: if main's runtime stops without closing them, the
//!   processes are killed as the tasks are dropped;
//! - if main dies abruptly (SIGKILL, a crash), each window sees its
//!   connection close (`api.closed()`) and exits on its own.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use ipc_runtime::{Main, RendererId, RendererProcess, Target};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::{
    caller,
    contract::{
        by_whom, EditorApi, Role, SettingsWindowApi, WindowInfo, Windows, WindowsError,
        WindowsEventsContract, WindowsEventsEmitter,
    },
    log,
    notify::Notifier,
};

/// At most this many windows at once: a renderer asking for windows in a
/// loop must not fork-bomb the machine.
pub const MAX_WINDOWS: usize = 8;
/// The longest command `windows:tell` relays.
pub const MAX_COMMAND_BYTES: usize = 1024;
/// How long a window has to exit after main disconnects it, before it is
/// killed.
pub const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How long `open` waits for a new window to listen for commands.
pub const READY_WAIT: Duration = Duration::from_secs(5);

/// How a window's process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// Readable: "exited with exit status: 0", "killed after …".
    pub how: String,
    /// Whether it exited with status 0.
    pub success: bool,
}

/// Resolves when a window has ended.
pub type Gone = watch::Receiver<Option<Ended>>;

/// How main starts window processes: this executable, with
/// `--renderer ROLE --mode MODE`.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// The executable (the app itself).
    pub exe: PathBuf,
    /// In the scripted demo, windows opened later run their role's script.
    pub scripted: bool,
}

impl Launcher {
    /// The mode of a window a renderer asked for.
    fn mode_for(&self, role: Role) -> &'static str {
        match (self.scripted, role) {
            (true, Role::Settings) => "script:settings",
            _ => "follow",
        }
    }

    fn command(&self, role: Role, mode: &str, terminal: bool) -> Command {
        let mut command = Command::new(&self.exe);
        command.args(["--renderer", role.as_str(), "--mode", mode]);
        // Only a window that reads the terminal gets it; the others share
        // main's output, and nothing else.
        if !terminal {
            command.stdin(Stdio::null());
        }
        command
    }
}

struct Open {
    info: WindowInfo,
    renderer: RendererId,
    gone: Gone,
    /// Opened by main itself, not at a window's request: the first
    /// window, which stands for the user (it reads the terminal, or runs
    /// the demo's script in the user's place).
    console: bool,
}

struct Shared {
    main: Main,
    launcher: Launcher,
    open: Mutex<BTreeMap<u64, Open>>,
    events: WindowsEventsEmitter,
    notify: Arc<Notifier>,
    /// Windows that did not exit with status 0.
    failed: AtomicUsize,
    /// One permit per window that may be open.
    slots: Arc<Semaphore>,
}

impl Shared {
    fn open(&self) -> MutexGuard<'_, BTreeMap<u64, Open>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The `windows` handler.
pub struct WindowsHandler {
    shared: Arc<Shared>,
}

impl WindowsHandler {
    /// A handler spawning windows with `launcher` through `main`.
    pub fn new(main: Main, launcher: Launcher, notify: Arc<Notifier>) -> Self {
        WindowsHandler {
            shared: Arc::new(Shared {
                events: WindowsEventsEmitter::new(&main, Target::All),
                main,
                launcher,
                open: Mutex::new(BTreeMap::new()),
                notify,
                failed: AtomicUsize::new(0),
                slots: Arc::new(Semaphore::new(MAX_WINDOWS)),
            }),
        }
    }

    /// Opens a window running `mode`; `terminal`: it reads main's standard
    /// input (the interactive prompt). Returns it and a receiver that
    /// resolves when it has ended.
    pub async fn open_with(
        &self,
        role: Role,
        mode: &str,
        terminal: bool,
    ) -> Result<(WindowInfo, Gone), WindowsError> {
        let s = &self.shared;
        // A slot for the window's whole life: concurrent requests cannot
        // overshoot the limit.
        let slot = Arc::clone(&s.slots)
            .try_acquire_owned()
            .map_err(|_| WindowsError::TooMany(MAX_WINDOWS))?;
        let command = s.launcher.command(role, mode, terminal);
        let label = role.as_str();
        let spawned = match role {
            Role::Editor => s.main.spawn_renderer::<EditorApi>(command, label).await,
            Role::Settings => {
                s.main
                    .spawn_renderer::<SettingsWindowApi>(command, label)
                    .await
            }
        };
        let process = spawned.map_err(|e| WindowsError::Spawn(e.to_string()))?;
        let renderer = process.id();
        let info = WindowInfo {
            id: renderer.get(),
            role,
            api: process.info().api.to_string(),
            pid: process.pid(),
        };
        let (ended, gone) = watch::channel(None);
        s.open().insert(
            info.id,
            Open {
                info: info.clone(),
                renderer,
                gone: gone.clone(),
                console: caller().is_none(),
            },
        );
        tokio::spawn(watch_window(
            Arc::clone(s),
            info.clone(),
            process,
            ended,
            slot,
        ));
        log(format_args!(
            "opened window {label}#{} as pid {} ({}), asked by {}",
            info.id,
            info.pid.unwrap_or_default(),
            info.api,
            by_whom(&caller())
        ));
        // Every role listens to `windows:command`; once it does, the window
        // is ready to be told things.
        let _ = tokio::time::timeout(
            READY_WAIT,
            s.main.subscribed(renderer, WindowsEventsContract::COMMAND),
        )
        .await;
        s.events.opened(info.clone());
        s.notify.push(
            "window opened",
            format!("{label}#{} (pid {})", info.id, info.pid.unwrap_or_default()),
            caller(),
        );
        Ok((info, gone))
    }

    /// Closes every window and waits until they have ended.
    pub async fn close_all(&self) {
        let windows: Vec<(RendererId, Gone)> = self
            .shared
            .open()
            .values()
            .map(|w| (w.renderer, w.gone.clone()))
            .collect();
        for (renderer, _) in &windows {
            self.shared.main.disconnect(*renderer);
        }
        for (_, mut gone) in windows {
            let _ = gone.wait_for(Option::is_some).await;
        }
    }

    /// How many windows have ended without exiting with status 0.
    pub fn failed(&self) -> usize {
        self.shared.failed.load(Ordering::SeqCst)
    }

    /// The windows open now.
    pub fn windows(&self) -> Vec<WindowInfo> {
        self.shared
            .open()
            .values()
            .map(|w| w.info.clone())
            .collect()
    }
}

/// Owns one window's process: waits for it to exit (or for its connection
/// to end, then gives it [`EXIT_GRACE`] before killing it), then removes
/// it from the list and tells the other windows.
async fn watch_window(
    s: Arc<Shared>,
    info: WindowInfo,
    mut process: RendererProcess,
    ended: watch::Sender<Option<Ended>>,
    slot: OwnedSemaphorePermit,
) {
    let renderer = process.id();
    let (exited, reason) = tokio::select! {
        status = process.wait() => (Some(status), None),
        reason = s.main.disconnected(renderer) => (None, reason),
    };
    let status = match exited {
        Some(status) => Some(status),
        None => tokio::time::timeout(EXIT_GRACE, process.wait()).await.ok(),
    };
    let mut result = match status {
        Some(Ok(status)) => Ended {
            how: format!("exited with {status}"),
            success: status.success(),
        },
        Some(Err(e)) => Ended {
            how: format!("could not be waited for: {e}"),
            success: false,
        },
        None => {
            let _ = process.kill().await;
            Ended {
                how: format!("killed: still running {EXIT_GRACE:?} after its connection closed"),
                success: false,
            }
        }
    };
    // The process is gone; make sure main has released its connection too.
    s.main.disconnect(renderer);
    let reason = match reason {
        Some(reason) => Some(reason),
        None => s.main.disconnected(renderer).await,
    };
    if let Some(reason) = reason {
        result.how = format!("{} ({reason})", result.how);
    }
    if !result.success {
        s.failed.fetch_add(1, Ordering::SeqCst);
    }
    s.open().remove(&info.id);
    log(format_args!(
        "window {}#{} {}",
        info.role, info.id, result.how
    ));
    s.events.closed(info, result.how.clone());
    let _ = ended.send(Some(result));
    drop(slot);
}

impl Windows for WindowsHandler {
    async fn open(&self, role: Role) -> Result<WindowInfo, WindowsError> {
        let mode = self.shared.launcher.mode_for(role);
        self.open_with(role, mode, false)
            .await
            .map(|(info, _)| info)
    }

    async fn close(&self, id: u64) -> Result<(), WindowsError> {
        if caller().is_some_and(|c| c.id == id) {
            return Err(WindowsError::IsCaller(id));
        }
        let (renderer, mut gone) = {
            let open = self.shared.open();
            let window = open.get(&id).ok_or(WindowsError::NotFound(id))?;
            if window.console && caller().is_some() {
                return Err(WindowsError::FirstWindow(id));
            }
            (window.renderer, window.gone.clone())
        };
        log(format_args!(
            "closing window #{id}, asked by {}",
            by_whom(&caller())
        ));
        self.shared.main.disconnect(renderer);
        let _ = gone.wait_for(Option::is_some).await;
        Ok(())
    }

    async fn list(&self) -> Vec<WindowInfo> {
        self.windows()
    }

    async fn tell(&self, id: u64, command: String) -> Result<(), WindowsError> {
        if command.len() > MAX_COMMAND_BYTES || command.contains(['\n', '\r']) {
            return Err(WindowsError::InvalidCommand(format!(
                "a command is one line of at most {MAX_COMMAND_BYTES} bytes"
            )));
        }
        let renderer = {
            let open = self.shared.open();
            let target = open.get(&id).ok_or(WindowsError::NotFound(id))?;
            // A relayed command runs with the target's API: the window
            // asking must be allowed everything that API allows, or the
            // relay would lend it powers its own whitelist denies. The
            // console (the user) and main itself may relay anything.
            if let Some(asking) = caller() {
                // The first window runs what it is told as the user would:
                // a window telling it could launder any relay through it.
                if target.console && asking.id != id {
                    return Err(WindowsError::ToConsole {
                        id,
                        by: asking.to_string(),
                    });
                }
                let allowed = open
                    .get(&asking.id)
                    .is_some_and(|w| w.console || w.info.role.covers(target.info.role));
                if !allowed {
                    return Err(WindowsError::WiderThanCaller {
                        id,
                        target: target.info.role,
                        by: asking.to_string(),
                    });
                }
            }
            target.renderer
        };
        let told = WindowsEventsEmitter::new(&self.shared.main, Target::Renderer(renderer))
            .command(caller(), command);
        if told == 0 {
            return Err(WindowsError::NotListening(id));
        }
        Ok(())
    }
}

//! `ipc-desktop`: the seed's use cases as one multi-window desktop-style
//! app on `ipc-runtime`: notes in SQLite, settings in a file, windows as
//! renderer processes with different roles, export/import confined to
//! allowed directories, system information and notifications.
//!
//! ```text
//! cargo run --bin ipc-desktop -- --scripted            # the demo: runs itself, exits 0
//! cargo run --bin ipc-desktop                          # type commands in the first window
//! cargo run --bin ipc-desktop -- --data-dir DIR --files-dir DIR2
//! ```
//!
//! Layout, as the seed recommends:
//! - [`contract`]: the channels, data types and each role's API (the
//!   "preload"), shared by both sides;
//! - [`ipc`]: main's side, one module per namespace (`notes`, `settings`,
//!   `windows`, `files`, `system`, `notify`), each a plain struct holding
//!   the state it is given;
//! - [`window`]: a window (renderer process), which sees only its role's
//!   API type;
//! - this file: reads the command line and wires the modules together.

pub mod contract;
pub mod ipc;
pub mod window;

use std::{error::Error, path::PathBuf, process::ExitCode, sync::Arc};

use ipc_runtime::{Main, Target};

use contract::{
    FilesServer, NotesEventsContract, NotesServer, NotificationsContract, Role,
    SettingsEventsContract, SettingsEventsEmitter, SettingsServer, SystemServer,
    WindowsEventsContract, WindowsServer,
};
use ipc::{
    files::FilesHandler,
    log,
    notes::NotesHandler,
    notify::Notifier,
    settings::SettingsHandler,
    system::SystemHandler,
    windows::{Launcher, WindowsHandler},
};

const USAGE: &str = "\
usage: ipc-desktop [--scripted] [--data-dir DIR] [--files-dir DIR]...

  --scripted       run the demo: two editor windows and a settings window
                   exercise every namespace, then the app exits (0 if every
                   step did what it should)
  --data-dir DIR   where notes.sqlite3, settings.json and files/ live
                   (default: a fresh temporary directory with --scripted,
                   else $XDG_DATA_HOME/ipc-desktop or ~/.local/share/ipc-desktop)
  --files-dir DIR  another directory that export and import may use

Without --scripted, the first window reads commands from the terminal
(type `help`).";

/// Where the app keeps its data, and how it starts windows.
pub struct Config {
    /// `notes.sqlite3`, `settings.json` and `files/`.
    pub data_dir: PathBuf,
    /// Other directories files may be exported to and imported from.
    pub files_dirs: Vec<PathBuf>,
    /// How windows are started.
    pub launcher: Launcher,
}

/// Main, wired.
pub struct App {
    /// The IPC hub.
    pub main: Main,
    /// The window manager (main opens the first window with it).
    pub windows: Arc<WindowsHandler>,
    /// The notes database.
    pub notes: Arc<NotesHandler>,
    /// Held for as long as the app runs: one instance per data directory.
    _instance: std::fs::File,
}

/// Takes the data directory's instance lock (`flock` on `ipc-desktop.lock`
/// in it, released by the kernel however the app ends), or says which
/// directory another instance is using: two instances on one directory
/// would each keep their own settings and overwrite the other's.
fn lock_instance(data_dir: &std::path::Path) -> Result<std::fs::File, Box<dyn Error>> {
    use std::os::fd::AsRawFd;
    let path = data_dir.join("ipc-desktop.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    // SAFETY: `flock` only reads the descriptor, which `file` keeps open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(format!(
            "another ipc-desktop is running with the data directory {}; close it first, or pass another --data-dir",
            data_dir.display()
        )
        .into());
    }
    Ok(file)
}

/// Creates each namespace's handler with its state and registers it, with
/// the events main pushes.
pub fn wire(config: &Config) -> Result<App, Box<dyn Error>> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        format!(
            "creating the data directory {}: {e}",
            config.data_dir.display()
        )
    })?;
    let instance = lock_instance(&config.data_dir)?;
    let builder = Main::builder();
    let main = builder.main();
    let notify = Arc::new(Notifier::new(&main));
    let notes = Arc::new(NotesHandler::open(
        &config.data_dir.join("notes.sqlite3"),
        &main,
        Arc::clone(&notify),
    )?);
    let settings = SettingsHandler::load(
        config.data_dir.join("settings.json"),
        SettingsEventsEmitter::new(&main, Target::All),
        Arc::clone(&notify),
    );
    let mut roots = vec![config.data_dir.join("files")];
    roots.extend(config.files_dirs.iter().cloned());
    let files = FilesHandler::new(&roots, Arc::clone(&notes))?;
    let windows = Arc::new(WindowsHandler::new(
        main,
        config.launcher.clone(),
        Arc::clone(&notify),
    ));
    let main = builder
        .service(NotesServer::from_arc(Arc::clone(&notes)))
        .service(SettingsServer::new(settings))
        .service(WindowsServer::from_arc(Arc::clone(&windows)))
        .service(FilesServer::new(files))
        .service(SystemServer::new(SystemHandler::default()))
        .events::<NotesEventsContract>()
        .events::<SettingsEventsContract>()
        .events::<WindowsEventsContract>()
        .events::<NotificationsContract>()
        .build()?;
    Ok(App {
        main,
        windows,
        notes,
        _instance: instance,
    })
}

/// The per-user data directory, or a temporary one.
fn default_data_dir() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("XDG_DATA_HOME") {
        PathBuf::from(dir).join("ipc-desktop")
    } else if let Some(home) = var("HOME") {
        PathBuf::from(home).join(".local/share/ipc-desktop")
    } else {
        std::env::temp_dir().join("ipc-desktop")
    }
}

struct AppArgs {
    scripted: bool,
    data_dir: Option<PathBuf>,
    files_dirs: Vec<PathBuf>,
}

enum Cli {
    App(AppArgs),
    /// A window: how main starts renderer processes.
    Renderer {
        role: Role,
        mode: String,
    },
    Help,
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Cli, String> {
    let mut app = AppArgs {
        scripted: false,
        data_dir: None,
        files_dirs: Vec::new(),
    };
    let (mut role, mut mode) = (None, None);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--scripted" => app.scripted = true,
            "--data-dir" => app.data_dir = Some(value()?.into()),
            "--files-dir" => app.files_dirs.push(value()?.into()),
            "--renderer" => role = Some(value()?.parse::<Role>()?),
            "--mode" => mode = Some(value()?),
            "-h" | "--help" => return Ok(Cli::Help),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(match role {
        Some(role) => Cli::Renderer {
            role,
            mode: mode.unwrap_or_else(|| "follow".into()),
        },
        None => Cli::App(app),
    })
}

async fn run_app(args: AppArgs) -> Result<bool, Box<dyn Error>> {
    // From the start, so that an interrupt at any moment is seen below.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    // A scripted run gets a fresh directory (deleted at the end) unless
    // told otherwise.
    let mut temp = None;
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None if args.scripted => temp
            .insert(tempfile::Builder::new().prefix("ipc-desktop-").tempdir()?)
            .path()
            .to_path_buf(),
        None => default_data_dir(),
    };
    let config = Config {
        data_dir,
        files_dirs: args.files_dirs,
        launcher: Launcher {
            exe: std::env::current_exe()?,
            scripted: args.scripted,
        },
    };
    let app = wire(&config)?;
    log(format_args!(
        "pid {}, data in {} ({} notes in notes.sqlite3)",
        std::process::id(),
        config.data_dir.display(),
        app.notes.count().await?
    ));
    if args.scripted {
        plant_demo_link(&config)?;
    }

    let (mode, terminal) = if args.scripted {
        ("script:tour", false)
    } else {
        ("prompt", true)
    };
    let (first, mut gone) = app.windows.open_with(Role::Editor, mode, terminal).await?;
    // Ctrl-C (or SIGINT) ends the app as the first window's end does:
    // windows closed, and a scripted run's temporary directory removed.
    let ended = tokio::select! {
        ended = gone.wait_for(Option::is_some) => ended.ok().and_then(|e| e.clone()),
        _ = interrupt.recv() => {
            log(format_args!(
                "interrupted; closing {} window(s) and exiting",
                app.windows.windows().len()
            ));
            None
        }
    };
    let success = ended.as_ref().is_some_and(|e| e.success);
    if ended.is_some() {
        let others = app.windows.windows().len();
        log(format_args!(
            "the first window (editor#{}) is gone; closing {others} other window(s) and exiting",
            first.id
        ));
    }
    app.windows.close_all().await;
    let failed = app.windows.failed();
    if args.scripted && failed > 0 {
        log(format_args!("{failed} window(s) failed"));
    }
    log(format_args!(
        "bye: {} notes in {}",
        app.notes.count().await?,
        config.data_dir.join("notes.sqlite3").display()
    ));
    drop(temp);
    Ok(success && (failed == 0 || !args.scripted))
}

/// The scripted demo shows a symbolic link out of the files directory
/// being refused: plant one, as a hostile local user could.
fn plant_demo_link(config: &Config) -> std::io::Result<()> {
    let link = config.data_dir.join("files").join("link-out");
    if link.symlink_metadata().is_err() {
        let target = std::env::temp_dir();
        std::os::unix::fs::symlink(&target, &link)?;
        log(format_args!(
            "(demo) planted a symbolic link {} -> {}, to show that main refuses to follow it",
            link.display(),
            target.display()
        ));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match parse(std::env::args().skip(1)) {
        Err(e) => Err(format!("{e}\n\n{USAGE}").into()),
        Ok(Cli::Help) => {
            println!("{USAGE}");
            Ok(true)
        }
        Ok(Cli::Renderer { role, mode }) => window::run(role, &mode).await.map(|()| true),
        Ok(Cli::App(args)) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "warn".into()),
                )
                .with_writer(std::io::stderr)
                .init();
            run_app(args).await
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("ipc-desktop: {e}");
            ExitCode::FAILURE
        }
    }
}

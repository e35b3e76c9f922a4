//! A multi-process notes app: main owns the notes (real files in a
//! temporary directory) and two renderer processes use them over IPC.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example notes
//! ```
//!
//! Main spawns this same executable twice with `--renderer ROLE`, each
//! role accepted as its own exposed API (its whitelist):
//!
//! - the "viewer" (`ViewerApi`: list, get, log, and the `changed` event)
//!   subscribes to `notes:changed` and waits;
//! - the "editor" (`EditorApi`: also create) creates notes, logs with a
//!   fire-and-forget `send`, and has a bad title refused with a typed error;
//! - each note the editor creates is pushed by main to the viewer, which
//!   then reads them and hits the typed "note not found" error.
//!
//! Every process prints what it does; the demo exits 0 on its own.

use std::{
    fs,
    path::PathBuf,
    process::{Command, ExitCode},
    sync::Mutex,
};

use ipc_runtime::{events, expose, service, CallError, Caller, Main, Target};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// The contract, shared by main and renderers.
// ---------------------------------------------------------------------------

/// A note as stored by main.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// Main-assigned id.
    pub id: u64,
    /// First line.
    pub title: String,
    /// The rest.
    pub body: String,
}

/// What can go wrong with a note, delivered to renderers as this type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum NotesError {
    /// No note has this id.
    #[error("note {0} not found")]
    NotFound(u64),
    /// The title is empty or spans lines.
    #[error("invalid title: {0}")]
    InvalidTitle(String),
    /// The disk said no.
    #[error("storage error: {0}")]
    Storage(String),
}

#[service(namespace = "notes")]
pub trait Notes {
    /// Creates a note and returns it with its id.
    async fn create(&self, title: String, body: String) -> Result<Note, NotesError>;
    /// Every note's id and title.
    async fn list(&self) -> Result<Vec<(u64, String)>, NotesError>;
    /// One note.
    async fn get(&self, id: u64) -> Result<Note, NotesError>;
    /// A line for main's log.
    #[ipc(send)]
    async fn log(&self, line: String);
}

/// Pushes from main to renderers.
#[events(namespace = "notes")]
pub trait NotesEvents {
    /// A note was created or changed.
    fn changed(&self, note: Note);
}

expose! {
    /// What the editor window may reach.
    pub struct EditorApi {
        notes: Notes { create, list, get, log },
        events: NotesEvents { changed },
    }

    /// What the viewer window may reach: no `create`.
    pub struct ViewerApi {
        notes: Notes { list, get, log },
        events: NotesEvents { changed },
    }
}

// ---------------------------------------------------------------------------
// Main side: a plain struct holding its state (a directory), and an
// emitter to tell every window about changes.
// ---------------------------------------------------------------------------

struct FileNotes {
    dir: PathBuf,
    next_id: Mutex<u64>,
    changed: NotesEventsEmitter,
}

impl FileNotes {
    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id}.note"))
    }
}

fn storage(e: std::io::Error) -> NotesError {
    NotesError::Storage(e.to_string())
}

fn who() -> String {
    Caller::current().map_or_else(|| "main".into(), |c| format!("{} ({})", c.id(), c.label()))
}

impl Notes for FileNotes {
    async fn create(&self, title: String, body: String) -> Result<Note, NotesError> {
        if title.trim().is_empty() || title.contains('\n') {
            return Err(NotesError::InvalidTitle(format!("{title:?}")));
        }
        let id = {
            let mut next = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
            *next += 1;
            *next
        };
        tokio::fs::write(self.path(id), format!("{title}\n{body}"))
            .await
            .map_err(storage)?;
        println!(
            "[main] {} created note {id} in {}",
            who(),
            self.path(id).display()
        );
        let note = Note { id, title, body };
        let told = self.changed.changed(note.clone());
        println!("[main] pushed notes:changed for note {id} to {told} listening window(s)");
        Ok(note)
    }

    async fn list(&self) -> Result<Vec<(u64, String)>, NotesError> {
        let mut notes = Vec::new();
        let mut entries = tokio::fs::read_dir(&self.dir).await.map_err(storage)?;
        while let Some(entry) = entries.next_entry().await.map_err(storage)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".note").and_then(|s| s.parse().ok()) else {
                continue;
            };
            let text = tokio::fs::read_to_string(entry.path())
                .await
                .map_err(storage)?;
            notes.push((id, text.lines().next().unwrap_or_default().to_string()));
        }
        notes.sort();
        Ok(notes)
    }

    async fn get(&self, id: u64) -> Result<Note, NotesError> {
        let text = match tokio::fs::read_to_string(self.path(id)).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(NotesError::NotFound(id))
            }
            Err(e) => return Err(storage(e)),
        };
        let (title, body) = text.split_once('\n').unwrap_or((&text, ""));
        Ok(Note {
            id,
            title: title.to_string(),
            body: body.to_string(),
        })
    }

    async fn log(&self, line: String) {
        println!("[main] log from {}: {line}", who());
    }
}

async fn run_main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    println!(
        "[main] pid {} storing notes in {}",
        std::process::id(),
        dir.path().display()
    );
    let builder = Main::builder();
    let changed = NotesEventsEmitter::new(&builder.main(), Target::All);
    let main = builder
        .service(NotesServer::new(FileNotes {
            dir: dir.path().to_path_buf(),
            next_id: Mutex::new(0),
            changed,
        }))
        .events::<NotesEventsContract>()
        .build()?;

    let exe = std::env::current_exe()?;
    let command = |role: &str| {
        let mut command = Command::new(&exe);
        command.args(["--renderer", role]);
        command
    };
    let mut viewer = main
        .spawn_renderer::<ViewerApi>(command("viewer"), "viewer")
        .await?;
    println!(
        "[main] spawned renderer {} `viewer` as pid {} (ViewerApi)",
        viewer.id(),
        viewer.pid().unwrap_or_default()
    );
    // Wait until the viewer listens, so that it sees every change.
    if !main
        .subscribed(viewer.id(), NotesEventsContract::CHANGED)
        .await
    {
        return Err("the viewer went away before listening".into());
    }
    let mut editor = main
        .spawn_renderer::<EditorApi>(command("editor"), "editor")
        .await?;
    println!(
        "[main] spawned renderer {} `editor` as pid {} (EditorApi)",
        editor.id(),
        editor.pid().unwrap_or_default()
    );
    for (role, renderer) in [("editor", &mut editor), ("viewer", &mut viewer)] {
        let status = renderer.wait().await?;
        main.disconnected(renderer.id()).await;
        println!("[main] renderer `{role}` exited with {status}");
        if !status.success() {
            return Err(format!("renderer `{role}` failed").into());
        }
    }
    let files = fs::read_dir(dir.path())?.count();
    println!(
        "[main] done: {files} note files on disk, {} renderers connected",
        main.renderer_count()
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Renderer side: only the generated client.
// ---------------------------------------------------------------------------

async fn run_renderer(role: &str) -> Result<(), Box<dyn std::error::Error>> {
    let me = format!("[renderer {role} pid {}]", std::process::id());
    match role {
        "editor" => {
            let api = EditorApi::connect_inherited().await?;
            println!("{me} connected as {} ({})", api.id(), api.label());
            let a = api
                .notes
                .create("Shopping".into(), "eggs, flour".into())
                .await?;
            let b = api.notes.create("Ideas".into(), "typed IPC".into()).await?;
            println!("{me} created notes {} and {}", a.id, b.id);
            api.notes.log("created 2 notes".into()).await?;
            match api.notes.create("two\nlines".into(), String::new()).await {
                Err(CallError::Handler(e)) => println!("{me} main refused a bad title: {e}"),
                other => return Err(format!("expected InvalidTitle, got {other:?}").into()),
            }
            println!("{me} list: {:?}", api.notes.list().await?);
            // Sends are queued; close flushes them before the process exits.
            api.close().await?;
        }
        "viewer" => {
            let api = ViewerApi::connect_inherited().await?;
            println!("{me} connected as {} ({})", api.id(), api.label());
            // The events as a stream to read (dropping it unsubscribes).
            let mut changes = api.events.stream_changed().await?;
            println!("{me} listening to notes:changed");
            for _ in 0..2 {
                let wait = std::time::Duration::from_secs(30);
                let note = tokio::time::timeout(wait, changes.recv())
                    .await
                    .map_err(|_| "no change pushed within 30 s")?
                    .ok_or("main went away")?;
                println!(
                    "{me} pushed by main: note {} {:?} changed",
                    note.id, note.title
                );
            }
            let list = api.notes.list().await?;
            println!("{me} sees {} notes: {list:?}", list.len());
            for (id, _) in &list {
                let note = api.notes.get(*id).await?;
                println!("{me} note {id}: {:?} / {:?}", note.title, note.body);
            }
            match api.notes.get(404).await {
                Err(CallError::Handler(NotesError::NotFound(id))) => {
                    println!("{me} note {id} does not exist (typed error: NotesError::NotFound)")
                }
                other => return Err(format!("expected NotFound, got {other:?}").into()),
            }
            api.notes.log("viewer done".into()).await?;
            api.close().await?;
        }
        other => return Err(format!("unknown role {other}").into()),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [flag, role] if flag == "--renderer" => run_renderer(role).await,
        [] => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "warn".into()),
                )
                .with_writer(std::io::stderr)
                .init();
            run_main().await
        }
        _ => Err("usage: notes [--renderer ROLE]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

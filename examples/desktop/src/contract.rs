//! The contract between main and the windows: the data types, one
//! `#[service]` trait per namespace that windows call, the `#[events]`
//! main pushes, and one `expose!` API per window role.
//!
//! This module is the app's preload script: a window's code holds one of
//! the API types below and can reach nothing else; main accepts each window
//! *as* its role's API and refuses every frame outside that whitelist.

use std::fmt;

use ipc_runtime::{events, expose, service};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// Shared types
// ---------------------------------------------------------------------------

/// A window as main knows it: the id and label main assigned to its
/// connection (never something the window claims).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRef {
    /// Main's id for the window's connection.
    pub id: u64,
    /// Main's label for it (its role).
    pub label: String,
}

impl fmt::Display for WindowRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.label, self.id)
    }
}

/// Who did something: a window, or main itself.
pub fn by_whom(by: &Option<WindowRef>) -> String {
    by.as_ref()
        .map_or_else(|| "main".to_string(), ToString::to_string)
}

// ---------------------------------------------------------------------------
// notes: the SQLite-backed notes
// ---------------------------------------------------------------------------

/// A note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Main-assigned id (never reused).
    pub id: u64,
    /// One line.
    pub title: String,
    /// Free text.
    pub body: String,
    /// Last change, in seconds since the Unix epoch.
    pub updated_at: u64,
}

/// A note without its body, for lists and search results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteSummary {
    /// The note's id.
    pub id: u64,
    /// Its title.
    pub title: String,
    /// Last change, in seconds since the Unix epoch.
    pub updated_at: u64,
}

/// What went wrong with a note, as the window receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum NotesError {
    /// No note has this id.
    #[error("note {0} not found")]
    NotFound(u64),
    /// An argument failed main's validation.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The argument's name.
        field: String,
        /// Why it was refused.
        reason: String,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Storage(String),
    /// The app holds at most this many notes.
    #[error("there are {limit} notes already, as many as the app holds; delete some first")]
    Full {
        /// The limit.
        limit: u64,
    },
}

/// A change to the notes, pushed to every window that listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoteChange {
    /// A note was created (by a window, or by an import).
    Created(Note),
    /// A note was edited.
    Updated(Note),
    /// A note was deleted.
    Deleted {
        /// Its id.
        id: u64,
        /// Its title when deleted.
        title: String,
    },
}

/// A [`NoteChange`] and who made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotesChanged {
    /// What changed.
    pub change: NoteChange,
    /// The window that asked (`None`: main itself).
    pub by: Option<WindowRef>,
}

/// The notes database. Channels `notes:create`, `notes:update`, …
#[service(namespace = "notes")]
pub trait Notes {
    /// Creates a note.
    async fn create(&self, title: String, body: String) -> Result<Note, NotesError>;
    /// Replaces a note's title and body.
    async fn update(&self, id: u64, title: String, body: String) -> Result<Note, NotesError>;
    /// Deletes a note.
    async fn delete(&self, id: u64) -> Result<(), NotesError>;
    /// One note.
    async fn get(&self, id: u64) -> Result<Note, NotesError>;
    /// Every note, most recently changed first.
    async fn list(&self) -> Result<Vec<NoteSummary>, NotesError>;
    /// Full-text search over titles and bodies (SQLite FTS5; every word
    /// must match, as a prefix).
    async fn search(&self, query: String) -> Result<Vec<NoteSummary>, NotesError>;
}

/// Pushed by main on `notes:changed` after every change.
#[events(namespace = "notes")]
pub trait NotesEvents {
    /// A note was created, edited or deleted.
    fn changed(&self, event: NotesChanged);
}

// ---------------------------------------------------------------------------
// settings: a JSON file in the data directory
// ---------------------------------------------------------------------------

/// The colour theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    /// Light.
    Light,
    /// Dark.
    Dark,
    /// Whatever the system uses.
    System,
}

impl fmt::Display for Theme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
            Theme::System => "system",
        })
    }
}

/// The user's settings, as stored in `settings.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSettings {
    /// Colour theme.
    pub theme: Theme,
    /// Editor font size in points (main accepts 8 to 72).
    pub font_size: u32,
    /// Seconds between autosaves; 0 turns autosave off (else 5 to 3600).
    pub autosave_secs: u32,
    /// Interface language, such as `en` or `fr-CA`.
    pub language: String,
}

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings {
            theme: Theme::System,
            font_size: 14,
            autosave_secs: 30,
            language: "en".into(),
        }
    }
}

/// A change to some settings: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsPatch {
    /// New theme.
    pub theme: Option<Theme>,
    /// New font size.
    pub font_size: Option<u32>,
    /// New autosave interval.
    pub autosave_secs: Option<u32>,
    /// New language.
    pub language: Option<String>,
}

/// Why main refused settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SettingsError {
    /// A field failed validation.
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// The field's name, as in `settings.json`.
        field: String,
        /// Why, and what is accepted.
        reason: String,
    },
    /// The settings file could not be written.
    #[error("could not save the settings: {0}")]
    Storage(String),
}

/// The user's settings. Channels `settings:get` and `settings:update`.
#[service(namespace = "settings")]
pub trait Settings {
    /// The current settings.
    async fn get(&self) -> AppSettings;
    /// Applies a patch, validated and saved by main; returns the result.
    async fn update(&self, patch: SettingsPatch) -> Result<AppSettings, SettingsError>;
}

/// Pushed by main on `settings:changed`.
#[events(namespace = "settings")]
pub trait SettingsEvents {
    /// The settings changed.
    fn changed(&self, settings: AppSettings, by: Option<WindowRef>);
}

// ---------------------------------------------------------------------------
// windows: renderer processes that main spawns
// ---------------------------------------------------------------------------

/// A window's role: which API main grants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Notes, files, windows, settings (read), system, notifications:
    /// [`EditorApi`].
    Editor,
    /// Settings only: [`SettingsWindowApi`].
    Settings,
}

impl Role {
    /// Every channel the role's API reaches (its whitelist).
    pub fn channels(self) -> &'static [&'static str] {
        use ipc_runtime::Api;
        match self {
            Role::Editor => EditorApi::ALLOWED,
            Role::Settings => SettingsWindowApi::ALLOWED,
        }
    }

    /// Whether a window of this role may do everything one of `other`
    /// may: its API reaches every channel that one does.
    pub fn covers(self, other: Role) -> bool {
        let mine = self.channels();
        other.channels().iter().all(|c| mine.contains(c))
    }

    /// The role's name on command lines and in labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Editor => "editor",
            Role::Settings => "settings",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "editor" => Ok(Role::Editor),
            "settings" => Ok(Role::Settings),
            other => Err(format!(
                "unknown role `{other}` (expected `editor` or `settings`)"
            )),
        }
    }
}

/// An open window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowInfo {
    /// Main's id for it.
    pub id: u64,
    /// Its role.
    pub role: Role,
    /// The API type main accepted it as (its whitelist).
    pub api: String,
    /// Its process id.
    pub pid: Option<u32>,
}

/// Why main refused a window request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum WindowsError {
    /// No open window has this id.
    #[error("no open window has id {0}")]
    NotFound(u64),
    /// The app's window limit is reached.
    #[error("the app allows at most {0} windows; close one first")]
    TooMany(usize),
    /// A window asked main to close itself; it should just quit.
    #[error("window {0} is the caller: a window closes itself by quitting")]
    IsCaller(u64),
    /// The target window does not listen to commands (yet).
    #[error("window {0} does not listen to commands")]
    NotListening(u64),
    /// A command line was refused.
    #[error("invalid command: {0}")]
    InvalidCommand(String),
    /// The target window may do what the asking window may not: it does
    /// not run commands for it (they would run with the target's API).
    #[error("window {id} is a {target} window, whose API reaches channels {by}'s does not: it does not run commands for it")]
    WiderThanCaller {
        /// The window asked to run the command.
        id: u64,
        /// Its role.
        target: Role,
        /// The window that asked.
        by: String,
    },
    /// Another window asked the first window to run a command: the first
    /// window stands for the user, and would run it with the user's
    /// authority (relaying on to any window).
    #[error("window {id} is the first window, which runs only the user's commands, not {by}'s")]
    ToConsole {
        /// The first window.
        id: u64,
        /// The window that asked.
        by: String,
    },
    /// Another window asked to close the first window, which would end
    /// the app: only the user ends it (by quitting the first window).
    #[error("window {0} is the first window: closing it ends the app, which only the user does")]
    FirstWindow(u64),
    /// The renderer process could not be started.
    #[error("could not start the window: {0}")]
    Spawn(String),
}

/// Window management. Channels `windows:open`, `windows:close`, …
#[service(namespace = "windows")]
pub trait Windows {
    /// Opens a window: main starts a new renderer process with `role`.
    async fn open(&self, role: Role) -> Result<WindowInfo, WindowsError>;
    /// Closes another window (main disconnects it; its process exits).
    async fn close(&self, id: u64) -> Result<(), WindowsError>;
    /// The open windows, by id.
    async fn list(&self) -> Vec<WindowInfo>;
    /// Asks window `id` to run a command line as if typed into it, with its
    /// own API: the way one terminal prompt drives the other windows. The
    /// command runs with the target's API, so only a window whose API
    /// covers the target's may ask (an editor cannot make a settings
    /// window change settings for it), or the first window, which main
    /// opened itself and which stands for the user (it reads the terminal).
    async fn tell(&self, id: u64, command: String) -> Result<(), WindowsError>;
}

/// Pushed by main on `windows:opened`, `windows:closed`, `windows:command`.
#[events(namespace = "windows")]
pub trait WindowsEvents {
    /// A window was opened.
    fn opened(&self, window: WindowInfo);
    /// A window closed (`how`: why and its exit status).
    fn closed(&self, window: WindowInfo, how: String);
    /// Sent to one window: run this command line (see `windows:tell`).
    fn command(&self, from: Option<WindowRef>, line: String);
}

// ---------------------------------------------------------------------------
// files: export and import, only inside allowed directories
// ---------------------------------------------------------------------------

/// Why main refused a file operation. The first three are the ways a path
/// can try to leave the allowed directories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum FilesError {
    /// The path has a `..` component.
    #[error("`{path}` contains `..`: paths may not climb out of the allowed directories")]
    ParentDir {
        /// The path as given.
        path: String,
    },
    /// An absolute path outside every allowed directory.
    #[error("`{path}` is outside the allowed directories {roots:?}")]
    OutsideRoots {
        /// The path as given.
        path: String,
        /// The allowed directories.
        roots: Vec<String>,
    },
    /// The path goes through a symbolic link that leads outside.
    #[error(
        "`{path}` goes through a symbolic link to `{target}`, outside the allowed directories"
    )]
    SymlinkOut {
        /// The path as given.
        path: String,
        /// Where the link leads (or "a missing file" for a dangling one).
        target: String,
    },
    /// The path is unusable for another reason.
    #[error("invalid path `{path}`: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why.
        reason: String,
    },
    /// Nothing to import there.
    #[error("`{path}` does not exist")]
    NotFound {
        /// The path as given.
        path: String,
    },
    /// The file to import (or an export, which must be importable back)
    /// is larger than main reads.
    #[error("`{path}` is {size} bytes; main imports at most {limit}")]
    TooLarge {
        /// The path as given.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file is not a notes export.
    #[error("`{path}` is not a notes export: {reason}")]
    BadFormat {
        /// The path as given.
        path: String,
        /// What the parser said.
        reason: String,
    },
    /// Reading or writing failed.
    #[error("`{path}`: {reason}")]
    Io {
        /// The path as given.
        path: String,
        /// The system's message.
        reason: String,
    },
    /// A note could not be read or imported.
    #[error(transparent)]
    Notes(#[from] NotesError),
}

/// The result of an export or import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// The file, as main resolved it.
    pub file: String,
    /// The notes written (export) or created (import).
    pub notes: Vec<u64>,
}

/// Export and import of notes as JSON files. Channels `files:roots`, …
#[service(namespace = "files")]
pub trait Files {
    /// The directories files may be read from and written to; relative
    /// paths are taken from the first.
    async fn roots(&self) -> Vec<String>;
    /// Writes every note to `path` (JSON).
    async fn export(&self, path: String) -> Result<Transfer, FilesError>;
    /// Creates a note from each note in the export at `path`.
    async fn import(&self, path: String) -> Result<Transfer, FilesError>;
}

// ---------------------------------------------------------------------------
// system: read-only information about the machine
// ---------------------------------------------------------------------------

/// What main reports about the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// Host name.
    pub hostname: String,
    /// Operating system name and version.
    pub os: String,
    /// Kernel version.
    pub kernel: String,
    /// Seconds since boot.
    pub uptime_secs: u64,
    /// Total memory, bytes.
    pub total_memory: u64,
    /// Used memory, bytes.
    pub used_memory: u64,
    /// Logical CPUs.
    pub cpus: usize,
    /// Main's process id.
    pub main_pid: u32,
}

/// System information. Channel `system:info`.
#[service(namespace = "system")]
pub trait System {
    /// A fresh reading.
    async fn info(&self) -> SystemInfo;
}

// ---------------------------------------------------------------------------
// notifications: main → every window
// ---------------------------------------------------------------------------

/// A notification ("note saved", "settings changed", "window opened").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Short title.
    pub title: String,
    /// Details.
    pub body: String,
    /// The window whose request caused it, if any.
    pub by: Option<WindowRef>,
}

/// Pushed by main on `notifications:show`.
#[events(namespace = "notifications")]
pub trait Notifications {
    /// Show this to the user.
    fn show(&self, notification: Notification);
}

// ---------------------------------------------------------------------------
// The roles: what each kind of window may reach
// ---------------------------------------------------------------------------

expose! {
    /// An editor window: notes, files, windows, settings (read only),
    /// system information and notifications.
    pub struct EditorApi {
        notes: Notes { create, update, delete, get, list, search },
        notes_events: NotesEvents { changed },
        settings: Settings { get },
        settings_events: SettingsEvents { changed },
        windows: Windows { open, close, list, tell },
        windows_events: WindowsEvents { opened, closed, command },
        files: Files { roots, export, import },
        system: System { info },
        notifications: Notifications { show },
    }

    /// A settings window: the settings, and the commands main relays to it.
    /// No notes, files, windows or system channels.
    pub struct SettingsWindowApi {
        settings: Settings { get, update },
        settings_events: SettingsEvents { changed },
        windows_events: WindowsEvents { command },
    }
}

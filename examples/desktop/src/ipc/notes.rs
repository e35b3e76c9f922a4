//! `notes`: the notes database (SQLite, with an FTS5 index for search).
//! Every change is pushed to all windows on `notes:changed`, and saves
//! raise a "note saved" notification.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use ipc_runtime::{Main, Target};
use rusqlite::{params, Connection, OptionalExtension};

use super::{
    caller,
    contract::{
        Note, NoteChange, NoteSummary, Notes, NotesChanged, NotesError, NotesEventsEmitter,
        WindowRef,
    },
    notify::Notifier,
};

/// The longest title main accepts, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// The largest body main accepts, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The longest search query, in bytes.
pub const MAX_QUERY_BYTES: usize = 200;
/// The most notes the app holds: `notes:list` returns them all in one
/// frame, which stays well under main's 16 MiB limit (a summary is at
/// most about 820 bytes).
pub const MAX_NOTES: u64 = 10_000;
/// At most this many search results.
pub const MAX_RESULTS: usize = 100;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS notes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    title      TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS notes_fts
    USING fts5(title, body, content = 'notes', content_rowid = 'id');
CREATE TRIGGER IF NOT EXISTS notes_fts_insert AFTER INSERT ON notes BEGIN
    INSERT INTO notes_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
END;
CREATE TRIGGER IF NOT EXISTS notes_fts_delete AFTER DELETE ON notes BEGIN
    INSERT INTO notes_fts(notes_fts, rowid, title, body)
        VALUES ('delete', old.id, old.title, old.body);
END;
CREATE TRIGGER IF NOT EXISTS notes_fts_update AFTER UPDATE ON notes BEGIN
    INSERT INTO notes_fts(notes_fts, rowid, title, body)
        VALUES ('delete', old.id, old.title, old.body);
    INSERT INTO notes_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
END;
";

/// The `notes` handler: the database connection, and the emitters it
/// reports changes with.
pub struct NotesHandler {
    db: Arc<Mutex<Connection>>,
    announcer: Arc<Announcer>,
}

/// Tells every window about changes.
struct Announcer {
    main: Main,
    changed: NotesEventsEmitter,
    notify: Arc<Notifier>,
}

fn storage(e: rusqlite::Error) -> NotesError {
    let moved = e
        .sqlite_error()
        .is_some_and(|e| e.extended_code == rusqlite::ffi::SQLITE_READONLY_DBMOVED);
    if moved {
        // SQLite's own words: "attempt to write a readonly database".
        return NotesError::Storage(
            "the notes database file was moved or deleted while the app ran; \
             nothing more can be saved until the app restarts"
                .into(),
        );
    }
    NotesError::Storage(e.to_string())
}

fn invalid(field: &str, reason: impl Into<String>) -> NotesError {
    NotesError::Invalid {
        field: field.to_string(),
        reason: reason.into(),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Main-side validation of a title and body (the window's own checks, if
/// any, are a convenience; these are the ones that count).
pub fn check_note(title: &str, body: &str) -> Result<(), NotesError> {
    if title.trim().is_empty() {
        return Err(invalid("title", "must not be empty"));
    }
    // A title is shown on one line of a terminal: no line breaks, and no
    // control characters that a terminal would act on (escape sequences).
    if title
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err(invalid(
            "title",
            "must be a single line without control characters",
        ));
    }
    let chars = title.chars().count();
    if chars > MAX_TITLE_CHARS {
        return Err(invalid(
            "title",
            format!("must be at most {MAX_TITLE_CHARS} characters, got {chars}"),
        ));
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(invalid(
            "body",
            format!("must be at most {MAX_BODY_BYTES} bytes, got {}", body.len()),
        ));
    }
    Ok(())
}

/// An FTS5 query matching notes that contain every word of `query` (as a
/// prefix). Each word is quoted, so no user input is parsed as FTS syntax.
pub fn fts_query(query: &str) -> Result<String, NotesError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(invalid(
            "query",
            format!("must be at most {MAX_QUERY_BYTES} bytes"),
        ));
    }
    let words: Vec<String> = query
        .split_whitespace()
        .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
        .collect();
    if words.is_empty() {
        return Err(invalid("query", "must contain at least one word"));
    }
    Ok(words.join(" "))
}

fn to_u64(id: i64) -> u64 {
    u64::try_from(id).unwrap_or_default()
}

fn note_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Note> {
    Ok(Note {
        id: to_u64(row.get(0)?),
        title: row.get(1)?,
        body: row.get(2)?,
        updated_at: to_u64(row.get(3)?),
    })
}

fn summary_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<NoteSummary> {
    Ok(NoteSummary {
        id: to_u64(row.get(0)?),
        title: row.get(1)?,
        updated_at: to_u64(row.get(2)?),
    })
}

fn count(db: &Connection) -> Result<u64, NotesError> {
    db.query_row("SELECT COUNT(*) FROM notes", [], |r| r.get::<_, i64>(0))
        .map(to_u64)
        .map_err(storage)
}

fn id_param(id: u64) -> Result<i64, NotesError> {
    i64::try_from(id).map_err(|_| NotesError::NotFound(id))
}

impl NotesHandler {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path, main: &Main, notify: Arc<Notifier>) -> Result<Self, NotesError> {
        let db = Connection::open(path).map_err(storage)?;
        db.execute_batch(SCHEMA).map_err(storage)?;
        Ok(NotesHandler {
            db: Arc::new(Mutex::new(db)),
            announcer: Arc::new(Announcer {
                main: main.clone(),
                changed: NotesEventsEmitter::new(main, Target::All),
                notify,
            }),
        })
    }

    /// Runs `f` on the connection, off the async workers.
    async fn with_db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, NotesError> + Send + 'static,
    ) -> Result<T, NotesError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves SQLite consistent: every
            // change below is one statement or one transaction.
            let mut db = db.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut db)
        })
        .await
        .map_err(|e| NotesError::Storage(e.to_string()))?
    }

    /// How many notes there are.
    pub async fn count(&self) -> Result<u64, NotesError> {
        self.with_db(|db| count(db)).await
    }

    /// How many notes there are, and the bytes of their titles and bodies.
    pub async fn size(&self) -> Result<(u64, u64), NotesError> {
        self.with_db(|db| {
            db.query_row(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(title AS BLOB)) + LENGTH(CAST(body AS BLOB))), 0) FROM notes",
                [],
                |r| Ok((to_u64(r.get(0)?), to_u64(r.get(1)?))),
            )
            .map_err(storage)
        })
        .await
    }

    /// Every note, oldest first (for exports).
    pub async fn all(&self) -> Result<Vec<Note>, NotesError> {
        self.with_db(|db| {
            let mut stmt = db
                .prepare("SELECT id, title, body, updated_at FROM notes ORDER BY id")
                .map_err(storage)?;
            let notes = stmt
                .query_map([], note_row)
                .map_err(storage)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(storage)?;
            Ok(notes)
        })
        .await
    }

    /// Creates a note on behalf of `by`, and tells every window. Used by
    /// `notes:create` and by imports.
    pub async fn insert(
        &self,
        title: String,
        body: String,
        by: Option<WindowRef>,
    ) -> Result<Note, NotesError> {
        check_note(&title, &body)?;
        let updated_at = now();
        self.change(by, move |db| {
            if count(db)? >= MAX_NOTES {
                return Err(NotesError::Full { limit: MAX_NOTES });
            }
            db.execute(
                "INSERT INTO notes (title, body, updated_at) VALUES (?1, ?2, ?3)",
                params![title, body, updated_at as i64],
            )
            .map_err(storage)?;
            let note = Note {
                id: to_u64(db.last_insert_rowid()),
                title,
                body,
                updated_at,
            };
            Ok((note.clone(), NoteChange::Created(note)))
        })
        .await
    }

    /// Creates `notes` on behalf of `by`, all or none: in one transaction,
    /// which checks the limit too (two imports at once cannot both pass
    /// it), and which runs to its end even if the window that asked goes
    /// away meanwhile. Each note is then announced, in order, before any
    /// later change; in bursts that wait for the windows' queues to have
    /// room (a second at most in all), so that a large import reaches
    /// every window that keeps up whole.
    pub async fn insert_all(
        &self,
        notes: Vec<(String, String)>,
        by: Option<WindowRef>,
    ) -> Result<Vec<u64>, NotesError> {
        for (title, body) in &notes {
            check_note(title, body)?;
        }
        let updated_at = now();
        let announcer = Arc::clone(&self.announcer);
        self.with_db(move |db| {
            let tx = db.transaction().map_err(storage)?;
            if count(&tx)? + notes.len() as u64 > MAX_NOTES {
                return Err(NotesError::Full { limit: MAX_NOTES });
            }
            let mut created = Vec::with_capacity(notes.len());
            for (title, body) in notes {
                tx.execute(
                    "INSERT INTO notes (title, body, updated_at) VALUES (?1, ?2, ?3)",
                    params![title, body, updated_at as i64],
                )
                .map_err(storage)?;
                created.push(Note {
                    id: to_u64(tx.last_insert_rowid()),
                    title,
                    body,
                    updated_at,
                });
            }
            tx.commit().map_err(storage)?;
            let ids = created.iter().map(|n| n.id).collect();
            // Still holding the connection, so that no later change is
            // announced first; this is a blocking thread, which may wait,
            // but for a second at most in all: a window that stops reading
            // then misses events (counted) rather than holding every
            // window's notes up.
            let runtime = tokio::runtime::Handle::current();
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
            for (i, note) in created.into_iter().enumerate() {
                if i % 128 == 0 {
                    let room = announcer.main.room_for_events(&Target::All);
                    let _ = runtime.block_on(tokio::time::timeout_at(deadline, room));
                }
                announcer.announce(NoteChange::Created(note), by.clone());
            }
            Ok(ids)
        })
        .await
    }

    /// Makes a change with `f` and announces it (`f` returns the change
    /// with its result) while still holding the connection: windows see
    /// changes in the order they were made, so a note's `Deleted` can never
    /// arrive before an `Updated` made just before it.
    async fn change<T: Send + 'static>(
        &self,
        by: Option<WindowRef>,
        f: impl FnOnce(&mut Connection) -> Result<(T, NoteChange), NotesError> + Send + 'static,
    ) -> Result<T, NotesError> {
        let announcer = Arc::clone(&self.announcer);
        self.with_db(move |db| {
            let (value, change) = f(db)?;
            announcer.announce(change, by);
            Ok(value)
        })
        .await
    }
}

impl Announcer {
    /// Pushes a change to every window, with a notification for saves.
    /// Emitting only queues the frames: it never waits.
    fn announce(&self, change: NoteChange, by: Option<WindowRef>) {
        let saved = match &change {
            NoteChange::Created(n) | NoteChange::Updated(n) => {
                Some(format!("#{} {:?}", n.id, n.title))
            }
            NoteChange::Deleted { .. } => None,
        };
        self.changed.changed(NotesChanged {
            change,
            by: by.clone(),
        });
        if let Some(what) = saved {
            self.notify.push("note saved", what, by);
        }
    }
}

impl Notes for NotesHandler {
    async fn create(&self, title: String, body: String) -> Result<Note, NotesError> {
        self.insert(title, body, caller()).await
    }

    async fn update(&self, id: u64, title: String, body: String) -> Result<Note, NotesError> {
        check_note(&title, &body)?;
        let key = id_param(id)?;
        let updated_at = now();
        self.change(caller(), move |db| {
            let changed = db
                .execute(
                    "UPDATE notes SET title = ?1, body = ?2, updated_at = ?3 WHERE id = ?4",
                    params![title, body, updated_at as i64, key],
                )
                .map_err(storage)?;
            if changed == 0 {
                return Err(NotesError::NotFound(id));
            }
            let note = Note {
                id,
                title,
                body,
                updated_at,
            };
            Ok((note.clone(), NoteChange::Updated(note)))
        })
        .await
    }

    async fn delete(&self, id: u64) -> Result<(), NotesError> {
        let key = id_param(id)?;
        self.change(caller(), move |db| {
            let tx = db.transaction().map_err(storage)?;
            let title: Option<String> = tx
                .query_row("SELECT title FROM notes WHERE id = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(storage)?;
            let title = title.ok_or(NotesError::NotFound(id))?;
            tx.execute("DELETE FROM notes WHERE id = ?1", [key])
                .map_err(storage)?;
            tx.commit().map_err(storage)?;
            Ok(((), NoteChange::Deleted { id, title }))
        })
        .await
    }

    async fn get(&self, id: u64) -> Result<Note, NotesError> {
        let key = id_param(id)?;
        self.with_db(move |db| {
            db.query_row(
                "SELECT id, title, body, updated_at FROM notes WHERE id = ?1",
                [key],
                note_row,
            )
            .optional()
            .map_err(storage)?
            .ok_or(NotesError::NotFound(id))
        })
        .await
    }

    async fn list(&self) -> Result<Vec<NoteSummary>, NotesError> {
        self.with_db(|db| {
            let mut stmt = db
                .prepare(
                    "SELECT id, title, updated_at FROM notes ORDER BY updated_at DESC, id DESC",
                )
                .map_err(storage)?;
            let notes = stmt
                .query_map([], summary_row)
                .map_err(storage)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(storage)?;
            Ok(notes)
        })
        .await
    }

    async fn search(&self, query: String) -> Result<Vec<NoteSummary>, NotesError> {
        let fts = fts_query(&query)?;
        self.with_db(move |db| {
            let mut stmt = db
                .prepare(
                    "SELECT n.id, n.title, n.updated_at
                     FROM notes_fts JOIN notes n ON n.id = notes_fts.rowid
                     WHERE notes_fts MATCH ?1
                     ORDER BY rank LIMIT ?2",
                )
                .map_err(storage)?;
            let notes = stmt
                .query_map(params![fts, MAX_RESULTS as i64], summary_row)
                .map_err(storage)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(storage)?;
            Ok(notes)
        })
        .await
    }
}

//! `files`: export and import notes as JSON files: a sensitive action, so
//! main decides where files may go. Only paths inside the allowed
//! directories (`files/` in the data directory, and each `--files-dir`)
//! are accepted; a path with `..`, an absolute path elsewhere, or a path
//! that goes through a symbolic link leading out is refused with a typed
//! [`FilesError`] before anything is opened.
//!
//! Those checks read the path as it is when they run; whoever can write in
//! an allowed directory could change it before the file is opened (swap a
//! directory for a link, say). So every file is then opened through a
//! handle on its allowed directory (`cap_std::fs::Dir`), which resolves
//! each component of the path beneath that directory at the moment of use
//! and refuses to leave it. An export is written to a new file and renamed
//! into place, never through an existing one (a hard link to a file
//! elsewhere, a FIFO); an import reads only a regular file with one link,
//! checked on the opened file.

use std::{
    fs,
    io::{Read, Write},
    os::unix::fs::MetadataExt,
    path::{Component, Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use serde::{Deserialize, Serialize};

use super::{
    caller,
    contract::{by_whom, Files, FilesError, Transfer},
    log,
    notes::{check_note, NotesHandler},
};

/// The largest file main imports, in bytes.
pub const MAX_IMPORT_BYTES: u64 = 4 * 1024 * 1024;

const FORMAT: &str = "ipc-desktop notes v1";

/// The JSON written by an export.
#[derive(Serialize, Deserialize)]
struct ExportFile {
    format: String,
    notes: Vec<ExportedNote>,
}

#[derive(Serialize, Deserialize)]
struct ExportedNote {
    title: String,
    body: String,
}

/// An allowed directory: as configured, with its symbolic links resolved
/// (what paths are compared with), and open (what files are opened
/// through).
struct Root {
    given: PathBuf,
    real: PathBuf,
    dir: Arc<Dir>,
}

/// A checked path: in which allowed directory, and where in it.
pub struct Resolved {
    root: usize,
    /// Relative to the allowed directory.
    inside: PathBuf,
    /// In full, for messages and the transfer report.
    pub full: PathBuf,
}

/// The `files` handler: the allowed directories, and the notes it reads
/// and creates.
pub struct FilesHandler {
    roots: Vec<Root>,
    notes: Arc<NotesHandler>,
}

fn io_error(path: &str, e: impl std::fmt::Display) -> FilesError {
    FilesError::Io {
        path: path.to_string(),
        reason: e.to_string(),
    }
}

impl FilesHandler {
    /// A handler allowing `roots` (created if missing; relative paths are
    /// taken from the first).
    pub fn new(roots: &[PathBuf], notes: Arc<NotesHandler>) -> std::io::Result<Self> {
        let mut resolved = Vec::new();
        for given in roots {
            fs::create_dir_all(given)?;
            let given = std::path::absolute(given)?;
            let real = fs::canonicalize(&given)?;
            let dir = Arc::new(Dir::open_ambient_dir(&real, cap_std::ambient_authority())?);
            resolved.push(Root { given, real, dir });
        }
        assert!(!resolved.is_empty(), "at least one allowed directory");
        Ok(FilesHandler {
            roots: resolved,
            notes,
        })
    }

    fn root_names(&self) -> Vec<String> {
        self.roots
            .iter()
            .map(|r| r.real.display().to_string())
            .collect()
    }

    /// Where `requested` leads, if that is inside an allowed directory.
    ///
    /// The checks, in order: no `..` component at all; an absolute path
    /// must start with an allowed directory (a relative one is taken from
    /// the first); then the deepest part of the path that exists is
    /// resolved with its symbolic links, and the result must still be
    /// inside the same directory. A dangling link is refused too (where it
    /// leads cannot be checked).
    pub fn resolve(&self, requested: &str) -> Result<Resolved, FilesError> {
        let invalid = |reason: &str| FilesError::InvalidPath {
            path: requested.to_string(),
            reason: reason.to_string(),
        };
        if requested.is_empty() || requested.contains('\0') {
            return Err(invalid("empty, or contains a NUL byte"));
        }
        let path = Path::new(requested);
        if path.components().any(|c| c == Component::ParentDir) {
            return Err(FilesError::ParentDir {
                path: requested.to_string(),
            });
        }
        let (index, full) = if path.is_absolute() {
            self.roots
                .iter()
                .enumerate()
                .find_map(|(i, r)| {
                    if path.starts_with(&r.real) {
                        Some((i, path.to_path_buf()))
                    } else {
                        let rest = path.strip_prefix(&r.given).ok()?;
                        Some((i, r.real.join(rest)))
                    }
                })
                .ok_or_else(|| FilesError::OutsideRoots {
                    path: requested.to_string(),
                    roots: self.root_names(),
                })?
        } else {
            (0, self.roots[0].real.join(path))
        };
        let root = &self.roots[index];
        if full == root.real {
            return Err(invalid("is an allowed directory itself, not a file in it"));
        }

        // Resolve the deepest existing ancestor as the system would.
        let mut existing = full.as_path();
        let mut missing = Vec::new();
        let real = loop {
            match fs::symlink_metadata(existing) {
                Ok(_) => match fs::canonicalize(existing) {
                    Ok(real) => break real,
                    Err(_) => {
                        return Err(FilesError::SymlinkOut {
                            path: requested.to_string(),
                            target: fs::read_link(existing).map_or_else(
                                |_| "a missing file".to_string(),
                                |t| format!("{} (missing)", t.display()),
                            ),
                        })
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    missing.extend(existing.file_name());
                    // `full` is inside `root.real`, which exists, so there
                    // is always a parent left to try.
                    existing = existing.parent().ok_or_else(|| invalid("has no parent"))?;
                }
                Err(e) => return Err(io_error(requested, e)),
            }
        };
        let real = missing.iter().rev().fold(real, |p, c| p.join(c));
        let Ok(inside) = real.strip_prefix(&root.real) else {
            return Err(FilesError::SymlinkOut {
                path: requested.to_string(),
                target: real.display().to_string(),
            });
        };
        Ok(Resolved {
            root: index,
            inside: inside.to_path_buf(),
            full: real.clone(),
        })
    }

    /// `resolve`, with refusals logged by main (who asked, and why).
    fn checked(&self, op: &str, requested: &str) -> Result<Resolved, FilesError> {
        self.resolve(requested).inspect_err(|e| {
            log(format_args!(
                "refused {op} of {requested:?} for {}: {e}",
                by_whom(&caller())
            ))
        })
    }
}

impl Files for FilesHandler {
    async fn roots(&self) -> Vec<String> {
        self.root_names()
    }

    async fn export(&self, path: String) -> Result<Transfer, FilesError> {
        let file = self.checked("export", &path)?;
        // Refused before the notes are loaded when their text alone is
        // already more than an export may be.
        let (_, text) = self.notes.size().await?;
        if text > MAX_IMPORT_BYTES {
            return Err(FilesError::TooLarge {
                path,
                size: text,
                limit: MAX_IMPORT_BYTES,
            });
        }
        let notes = self.notes.all().await?;
        let ids = notes.iter().map(|n| n.id).collect();
        let json = serde_json::to_vec_pretty(&ExportFile {
            format: FORMAT.into(),
            notes: notes
                .into_iter()
                .map(|n| ExportedNote {
                    title: n.title,
                    body: n.body,
                })
                .collect(),
        })
        .map_err(|e| io_error(&path, e))?;
        // A backup that could not be imported back is no backup.
        if json.len() as u64 > MAX_IMPORT_BYTES {
            return Err(FilesError::TooLarge {
                path,
                size: json.len() as u64,
                limit: MAX_IMPORT_BYTES,
            });
        }
        let dir = Arc::clone(&self.roots[file.root].dir);
        let inside = file.inside.clone();
        let shown = path.clone();
        tokio::task::spawn_blocking(move || write_new(&dir, &inside, &json))
            .await
            .map_err(|e| io_error(&path, e))?
            .map_err(|e| fs_error(&shown, e))?;
        let transfer = Transfer {
            file: file.full.display().to_string(),
            notes: ids,
        };
        log(format_args!(
            "exported {} notes to {} for {}",
            transfer.notes.len(),
            transfer.file,
            by_whom(&caller())
        ));
        Ok(transfer)
    }

    async fn import(&self, path: String) -> Result<Transfer, FilesError> {
        let file = self.checked("import", &path)?;
        let dir = Arc::clone(&self.roots[file.root].dir);
        let inside = file.inside.clone();
        let shown = path.clone();
        let bytes = tokio::task::spawn_blocking(move || read_regular(&dir, &inside, &shown))
            .await
            .map_err(|e| io_error(&path, e))??;
        let bad = |reason: String| FilesError::BadFormat {
            path: path.clone(),
            reason,
        };
        let export: ExportFile = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if export.format != FORMAT {
            return Err(bad(format!(
                "format {:?}, expected {FORMAT:?}",
                export.format
            )));
        }
        // Validate everything before creating anything.
        for (i, note) in export.notes.iter().enumerate() {
            check_note(&note.title, &note.body).map_err(|e| bad(format!("note {i}: {e}")))?;
        }
        let by = caller();
        // All or nothing, the limit checked in the same transaction.
        let notes = export
            .notes
            .into_iter()
            .map(|n| (n.title, n.body))
            .collect();
        let ids = self.notes.insert_all(notes, by.clone()).await?;
        let transfer = Transfer {
            file: file.full.display().to_string(),
            notes: ids,
        };
        log(format_args!(
            "imported {} notes from {} for {}",
            transfer.notes.len(),
            transfer.file,
            by_whom(&by)
        ));
        Ok(transfer)
    }
}

/// An I/O error on `path`; an attempt to leave the allowed directory while
/// opening it (the path changed after it was checked) says so.
fn fs_error(path: &str, e: std::io::Error) -> FilesError {
    if e.kind() == std::io::ErrorKind::PermissionDenied
        && e.to_string().contains("outside of the filesystem")
    {
        return FilesError::SymlinkOut {
            path: path.to_string(),
            target: "a place outside the allowed directories (the path changed while in use)"
                .into(),
        };
    }
    io_error(path, e)
}

/// Suffixes of the temporary files exports are written to.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `inside` (beneath `dir`) as a new file: written to a
/// new temporary file beside it, then renamed over whatever is there, so
/// that nothing is ever written through an existing file.
fn write_new(dir: &Dir, inside: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let parent = inside.parent().unwrap_or(Path::new(""));
    if !parent.as_os_str().is_empty() {
        dir.create_dir_all(parent)?;
    }
    // Not named after the file: a name of up to the system's 255 bytes
    // must still leave room for the temporary one.
    let temp = parent.join(format!(
        ".ipc-desktop-export.{}.{}.tmp",
        std::process::id(),
        NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
    ));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).mode(0o644);
    let written = dir
        .open_with(&temp, &options)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| dir.rename(&temp, dir, inside));
    if written.is_err() {
        let _ = dir.remove_file(&temp);
    }
    written
}

/// Reads `inside` (beneath `dir`): a regular file with no other hard link,
/// of at most [`MAX_IMPORT_BYTES`], as checked on the opened file.
fn read_regular(dir: &Dir, inside: &Path, shown: &str) -> Result<Vec<u8>, FilesError> {
    let mut options = OpenOptions::new();
    // Non-blocking: opening a FIFO must not wait for a writer.
    options.read(true).custom_flags(libc::O_NONBLOCK);
    let file = match dir.open_with(inside, &options) {
        Ok(file) => file.into_std(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FilesError::NotFound {
                path: shown.to_string(),
            })
        }
        Err(e) => return Err(fs_error(shown, e)),
    };
    let meta = file.metadata().map_err(|e| io_error(shown, e))?;
    let refuse = |reason: &str| FilesError::InvalidPath {
        path: shown.to_string(),
        reason: reason.into(),
    };
    if !meta.is_file() {
        return Err(refuse("not a regular file"));
    }
    if meta.nlink() > 1 {
        return Err(refuse(
            "has other hard links, which may be outside the allowed directories",
        ));
    }
    if meta.len() > MAX_IMPORT_BYTES {
        return Err(FilesError::TooLarge {
            path: shown.to_string(),
            size: meta.len(),
            limit: MAX_IMPORT_BYTES,
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_IMPORT_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(shown, e))?;
    Ok(bytes)
}

//! `files`: export and import notes as JSON files: a sensitive action, so
//! main decides where files may go. Only paths inside the allowed
//! directories (`files/` in the data directory, and each `--files-dir`)
//! are accepted; a path with `..`, an absolute path elsewhere, or a path
//! that goes through a symbolic link leading out is refused with a typed
//! [`FilesError`] before anything is opened.

use std::{
    fs::{self, OpenOptions},
    io::{Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Component, Path, PathBuf},
    sync::Arc,
};

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

/// An allowed directory: as configured, and with its symbolic links
/// resolved (what paths are compared with).
struct Root {
    given: PathBuf,
    real: PathBuf,
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
            resolved.push(Root { given, real });
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
    pub fn resolve(&self, requested: &str) -> Result<PathBuf, FilesError> {
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
        let (root, full) = if path.is_absolute() {
            self.roots
                .iter()
                .find_map(|r| {
                    if path.starts_with(&r.real) {
                        Some((r, path.to_path_buf()))
                    } else {
                        let rest = path.strip_prefix(&r.given).ok()?;
                        Some((r, r.real.join(rest)))
                    }
                })
                .ok_or_else(|| FilesError::OutsideRoots {
                    path: requested.to_string(),
                    roots: self.root_names(),
                })?
        } else {
            let root = &self.roots[0];
            (root, root.real.join(path))
        };
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
        if !real.starts_with(&root.real) {
            return Err(FilesError::SymlinkOut {
                path: requested.to_string(),
                target: real.display().to_string(),
            });
        }
        Ok(real)
    }

    /// `resolve`, with refusals logged by main (who asked, and why).
    fn checked(&self, op: &str, requested: &str) -> Result<PathBuf, FilesError> {
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
        let target = file.clone();
        let shown = path.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = target.parent() {
                fs::create_dir_all(dir).map_err(|e| io_error(&shown, e))?;
            }
            // O_NOFOLLOW: never write through a link planted at the last
            // component after the checks.
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&target)
                .and_then(|mut f| f.write_all(&json))
                .map_err(|e| io_error(&shown, e))
        })
        .await
        .map_err(|e| io_error(&path, e))??;
        let transfer = Transfer {
            file: file.display().to_string(),
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
        let source = file.clone();
        let shown = path.clone();
        let bytes = tokio::task::spawn_blocking(move || {
            let meta = match fs::symlink_metadata(&source) {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(FilesError::NotFound { path: shown })
                }
                Err(e) => return Err(io_error(&shown, e)),
            };
            if !meta.is_file() {
                return Err(FilesError::InvalidPath {
                    path: shown,
                    reason: "not a regular file".into(),
                });
            }
            if meta.len() > MAX_IMPORT_BYTES {
                return Err(FilesError::TooLarge {
                    path: shown,
                    size: meta.len(),
                    limit: MAX_IMPORT_BYTES,
                });
            }
            let mut bytes = Vec::new();
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&source)
                .and_then(|f| f.take(MAX_IMPORT_BYTES).read_to_end(&mut bytes))
                .map_err(|e| io_error(&shown, e))?;
            Ok(bytes)
        })
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
        let mut ids = Vec::new();
        for note in export.notes {
            ids.push(
                self.notes
                    .insert(note.title, note.body, by.clone())
                    .await?
                    .id,
            );
        }
        let transfer = Transfer {
            file: file.display().to_string(),
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

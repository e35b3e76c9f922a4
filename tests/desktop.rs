//! End-to-end tests of the desktop example (`examples/desktop`, the
//! `ipc-desktop` binary): the app runs as a real process with its windows
//! as real child processes, on a real SQLite file in a temporary directory.
//! The tests type commands into the first window (its standard input) and
//! read what every process prints.
//!
//! One test instead builds the app's main side in this process (the app's
//! own `wire`, contract and handlers, included below) to accept a raw
//! socket as a settings window and write frames by hand.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use ipc_runtime::{codec, Transport};
use ipc_suite::raw::{accepted, invoke_body, kind, send_body, WireError};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, ChildStdin, Command},
    sync::mpsc,
};

/// The app itself, for the in-process test: its `wire`, contract and
/// handlers, exactly as the binary uses them.
#[path = "../examples/desktop/src/main.rs"]
#[allow(dead_code)]
mod desktop;

const APP: &str = env!("CARGO_BIN_EXE_ipc-desktop");
const WAIT: Duration = Duration::from_secs(20);

/// A running app: its first window reads our commands.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every line so far (stdout, and stderr prefixed), for searching and
    /// for failure messages.
    log: Vec<String>,
    /// `expect` searches from here on: the lines since the last command.
    mark: usize,
}

impl Running {
    /// Starts the app in interactive mode on `data`, with extra arguments.
    async fn start(data: &Path, extra: &[&str]) -> Running {
        let mut child = Command::new(APP)
            .arg("--data-dir")
            .arg(data)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start ipc-desktop");
        let (tx, lines) = mpsc::unbounded_channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let out = tx.clone();
        tokio::spawn(async move {
            let mut lines = stdout.lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = out.send(line);
            }
        });
        tokio::spawn(async move {
            let mut lines = stderr.lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(format!("stderr: {line}"));
            }
        });
        let mut app = Running {
            stdin: child.stdin.take(),
            child,
            lines,
            log: Vec::new(),
            mark: 0,
        };
        app.expect("[editor#1] window open as pid").await;
        app
    }

    /// Types `command` into the first window.
    async fn run(&mut self, command: &str) {
        self.mark = self.log.len();
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }

    /// The first line since the last command that contains `needle`,
    /// waiting for it if need be.
    async fn expect(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut searched = self.mark;
        loop {
            if let Some(line) = self.log[searched..].iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            searched = self.log.len();
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => self.log.push(line),
                Ok(None) | Err(_) => panic!(
                    "no line containing {needle:?}; the app printed:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// `run`, then `expect` each needle.
    async fn check(&mut self, command: &str, needles: &[&str]) -> Vec<String> {
        self.run(command).await;
        let mut found = Vec::new();
        for needle in needles {
            found.push(self.expect(needle).await);
        }
        found
    }

    /// The pids of the open windows, from the `windows` command.
    async fn window_pids(&mut self, count: usize) -> Vec<u32> {
        self.check("windows", &[&format!("{count} window(s):")])
            .await;
        let mut pids = Vec::new();
        for id in 1..=count {
            let line = self.expect(&format!("  #{id} ")).await;
            let pid = line
                .split_whitespace()
                .skip_while(|w| *w != "pid")
                .nth(1)
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("no pid in {line:?}"));
            pids.push(pid);
        }
        pids
    }

    /// Quits the first window; the app exits. Returns its whole output.
    async fn quit(mut self) -> Vec<String> {
        self.run("quit").await;
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the app exits after its first window quits")
            .unwrap();
        while let Ok(Some(line)) = tokio::time::timeout(WAIT, self.lines.recv()).await {
            self.log.push(line);
        }
        assert!(
            status.success(),
            "the app failed: {status}\n{}",
            self.log.join("\n")
        );
        self.log
    }
}

/// A data directory and a directory outside it, both temporary.
fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    (tmp, data, outside)
}

/// Whether `pid` is a live process (a zombie waiting for its reaper
/// counts as gone: it runs nothing).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next());
            !matches!(state, Some("Z" | "X" | "x"))
        }
    }
}

async fn all_gone(pids: &[u32]) -> bool {
    ipc_suite::eventually(Duration::from_secs(10), || {
        pids.iter().all(|&pid| !running(pid))
    })
    .await
}

fn notes_in(db: &Path) -> Vec<(u64, String, String)> {
    let db = rusqlite::Connection::open(db).unwrap();
    let mut stmt = db
        .prepare("SELECT id, title, body FROM notes ORDER BY id")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_namespace_round_trips() {
    let (tmp, data, outside) = dirs();
    let shared = tmp.path().join("shared");
    let mut app = Running::start(&data, &["--files-dir", shared.to_str().unwrap()]).await;
    let main_pid = app.child.id().unwrap();

    // system
    app.check(
        "system",
        &["system: host ", &format!("main is pid {main_pid}")],
    )
    .await;

    // notes: create, update, get, search, delete, list; events and
    // notifications reach the window.
    app.check(
        "note new Groceries 'eggs and flour'",
        &[
            "[editor#1] created note #1 \"Groceries\"",
            "[editor#1] event notes:changed: note #1 \"Groceries\" created by editor#1",
            "[editor#1] notification: note saved: #1 \"Groceries\" (by editor#1)",
        ],
    )
    .await;
    app.check(
        "note edit 1 Groceries 'eggs, flour and butter'",
        &[
            "saved note #1 \"Groceries\"",
            "note #1 \"Groceries\" updated by editor#1",
        ],
    )
    .await;
    app.check("note show 1", &["\"eggs, flour and butter\""])
        .await;
    app.check("note new Ideas 'typed IPC'", &["created note #2 \"Ideas\""])
        .await;
    app.check(
        "note search butt",
        &["1 match(es) for \"butt\": #1 \"Groceries\""],
    )
    .await;
    app.check(
        "note rm 2",
        &[
            "deleted note #2",
            "event notes:changed: note #2 \"Ideas\" deleted by editor#1",
        ],
    )
    .await;
    app.check(
        "note show 2",
        &["main refused: note 2 not found [NotesError::NotFound]"],
    )
    .await;
    app.check(
        "note new '' body",
        &["main refused: invalid title: must not be empty [NotesError::Invalid]"],
    )
    .await;
    app.check("notes", &["1 note(s)", "  #1 Groceries"]).await;

    // settings, through a settings window (another process) told by this
    // one; the change is broadcast and validated on main.
    app.check("settings", &["settings: theme=system font_size=14"])
        .await;
    app.check(
        "open settings",
        &[
            "opened settings#2",
            "SettingsWindowApi",
            "notification: window opened: settings#2",
        ],
    )
    .await;
    app.check(
        "tell 2 set theme dark font_size 16",
        &[
            "[settings#2] saved settings: theme=dark font_size=16",
            "[editor#1] event settings:changed: theme=dark font_size=16 autosave_secs=30 language=en (by settings#2)",
            "[editor#1] notification: settings changed: theme system → dark, font_size 14 → 16 (by settings#2)",
        ],
    )
    .await;
    app.check(
        "tell 2 set font_size 7",
        &["[settings#2] error: main refused: invalid `font_size`: must be between 8 and 72 points, got 7 [SettingsError::Invalid]"],
    )
    .await;
    app.check("settings", &["settings: theme=dark font_size=16"])
        .await;
    app.check(
        "tell 2 note new sneaky x",
        &["[settings#2] error: `note` is not available in a settings window"],
    )
    .await;

    // windows: list with ids, roles and APIs; open another editor; close.
    app.check(
        "windows",
        &[
            "2 window(s):",
            "  #1 editor ",
            "EditorApi  (this window)",
            "  #2 settings ",
        ],
    )
    .await;
    app.check(
        "open editor",
        &["opened editor#3", "[editor#3] window open as pid"],
    )
    .await;
    app.check(
        "tell 3 note new 'From three' 'another process'",
        &[
            "[editor#3] created note #3 \"From three\"",
            "[editor#1] event notes:changed: note #3 \"From three\" created by editor#3",
        ],
    )
    .await;
    app.check(
        "close 1",
        &["main refused: window 1 is the caller: a window closes itself by quitting [WindowsError::IsCaller]"],
    )
    .await;
    app.check(
        "close 3",
        &[
            "[editor#3] main closed this window",
            "[editor#1] closed window #3",
        ],
    )
    .await;
    app.check(
        "close 9",
        &["main refused: no open window has id 9 [WindowsError::NotFound]"],
    )
    .await;

    // files: export to the data directory and to --files-dir, import back.
    let roots = app
        .check("roots", &["files may be read and written in: "])
        .await;
    assert!(roots[0].contains(&data.join("files").display().to_string()));
    assert!(roots[0].contains(&shared.display().to_string()));
    app.check("export all.json", &["exported 2 note(s) to "])
        .await;
    let exported = std::fs::read_to_string(data.join("files/all.json")).unwrap();
    assert!(exported.contains("eggs, flour and butter"), "{exported}");
    let in_shared = shared.join("copy.json");
    app.check(
        &format!("export {}", in_shared.display()),
        &["exported 2 note(s) to "],
    )
    .await;
    app.check(
        &format!("import {}", in_shared.display()),
        &["imported 2 note(s) from ", "#4, #5"],
    )
    .await;
    app.check(
        "import missing.json",
        &["main refused: `missing.json` does not exist [FilesError::NotFound]"],
    )
    .await;

    let log = app.quit().await;
    assert!(
        log.iter()
            .any(|l| l.contains("[settings#2] main closed this window; exiting")),
        "main closed the settings window on exit:\n{}",
        log.join("\n")
    );

    // What main stored, read straight from the database and the file.
    let notes = notes_in(&data.join("notes.sqlite3"));
    let titles: Vec<&str> = notes.iter().map(|n| n.1.as_str()).collect();
    assert_eq!(
        titles,
        ["Groceries", "From three", "Groceries", "From three"]
    );
    let settings = std::fs::read_to_string(data.join("settings.json")).unwrap();
    assert!(settings.contains("\"theme\": \"dark\""), "{settings}");
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_and_settings_survive_a_restart_of_main() {
    let (_tmp, data, _) = dirs();
    let mut app = Running::start(&data, &[]).await;
    app.check(
        "note new Persistent 'written before the restart'",
        &["created note #1"],
    )
    .await;
    app.check(
        "note new Doomed 'deleted before the restart'",
        &["created note #2"],
    )
    .await;
    app.check("note rm 2", &["deleted note #2"]).await;
    app.check("open settings", &["opened settings#2"]).await;
    app.check(
        "tell 2 set language fr-CA autosave_secs 0",
        &["[editor#1] event settings:changed: theme=system font_size=14 autosave_secs=0 language=fr-CA"],
    )
    .await;
    app.quit().await;

    let mut app = Running::start(&data, &[]).await;
    assert!(
        app.log
            .iter()
            .any(|l| l.contains("(1 notes in notes.sqlite3)")),
        "{:?}",
        app.log
    );
    app.check("notes", &["1 note(s)", "  #1 Persistent"]).await;
    app.check("note show 1", &["\"written before the restart\""])
        .await;
    app.check("note search restart", &["1 match(es)", "#1 \"Persistent\""])
        .await;
    app.check(
        "settings",
        &["settings: theme=system font_size=14 autosave_secs=0 language=fr-CA"],
    )
    .await;
    // Ids are never reused, across restarts too.
    app.check("note new After 'the restart'", &["created note #3"])
        .await;
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_escapes_are_refused_in_each_form() {
    let (_tmp, data, outside) = dirs();
    let files = data.join("files");
    std::fs::create_dir_all(&files).unwrap();
    // A valid export outside: importing it would create a note.
    let secret = outside.join("secret.json");
    std::fs::write(
        &secret,
        r#"{"format":"ipc-desktop notes v1","notes":[{"title":"secret","body":"outside"}]}"#,
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, files.join("link-out")).unwrap();
    std::os::unix::fs::symlink(&secret, files.join("link-file.json")).unwrap();
    std::os::unix::fs::symlink(outside.join("nothing"), files.join("dangling")).unwrap();

    let mut app = Running::start(&data, &[]).await;
    app.check("note new Kept here", &["created note #1"]).await;
    let refused = |variant: &str| format!("[FilesError::{variant}]");

    // `..`, even when it would land back inside.
    for command in [
        "export ../escape.json",
        "export sub/../../escape.json",
        "export sub/../inside.json",
        "import ../outside/secret.json",
    ] {
        app.check(command, &[&refused("ParentDir")]).await;
    }
    // An absolute path elsewhere.
    for command in [
        format!("export {}", outside.join("escape.json").display()),
        format!("import {}", secret.display()),
        "export /etc/ipc-desktop-escape.json".to_string(),
    ] {
        app.check(&command, &[&refused("OutsideRoots")]).await;
    }
    // A symbolic link that leads out: a directory, a file, a dangling one.
    for command in [
        "export link-out/escape.json",
        "import link-out/secret.json",
        "export link-file.json",
        "import link-file.json",
        "export dangling",
        "export dangling/escape.json",
    ] {
        app.check(command, &[&refused("SymlinkOut")]).await;
    }
    // Main logs each refusal with the window that asked.
    app.run("roots").await;
    app.expect("roots").await;
    assert!(
        app.log.iter().any(
            |l| l.starts_with("[main] refused export of \"link-out/escape.json\" for editor#1")
        ),
        "{}",
        app.log.join("\n")
    );
    // Nothing escaped, nothing was imported, the secret is untouched.
    app.check("notes", &["1 note(s)"]).await;
    // And a path that stays inside still works.
    app.check("export inside/ok.json", &["exported 1 note(s)"])
        .await;
    app.quit().await;

    let mut names: Vec<String> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["secret.json"]);
    assert!(std::fs::read_to_string(&secret)
        .unwrap()
        .contains("outside"));
    assert!(!data.join("escape.json").exists());
    assert!(!files.join("inside.json").exists());
    assert!(files.join("inside/ok.json").exists());
    assert_eq!(notes_in(&data.join("notes.sqlite3")).len(), 1);
}

/// The settings role's grant, tested where it is enforced: the app's own
/// main (its `wire`, a real SQLite file) accepts a raw socket as
/// `SettingsWindowApi`, the API it gives settings windows, and the peer
/// writes frames by hand for channels that API does not expose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_window_cannot_reach_notes_even_with_hand_made_frames() {
    use desktop::contract::{EditorApi, NotesContract, Role, SettingsContract, SettingsWindowApi};

    let (_tmp, data, _) = dirs();
    let app = desktop::wire(&desktop::Config {
        data_dir: data.clone(),
        files_dirs: Vec::new(),
        launcher: desktop::ipc::windows::Launcher {
            exe: APP.into(),
            scripted: false,
        },
    })
    .unwrap();
    let (mut raw, id) =
        accepted::<SettingsWindowApi, SettingsContract>(&app.main, "settings").await;
    let info = app
        .main
        .renderers()
        .into_iter()
        .find(|r| r.id == id)
        .unwrap();
    assert_eq!(info.api, "SettingsWindowApi");

    // What it is granted works.
    raw.frame(&invoke_body(1, "settings:get", &[])).await;
    let reply = raw.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_OK, 1));

    // Notes, files, windows: each refused before its payload is decoded.
    let create =
        codec::encode_to_vec(&("pwned".to_string(), "by a settings window".to_string())).unwrap();
    let export = codec::encode_to_vec(&("stolen.json".to_string(),)).unwrap();
    let open = codec::encode_to_vec(&(Role::Editor,)).unwrap();
    let calls: [(u64, &str, &[u8]); 5] = [
        (2, "notes:list", &[]),
        (3, "notes:create", &create),
        (4, "notes:delete", &[1]),
        (5, "files:export", &export),
        (6, "windows:open", &open),
    ];
    for (id, channel, payload) in calls {
        raw.frame(&invoke_body(id, channel, payload)).await;
        let reply = raw.read().await.expect("a reply");
        assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_FAILED, id));
        assert_eq!(
            reply.error(),
            WireError::NotAllowed {
                channel: channel.into()
            },
            "{channel}"
        );
    }
    raw.frame(&send_body("notes:create", &create)).await;
    let notice = raw.read().await.unwrap();
    assert_eq!(notice.kind, kind::NOTICE);
    assert_eq!(
        notice.error(),
        WireError::NotAllowed {
            channel: "notes:create".into()
        }
    );

    // Listening to notes changes is refused too.
    let mut subscribe = vec![0x13];
    subscribe.extend_from_slice(&7u64.to_le_bytes());
    subscribe.push("notes:changed".len() as u8);
    subscribe.extend_from_slice(b"notes:changed");
    raw.frame(&subscribe).await;
    let reply = raw.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_FAILED, 7));
    assert!(app
        .main
        .renderer_stats(info.id)
        .unwrap()
        .subscriptions
        .is_empty());

    // Main counted each as a violation by this renderer.
    assert_eq!(app.main.renderer_stats(info.id).unwrap().violations, 7);

    // Nothing ran: no note, no file, no window.
    assert_eq!(app.notes.count().await.unwrap(), 0);
    assert!(!data.join("files/stolen.json").exists());
    assert!(app.windows.windows().is_empty());
    // The granted channel still answers.
    raw.frame(&invoke_body(8, "settings:get", &[])).await;
    let reply = raw.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_OK, 8));

    // The same notes frame from a peer accepted as an editor is served:
    // the refusals above come from the settings grant, not from the frames.
    let (mut editor, _) = accepted::<EditorApi, NotesContract>(&app.main, "editor").await;
    editor.frame(&invoke_body(1, "notes:create", &create)).await;
    let reply = editor.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_OK, 1));
    assert_eq!(app.notes.count().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_main_quits_every_window_process_exits() {
    let (_tmp, data, _) = dirs();
    let mut app = Running::start(&data, &[]).await;
    app.check("open settings", &["opened settings#2"]).await;
    app.check("open editor", &["opened editor#3"]).await;
    // Up to the app's limit of 8 windows, then a typed refusal.
    for id in 4..=8 {
        app.check("open settings", &[&format!("opened settings#{id}")])
            .await;
    }
    app.check(
        "open editor",
        &["main refused: the app allows at most 8 windows; close one first [WindowsError::TooMany]"],
    )
    .await;
    let pids = app.window_pids(8).await;
    let main_pid = app.child.id().unwrap();
    assert!(pids.iter().all(|&pid| running(pid) && pid != main_pid));
    app.quit().await;
    assert!(!running(main_pid));
    assert!(all_gone(&pids).await, "windows left running: {pids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_main_is_killed_every_window_process_exits() {
    let (_tmp, data, _) = dirs();
    let mut app = Running::start(&data, &[]).await;
    app.check("open settings", &["opened settings#2"]).await;
    app.check("open editor", &["opened editor#3"]).await;
    let pids = app.window_pids(3).await;
    // SIGKILL: main runs no cleanup at all. Each window sees its
    // connection close and exits by itself.
    app.child.kill().await.unwrap();
    assert!(all_gone(&pids).await, "windows left running: {pids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scripted_demo_exercises_every_namespace_and_exits_zero() {
    let (_tmp, data, _) = dirs();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(APP)
            .arg("--scripted")
            .arg("--data-dir")
            .arg(&data)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the demo finishes on its own")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    for needle in [
        "[editor#1] system: host ",
        "[editor#1] event settings:changed: theme=dark font_size=16",
        "[settings#2] refused, as expected: main refused: invalid `font_size`",
        "[editor#1] refused, as expected: `set` is not available in an editor window",
        "[editor#1] 1 match(es) for \"typed compiler\": #2 \"Ideas\"",
        "[editor#3] command from editor#1: note new",
        "[editor#1] event notes:changed: note #4 \"From the second editor\" created by editor#3",
        "[editor#1] imported 3 note(s)",
        "[FilesError::ParentDir]",
        "[FilesError::OutsideRoots]",
        "[FilesError::SymlinkOut]",
        "[settings#2] error: `notes` is not available in a settings window",
        "[editor#1] closed window #3",
        "[editor#1] deleted note #3",
        "[main] bye: 6 notes",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("error: this should have been refused"));
}

/// The app's main side in this process, with data in `data`.
fn wired(data: &Path) -> desktop::App {
    desktop::wire(&desktop::Config {
        data_dir: data.to_path_buf(),
        files_dirs: Vec::new(),
        launcher: desktop::ipc::windows::Launcher {
            exe: APP.into(),
            scripted: false,
        },
    })
    .unwrap()
}

/// A window connected to `app`'s main as an editor, over a socket pair.
async fn editor_of(app: &desktop::App) -> desktop::contract::EditorApi {
    use desktop::contract::EditorApi;
    let (a, b) = tokio::net::UnixStream::pair().unwrap();
    let (accepted, api) = tokio::join!(
        app.main
            .accept::<EditorApi>(Transport::from_unix(a), "editor"),
        EditorApi::connect(Transport::from_unix(b))
    );
    accepted.unwrap();
    api.unwrap()
}

#[test]
fn a_title_with_control_characters_is_refused_and_printed_escaped() {
    use desktop::{ipc::notes::check_note, window::printable};
    for title in ["a\u{1b}]0;pwned\u{7}b", "tab\there", "line1\u{2028}line2"] {
        let e = check_note(title, "").expect_err(title);
        assert!(e.to_string().contains("without control characters"), "{e}");
    }
    assert!(check_note("Shopping: eggs, flour", "any\nbody").is_ok());
    assert_eq!(printable("#1 plain"), "#1 plain");
    assert_eq!(
        printable("\u{1b}[2J\u{1b}]0;pwned\u{7}Title"),
        "\\u{1b}[2J\\u{1b}]0;pwned\\u{7}Title"
    );
}

/// An export main could not import back is refused before it is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_too_large_to_import_back_is_refused() {
    use desktop::ipc::{files::MAX_IMPORT_BYTES, notes::MAX_BODY_BYTES};
    let (_tmp, data, _) = dirs();
    let app = wired(&data);
    let api = editor_of(&app).await;
    let body = "x".repeat(MAX_BODY_BYTES);
    let notes = MAX_IMPORT_BYTES as usize / MAX_BODY_BYTES + 1;
    for i in 0..notes {
        api.notes
            .create(format!("note {i}"), body.clone())
            .await
            .unwrap();
    }
    match api.files.export("backup.json".into()).await {
        Err(ipc_runtime::CallError::Handler(desktop::contract::FilesError::TooLarge {
            size,
            limit,
            ..
        })) => assert!(size > limit && limit == MAX_IMPORT_BYTES),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(!data.join("files/backup.json").exists());
    // Two notes fewer (the JSON around the bodies takes room too) fit, and
    // come back.
    for n in &api.notes.list().await.unwrap()[..2] {
        api.notes.delete(n.id).await.unwrap();
    }
    api.files.export("backup.json".into()).await.unwrap();
    let back = api.files.import("backup.json".into()).await.unwrap();
    assert_eq!(back.notes.len(), notes - 2);
}

/// Windows see a note's changes in the order main made them, even when two
/// windows change the same note at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_events_arrive_in_the_order_of_the_changes() {
    use desktop::contract::NoteChange;
    // In memory where the system has it: a database change then takes
    // microseconds (no disk flush), which is when the two changes race.
    let tmp = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let app = wired(&tmp.path().join("data"));
    let (watcher, a, b) = (
        editor_of(&app).await,
        editor_of(&app).await,
        editor_of(&app).await,
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _listening = watcher
        .notes_events
        .on_changed(move |e| {
            let _ = tx.send(e.change);
        })
        .await
        .unwrap();
    let mut misordered = 0;
    for i in 0..1000 {
        let note = a
            .notes
            .create(format!("n{i}"), String::new())
            .await
            .unwrap();
        let (updated, deleted) = tokio::join!(
            a.notes.update(note.id, "edited".into(), String::new()),
            b.notes.delete(note.id)
        );
        deleted.unwrap();
        // Created, Updated if the update came first, then Deleted.
        let expected = if updated.is_ok() { 3 } else { 2 };
        let mut seen = Vec::new();
        while seen.len() < expected {
            seen.push(
                tokio::time::timeout(WAIT, rx.recv())
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        if !matches!(seen.last(), Some(NoteChange::Deleted { .. })) {
            misordered += 1;
        }
    }
    assert_eq!(misordered, 0, "a window saw `Deleted` before `Updated`");
}

/// Exchanges two directory entries atomically (`renameat2`).
fn exchange(a: &Path, b: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let a = std::ffi::CString::new(a.as_os_str().as_bytes()).unwrap();
    let b = std::ffi::CString::new(b.as_os_str().as_bytes()).unwrap();
    // SAFETY: two valid NUL-terminated paths; renameat2 only reads them.
    unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        ) == 0
    }
}

fn export_json(notes: &[(&str, &str)]) -> Vec<u8> {
    let notes: Vec<_> = notes
        .iter()
        .map(|(t, b)| serde_json::json!({ "title": t, "body": b }))
        .collect();
    serde_json::to_vec(&serde_json::json!({"format": "ipc-desktop notes v1", "notes": notes}))
        .unwrap()
}

/// A directory swapped for a link leading out, between main's checks of a
/// path and its use, is never followed: a hostile local user racing main
/// can neither make an export land outside nor an import read from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_swapped_for_a_link_after_the_checks_is_not_followed() {
    use desktop::{contract::Files, ipc::files::FilesHandler};
    use std::sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    };
    let (_tmp, data, outside) = dirs();
    let app = wired(&data);
    app.notes
        .insert("kept".into(), "here".into(), None)
        .await
        .unwrap();
    let files = data.join("files");
    let handler = FilesHandler::new(std::slice::from_ref(&files), Arc::clone(&app.notes)).unwrap();
    std::fs::write(
        outside.join("secret.json"),
        export_json(&[("secret", "outside")]),
    )
    .unwrap();
    std::fs::create_dir(files.join("sub")).unwrap();
    std::os::unix::fs::symlink(&outside, files.join("sub.alt")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, a, b) = (Arc::clone(&stop), files.join("sub"), files.join("sub.alt"));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                assert!(exchange(&a, &b));
            }
        })
    };
    let (mut exported_out, mut imported_out) = (false, false);
    for _ in 0..5000 {
        if Files::export(&handler, "sub/escaped.json".into())
            .await
            .is_ok()
        {
            exported_out |= outside.join("escaped.json").exists();
        }
        if let Ok(t) = Files::import(&handler, "sub/secret.json".into()).await {
            imported_out |= !t.notes.is_empty();
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(
        !exported_out && !imported_out,
        "wrote outside: {exported_out}, imported from outside: {imported_out}"
    );
}

/// An export never writes through an existing file: not through a hard
/// link to a file outside, and not into a FIFO (which would block a
/// thread of main until someone read it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_replaces_a_hard_link_or_a_fifo_instead_of_writing_through_it() {
    use std::os::unix::ffi::OsStrExt;
    let (_tmp, data, outside) = dirs();
    let app = wired(&data);
    let api = editor_of(&app).await;
    api.notes.create("n".into(), "b".into()).await.unwrap();
    let files = data.join("files");
    let victim = outside.join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::hard_link(&victim, files.join("report.json")).unwrap();
    let fifo = files.join("pipe.json");
    let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);

    api.files.export("report.json".into()).await.unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let exported =
        tokio::time::timeout(Duration::from_secs(5), api.files.export("pipe.json".into()))
            .await
            .expect("an export onto a FIFO does not block");
    exported.unwrap();
    // Both are now regular files of this export, which imports back.
    for name in ["report.json", "pipe.json"] {
        assert!(std::fs::symlink_metadata(files.join(name))
            .unwrap()
            .is_file());
        assert_eq!(api.files.import(name.into()).await.unwrap().notes.len(), 1);
    }
}

/// An import reads only a regular file with no other hard link, checked
/// on the file it opened (a FIFO is refused without blocking).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_reads_only_a_regular_file_with_one_link() {
    use desktop::contract::FilesError;
    use std::os::unix::ffi::OsStrExt;
    let (_tmp, data, outside) = dirs();
    let app = wired(&data);
    let api = editor_of(&app).await;
    let files = data.join("files");
    std::fs::create_dir_all(&files).unwrap();
    let elsewhere = outside.join("notes.json");
    std::fs::write(&elsewhere, export_json(&[("linked", "in")])).unwrap();
    std::fs::hard_link(&elsewhere, files.join("linked.json")).unwrap();
    let fifo = files.join("pipe.json");
    let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for (name, why) in [
        ("linked.json", "other hard links"),
        ("pipe.json", "not a regular file"),
    ] {
        let refused = tokio::time::timeout(Duration::from_secs(5), api.files.import(name.into()))
            .await
            .expect("an import does not block");
        match refused {
            Err(ipc_runtime::CallError::Handler(FilesError::InvalidPath { reason, .. })) => {
                assert!(reason.contains(why), "{reason}")
            }
            other => panic!("{name}: expected a refusal, got {other:?}"),
        }
    }
}

/// A relayed command runs with the target window's API, so an editor
/// cannot have a settings window change the settings for it (its own
/// whitelist has no `settings:update`); only the first window, which
/// stands for the user, relays to any window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_cannot_borrow_a_settings_windows_api_through_tell() {
    use desktop::contract::{EditorApi, Role, WindowsError};
    use ipc_runtime::Api;
    let (_tmp, data, _) = dirs();
    let app = wired(&data);
    let hostile = editor_of(&app).await;
    assert!(!EditorApi::ALLOWED.contains(&"settings:update"));
    let before = hostile.settings.get().await.unwrap();
    let settings = hostile.windows.open(Role::Settings).await.unwrap();
    let told = hostile
        .windows
        .tell(settings.id, "set font_size 72".into())
        .await;
    match told {
        Err(ipc_runtime::CallError::Handler(WindowsError::WiderThanCaller {
            id, target, ..
        })) => {
            assert_eq!((id, target), (settings.id, Role::Settings))
        }
        other => panic!("expected the relay to be refused, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hostile.settings.get().await.unwrap(), before);
    app.windows.close_all().await;
}

/// Nor through the first window: it runs what it is told as the user
/// would (relaying on to any window), so main refuses other windows'
/// commands for it; before, `tell 3 tell 1 tell 2 set ...` changed the
/// settings for editor#3, and `tell 3 tell 1 quit` ended the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_cannot_launder_a_relay_through_the_first_window() {
    let (_tmp, data, _) = dirs();
    let mut app = Running::start(&data, &[]).await;
    app.check("open settings", &["opened settings#2"]).await;
    app.check("open editor", &["opened editor#3"]).await;
    app.check(
        "tell 3 tell 1 tell 2 set font_size 72",
        &["[editor#3] error: main refused: window 1 is the first window, which runs only the user's commands, not editor#3's"],
    )
    .await;
    app.check("settings", &["[editor#1] settings: "]).await;
    let line = app.expect("[editor#1] settings: ").await;
    assert!(line.contains("font_size=14"), "{line}");
    // Nor end the app by closing the first window.
    app.check(
        "tell 3 close 1",
        &["[editor#3] error: main refused: window 1 is the first window: closing it ends the app, which only the user does"],
    )
    .await;
    app.check("windows", &["[editor#1] 3 window(s)"]).await;
    app.quit().await;
}

/// An import is all or nothing: when the window that asked for it dies
/// midway (its connection closes, main cancels the handler), either every
/// note of it stays or none. Notes were inserted one transaction each, and
/// a window killed 1.5 s into a 5000-note import left 1395 of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_cut_short_by_its_window_dying_is_all_or_nothing() {
    let (_tmp, data, _) = dirs();
    let app = wired(&data);
    std::fs::write(
        data.join("files/big.json"),
        export_json(&vec![("title", "body"); 5000]),
    )
    .unwrap();
    let api = editor_of(&app).await;
    // The task owns the window's API: aborting it closes the connection,
    // as a killed renderer's does.
    let import = tokio::spawn(async move { api.files.import("big.json".into()).await });
    tokio::time::sleep(Duration::from_millis(30)).await;
    import.abort();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let count = app.notes.count().await.unwrap();
    assert!(
        count == 0 || count == 5000,
        "a cancelled import left {count} of its 5000 notes"
    );
}

/// An import that would pass the limit creates nothing, also when two run
/// at once: each checked the limit before its inserts, so both passed it,
/// both failed halfway and 10 000 notes were left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_imports_past_the_limit_create_nothing() {
    use desktop::ipc::notes::MAX_NOTES;
    let tmp = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let data = tmp.path().join("data");
    let app = wired(&data);
    let api = editor_of(&app).await;
    let n = (MAX_NOTES * 6 / 10) as usize; // one fits, two do not
    std::fs::write(
        data.join("files/six.json"),
        export_json(&vec![("t", ""); n]),
    )
    .unwrap();
    let (a, b) = tokio::join!(
        api.files.import("six.json".into()),
        api.files.import("six.json".into())
    );
    let ok = usize::from(a.is_ok()) + usize::from(b.is_ok());
    let count = app.notes.count().await.unwrap();
    assert_eq!((ok, count), (1, n as u64), "{a:?} / {b:?}");
}

/// Standard output closed early (`ipc-desktop --scripted | head -3`):
/// main loses its log lines but runs on, and no handler fails halfway. Its
/// log used `println!`, which panicked in handlers that had already made
/// their change (a saved setting not announced, an export written but
/// reported failed): exit status 101, 18 panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_standard_output_fails_no_handler() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(APP)
        .arg("--scripted")
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..3 {
        lines.next_line().await.unwrap().unwrap();
    }
    drop(lines);
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the demo ends")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.status.success(), "{}: {stderr}", output.status);
}

/// One instance per data directory: a second one on the same directory
/// would keep its own settings and overwrite the first's (a change made in
/// one was lost, and the two wrote one temporary file), so it refuses to
/// start, saying why; the first runs on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_on_one_data_directory_refuses_to_start() {
    let (_tmp, data, _) = dirs();
    let mut first = Running::start(&data, &[]).await;
    let second = Command::new(APP)
        .arg("--data-dir")
        .arg(&data)
        .stdin(Stdio::null())
        .output();
    let second = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the second instance ends")
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success());
    assert!(
        stderr.contains("another ipc-desktop is running with the data directory"),
        "{stderr}"
    );
    first.check("notes", &["[editor#1] 0 note(s)"]).await;
    first.quit().await;
}

/// A known command with the wrong arguments is told its usage, not called
/// unknown; ids are taken as the windows print them (`#1`), which the
/// shell syntax read as the start of a comment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_arguments_get_the_commands_usage_and_ids_may_be_written_with_a_hash() {
    let (_tmp, data, _) = dirs();
    let mut app = Running::start(&data, &[]).await;
    app.check("note new first x", &["created note #1"]).await;
    app.check(
        "notes extra",
        &["[editor#1] error: usage: wrong arguments for `notes`; usage: notes"],
    )
    .await;
    app.check(
        "close",
        &["[editor#1] error: usage: wrong arguments for `close`; usage: close ID"],
    )
    .await;
    app.check("frobnicate", &["unknown command `frobnicate`"])
        .await;
    app.check("note show #1", &["[editor#1] note #1 \"first\""])
        .await;
    app.check(
        "note new \"#2 in quotes\"",
        &["created note #2 \"#2 in quotes\""],
    )
    .await;
    app.quit().await;
}

/// Ctrl-C (SIGINT) during the scripted demo ends it as the first window's
/// end does: windows closed, and its temporary data directory removed
/// (it was left behind).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_in_the_scripted_demo_leaves_no_temporary_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(APP)
        .arg("--scripted")
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    assert!(first.contains("data in"), "{first}");
    // SAFETY: `kill` sends a signal to the child this test started.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGINT) };
    let rest = async {
        let mut rest = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push(line);
        }
        rest
    };
    let rest = tokio::time::timeout(Duration::from_secs(10), rest)
        .await
        .expect("the demo ends");
    assert!(
        rest.iter().any(|l| l.contains("[main] interrupted")),
        "{rest:?}"
    );
    let status = child.wait().await.unwrap();
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "after {status}, left behind: {left:?}");
}

/// An export to a long but valid file name (250 bytes) works: its
/// temporary file was named after it and went past the system's 255.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_to_a_long_but_valid_file_name_works() {
    let (_tmp, data, _) = dirs();
    let app = wired(&data);
    let api = editor_of(&app).await;
    let name = "n".repeat(250);
    let exported = api.files.export(name.clone()).await;
    assert!(exported.is_ok(), "{exported:?}");
    assert!(data.join("files").join(&name).is_file());
}

/// A settings save that fails (here `settings.json` is a directory) is a
/// typed error, and leaves no temporary file beside the settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_settings_save_leaves_nothing_behind() {
    let (_tmp, data, _) = dirs();
    std::fs::create_dir_all(data.join("settings.json")).unwrap();
    let mut app = Running::start(&data, &[]).await;
    app.check("open settings", &["opened settings#2"]).await;
    app.check(
        "tell 2 set theme dark",
        &["[settings#2] error: main refused: could not save the settings"],
    )
    .await;
    app.quit().await;
    assert!(!data.join("settings.json.tmp").exists());
}

/// An import announces its notes holding the notes database (so that no
/// later change is announced first), pacing them to the windows' queues
/// for a second at most in all: one window that stops reading (a terminal
/// paused with Ctrl-S) does not hold every other window's notes calls up.
/// It waited up to a second per 128 notes: a 10 000-note import held the
/// database for over a minute, and its own call timed out though it had
/// succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_window_does_not_lock_the_notes_during_an_import() {
    use desktop::contract::{EditorApi, NotesContract};
    use desktop::ipc::notes::MAX_NOTES;
    use ipc_suite::raw::subscribe_body;
    let tmp = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let data = tmp.path().join("data");
    let app = wired(&data);
    let body = "b".repeat(300);
    std::fs::write(
        data.join("files/big.json"),
        export_json(&vec![("t", body.as_str()); MAX_NOTES as usize]),
    )
    .unwrap();
    // A window that listens to notes changes, then stops reading.
    let (mut stalled, _) = accepted::<EditorApi, NotesContract>(&app.main, "editor").await;
    stalled.frame(&subscribe_body(1, "notes:changed")).await;
    let reply = stalled.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_OK, 1));
    let importer = editor_of(&app).await;
    let other = editor_of(&app).await;
    let import = tokio::spawn(async move { importer.files.import("big.json".into()).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let listed = tokio::time::timeout(Duration::from_secs(5), other.notes.list()).await;
    let imported = tokio::time::timeout(Duration::from_secs(30), import)
        .await
        .expect("the import ends")
        .unwrap();
    assert_eq!(
        listed.expect("notes:list answered").unwrap().len(),
        MAX_NOTES as usize
    );
    assert_eq!(imported.unwrap().notes.len(), MAX_NOTES as usize);
    drop(stalled);
}

/// A `#` in the middle of a word is not the shell syntax's comment (it
/// splits words on space, tab and newline only), so the id-hash rewrite
/// keeps it, after a no-break space too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_mid_word_is_kept() {
    let (_tmp, data, _) = dirs();
    let mut app = Running::start(&data, &[]).await;
    app.check("note new a\u{a0}#1", &["created note #1"]).await;
    app.quit().await;
    let notes = notes_in(&data.join("notes.sqlite3"));
    assert_eq!(
        notes[0].1, "a\u{a0}#1",
        "the title as typed (one shell word)"
    );
}

/// The app holds at most `MAX_NOTES` notes, so `notes:list` (all of them
/// in one reply) always fits in a frame, even with the longest titles; an
/// import that would go past the limit creates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notes_stop_at_a_limit_and_their_list_always_fits_a_frame() {
    use desktop::{
        contract::{FilesError, NotesError},
        ipc::{files::MAX_IMPORT_BYTES, notes::MAX_NOTES},
    };
    use ipc_runtime::CallError;
    let tmp = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let data = tmp.path().join("data");
    let app = wired(&data);
    let api = editor_of(&app).await;
    // 200 characters of 4 bytes each: the largest summary there is.
    let title = "\u{1D11E}".repeat(200);
    let half = (MAX_NOTES / 2) as usize;
    let json = export_json(&vec![(title.as_str(), ""); half]);
    assert!(json.len() as u64 <= MAX_IMPORT_BYTES);
    std::fs::write(data.join("files/half.json"), &json).unwrap();
    for _ in 0..2 {
        api.files.import("half.json".into()).await.unwrap();
    }
    let full = |r: &dyn std::fmt::Debug| format!("{r:?}").contains("Full { limit: 10000 }");
    let third = api.files.import("half.json".into()).await;
    assert!(
        matches!(third, Err(CallError::Handler(FilesError::Notes(NotesError::Full { limit })) ) if limit == MAX_NOTES),
        "{third:?}"
    );
    let one_more = api.notes.create("one more".into(), String::new()).await;
    assert!(full(&one_more), "{one_more:?}");
    assert_eq!(app.notes.count().await.unwrap(), MAX_NOTES);
    let listed = api.notes.list().await.unwrap();
    assert_eq!(listed.len() as u64, MAX_NOTES);
}

/// Deleting the notes database while the app runs gets an error that says
/// so (SQLite's own words were "attempt to write a readonly database"),
/// and reading goes on from the notes main still has open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_deleted_while_running_is_reported_as_such() {
    let (_tmp, data, _) = dirs();
    let app = wired(&data);
    let api = editor_of(&app).await;
    api.notes
        .create("kept".into(), "body".into())
        .await
        .unwrap();
    std::fs::remove_file(data.join("notes.sqlite3")).unwrap();
    match api.notes.create("lost".into(), "body".into()).await {
        Err(ipc_runtime::CallError::Handler(desktop::contract::NotesError::Storage(why))) => {
            assert!(why.contains("moved or deleted"), "{why}")
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
    let titles: Vec<_> = api.notes.list().await.unwrap();
    assert_eq!(titles.len(), 1);
}

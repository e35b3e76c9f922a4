//! The window's command interpreter: the same commands whether they are
//! typed at the prompt, read from a script, or sent by another window.
//! Each command calls the role's API; where the role does not expose a
//! namespace there is no code to call it (it would not compile), and the
//! shell says so.

use std::{fmt, io::BufRead, sync::Arc, time::Duration};

use ipc_runtime::{Api, CallError, DisconnectCause, IpcError, Subscription};
use tokio::sync::mpsc::{self, UnboundedReceiver};

use super::{
    contract::{
        by_whom, EditorApi, NoteSummary, Role, SettingsPatch, SettingsWindowApi, Theme, WindowInfo,
    },
    settings_line, Mode, Out, RoleApi, Seen, SeenLog, Told,
};

/// How long `wait` waits.
const WAIT: Duration = Duration::from_secs(15);

/// Why a command failed.
#[derive(Debug)]
pub enum CmdError {
    /// The command line is malformed.
    Usage(String),
    /// This window's role does not expose what the command needs.
    NotInRole(String),
    /// Main refused, with the handler's typed error.
    Refused(String),
    /// The IPC layer failed.
    Ipc(IpcError),
    /// Anything else (a `wait` that timed out).
    Failed(String),
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdError::Usage(s) => write!(f, "usage: {s}"),
            CmdError::NotInRole(s) | CmdError::Failed(s) => f.write_str(s),
            CmdError::Refused(s) => write!(f, "main refused: {s}"),
            CmdError::Ipc(e) => write!(f, "IPC error: {e}"),
        }
    }
}

impl From<IpcError> for CmdError {
    fn from(e: IpcError) -> Self {
        CmdError::Ipc(e)
    }
}

impl<E: fmt::Debug + fmt::Display> From<CallError<E>> for CmdError {
    /// A typed error is shown with its type and variant, e.g.
    /// `[FilesError::ParentDir]`.
    fn from(e: CallError<E>) -> Self {
        match e {
            CallError::Handler(e) => {
                let ty = std::any::type_name::<E>()
                    .rsplit("::")
                    .next()
                    .unwrap_or("?");
                let debug = format!("{e:?}");
                let variant = debug
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("?");
                CmdError::Refused(format!("{e} [{ty}::{variant}]"))
            }
            CallError::Ipc(e) => CmdError::Ipc(e),
        }
    }
}

/// What to do after a command.
enum Flow {
    Continue,
    Quit,
}

/// Why the shell stopped.
enum End {
    Quit,
    InputClosed,
    ClosedByMain(IpcError),
}

/// Values scripts can refer to: `$note` (the last note this window
/// created), `$window` (the last window it opened), `$editor`, `$settings`
/// (the last window of that role it opened).
#[derive(Default)]
struct Vars {
    note: Option<u64>,
    window: Option<u64>,
    editor: Option<u64>,
    settings: Option<u64>,
}

impl Vars {
    fn expand(&self, word: String) -> Result<String, CmdError> {
        let Some(name) = word.strip_prefix('$') else {
            return Ok(word);
        };
        let value = match name {
            "note" => self.note,
            "window" => self.window,
            "editor" => self.editor,
            "settings" => self.settings,
            _ => return Err(CmdError::Usage(format!("unknown variable `{word}`"))),
        };
        value
            .map(|v| v.to_string())
            .ok_or_else(|| CmdError::Failed(format!("`{word}` is not set yet")))
    }
}

/// A window's interpreter: its API, its output, and what it has seen.
pub struct Shell {
    api: RoleApi,
    out: Out,
    seen: Arc<SeenLog>,
    subscriptions: Vec<Subscription>,
    vars: Vars,
}

impl Shell {
    /// A shell over `api`, with the listeners' guards and their record.
    pub fn new(
        api: RoleApi,
        out: Out,
        seen: Arc<SeenLog>,
        subscriptions: Vec<Subscription>,
    ) -> Self {
        Shell {
            api,
            out,
            seen,
            subscriptions,
            vars: Vars::default(),
        }
    }

    /// Runs commands from `mode`'s input and from other windows until the
    /// user quits, the input ends (prompt) or main closes the connection.
    /// A script step that does not do what it should (an unexpected error,
    /// or a success where a refusal was expected with `!`) makes it an
    /// error.
    pub async fn run(
        mut self,
        mode: Mode,
        mut told: UnboundedReceiver<Told>,
    ) -> Result<(), String> {
        let (tx, mut input) = mpsc::unbounded_channel::<String>();
        let (prompt, scripted) = match mode {
            Mode::Prompt => {
                // A plain thread, not the runtime's blocking pool: a read in
                // progress must not keep the process alive at exit.
                std::thread::spawn(move || {
                    for line in std::io::stdin().lock().lines() {
                        let Ok(line) = line else { break };
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                });
                (true, false)
            }
            Mode::Script(_, lines) => {
                for line in lines {
                    let _ = tx.send(line.to_string());
                }
                drop(tx);
                (false, true)
            }
            Mode::Follow => {
                drop(tx);
                (false, false)
            }
        };
        let mut input_open = prompt || scripted;
        let mut failures = 0usize;
        self.out.prompt();
        let end = loop {
            // Commands already relayed run before a close is noticed.
            let (line, from_input, from) = tokio::select! {
                biased;
                Some((from, line)) = told.recv() => (line, false, Some(from)),
                reason = self.api.closed() => break End::ClosedByMain(reason),
                next = input.recv(), if input_open => match next {
                    Some(line) => (line, true, None),
                    None if prompt => break End::InputClosed,
                    None => {
                        input_open = false;
                        if scripted {
                            self.out.say("script done; following events and commands until main closes this window");
                        }
                        continue;
                    }
                },
            };
            if from_input {
                self.out.typed();
            }
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                self.out.prompt();
                continue;
            }
            // `!command`: a step that main (or the role) must refuse.
            let (expect_refusal, command) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            match &from {
                Some(from) => self
                    .out
                    .say(format_args!("command from {}: {command}", by_whom(from))),
                None if !self.out.is_terminal() => self.out.say(format_args!("> {line}")),
                None => {}
            }
            let result = tokio::select! {
                r = exec(&self.api, &self.out, &self.seen, &mut self.vars, command) => r,
                reason = self.api.closed() => break End::ClosedByMain(reason),
            };
            let counts = scripted && from_input;
            match (result, expect_refusal) {
                (Ok(Flow::Quit), _) => break End::Quit,
                (Ok(Flow::Continue), false) => {}
                (Ok(Flow::Continue), true) => {
                    self.out.say("error: this should have been refused");
                    failures += usize::from(counts);
                }
                (Err(e), true) => self.out.say(format_args!("refused, as expected: {e}")),
                (Err(e), false) => {
                    self.out.say(format_args!("error: {e}"));
                    failures += usize::from(counts);
                }
            }
            self.out.prompt();
        };
        self.out.typed();
        match end {
            End::ClosedByMain(e) => {
                // What ended it decides what to say (a window could also
                // decide to reconnect, or to report a bug).
                let reason = match &e {
                    IpcError::Disconnected { reason, .. } => reason.clone(),
                    other => other.to_string(),
                };
                match e.disconnect_cause() {
                    Some(DisconnectCause::DisconnectedByMain) => {
                        self.out.say("main closed this window; exiting")
                    }
                    Some(DisconnectCause::MainClosed) => self.out.say("main shut down; exiting"),
                    Some(DisconnectCause::Misbehaved) => self.out.say(format_args!(
                        "main dropped this window for breaking its limits, a bug ({reason}); exiting"
                    )),
                    _ => self.out.say(format_args!(
                        "the connection to main ended ({reason}); exiting"
                    )),
                }
            }
            End::Quit | End::InputClosed => {
                self.out.say("closing this window");
                drop(std::mem::take(&mut self.subscriptions));
                if let Err(e) = self.api.close().await {
                    self.out.say(format_args!("closing: {e}"));
                }
            }
        }
        if failures > 0 {
            return Err(format!(
                "{failures} script step(s) did not do what they should"
            ));
        }
        Ok(())
    }
}

fn editor<'a>(api: &'a RoleApi, command: &str) -> Result<&'a EditorApi, CmdError> {
    match api {
        RoleApi::Editor(api) => Ok(api),
        RoleApi::Settings(_) => Err(CmdError::NotInRole(format!(
            "`{command}` is not available in a settings window: its API, {}, exposes only {}",
            SettingsWindowApi::NAME,
            SettingsWindowApi::ALLOWED.join(", ")
        ))),
    }
}

fn settings_window<'a>(api: &'a RoleApi, command: &str) -> Result<&'a SettingsWindowApi, CmdError> {
    match api {
        RoleApi::Settings(api) => Ok(api),
        RoleApi::Editor(_) => Err(CmdError::NotInRole(format!(
            "`{command}` is not available in an editor window: {} reads settings but cannot change them; \
             open a settings window (`open settings`) and `tell` it",
            EditorApi::NAME
        ))),
    }
}

fn parse_id(word: &str, what: &str) -> Result<u64, CmdError> {
    word.trim_start_matches('#')
        .parse()
        .map_err(|_| CmdError::Usage(format!("{what} must be a number, got `{word}`")))
}

fn parse_patch(pairs: &[&str]) -> Result<SettingsPatch, CmdError> {
    let usage = || {
        CmdError::Usage(
            "set FIELD VALUE [FIELD VALUE]... with FIELD one of theme (light, dark, system), \
             font_size, autosave_secs, language"
                .into(),
        )
    };
    let pairs_of_two = pairs.chunks_exact(2);
    if pairs.is_empty() || !pairs_of_two.remainder().is_empty() {
        return Err(usage());
    }
    let number = |field: &str, v: &str| {
        v.parse::<u32>()
            .map_err(|_| CmdError::Usage(format!("{field} must be a number, got `{v}`")))
    };
    let mut patch = SettingsPatch::default();
    for pair in pairs_of_two {
        match (pair[0], pair[1]) {
            ("theme", "light") => patch.theme = Some(Theme::Light),
            ("theme", "dark") => patch.theme = Some(Theme::Dark),
            ("theme", "system") => patch.theme = Some(Theme::System),
            ("theme", other) => {
                return Err(CmdError::Usage(format!(
                    "theme is light, dark or system, not `{other}`"
                )))
            }
            ("font_size", v) => patch.font_size = Some(number("font_size", v)?),
            ("autosave_secs", v) => patch.autosave_secs = Some(number("autosave_secs", v)?),
            ("language", v) => patch.language = Some(v.to_string()),
            _ => return Err(usage()),
        }
    }
    Ok(patch)
}

fn summaries(notes: &[NoteSummary]) -> String {
    notes
        .iter()
        .map(|n| format!("#{} {:?}", n.id, n.title))
        .collect::<Vec<_>>()
        .join(", ")
}

fn window_line(w: &WindowInfo, me: u64) -> String {
    format!(
        "  #{} {:<8} pid {:<7} {}{}",
        w.id,
        w.role.as_str(),
        w.pid.unwrap_or_default(),
        w.api,
        if w.id == me { "  (this window)" } else { "" }
    )
}

fn duration(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60);
    match (d, h) {
        (0, 0) => format!("{m} min"),
        (0, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

fn help(role: Role) -> Vec<String> {
    const EDITOR: &[&str] = &[
        "notes | note list             list the notes",
        "note show ID                  one note",
        "note new TITLE [BODY]         create a note (quote words with spaces)",
        "note edit ID TITLE [BODY]     replace a note",
        "note rm ID                    delete a note",
        "note search WORDS...          full-text search",
        "settings                      show the settings",
        "windows                       list the windows",
        "open editor|settings          open a window",
        "close ID                      close another window",
        "tell ID COMMAND...            make window ID run COMMAND",
        "roots                         where export and import may go",
        "export PATH | import PATH     notes to / from a JSON file",
        "system                        system information",
    ];
    const SETTINGS: &[&str] = &[
        "settings                      show the settings",
        "set FIELD VALUE...            theme light|dark|system, font_size N,",
        "                              autosave_secs N, language TAG",
    ];
    const COMMON: &[&str] = &[
        "wait note|settings|opened|closed [ID]   take an event (from window ID) no wait took yet",
        "help | quit",
        "$note $window $editor $settings: the last note or window this window made",
    ];
    let (commands, name, allowed) = match role {
        Role::Editor => (EDITOR, EditorApi::NAME, EditorApi::ALLOWED),
        Role::Settings => (
            SETTINGS,
            SettingsWindowApi::NAME,
            SettingsWindowApi::ALLOWED,
        ),
    };
    std::iter::once("commands:".to_string())
        .chain(commands.iter().chain(COMMON).map(|l| format!("  {l}")))
        .chain(std::iter::once(format!(
            "this window's API is {name}: {}",
            allowed.join(", ")
        )))
        .collect()
}

/// Runs one command line with the window's API.
async fn exec(
    api: &RoleApi,
    out: &Out,
    seen: &SeenLog,
    vars: &mut Vars,
    line: &str,
) -> Result<Flow, CmdError> {
    let line = without_id_hashes(line);
    let words = shlex::split(&line).ok_or_else(|| CmdError::Usage("unbalanced quotes".into()))?;
    let words = words
        .into_iter()
        .map(|w| vars.expand(w))
        .collect::<Result<Vec<_>, _>>()?;
    let args: Vec<&str> = words.iter().map(String::as_str).collect();
    let say = |text: String| out.say(text);
    match args.as_slice() {
        ["help"] => help(api.role()).into_iter().for_each(say),
        ["quit"] | ["exit"] => return Ok(Flow::Quit),

        // notes
        ["notes"] | ["note", "list"] => {
            let notes = editor(api, args[0])?.notes.list().await?;
            say(format!("{} note(s)", notes.len()));
            for n in notes {
                say(format!("  #{} {}", n.id, n.title));
            }
        }
        ["note", "show", id] => {
            let note = editor(api, "note")?.notes.get(parse_id(id, "ID")?).await?;
            say(format!(
                "note #{} {:?}: {:?} (updated at {})",
                note.id, note.title, note.body, note.updated_at
            ));
        }
        ["note", "new", title, rest @ ..] if rest.len() <= 1 => {
            let body = rest.first().copied().unwrap_or_default();
            let note = editor(api, "note")?
                .notes
                .create(title.to_string(), body.to_string())
                .await?;
            vars.note = Some(note.id);
            say(format!("created note #{} {:?}", note.id, note.title));
        }
        ["note", "edit", id, title, rest @ ..] if rest.len() <= 1 => {
            let body = rest.first().copied().unwrap_or_default();
            let note = editor(api, "note")?
                .notes
                .update(parse_id(id, "ID")?, title.to_string(), body.to_string())
                .await?;
            say(format!("saved note #{} {:?}", note.id, note.title));
        }
        ["note", "rm", id] => {
            let id = parse_id(id, "ID")?;
            editor(api, "note")?.notes.delete(id).await?;
            say(format!("deleted note #{id}"));
        }
        ["note", "search", query @ ..] => {
            let query = query.join(" ");
            let found = editor(api, "note")?.notes.search(query.clone()).await?;
            say(format!(
                "{} match(es) for {query:?}: {}",
                found.len(),
                summaries(&found)
            ));
        }
        ["note", ..] => return Err(CmdError::Usage(
            "note list | show ID | new TITLE [BODY] | edit ID TITLE [BODY] | rm ID | search WORDS"
                .into(),
        )),

        // settings
        ["settings"] => {
            let settings = match api {
                RoleApi::Editor(api) => api.settings.get().await?,
                RoleApi::Settings(api) => api.settings.get().await?,
            };
            say(format!("settings: {}", settings_line(&settings)));
        }
        ["set", pairs @ ..] => {
            let api = settings_window(api, "set")?;
            let settings = api.settings.update(parse_patch(pairs)?).await?;
            say(format!("saved settings: {}", settings_line(&settings)));
        }

        // windows
        ["windows"] => {
            let windows = editor(api, "windows")?.windows.list().await?;
            say(format!("{} window(s):", windows.len()));
            for w in &windows {
                say(window_line(w, api.id()));
            }
        }
        ["open", role] => {
            let role = role.parse::<Role>().map_err(CmdError::Usage)?;
            let w = editor(api, "open")?.windows.open(role).await?;
            vars.window = Some(w.id);
            match role {
                Role::Editor => vars.editor = Some(w.id),
                Role::Settings => vars.settings = Some(w.id),
            }
            say(format!(
                "opened {}#{} (pid {}, {})",
                w.role,
                w.id,
                w.pid.unwrap_or_default(),
                w.api
            ));
        }
        ["close", id] => {
            let id = parse_id(id, "ID")?;
            editor(api, "close")?.windows.close(id).await?;
            say(format!("closed window #{id}"));
        }
        ["tell", id, command @ ..] if !command.is_empty() => {
            let id = parse_id(id, "ID")?;
            let command = shlex::try_join(command.iter().copied())
                .map_err(|e| CmdError::Usage(e.to_string()))?;
            editor(api, "tell")?
                .windows
                .tell(id, command.clone())
                .await?;
            say(format!("asked window #{id} to run: {command}"));
        }

        // files
        ["roots"] => {
            let roots = editor(api, "roots")?.files.roots().await?;
            say(format!(
                "files may be read and written in: {} (relative paths: the first)",
                roots.join(", ")
            ));
        }
        ["export", path] => {
            let t = editor(api, "export")?
                .files
                .export(path.to_string())
                .await?;
            say(format!("exported {} note(s) to {}", t.notes.len(), t.file));
        }
        ["import", path] => {
            let t = editor(api, "import")?
                .files
                .import(path.to_string())
                .await?;
            let ids: Vec<String> = t.notes.iter().map(|id| format!("#{id}")).collect();
            say(format!(
                "imported {} note(s) from {}: {}",
                t.notes.len(),
                t.file,
                ids.join(", ")
            ));
        }

        // system
        ["system"] => {
            let s = editor(api, "system")?.system.info().await?;
            say(format!(
                "system: host {}, {} (kernel {}), up {}, memory {} of {} used, {} CPUs, main is pid {}",
                s.hostname,
                s.os,
                s.kernel,
                duration(s.uptime_secs),
                gib(s.used_memory),
                gib(s.total_memory),
                s.cpus,
                s.main_pid
            ));
        }

        // scripts
        ["wait", kind, rest @ ..] if rest.len() <= 1 => {
            let by = rest.first().map(|id| parse_id(id, "ID")).transpose()?;
            let matches = |seen: &Seen| match (*kind, seen) {
                ("note", Seen::Note(b)) | ("settings", Seen::Settings(b)) => {
                    by.is_none() || *b == by
                }
                ("opened", Seen::Opened(id)) | ("closed", Seen::Closed(id)) => {
                    by.is_none() || by == Some(*id)
                }
                _ => false,
            };
            if !["note", "settings", "opened", "closed"].contains(kind) {
                return Err(CmdError::Usage(
                    "wait note|settings|opened|closed [ID]".into(),
                ));
            }
            let deadline = tokio::time::Instant::now() + WAIT;
            if seen.take(matches, deadline).await.is_none() {
                return Err(CmdError::Failed(format!(
                    "no `{kind}` event within {WAIT:?}"
                )));
            }
            say(format!("saw the `{kind}` event"));
        }

        [] => {}
        [other, ..] => {
            let usage: Vec<&str> = USAGE
                .iter()
                .filter(|l| l.split_whitespace().next() == Some(*other))
                .copied()
                .collect();
            return Err(CmdError::Usage(if usage.is_empty() {
                format!("unknown command `{other}`; type `help`")
            } else {
                format!(
                    "wrong arguments for `{other}`; usage: {}",
                    usage.join(" | ")
                )
            }));
        }
    }
    Ok(Flow::Continue)
}

/// Each command's forms, for a command given the wrong arguments.
const USAGE: &[&str] = &[
    "notes",
    "note list",
    "note show ID",
    "note new TITLE [BODY]",
    "note edit ID TITLE [BODY]",
    "note rm ID",
    "note search WORDS...",
    "settings",
    "set FIELD VALUE...",
    "windows",
    "open editor|settings",
    "close ID",
    "tell ID COMMAND...",
    "roots",
    "export PATH",
    "import PATH",
    "system",
    "wait note|settings|opened|closed [ID]",
    "help",
    "quit",
    "exit",
];

/// `line` with the `#` of ids as the windows print them (`#3`) removed
/// where a word starts with it outside quotes, where the shell syntax would
/// read it as the start of a comment: `close #3` is `close 3`.
fn without_id_hashes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let (mut single, mut double, mut escaped) = (false, false, false);
    let mut word_start = true;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let plain = !single && !double && !escaped;
        if plain && word_start && c == '#' && chars.peek().is_some_and(char::is_ascii_digit) {
            word_start = false;
            continue;
        }
        match c {
            '\\' if !single && !escaped => escaped = true,
            '\'' if !double && !escaped => single = !single,
            '"' if !single && !escaped => double = !double,
            _ => escaped = false,
        }
        // The whitespace the shell syntax splits words on, and no other.
        word_start = plain && matches!(c, ' ' | '\t' | '\n');
        out.push(c);
    }
    out
}

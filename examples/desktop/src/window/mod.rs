//! A window: one renderer process, started by main with `--renderer ROLE
//! --mode MODE`. It connects over the socket main handed it, *as* its
//! role's API type, and that type is all it holds: an editor window has
//! `EditorApi`, a settings window `SettingsWindowApi`. Nothing here can
//! name a channel; a settings window calling `notes` does not compile.
//!
//! Modes: `prompt` (read commands from the terminal), `script:NAME` (run a
//! built-in script, then follow), `follow` (print events and run the
//! commands other windows send through main, until closed).
//!
//! A window exits when main closes its connection, whatever the reason
//! (the user closed it, main exited or died): no window outlives main.

mod scripts;
mod shell;

use std::{
    collections::VecDeque,
    error::Error,
    fmt,
    io::{IsTerminal, Write},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, PoisonError,
    },
};

use ipc_runtime::{IpcError, Subscription};
use tokio::{
    sync::{
        mpsc::{self, UnboundedSender},
        Notify,
    },
    time::Instant,
};

use super::contract::{
    self, by_whom, AppSettings, EditorApi, NoteChange, Role, SettingsWindowApi, WindowRef,
};

pub use shell::Shell;

/// The API this window was granted, by role.
pub enum RoleApi {
    /// An editor window.
    Editor(EditorApi),
    /// A settings window.
    Settings(SettingsWindowApi),
}

impl RoleApi {
    /// Connects over the inherited socket as `role`'s API.
    pub async fn connect(role: Role) -> Result<Self, IpcError> {
        Ok(match role {
            Role::Editor => RoleApi::Editor(EditorApi::connect_inherited().await?),
            Role::Settings => RoleApi::Settings(SettingsWindowApi::connect_inherited().await?),
        })
    }

    /// The role.
    pub fn role(&self) -> Role {
        match self {
            RoleApi::Editor(_) => Role::Editor,
            RoleApi::Settings(_) => Role::Settings,
        }
    }

    /// `label#id`, as main named this window.
    pub fn name(&self) -> String {
        let (label, id) = match self {
            RoleApi::Editor(a) => (a.label(), a.id()),
            RoleApi::Settings(a) => (a.label(), a.id()),
        };
        format!("{label}#{}", id.get())
    }

    /// The id main gave this window.
    pub fn id(&self) -> u64 {
        match self {
            RoleApi::Editor(a) => a.id().get(),
            RoleApi::Settings(a) => a.id().get(),
        }
    }

    /// Resolves when main closes the connection.
    pub async fn closed(&self) -> IpcError {
        match self {
            RoleApi::Editor(a) => a.closed().await,
            RoleApi::Settings(a) => a.closed().await,
        }
    }

    /// Flushes and closes the connection.
    pub async fn close(self) -> Result<(), IpcError> {
        match self {
            RoleApi::Editor(a) => a.close().await,
            RoleApi::Settings(a) => a.close().await,
        }
    }
}

/// `text` with its control characters (but line breaks) and the Unicode
/// line and paragraph separators escaped, as `\u{1b}`.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char =
        |c: char| (c.is_control() && c != '\n') || matches!(c, '\u{2028}' | '\u{2029}');
    if !text.chars().any(unsafe_char) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if unsafe_char(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// Where a window writes: standard output (shared with main and the other
/// windows), each line tagged with the window's name. At an interactive
/// prompt, lines that arrive while the user is typing are printed above the
/// prompt.
#[derive(Clone)]
pub struct Out {
    tag: Arc<str>,
    /// `Some` at an interactive terminal prompt.
    prompt: Option<Arc<str>>,
    at_prompt: Arc<AtomicBool>,
}

impl Out {
    fn new(tag: String, terminal: bool) -> Self {
        Out {
            prompt: terminal.then(|| format!("{tag}> ").into()),
            tag: tag.into(),
            at_prompt: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A line of this window's output. What it shows comes from main and
    /// other windows, so control characters in it (escape sequences that
    /// would drive the terminal) are written escaped.
    pub fn say(&self, text: impl fmt::Display) {
        let text = text.to_string();
        let text = printable(&text);
        let mut out = std::io::stdout().lock();
        match &self.prompt {
            Some(prompt) if self.at_prompt.load(Ordering::SeqCst) => {
                let _ = write!(out, "\r\x1b[2K[{}] {text}\n{prompt}", self.tag);
            }
            _ => {
                let _ = writeln!(out, "[{}] {text}", self.tag);
            }
        }
        let _ = out.flush();
    }

    /// Shows the prompt (interactive terminals only).
    pub fn prompt(&self) {
        if let Some(prompt) = &self.prompt {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "{prompt}");
            let _ = out.flush();
            self.at_prompt.store(true, Ordering::SeqCst);
        }
    }

    /// The user pressed enter.
    pub fn typed(&self) {
        self.at_prompt.store(false, Ordering::SeqCst);
    }

    /// Whether this is an interactive terminal prompt.
    pub fn is_terminal(&self) -> bool {
        self.prompt.is_some()
    }
}

/// An event this window saw, for the `wait` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// `notes:changed`, by this window id.
    Note(Option<u64>),
    /// `settings:changed`, by this window id.
    Settings(Option<u64>),
    /// `windows:opened`, this id.
    Opened(u64),
    /// `windows:closed`, this id.
    Closed(u64),
}

/// How many events a window keeps for `wait`: the oldest is forgotten
/// beyond, so that a window no script waits in does not grow.
pub const SEEN_KEPT: usize = 256;

/// The events a window has seen that no `wait` has taken yet, oldest
/// first. Each `wait` takes one: a script's `wait` is satisfied by an event
/// that arrived before it ran (there is no race with the command that
/// caused it), and the same event never satisfies two.
#[derive(Default)]
pub struct SeenLog {
    events: Mutex<VecDeque<Seen>>,
    arrived: Notify,
}

impl SeenLog {
    /// Records an event a listener saw.
    pub fn record(&self, seen: Seen) {
        {
            let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
            if events.len() == SEEN_KEPT {
                events.pop_front();
            }
            events.push_back(seen);
        }
        self.arrived.notify_one();
    }

    /// Takes the oldest event `matches` accepts, leaving the others for
    /// later waits, waiting for one until `deadline`. `None` if none came.
    pub async fn take(&self, matches: impl Fn(&Seen) -> bool, deadline: Instant) -> Option<Seen> {
        loop {
            {
                let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(at) = events.iter().position(&matches) {
                    return events.remove(at);
                }
            }
            // A record between the check and here leaves a permit, so this
            // wakes at once.
            tokio::time::timeout_at(deadline, self.arrived.notified())
                .await
                .ok()?;
        }
    }
}

/// A command another window sent through main (`windows:tell`).
pub type Told = (Option<WindowRef>, String);

pub fn settings_line(s: &AppSettings) -> String {
    format!(
        "theme={} font_size={} autosave_secs={} language={}",
        s.theme, s.font_size, s.autosave_secs, s.language
    )
}

/// Subscribes to every event the role exposes: each is printed, recorded
/// for `wait`, and commands go to the shell. The guards unsubscribe when
/// dropped.
async fn listen(
    api: &RoleApi,
    out: &Out,
    seen: &Arc<SeenLog>,
    told: UnboundedSender<Told>,
) -> Result<Vec<Subscription>, IpcError> {
    let id_of = |by: &Option<WindowRef>| by.as_ref().map(|w| w.id);
    let mut subscriptions = Vec::new();
    let settings_changed = {
        let (out, seen) = (out.clone(), seen.clone());
        move |settings: AppSettings, by: Option<WindowRef>| {
            out.say(format_args!(
                "event settings:changed: {} (by {})",
                settings_line(&settings),
                by_whom(&by)
            ));
            seen.record(Seen::Settings(id_of(&by)));
        }
    };
    let command = move |from: Option<WindowRef>, line: String| {
        let _ = told.send((from, line));
    };
    match api {
        RoleApi::Editor(api) => {
            let (o, s) = (out.clone(), seen.clone());
            subscriptions.push(
                api.notes_events
                    .on_changed(move |event| {
                        let what = match &event.change {
                            NoteChange::Created(n) => {
                                format!("note #{} {:?} created", n.id, n.title)
                            }
                            NoteChange::Updated(n) => {
                                format!("note #{} {:?} updated", n.id, n.title)
                            }
                            NoteChange::Deleted { id, title } => {
                                format!("note #{id} {title:?} deleted")
                            }
                        };
                        o.say(format_args!(
                            "event notes:changed: {what} by {}",
                            by_whom(&event.by)
                        ));
                        s.record(Seen::Note(id_of(&event.by)));
                    })
                    .await?,
            );
            subscriptions.push(api.settings_events.on_changed(settings_changed).await?);
            let (o, s) = (out.clone(), seen.clone());
            subscriptions.push(
                api.windows_events
                    .on_opened(move |w| {
                        o.say(format_args!(
                            "event windows:opened: {}#{} (pid {}, {})",
                            w.role,
                            w.id,
                            w.pid.unwrap_or_default(),
                            w.api
                        ));
                        s.record(Seen::Opened(w.id));
                    })
                    .await?,
            );
            let (o, s) = (out.clone(), seen.clone());
            subscriptions.push(
                api.windows_events
                    .on_closed(move |w, how| {
                        o.say(format_args!(
                            "event windows:closed: {}#{} {how}",
                            w.role, w.id
                        ));
                        s.record(Seen::Closed(w.id));
                    })
                    .await?,
            );
            let o = out.clone();
            subscriptions.push(
                api.notifications
                    .on_show(move |n| {
                        o.say(format_args!(
                            "notification: {}: {} (by {})",
                            n.title,
                            n.body,
                            by_whom(&n.by)
                        ))
                    })
                    .await?,
            );
            subscriptions.push(api.windows_events.on_command(command).await?);
        }
        RoleApi::Settings(api) => {
            subscriptions.push(api.settings_events.on_changed(settings_changed).await?);
            subscriptions.push(api.windows_events.on_command(command).await?);
        }
    }
    Ok(subscriptions)
}

/// How this window gets its commands.
pub enum Mode {
    /// From standard input.
    Prompt,
    /// From a built-in script, then from other windows.
    Script(&'static str, &'static [&'static str]),
    /// Only from other windows.
    Follow,
}

impl Mode {
    fn parse(mode: &str) -> Result<Self, String> {
        match mode {
            "prompt" => Ok(Mode::Prompt),
            "follow" => Ok(Mode::Follow),
            other => match other.strip_prefix("script:") {
                Some(name) => scripts::get(name)
                    .map(|(name, lines)| Mode::Script(name, lines))
                    .ok_or_else(|| format!("no script named {name:?}")),
                None => Err(format!("unknown mode {other:?}")),
            },
        }
    }
}

/// The window's life: connect, listen, run commands until the user quits
/// or main closes the connection.
pub async fn run(role: Role, mode: &str) -> Result<(), Box<dyn Error>> {
    let mode = Mode::parse(mode)?;
    let api = RoleApi::connect(role).await?;
    let terminal = matches!(mode, Mode::Prompt) && std::io::stdin().is_terminal();
    let out = Out::new(api.name(), terminal);
    let seen = Arc::new(SeenLog::default());
    let (told_tx, told) = mpsc::unbounded_channel();
    let subscriptions = listen(&api, &out, &seen, told_tx).await?;
    out.say(format_args!(
        "window open as pid {} ({} role){}",
        std::process::id(),
        api.role(),
        match &mode {
            Mode::Prompt if terminal => "; type `help`".to_string(),
            Mode::Prompt => ", reading commands from standard input".to_string(),
            Mode::Script(name, _) => format!(", running script {name:?}"),
            Mode::Follow => ", following events and commands".to_string(),
        }
    ));
    Shell::new(api, out, seen, subscriptions)
        .run(mode, told)
        .await
        .map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn soon(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    #[tokio::test]
    async fn a_wait_takes_the_oldest_match_and_leaves_the_rest() {
        let log = SeenLog::default();
        log.record(Seen::Settings(Some(1)));
        log.record(Seen::Note(Some(2)));
        log.record(Seen::Settings(Some(3)));
        let note = |s: &Seen| matches!(s, Seen::Note(_));
        let settings = |s: &Seen| matches!(s, Seen::Settings(_));
        assert_eq!(log.take(note, soon(10)).await, Some(Seen::Note(Some(2))));
        assert_eq!(log.take(note, soon(10)).await, None, "taken once only");
        assert_eq!(
            log.take(settings, soon(10)).await,
            Some(Seen::Settings(Some(1)))
        );
        assert_eq!(
            log.take(settings, soon(10)).await,
            Some(Seen::Settings(Some(3)))
        );
        assert_eq!(log.take(settings, soon(10)).await, None);
    }

    #[tokio::test]
    async fn a_wait_sees_what_arrives_while_it_waits() {
        let log = Arc::new(SeenLog::default());
        let recorder = Arc::clone(&log);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            recorder.record(Seen::Opened(7));
            recorder.record(Seen::Closed(7));
        });
        let closed = |s: &Seen| matches!(s, Seen::Closed(7));
        assert_eq!(log.take(closed, soon(10_000)).await, Some(Seen::Closed(7)));
    }

    #[test]
    fn a_window_nobody_waits_in_keeps_only_the_newest_events() {
        let log = SeenLog::default();
        for id in 0..SEEN_KEPT as u64 + 10 {
            log.record(Seen::Opened(id));
        }
        let events = log.events.lock().unwrap();
        assert_eq!(events.len(), SEEN_KEPT);
        assert_eq!(events.front(), Some(&Seen::Opened(10)));
    }
}

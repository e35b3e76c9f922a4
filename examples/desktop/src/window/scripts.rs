//! The scripted demo's scripts: command lines as a person would type them.
//! `!` marks a step that must be refused (by main, or by the window's own
//! role); any other step must succeed. `#` starts a comment.

/// Run by the first editor window: every namespace, across three windows.
const TOUR: &[&str] = &[
    "# system and windows",
    "system",
    "windows",
    "# a settings window (another process, a narrower API) changes the theme",
    "open settings",
    "wait settings $settings",
    "settings",
    "! set theme light",
    "# the settings window's API has no notes channels (commands run in order there)",
    "tell $settings notes",
    "tell $settings set autosave_secs 60",
    "wait settings $settings",
    "# notes in SQLite; every change is pushed to every editor window",
    "note new Shopping 'eggs, flour, milk'",
    "note new Ideas 'typed IPC between processes'",
    "! note new '' 'a note needs a title'",
    "note edit $note Ideas 'typed IPC between processes, checked by the compiler'",
    "note search typed compiler",
    "note show $note",
    "note new Scratch 'to be deleted'",
    "note rm $note",
    "! note show $note",
    "# a second editor window creates a note; its change reaches this one",
    "open editor",
    "tell $editor note new 'From the second editor' 'written by another process'",
    "wait note $editor",
    "notes",
    "# export and import stay inside the allowed directories",
    "roots",
    "export backup/notes.json",
    "import backup/notes.json",
    "! export ../outside.json",
    "! export /etc/ipc-desktop-notes.json",
    "! export link-out/notes.json",
    "windows",
    "close $editor",
    "close $settings",
    "quit",
];

/// Run by a settings window in the scripted demo.
const SETTINGS: &[&str] = &[
    "settings",
    "! set font_size 200",
    "! set language 'fr_FR; rm -rf /'",
    "set theme dark font_size 16",
];

/// The script called `name`.
pub fn get(name: &str) -> Option<(&'static str, &'static [&'static str])> {
    match name {
        "tour" => Some(("tour", TOUR)),
        "settings" => Some(("settings", SETTINGS)),
        _ => None,
    }
}

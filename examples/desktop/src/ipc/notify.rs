//! `notifications`: main → every window ("note saved", "settings changed",
//! "window opened"). Other modules are handed a [`Notifier`] and call it.

use ipc_runtime::{Main, Target};

use super::contract::{Notification, NotificationsEmitter, WindowRef};

/// Pushes notifications to every window that listens.
pub struct Notifier {
    show: NotificationsEmitter,
}

impl Notifier {
    /// A notifier pushing through `main`.
    pub fn new(main: &Main) -> Self {
        Notifier {
            show: NotificationsEmitter::new(main, Target::All),
        }
    }

    /// Pushes one notification; returns how many windows it was queued for.
    pub fn push(&self, title: &str, body: impl Into<String>, by: Option<WindowRef>) -> usize {
        self.show.show(Notification {
            title: title.to_string(),
            body: body.into(),
            by,
        })
    }
}

//! `settings`: the user's settings, in `settings.json` in the data
//! directory. Main validates every change (a typed error names the field
//! and why), saves it, and pushes it to every window on `settings:changed`.

use std::{path::PathBuf, sync::Arc};

use tokio::sync::Mutex;

use super::{
    caller,
    contract::{AppSettings, Settings, SettingsError, SettingsEventsEmitter, SettingsPatch},
    log,
    notify::Notifier,
};

/// The `settings` handler: the file, the current value, and the emitters.
pub struct SettingsHandler {
    path: PathBuf,
    /// Held across validation, saving and the push, so that changes are
    /// saved and announced in one order.
    current: Mutex<AppSettings>,
    changed: SettingsEventsEmitter,
    notify: Arc<Notifier>,
}

fn invalid(field: &str, reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// Main's rules for settings.
pub fn validate(s: &AppSettings) -> Result<(), SettingsError> {
    if !(8..=72).contains(&s.font_size) {
        return Err(invalid(
            "font_size",
            format!("must be between 8 and 72 points, got {}", s.font_size),
        ));
    }
    if s.autosave_secs != 0 && !(5..=3600).contains(&s.autosave_secs) {
        return Err(invalid(
            "autosave_secs",
            format!(
                "must be 0 (off) or between 5 and 3600 seconds, got {}",
                s.autosave_secs
            ),
        ));
    }
    // A language tag such as `en`, `fra` or `fr-CA`.
    let (lang, region) = match s.language.split_once('-') {
        Some((l, r)) => (l, Some(r)),
        None => (s.language.as_str(), None),
    };
    let lang_ok = (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_lowercase());
    let region_ok = match region {
        None => true,
        Some(r) => r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()),
    };
    if !lang_ok || !region_ok {
        return Err(invalid(
            "language",
            format!(
                "must be a language tag such as `en` or `fr-CA`, got {:?}",
                s.language
            ),
        ));
    }
    Ok(())
}

/// `patch` applied to `base`.
pub fn apply(base: &AppSettings, patch: SettingsPatch) -> AppSettings {
    AppSettings {
        theme: patch.theme.unwrap_or(base.theme),
        font_size: patch.font_size.unwrap_or(base.font_size),
        autosave_secs: patch.autosave_secs.unwrap_or(base.autosave_secs),
        language: patch.language.unwrap_or_else(|| base.language.clone()),
    }
}

/// What differs between two settings, in words: "theme system → dark".
fn changes(old: &AppSettings, new: &AppSettings) -> String {
    let mut changed = Vec::new();
    if old.theme != new.theme {
        changed.push(format!("theme {} → {}", old.theme, new.theme));
    }
    if old.font_size != new.font_size {
        changed.push(format!("font_size {} → {}", old.font_size, new.font_size));
    }
    if old.autosave_secs != new.autosave_secs {
        changed.push(format!(
            "autosave_secs {} → {}",
            old.autosave_secs, new.autosave_secs
        ));
    }
    if old.language != new.language {
        changed.push(format!("language {} → {}", old.language, new.language));
    }
    changed.join(", ")
}

impl SettingsHandler {
    /// Loads the settings from `path`. A missing file gives the defaults;
    /// an unreadable or invalid one too, with a warning (the file is left
    /// as it is until the next change).
    pub fn load(
        path: PathBuf,
        changed: SettingsEventsEmitter,
        notify: Arc<Notifier>,
    ) -> SettingsHandler {
        let current = match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => AppSettings::default(),
            Err(e) => {
                log(format_args!(
                    "cannot read {}: {e}; using the defaults",
                    path.display()
                ));
                AppSettings::default()
            }
            Ok(bytes) => match serde_json::from_slice::<AppSettings>(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|s| validate(&s).map(|()| s).map_err(|e| e.to_string()))
            {
                Ok(s) => s,
                Err(e) => {
                    log(format_args!(
                        "{} is not valid ({e}); using the defaults",
                        path.display()
                    ));
                    AppSettings::default()
                }
            },
        };
        SettingsHandler {
            path,
            current: Mutex::new(current),
            changed,
            notify,
        }
    }

    /// Writes the file atomically: a temporary file, then a rename.
    async fn save(&self, settings: &AppSettings) -> Result<(), SettingsError> {
        let storage = |e: std::io::Error| SettingsError::Storage(e.to_string());
        let json = serde_json::to_vec_pretty(settings)
            .map_err(|e| SettingsError::Storage(e.to_string()))?;
        let tmp = self.path.with_extension("json.tmp");
        let saved = match tokio::fs::write(&tmp, json).await {
            Ok(()) => tokio::fs::rename(&tmp, &self.path).await,
            Err(e) => Err(e),
        };
        if saved.is_err() {
            // Nothing half-done is left beside the settings.
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        saved.map_err(storage)
    }
}

impl Settings for SettingsHandler {
    async fn get(&self) -> AppSettings {
        self.current.lock().await.clone()
    }

    async fn update(&self, patch: SettingsPatch) -> Result<AppSettings, SettingsError> {
        let mut current = self.current.lock().await;
        let next = apply(&current, patch);
        validate(&next)?;
        if next == *current {
            return Ok(next);
        }
        self.save(&next).await?;
        let what = changes(&current, &next);
        *current = next.clone();
        let by = caller();
        log(format_args!(
            "settings saved to {} (asked by {})",
            self.path.display(),
            super::contract::by_whom(&by)
        ));
        self.changed.changed(next.clone(), by.clone());
        self.notify.push("settings changed", what, by);
        Ok(next)
    }
}

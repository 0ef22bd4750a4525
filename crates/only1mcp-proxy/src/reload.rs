//! Hot reload: the config file is watched (and SIGHUP or the CLI can ask
//! too); each change is loaded and validated beside the running config, and
//! applied with [`Gateway::reload`] only if it is valid (and, for a file
//! event, only if it differs from the running config). An invalid file is
//! refused with a clear log line and the gateway keeps running on what it
//! had; the next valid version is picked up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify_debouncer_full::notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

use crate::gateway::{Gateway, ReloadReport};
use crate::load::{self, LoadError};

/// How long file events are collected before a reload (editors write in
/// several steps).
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Loads `path` and applies it; an invalid file changes nothing.
pub async fn reload_from(gateway: &Gateway, path: &Path) -> Result<ReloadReport, LoadError> {
    let began = std::time::Instant::now();
    match load::load_file(path) {
        Ok(config) => Ok(gateway.reload(&config).await),
        Err(e) => {
            gateway.record_reload(false, began.elapsed());
            tracing::error!(config = %path.display(), error = %e, "Config reload rejected; keeping the running config");
            Err(e)
        }
    }
}

/// Loads `path` and applies it if it differs from the config the gateway
/// runs on. A file event that changed nothing (editors and `write` give
/// several per save) then costs no reload, so a changed server whose
/// replacement failed to start is not tried again until its config changes
/// (SIGHUP and `POST /reload` always try again).
async fn reload_if_changed(gateway: &Gateway, path: &Path) {
    match load::load_file(path) {
        Ok(config) if config == *gateway.config() => {
            tracing::info!(config = %path.display(), "Config file event without a change; nothing to reload");
        }
        Ok(config) => {
            gateway.reload(&config).await;
        }
        Err(e) => {
            tracing::error!(config = %path.display(), error = %e, "Config reload rejected; keeping the running config");
        }
    }
}

/// Watches a config file while alive.
pub struct Watcher {
    _debouncer: Debouncer<notify_debouncer_full::notify::RecommendedWatcher, RecommendedCache>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").finish_non_exhaustive()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reloads `gateway` whenever `path` changes, and whenever `trigger` fires
/// (SIGHUP). The directory is watched, not the file, so editors that replace
/// the file (write a temp file, rename it over) are seen too.
pub fn watch(
    gateway: Gateway,
    path: &Path,
    mut trigger: mpsc::Receiver<()>,
) -> Result<Watcher, notify_debouncer_full::notify::Error> {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let dir = path
        .parent()
        .map(Path::to_owned)
        .unwrap_or_else(|| PathBuf::from("."));
    let include =
        load::include_dir(&gateway.config(), &path).map(|d| d.canonicalize().unwrap_or(d));
    let included = include.clone();
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let file = path.clone();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        let Ok(events) = result else { return };
        let touches_file = events.iter().any(|event| {
            event.paths.iter().any(|p| {
                p == &file
                    || p.file_name() == file.file_name()
                    || included.as_ref().is_some_and(|d| p.starts_with(d))
            })
        });
        if touches_file {
            // A reload already queued covers this change too.
            let _ = tx.try_send(());
        }
    })?;
    debouncer.watch(&dir, RecursiveMode::NonRecursive)?;
    if let Some(include) = &include {
        debouncer.watch(include, RecursiveMode::NonRecursive)?;
    }
    tracing::info!(config = %path.display(), "Watching the config file for changes");
    let task = tokio::spawn(async move {
        loop {
            let asked = tokio::select! {
                changed = rx.recv() => if changed.is_none() { break } else { false },
                asked = trigger.recv() => if asked.is_none() { break } else { true },
            };
            if asked {
                let _ = reload_from(&gateway, &path).await;
            } else {
                reload_if_changed(&gateway, &path).await;
            }
        }
    });
    Ok(Watcher {
        _debouncer: debouncer,
        task,
    })
}

//! The file provider: Traefik dynamic configuration from a file or a directory (recursive),
//! TOML or YAML, watched with inotify. A change is reloaded within milliseconds; a file that
//! does not parse is reported and never replaces the last good view.

use super::ProviderEvent;
use crate::aggregator::ProviderConfig;
use notify::{RecursiveMode, Watcher};
use ringway_shared::config::{parse_dynamic, ConfigErrors, DynamicConfig, FileProvider, Format};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

pub const PROVIDER: &str = "file";

/// How long a burst of file events (an editor's temp file, write and rename) is coalesced.
const SETTLE: Duration = Duration::from_millis(10);

/// Reads and merges the configured file or directory.
pub fn load_file_provider(cfg: &FileProvider) -> Result<DynamicConfig, ConfigErrors> {
    let mut files = Vec::new();
    if let Some(f) = &cfg.filename {
        files.push(f.clone());
    }
    if let Some(d) = &cfg.directory {
        collect(d, &mut files).map_err(|e| {
            ConfigErrors::one(
                d.display().to_string(),
                format!("cannot read directory: {e}"),
            )
        })?;
    }
    if files.is_empty() && cfg.filename.is_none() && cfg.directory.is_none() {
        return Err(ConfigErrors::one(
            "providers.file",
            "either filename or directory must be set",
        ));
    }
    files.sort();
    let mut merged = DynamicConfig::default();
    let mut errors = Vec::new();
    for f in &files {
        let source = f.display().to_string();
        let format = Format::from_path(f).unwrap_or(Format::Toml);
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                errors.push(ringway_shared::config::ConfigError::new(
                    source,
                    format!("cannot read: {e}"),
                ));
                continue;
            }
        };
        match parse_dynamic(&source, &text, format) {
            Ok(cfg) => {
                if let Err(e) = merged.merge(cfg) {
                    errors.extend(e);
                }
            }
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(merged)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Every `.toml`, `.yml` and `.yaml` file under `dir`, recursively (as Traefik).
fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue; // editors' swap and temp files
        }
        if entry.file_type()?.is_dir() {
            collect(&path, out)?;
        } else if Format::from_path(&path).is_some() {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads once, then (if `watch`) reloads on every change, sending each new view. Returns when
/// the receiver is gone (or after the first load when not watching).
pub async fn run_file_provider(cfg: FileProvider, tx: mpsc::Sender<ProviderEvent>) {
    let mut last: Option<DynamicConfig> = None;
    if !cfg.watch {
        send_if_changed(&cfg, &tx, &mut last).await;
        return;
    }
    // Watch before the first load, so that a change made meanwhile is not missed.
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<()>();
    let _watcher = watch(&cfg, ev_tx);
    if !send_if_changed(&cfg, &tx, &mut last).await {
        return;
    }
    loop {
        tokio::select! {
            ev = ev_rx.recv() => {
                if ev.is_none() {
                    return; // no watcher: nothing more will change
                }
                // Coalesce the burst (an editor's temp file, write, rename).
                tokio::time::sleep(SETTLE).await;
                while ev_rx.try_recv().is_ok() {}
                if !send_if_changed(&cfg, &tx, &mut last).await {
                    return;
                }
            }
            _ = tx.closed() => return,
        }
    }
}

/// Starts watching: the parent directory of `filename` (editors and atomic writers replace
/// the file by renaming, and Kubernetes swaps a symlinked directory), and `directory`
/// recursively. Failures are logged; the provider then serves what it loaded.
fn watch(
    cfg: &FileProvider,
    ev_tx: mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.as_ref().is_ok_and(is_change) {
            let _ = ev_tx.send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "file provider: cannot watch; changes will not be picked up");
            return None;
        }
    };
    let mut targets: Vec<(PathBuf, RecursiveMode)> = Vec::new();
    if let Some(f) = &cfg.filename {
        let parent = f
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        targets.push((parent.to_path_buf(), RecursiveMode::NonRecursive));
    }
    if let Some(d) = &cfg.directory {
        targets.push((d.clone(), RecursiveMode::Recursive));
    }
    for (path, mode) in &targets {
        if let Err(e) = watcher.watch(path, *mode) {
            tracing::error!(path = %path.display(), error = %e, "file provider: cannot watch");
        }
    }
    Some(watcher)
}

/// Whether an event can change the configuration. inotify also reports opens and reads
/// (`Access`), among them our own reads of the files: reloading on those would loop forever.
fn is_change(event: &notify::Event) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Loads and sends the view if it changed since the last one sent (or the error); false when
/// the receiver is gone.
async fn send_if_changed(
    cfg: &FileProvider,
    tx: &mpsc::Sender<ProviderEvent>,
    last: &mut Option<DynamicConfig>,
) -> bool {
    let event = match load_file_provider(cfg) {
        Ok(config) => {
            if last.as_ref() == Some(&config) {
                return true;
            }
            *last = Some(config.clone());
            ProviderEvent::Config(Box::new(ProviderConfig {
                provider: PROVIDER.to_string(),
                config,
            }))
        }
        Err(error) => ProviderEvent::Error {
            provider: PROVIDER.to_string(),
            error,
        },
    };
    tx.send(event).await.is_ok()
}

#[cfg(test)]
mod tests;

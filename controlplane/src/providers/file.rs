//! The file provider: Traefik dynamic configuration from a file or a directory (recursive),
//! TOML or YAML, watched with inotify. A change is reloaded within milliseconds; a file that
//! does not parse is reported and never replaces the last good view.

use super::ProviderEvent;
use crate::aggregator::ProviderConfig;
use notify::{RecursiveMode, Watcher};
use ringway_shared::config::reparse::Document;
use ringway_shared::config::{ConfigErrors, DynamicConfig, FileProvider, Format};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

pub const PROVIDER: &str = "file";

/// A burst of file events (an editor's temp file, truncate, write and rename) is coalesced
/// until it has been quiet this long (unless every event of the burst says the content is
/// whole, see [`whole`])...
const SETTLE: Duration = Duration::from_millis(3);
/// ...or for at most this long, so that a file rewritten without pause still reloads.
const SETTLE_MAX: Duration = Duration::from_millis(50);

/// Reads and merges the configured file or directory.
pub fn load_file_provider(cfg: &FileProvider) -> Result<DynamicConfig, ConfigErrors> {
    ParseCache::default().load(cfg)
}

/// What identifies a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// The stamp of a file last changed more than a second ago; `None` for a newer one (file
    /// times have the kernel tick's granularity: two writes of the same length within one
    /// tick would look the same), which is then always read.
    fn stable(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        // ctime, which a writer cannot set back (as it can mtime).
        let changed = std::time::UNIX_EPOCH
            + Duration::new(
                u64::try_from(m.ctime()).ok()?,
                u32::try_from(m.ctime_nsec()).ok()?,
            );
        if changed
            .elapsed()
            .map_or(true, |age| age < Duration::from_secs(1))
        {
            return None;
        }
        Some(Stamp {
            len: m.len(),
            ino: m.ino(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// Each file's last text and what it parsed to. A reload parses only the files whose text
/// changed: adding one file to a directory of 10,000 routers costs that file, not all of them.
#[derive(Default)]
pub struct ParseCache {
    files: HashMap<PathBuf, Parsed>,
    /// Each file's size, inode and times when it was last read: a file whose stamp did not
    /// change is not read again (a 1.7 MB file costs ~2 ms to read and compare).
    stamps: HashMap<PathBuf, Stamp>,
    /// Whether a load has completed with every file read (so "nothing changed" means
    /// something).
    complete: bool,
    /// Files reparsed in part so far (in the debug log).
    reparsed_in_part: usize,
}

/// One file's text, and what it decoded to with the tree it decoded from (kept while the
/// decode succeeds). A rewrite of the file is first reparsed in part: when the text changed
/// only within whole routers, services or middlewares, only those sections are parsed and
/// decoded, and the rest of the configuration is shared as it was (see
/// [`Document::reparse`]); otherwise the whole text is parsed and decoded as a patch of the
/// last decode, where the routers and services whose trees did not change are taken as they
/// were (see [`DynamicConfig::from_node_after`]). The control plane's RSS with the trees kept
/// is 62 MiB at 10,000 routers.
struct Parsed {
    text: String,
    result: Result<DynamicConfig, ConfigErrors>,
    doc: Option<Document>,
    /// Whether this was reparsed in part.
    in_part: bool,
}

impl Parsed {
    fn new(source: &str, text: String, format: Format, previous: Option<Parsed>) -> Parsed {
        let previous = previous.and_then(|p| match (p.doc, p.result) {
            (Some(doc), Ok(cfg)) => Some((p.text, doc, cfg)),
            _ => None,
        });
        let previous = match previous {
            Some((old, mut doc, cfg)) => match doc.reparse(&old, &text) {
                Some(changes) => {
                    tracing::debug!(
                        source,
                        items = changes.len(),
                        "file provider: reparsed in part"
                    );
                    let result = cfg.patched(source, &changes);
                    let doc = result.is_ok().then_some(doc);
                    return Parsed {
                        text,
                        result,
                        doc,
                        in_part: true,
                    };
                }
                None => Some((doc, cfg)),
            },
            None => None,
        };
        let doc = match Document::parse(&text, format) {
            Ok(doc) => doc,
            Err(message) => {
                return Parsed {
                    text,
                    result: Err(ConfigErrors::one(source, message)),
                    doc: None,
                    in_part: false,
                }
            }
        };
        let result = DynamicConfig::from_node_after(
            source,
            &doc.tree,
            previous.as_ref().map(|(doc, cfg)| (&doc.tree, cfg)),
        );
        let doc = result.is_ok().then_some(doc);
        Parsed {
            text,
            result,
            doc,
            in_part: false,
        }
    }
}

impl ParseCache {
    /// Reads and merges the configured file or directory, reusing unchanged files' parses.
    pub fn load(&mut self, cfg: &FileProvider) -> Result<DynamicConfig, ConfigErrors> {
        self.load_inner(cfg, true)
            .unwrap_or_else(|| unreachable!("a forced load always yields"))
    }

    /// As [`ParseCache::load`], but `None` when no file was added, removed or changed since
    /// the last load (the events of a temp file, of our own reads, of a `touch`).
    pub fn load_if_changed(
        &mut self,
        cfg: &FileProvider,
    ) -> Option<Result<DynamicConfig, ConfigErrors>> {
        self.load_inner(cfg, false)
    }

    fn load_inner(
        &mut self,
        cfg: &FileProvider,
        force: bool,
    ) -> Option<Result<DynamicConfig, ConfigErrors>> {
        let result = self.refresh(cfg);
        match result {
            Ok((files, changed)) if changed || force || !self.complete => Some(self.merge(&files)),
            Ok(_) => None,
            Err(e) => {
                self.complete = false;
                Some(Err(e))
            }
        }
    }

    /// Whether `path` is a file the last load read, or a folder above one.
    fn holds_configuration(&self, path: &Path) -> bool {
        // Events name paths under the watched folder as given (`./dynamic.toml` for a
        // configured `dynamic.toml`): compare without `.` steps.
        fn plain(p: &Path) -> PathBuf {
            p.components()
                .filter(|c| !matches!(c, std::path::Component::CurDir))
                .collect()
        }
        let path = plain(path);
        self.files.keys().any(|f| plain(f).starts_with(&path))
    }

    /// Lists the files, re-reads them, and re-parses those whose text changed. Returns the
    /// sorted list and whether anything changed.
    fn refresh(&mut self, cfg: &FileProvider) -> Result<(Vec<PathBuf>, bool), ConfigErrors> {
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
        let before = self.files.len();
        self.files
            .retain(|path, _| files.binary_search(path).is_ok());
        let mut changed = self.files.len() != before;
        let mut unreadable = Vec::new();
        self.stamps
            .retain(|path, _| files.binary_search(path).is_ok());
        for f in &files {
            let stamp = Stamp::stable(f);
            if stamp.is_some() && self.files.contains_key(f) && self.stamps.get(f) == stamp.as_ref()
            {
                continue;
            }
            match stamp {
                Some(s) => self.stamps.insert(f.clone(), s),
                None => self.stamps.remove(f),
            };
            let text = match std::fs::read_to_string(f) {
                Ok(t) => t,
                Err(e) => {
                    self.files.remove(f);
                    self.stamps.remove(f);
                    unreadable.push(ringway_shared::config::ConfigError::new(
                        f.display().to_string(),
                        format!("cannot read: {e}"),
                    ));
                    continue;
                }
            };
            if self.files.get(f).is_some_and(|old| old.text == text) {
                continue;
            }
            changed = true;
            let source = f.display().to_string();
            let format = Format::from_path(f).unwrap_or(Format::Toml);
            let parsed = Parsed::new(&source, text, format, self.files.remove(f));
            self.reparsed_in_part += usize::from(parsed.in_part);
            self.files.insert(f.clone(), parsed);
        }
        if !unreadable.is_empty() {
            return Err(ConfigErrors(unreadable));
        }
        Ok((files, changed))
    }

    /// Merges the cached parses of `files`, in order.
    fn merge(&mut self, files: &[PathBuf]) -> Result<DynamicConfig, ConfigErrors> {
        self.complete = true;
        let mut merged = DynamicConfig::default();
        let mut errors = Vec::new();
        for f in files {
            let Some(parsed) = self.files.get(f) else {
                continue;
            };
            match &parsed.result {
                Ok(cfg) => {
                    if let Err(e) = merged.merge(cfg.clone()) {
                        errors.extend(e);
                    }
                }
                Err(e) => errors.extend(e.0.iter().cloned()),
            }
        }
        if errors.is_empty() {
            Ok(merged)
        } else {
            Err(ConfigErrors(errors))
        }
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
    let mut cache = ParseCache::default();
    if !cfg.watch {
        send_if_changed(&cfg, &mut cache, &tx).await;
        return;
    }
    // Watch before the first load, so that a change made meanwhile is not missed.
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<notify::Event>();
    let _watcher = watch(&cfg, ev_tx);
    if !send_if_changed(&cfg, &mut cache, &tx).await {
        return;
    }
    loop {
        tokio::select! {
            ev = ev_rx.recv() => {
                let Some(first) = ev else {
                    return; // no watcher: nothing more will change
                };
                let mut burst = vec![first];
                while let Ok(e) = ev_rx.try_recv() {
                    burst.push(e);
                }
                // Coalesce the burst (an editor's temp file, write, rename): a file read
                // between its truncation and its write would look empty. A file renamed into
                // place is read at once.
                if !whole(&burst, &cache) {
                    let until = tokio::time::Instant::now() + SETTLE_MAX;
                    loop {
                        tokio::time::sleep(SETTLE).await;
                        let mut more = false;
                        while ev_rx.try_recv().is_ok() {
                            more = true;
                        }
                        if !more || tokio::time::Instant::now() >= until {
                            break;
                        }
                    }
                }
                if !send_if_changed(&cfg, &mut cache, &tx).await {
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
    ev_tx: mpsc::UnboundedSender<notify::Event>,
) -> Option<notify::RecommendedWatcher> {
    let watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(event) if is_change(&event) => {
                let _ = ev_tx.send(event);
            }
            _ => {}
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

/// Whether every event of a burst leaves the files whole, so that they can be read without
/// waiting for the burst to settle: a file closed after writing, a file renamed into place
/// (an atomic writer's last step), or renamed away from a name that held no configuration (its
/// temp file). A write under way, a creation, a removal, or a configuration file (or a folder
/// holding one) renamed away — perhaps the first half of a replacement — are not.
fn whole(burst: &[notify::Event], cache: &ParseCache) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
    burst.iter().all(|e| match e.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => true,
        EventKind::Modify(ModifyKind::Name(RenameMode::From | RenameMode::Both)) => e
            .paths
            .first()
            .is_some_and(|from| !cache.holds_configuration(from)),
        _ => false,
    })
}

/// Loads and sends the view if it changed since the last one sent (or the error); false when
/// the receiver is gone.
async fn send_if_changed(
    cfg: &FileProvider,
    cache: &mut ParseCache,
    tx: &mpsc::Sender<ProviderEvent>,
) -> bool {
    let started = std::time::Instant::now();
    let loaded = cache.load_if_changed(cfg);
    tracing::debug!(
        micros = started.elapsed().as_micros() as u64,
        changed = loaded.is_some(),
        reparsed_in_part = cache.reparsed_in_part,
        "file provider: files read"
    );
    let event = match loaded {
        None => return true,
        Some(Ok(config)) => ProviderEvent::Config(Box::new(ProviderConfig {
            provider: PROVIDER.to_string(),
            config,
        })),
        Some(Err(error)) => ProviderEvent::Error {
            provider: PROVIDER.to_string(),
            error,
        },
    };
    tx.send(event).await.is_ok()
}

#[cfg(test)]
mod tests;

//! Process logging through `tracing`, configured by Traefik's `log.*` options.

use ringway_shared::config::static_config::{Log, LogFormat, LogLevel};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` overrides
/// `log.level` when set. Logs go to stderr, or to `log.filePath` (appended) when set.
pub fn init(log: &Log) {
    let level = match log.level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        _ => "error",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let file = log.file_path.as_ref().and_then(|p| {
        open(p)
            .map_err(|e| eprintln!("ringway: cannot open log file {}: {e}", p.display()))
            .ok()
            .map(|f| {
                let file = LOG_FILE.get_or_init(|| LogFile {
                    path: p.clone(),
                    file: Mutex::new(f),
                });
                ringway_shared::log_reopen::register(reopen);
                file
            })
    });
    use std::io::IsTerminal;
    let ansi = file.is_none() && std::io::stderr().is_terminal();
    let writer = match file {
        Some(f) => tracing_subscriber::fmt::writer::BoxMakeWriter::new(f),
        None => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    let _ = match log.format {
        LogFormat::Json => builder.json().try_init(),
        _ => builder.try_init(),
    };
}

/// `log.filePath`, reopened on `SIGUSR1` (after logrotate moved it).
struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

static LOG_FILE: OnceLock<LogFile> = OnceLock::new();

fn open(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// Opens the log file again; on failure the old one keeps the lines (and says so).
fn reopen() {
    let Some(log) = LOG_FILE.get() else { return };
    match open(&log.path) {
        Ok(f) => *log.file.lock().unwrap_or_else(|e| e.into_inner()) = f,
        Err(e) => eprintln!(
            "ringway: cannot reopen the log file {}: {e}",
            log.path.display()
        ),
    }
}

/// One event's lines, written under the lock.
struct LogGuard<'a>(std::sync::MutexGuard<'a, File>);

impl Write for LogGuard<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for &'static LogFile {
    type Writer = LogGuard<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LogGuard(self.file.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

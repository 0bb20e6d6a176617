//! Process logging through `tracing`, configured by Traefik's `log.*` options.

use ringway_shared::config::static_config::{Log, LogFormat, LogLevel};
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
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| eprintln!("ringway: cannot open log file {}: {e}", p.display()))
            .ok()
    });
    use std::io::IsTerminal;
    let ansi = file.is_none() && std::io::stderr().is_terminal();
    let writer = match file {
        Some(f) => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::sync::Mutex::new(f)),
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

//! `SIGUSR1` reopens the log files after a rotation, as in Traefik. The executable registers
//! how to reopen its process log (`log.filePath`); the signal handlers of both processes call
//! [`reopen`].

use std::sync::OnceLock;

static HOOK: OnceLock<fn()> = OnceLock::new();

/// Registers the process log's reopen function (once; later calls are ignored).
pub fn register(f: fn()) {
    let _ = HOOK.set(f);
}

/// Reopens the process log, if it is a file.
pub fn reopen() {
    if let Some(f) = HOOK.get() {
        f();
    }
}

//! `ringway kv lock`: the distributed lock from a shell, like `flock` across hosts.

use crate::kv::lock::{acquire, KvLock};
use crate::kv::KvClient;
use ringway_shared::config::static_config::KvProvider;
use std::time::Duration;

/// Exit code when another holder has the lock.
const HELD_ELSEWHERE: i32 = 3;
/// Exit code when the lease was lost while held.
const LOST: i32 = 4;

pub(super) async fn run(
    store: &KvProvider,
    name: &str,
    ttl: Duration,
    wait: Duration,
    command: &[String],
) -> i32 {
    if ttl < Duration::from_millis(100) {
        eprintln!("ringway kv lock: --ttl must be at least 100ms");
        return 2;
    }
    let mut client = match KvClient::connect(store).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ringway kv lock: {}: {e}", store.endpoints.join(","));
            return 1;
        }
    };
    let lease = match acquire(&mut client, name, ttl, wait).await {
        Ok(Some(lease)) => lease,
        Ok(None) => {
            eprintln!("ringway kv lock: {name} is held elsewhere");
            return HELD_ELSEWHERE;
        }
        Err(e) => {
            eprintln!("ringway kv lock: {e}");
            return 1;
        }
    };
    println!("acquired {name} token {}", lease.token);
    let mut child = match command.split_first() {
        None => None,
        Some((program, args)) => match std::process::Command::new(program).args(args).spawn() {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("ringway kv lock: cannot run {program}: {e}");
                let _ = client.release(lease).await;
                return 1;
            }
        },
    };
    let mut signals = Signals::new();
    let renew_every = ttl / 3;
    let mut next_renew = tokio::time::Instant::now() + renew_every;
    let code = loop {
        if let Some(c) = child.as_mut() {
            match c.try_wait() {
                Ok(Some(status)) => break status.code().unwrap_or(1),
                Ok(None) => {}
                Err(e) => {
                    eprintln!("ringway kv lock: waiting for the command: {e}");
                    break 1;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = signals.recv() => {
                if let Some(c) = child.as_mut() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                break 130;
            }
        }
        if tokio::time::Instant::now() >= next_renew {
            next_renew += renew_every;
            match client.renew(&lease).await {
                Ok(true) => {}
                Ok(false) | Err(_) => {
                    eprintln!("ringway kv lock: lost the lease on {name}");
                    if let Some(c) = child.as_mut() {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                    return LOST;
                }
            }
        }
    };
    if let Err(e) = client.release(lease).await {
        eprintln!("ringway kv lock: release: {e}");
    }
    code
}

/// SIGTERM and SIGINT, registered once (a signal between two waits is not lost).
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    async fn recv(&mut self) {
        let term = async {
            match self.term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        let int = async {
            match self.int.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = term => {}
            _ = int => {}
        }
    }
}

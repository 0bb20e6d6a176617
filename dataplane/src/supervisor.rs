//! The data-plane process: static config, listeners, workers, the control-plane link, signals
//! and graceful shutdown.

use crate::control_link::{ControlLink, StatsSink};
use crate::listener::bind_reuseport;
use crate::snapshot::{Published, TableSlot};
use crate::worker::{self, MetricsSpec, WorkerSpec};
use futures_channel::oneshot;
use ringway_shared::config::static_config::{EntryPoint, StaticConfig, DEFAULT_BUCKETS};
use ringway_shared::stats::Stats;
use ringway_shared::table::RouteTable;
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Runs the data plane until SIGTERM/SIGINT; `args` (the static-config arguments) are passed
/// on to the control plane. Returns the process exit code.
pub fn run(cfg: StaticConfig, args: Vec<String>) -> i32 {
    for key in &cfg.unsupported {
        tracing::warn!(key = %key, "static option not supported yet; ignored");
    }

    let workers = cfg
        .dataplane
        .workers
        .unwrap_or_else(|| {
            thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .max(1);

    // Bind everything before starting anything, so a port in use is a clear, early error.
    let mut per_worker: Vec<Vec<(EntryPoint, std::net::TcpListener)>> =
        (0..workers).map(|_| Vec::new()).collect();
    for ep in cfg.entry_points.values() {
        let listeners = match bind_reuseport(&ep.name, ep.address, workers) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("ringway: {e}");
                return 1;
            }
        };
        let mut ep = ep.clone();
        if let Some(addr) = listeners.first().and_then(|l| l.local_addr().ok()) {
            ep.address = addr;
        }
        println!(
            "ringway: entryPoint {} listening on http://{}",
            ep.name, ep.address
        );
        for (i, l) in listeners.into_iter().enumerate() {
            per_worker[i].push((ep.clone(), l));
        }
    }
    if let (Some(api), Some(ep)) = (
        cfg.api.as_ref().filter(|a| a.insecure && a.dashboard),
        per_worker
            .first()
            .and_then(|l| l.iter().find(|(ep, _)| ep.name == "traefik")),
    ) {
        let mut addr = ep.0.address;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        println!(
            "ringway: dashboard on http://{addr}{}/dashboard/ (API on http://{addr}{}/api/)",
            api.base_path, api.base_path
        );
    }
    let driver = if monoio::utils::detect_uring() {
        "io_uring"
    } else {
        "epoll (io_uring unavailable: blocked by seccomp or an old kernel)"
    };
    println!("ringway: {workers} workers, I/O driver {driver}");
    tracing::info!(workers, driver, "data plane started");

    let generated = match crate::tls::generate_default() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ringway: {e}");
            return 1;
        }
    };
    let initial = match crate::tls::build(&Default::default(), &[], &generated) {
        Ok(tls) => Published {
            table: RouteTable::empty(),
            tls,
        },
        Err(e) => {
            eprintln!("ringway: {e}");
            return 1;
        }
    };
    let slot = Arc::new(TableSlot::new(initial));
    let server_name: Arc<str> = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "ringway".to_string())
        .into();
    let access_log = match cfg.access_log.clone().map(crate::accesslog::Writer::start) {
        None => None,
        Some(Ok(w)) => Some(w),
        Some(Err(e)) => {
            eprintln!("ringway: cannot open the access log: {e}");
            return 1;
        }
    };
    // The API, the dashboard and the metrics are served by the control plane on a unix
    // socket in a directory only this user can enter.
    let api_dir = if cfg.api.is_some() || cfg.metrics.is_some() {
        match private_dir() {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("ringway: cannot create the control plane's socket directory: {e}");
                return 1;
            }
        }
    } else {
        None
    };
    let api_socket = api_dir.as_ref().map(|d| d.join("api.sock"));
    let bounds = cfg
        .metrics
        .as_ref()
        .map_or_else(|| DEFAULT_BUCKETS.to_vec(), |m| m.buckets.clone());
    let (stats_tx, stats_rx) = std::sync::mpsc::channel();
    let mut drains = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for (id, listeners) in per_worker.into_iter().enumerate() {
        let (tx, rx) = oneshot::channel();
        drains.push(tx);
        let spec = WorkerSpec {
            id,
            listeners,
            table: slot.clone(),
            upstream: cfg.servers_transport.forwarding_timeouts,
            max_idle_conns_per_host: cfg.servers_transport.max_idle_conns_per_host,
            server_name: server_name.clone(),
            drain: rx,
            access_log: access_log.as_ref().map(crate::accesslog::Writer::logger),
            metrics: api_socket.as_ref().map(|_| MetricsSpec {
                bounds: bounds.clone(),
                to_stats: stats_tx.clone(),
            }),
            api_socket: api_socket.clone(),
        };
        let h = thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || {
                if let Err(e) = worker::run(spec) {
                    tracing::error!(worker = id, error = %e, "worker failed to start");
                }
            });
        match h {
            Ok(h) => handles.push(h),
            Err(e) => {
                eprintln!("ringway: cannot start worker {id}: {e}");
                return 1;
            }
        }
    }

    drop(stats_tx);
    let link = ControlLink::start(args, slot, generated, api_socket);
    if api_dir.is_some() {
        let sink = link.stats_sink();
        let started = thread::Builder::new()
            .name("stats".into())
            .spawn(move || collect_stats(stats_rx, workers, sink));
        if let Err(e) = started {
            tracing::error!(error = %e, "cannot start the stats thread; metrics stay empty");
        }
    }

    let mut signals = match Signals::new([SIGTERM, SIGINT, SIGUSR1]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ringway: cannot install signal handlers: {e}");
            return 1;
        }
    };
    // SIGUSR1 reopens the access log and both processes' log files (after logrotate moved
    // them), as in Traefik.
    let signal = signals
        .forever()
        .find(|&s| {
            if s == SIGUSR1 {
                if let Some(w) = &access_log {
                    w.reopen();
                }
                ringway_shared::log_reopen::reopen();
                link.signal_child(SIGUSR1);
                return false;
            }
            true
        })
        .unwrap_or(SIGTERM);
    tracing::info!(signal, "shutting down gracefully");
    crate::shutdown::set_terminating();

    let accept_grace = cfg
        .entry_points
        .values()
        .map(|e| e.request_accept_grace_timeout)
        .max()
        .unwrap_or(Duration::ZERO);
    if !accept_grace.is_zero() {
        thread::sleep(accept_grace);
    }
    let grace = cfg
        .entry_points
        .values()
        .map(|e| e.grace_timeout)
        .max()
        .unwrap_or(Duration::from_secs(10));
    for d in drains {
        let _ = d.send(grace);
    }
    link.shutdown();
    for h in handles {
        let _ = h.join();
    }
    if let Some(w) = access_log {
        w.finish();
    }
    if let Some(d) = api_dir {
        let _ = std::fs::remove_dir_all(d);
    }
    tracing::info!("stopped");
    0
}

/// `$XDG_RUNTIME_DIR/ringway-<pid>` (else under the temporary directory), mode 0700.
fn private_dir() -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("ringway-{}", std::process::id()));
    // A leftover of a process that had this pid.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

/// Sums the workers' latest counters and sends them to the control plane once every worker
/// has reported since the last time (about every second), or after a second and a half when
/// one is late, until every worker is gone.
fn collect_stats(rx: std::sync::mpsc::Receiver<(usize, Stats)>, workers: usize, sink: StatsSink) {
    let mut latest: std::collections::BTreeMap<usize, Stats> = Default::default();
    let mut fresh = std::collections::BTreeSet::new();
    let mut sent = std::time::Instant::now();
    loop {
        match rx.recv_timeout(crate::worker::STATS_EVERY / 2) {
            Ok((id, stats)) => {
                latest.insert(id, stats);
                fresh.insert(id);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let late = sent.elapsed() >= crate::worker::STATS_EVERY * 3 / 2;
        if !fresh.is_empty() && (fresh.len() >= workers || late) {
            let mut total = Stats::default();
            for s in latest.values() {
                total.merge(s);
            }
            sink.send(total);
            fresh.clear();
            sent = std::time::Instant::now();
        }
    }
}

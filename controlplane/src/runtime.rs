//! The control plane's main loop: connect to the data plane, run the providers, coalesce
//! their updates, resolve them into a table, push it, and log the data plane's answers.

use crate::aggregator::{resolve_with, Memo, ProviderConfig};
use crate::providers::{docker::run_docker_provider, file::run_file_provider, ProviderEvent};
use ipc_channel::ipc::{self, IpcSender};
use ringway_shared::config::static_config::StaticConfig;
use ringway_shared::ipc::{
    ControlToData, DataToControl, TablePayload, PROTOCOL_VERSION, SERVER_ENV,
};
use ringway_shared::table::{ServiceId, TableSpec};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Shortest interval between two tables: a change after a quiet period applies at once, and
/// the changes that follow within this window are applied together at its end.
/// `providers.providersThrottleDuration` lengthens it.
const MIN_COALESCE: Duration = Duration::from_millis(5);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "{SERVER_ENV} is not set: the control plane is started by the data plane, not by hand"
    )]
    NotSpawned,
    #[error("cannot reach the data plane: {0}")]
    Connect(String),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Runs the control plane until the data plane says shutdown or goes away. Returns the exit code.
pub fn run(cfg: StaticConfig) -> i32 {
    match run_inner(cfg) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ringway controlplane: {e}");
            1
        }
    }
}

fn run_inner(cfg: StaticConfig) -> Result<(), RunError> {
    die_with_parent();
    let name = std::env::var(SERVER_ENV).map_err(|_| RunError::NotSpawned)?;
    let to_data =
        IpcSender::<ControlToData>::connect(name).map_err(|e| RunError::Connect(e.to_string()))?;
    let (reply_tx, reply_rx) =
        ipc::channel::<DataToControl>().map_err(|e| RunError::Connect(e.to_string()))?;
    to_data
        .send(ControlToData::Hello {
            protocol: PROTOCOL_VERSION,
            pid: std::process::id(),
            reply: reply_tx,
        })
        .map_err(|e| RunError::Connect(e.to_string()))?;
    let last_generation = match reply_rx.recv() {
        Ok(DataToControl::Welcome {
            last_generation, ..
        }) => last_generation,
        Ok(other) => {
            return Err(RunError::Connect(format!(
                "unexpected first message {other:?}"
            )))
        }
        Err(e) => return Err(RunError::Connect(e.to_string())),
    };

    // Answers from the data plane arrive on a blocking ipc receiver: bridge them to tokio.
    let (answers_tx, answers) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("ipc-answers".into())
        .spawn(move || {
            while let Ok(msg) = reply_rx.recv() {
                if answers_tx.send(msg).is_err() {
                    return;
                }
            }
        })
        .map_err(RunError::Runtime)?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    rt.block_on(main_loop(cfg, to_data, answers, last_generation));
    Ok(())
}

async fn main_loop(
    cfg: StaticConfig,
    to_data: IpcSender<ControlToData>,
    mut answers: mpsc::UnboundedReceiver<DataToControl>,
    mut generation: u64,
) {
    let (events_tx, mut events) = mpsc::channel::<ProviderEvent>(64);
    let mut expected: Vec<&'static str> = Vec::new();
    if let Some(file) = cfg.providers.file.clone() {
        expected.push("file");
        tokio::spawn(run_file_provider(file, events_tx.clone()));
    }
    if let Some(swarm) = cfg.providers.swarm.clone() {
        expected.push(swarm.name);
        tokio::spawn(crate::providers::swarm::run_swarm_provider(
            swarm,
            events_tx.clone(),
        ));
    }
    if let Some(docker) = cfg.providers.docker.clone() {
        expected.push("docker");
        tokio::spawn(run_docker_provider(docker, events_tx.clone()));
    }
    if let Some(redis) = cfg.providers.redis.clone() {
        expected.push(crate::providers::redis::PROVIDER);
        tokio::spawn(crate::providers::kv::run_kv_provider(
            redis,
            events_tx.clone(),
            generation == 0,
        ));
    }
    if let Some(etcd) = cfg.providers.etcd.clone() {
        expected.push(crate::providers::etcd::PROVIDER);
        tokio::spawn(crate::providers::kv::run_kv_provider(
            etcd,
            events_tx.clone(),
            generation == 0,
        ));
    }
    drop(events_tx);

    // SIGUSR1 (passed on by the data plane) reopens the log file after a rotation.
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()) {
        Ok(mut usr1) => {
            tokio::spawn(async move {
                while usr1.recv().await.is_some() {
                    ringway_shared::log_reopen::reopen();
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "no SIGUSR1 handler: the log file is not reopened"),
    }
    let api = crate::api::Api::start(&cfg);
    let (acme_tx, mut acme_events) = mpsc::unbounded_channel::<()>();
    let acme = crate::acme::Acme::start(&cfg, acme_tx);
    // With ACME resolvers, the table from the providers is kept to lay certificates and
    // challenges over it whenever they change.
    let mut base: Option<TableSpec> = None;
    let mut revisions: BTreeMap<u64, u64> = BTreeMap::new();
    let (cert_tx, mut cert_events) = mpsc::unbounded_channel::<()>();
    let mut cert_watch = CertWatch::new(cert_tx);
    let window = cfg.providers.throttle.max(MIN_COALESCE);
    let mut configs: BTreeMap<String, ProviderConfig> = BTreeMap::new();
    let mut last_sent: Option<TableSpec> = None;
    let mut last_errors: Vec<String> = Vec::new();
    let mut pending = false;
    let mut last_resolved: Option<Instant> = None;
    let mut sent_times: BTreeMap<u64, Instant> = BTreeMap::new();
    let mut providers_open = true;
    // What a reload replaced (provider views, the last table): at 10,000 routers freeing them
    // takes milliseconds, which would compete with the data plane's compile for the CPU, so
    // they go once the data plane has the new table live.
    let mut retired: Vec<ProviderConfig> = Vec::new();
    let mut retired_tables: Vec<TableSpec> = Vec::new();
    // What the last resolution built, for the next to reuse (moves to the resolution and back).
    let mut memo = Memo::default();
    let mut encoder = Encoder::default();

    loop {
        let all_reported = expected.iter().all(|p| configs.contains_key(*p));
        // A provider that has not reported yet (say its file does not parse) would look like
        // "no routes": push nothing until each has, so the data plane keeps what it serves.
        let due = if !all_reported {
            None
        } else if pending {
            Some(last_resolved.map_or_else(Instant::now, |t| t + window))
        } else if last_sent.is_none() {
            Some(Instant::now())
        } else {
            None
        };
        let sleep_until = due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            ev = events.recv(), if providers_open => match ev {
                Some(ProviderEvent::Config(pc)) => {
                    // The replaced view is freed after the next table went out (at 10,000
                    // routers that takes milliseconds).
                    if let Some(old) = configs.insert(pc.provider.clone(), *pc) {
                        retired.push(old);
                    }
                    pending = true;
                }
                Some(ProviderEvent::Error { provider, error }) => {
                    tracing::error!(provider = %provider, "{error}; keeping the last good configuration");
                }
                None => providers_open = false,
            },
            Some(()) = acme_events.recv() => {
                while acme_events.try_recv().is_ok() {}
                let Some(b) = &base else { continue };
                let mut table = b.clone();
                let revision = acme.overlay(&mut table);
                match send_table(table, (&mut last_sent, &mut retired_tables), &mut generation, &to_data, &mut sent_times, &mut encoder, "ACME certificates or challenges changed") {
                    Sent::Unchanged => acme.live(revision),
                    Sent::Pushed(g) => {
                        revisions.insert(g, revision);
                        if let (Some(api), Some(t)) = (&api, &last_sent) {
                            api.pushed(t);
                        }
                    }
                    Sent::Skipped => {}
                    Sent::Gone => return,
                }
            },
            Some(()) = cert_events.recv() => {
                // A certificate or key file changed: let a rewrite finish, then re-resolve
                // (the files are read again; a broken one keeps its previous certificate).
                tokio::time::sleep(CERT_SETTLE).await;
                while cert_events.try_recv().is_ok() {}
                tracing::info!("a certificate file changed; reloading it");
                pending = true;
            },
            answer = answers.recv() => {
                if let Some(DataToControl::Ack { generation: g, .. } | DataToControl::Nack { generation: g, .. }) = &answer {
                    if *g == generation {
                        retired.clear();
                        retired_tables.clear();
                    }
                }
                match answer {
                    Some(DataToControl::Ack { generation: g, apply_micros }) => {
                        let live = revisions.remove(&g);
                        revisions.retain(|&k, _| k > g);
                        if let Some(revision) = live {
                            acme.live(revision);
                        }
                        let propagation = sent_times.remove(&g).map(|t| t.elapsed().as_micros() as u64);
                        if let Some(api) = &api {
                            api.reloaded(true);
                        }
                        tracing::info!(generation = g, apply_micros, propagation_micros = propagation, "table live on the data plane");
                    }
                    Some(DataToControl::NeedFull { generation: g }) => {
                        sent_times.remove(&g);
                        // Once per base it lacked: later deltas on it are answered the same.
                        let Some(table) = last_sent.take_if(|_| g > encoder.full) else { continue };
                        let revision = revisions.remove(&generation);
                        match send_table(table, (&mut last_sent, &mut retired_tables), &mut generation, &to_data, &mut sent_times, &mut encoder, "the data plane asked for the whole table") {
                            Sent::Pushed(g) => {
                                if let Some(r) = revision {
                                    revisions.insert(g, r);
                                }
                            }
                            Sent::Unchanged | Sent::Skipped => {}
                            Sent::Gone => return,
                        }
                    }
                    Some(DataToControl::Nack { generation: g, error }) => {
                        sent_times.remove(&g);
                        if let Some(api) = &api {
                            api.reloaded(false);
                        }
                        tracing::error!(generation = g, %error, "data plane refused the table");
                    }
                    Some(DataToControl::Shutdown) | None => {
                        tracing::debug!("data plane asked to stop");
                        return;
                    }
                    Some(DataToControl::Stats(stats)) => {
                        if let Some(api) = &api {
                            api.stats(*stats);
                        }
                    }
                    Some(DataToControl::Welcome { .. }) => {}
                }
            },
            _ = tokio::time::sleep_until(sleep_until.into()), if due.is_some() => {
                pending = false;
                last_resolved = Some(Instant::now());
                // Resolution may look up host names: keep that off the event loop. The
                // configurations move to it and back (no copy of 10,000 routers per change);
                // no event is taken meanwhile.
                let providers: Vec<ProviderConfig> = std::mem::take(&mut configs).into_values().collect();
                let static_cfg = cfg.clone();
                let mut kept = std::mem::take(&mut memo);
                let (resolved, providers, kept) = match tokio::task::spawn_blocking(move || {
                    let resolved = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        resolve_with(&providers, &static_cfg, &crate::check::resolve_std, &mut kept)
                    }));
                    // After a panic the memo may be half updated: start afresh.
                    let kept = if resolved.is_ok() { kept } else { Memo::default() };
                    (resolved, providers, kept)
                })
                .await
                {
                    Ok(r) => r,
                    Err(e) => {
                        // Only when the runtime shuts down: the closure catches panics.
                        tracing::error!(error = %e, "configuration resolution failed; keeping the last table");
                        continue;
                    }
                };
                memo = kept;
                let providers_now: Vec<ProviderConfig> = providers;
                cert_watch.update(crate::tls::cert_files(&providers_now));
                configs = providers_now.into_iter().map(|p| (p.provider.clone(), p)).collect();
                let mut resolution = match resolved {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::error!("configuration resolution failed (a bug: please report it); keeping the last table");
                        continue;
                    }
                };
                let messages: Vec<String> = resolution
                    .errors
                    .iter()
                    .map(|e| format!("error: {e}"))
                    .chain(resolution.warnings.iter().map(|w| format!("warning: {w}")))
                    .collect();
                if messages != last_errors {
                    for e in &resolution.errors {
                        tracing::error!("{e}");
                    }
                    for w in &resolution.warnings {
                        tracing::warn!("{w}");
                    }
                    last_errors = messages;
                }
                acme.want(&resolution.cert_requests);
                let mut table = std::mem::take(&mut resolution.table);
                let mut revision = None;
                if acme.has_resolvers() {
                    base = Some(table.clone());
                    revision = Some(acme.overlay(&mut table));
                }
                let resolve_micros = last_resolved.map_or(0, |t| t.elapsed().as_micros() as u64);
                let sent = send_table(table, (&mut last_sent, &mut retired_tables), &mut generation, &to_data, &mut sent_times, &mut encoder, "configuration changed");
                if !matches!(sent, Sent::Pushed(_)) {
                    retired.clear();
                }
                match sent {
                    Sent::Unchanged => {
                        if let Some(r) = revision {
                            acme.live(r);
                        }
                    }
                    Sent::Pushed(g) => {
                        tracing::debug!(generation = g, resolve_micros, "resolved");
                        if let (Some(api), Some(t)) = (&api, &last_sent) {
                            api.pushed(t);
                        }
                        if let Some(r) = revision {
                            revisions.insert(g, r);
                        }
                    }
                    Sent::Skipped => {}
                    Sent::Gone => return,
                }
                // What the API shows (a copy of every service spec, the statuses) is built
                // once the data plane has the table to compile, not before.
                if let Some(api) = &api {
                    api.resolved(&mut resolution, last_sent.as_ref());
                }
            }
        }
    }
}

/// How tables go out: the first whole, each next one as a delta on the one sent before it
/// (see [`ringway_shared::table::Delta`]).
#[derive(Default)]
struct Encoder {
    /// The encoding, kept from one table to the next (see `TablePayload::encode_with`).
    buffer: Vec<u8>,
    /// The generation of the last table sent whole: a data plane that lacks the base of a
    /// delta older than that has been sent the whole table already.
    full: u64,
}

impl Encoder {
    /// `table` as a delta on `base` (the last table sent), or whole without one.
    fn message(
        &mut self,
        base: Option<&TableSpec>,
        table: &TableSpec,
    ) -> Result<ControlToData, String> {
        match base {
            Some(base) => {
                TablePayload::encode_delta(base, table, &mut self.buffer).map(ControlToData::Delta)
            }
            None => {
                self.full = table.generation;
                TablePayload::encode_with(table, &mut self.buffer).map(ControlToData::Table)
            }
        }
    }
}

enum Sent {
    /// The data plane already has this table.
    Unchanged,
    Pushed(u64),
    /// It could not be encoded (logged); the last table stays.
    Skipped,
    /// The data plane is gone.
    Gone,
}

/// Numbers and pushes `table` unless it equals the last one sent.
fn send_table(
    mut table: TableSpec,
    (last_sent, retired): (&mut Option<TableSpec>, &mut Vec<TableSpec>),
    generation: &mut u64,
    to_data: &IpcSender<ControlToData>,
    sent_times: &mut BTreeMap<u64, Instant>,
    encoder: &mut Encoder,
    why: &str,
) -> Sent {
    let unchanged = last_sent.as_ref().is_some_and(|prev| {
        table.generation = prev.generation;
        *prev == table
    });
    if unchanged {
        return Sent::Unchanged;
    }
    *generation += 1;
    table.generation = *generation;
    sent_times.insert(*generation, Instant::now());
    let message = match encoder.message(last_sent.as_ref(), &table) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(generation = *generation, error = %e, "keeping the last table");
            return Sent::Skipped;
        }
    };
    if to_data.send(message).is_err() {
        tracing::error!("data plane is gone");
        return Sent::Gone;
    }
    // Counted while the data plane compiles, not before sending.
    let (added, removed, changed) = router_changes(last_sent.as_ref(), &table);
    tracing::info!(
        generation = *generation,
        routers = table.routers.len(),
        routers_added = added,
        routers_removed = removed,
        routers_changed = changed,
        services = table.services.len(),
        tcp_routers = table.tcp_routers.len(),
        certificates = table.tls.certificates.len(),
        "pushing configuration ({why})"
    );
    let g = *generation;
    if let Some(old) = last_sent.replace(table) {
        retired.push(old);
    }
    Sent::Pushed(g)
}

/// HTTP and TCP routers added, removed and changed (same name, other definition) since the
/// last table, for the reload's log line.
fn router_changes(before: Option<&TableSpec>, now: &TableSpec) -> (usize, usize, usize) {
    let Some(before) = before else {
        return (now.routers.len() + now.tcp_routers.len(), 0, 0);
    };
    fn count<T>(
        before: &[T],
        now: &[T],
        name: impl Fn(&T) -> &str,
        same: impl Fn(&T, &T) -> bool,
    ) -> (usize, usize, usize) {
        let old: rustc_hash::FxHashMap<&str, &T> = before.iter().map(|r| (name(r), r)).collect();
        let (mut added, mut changed, mut kept) = (0, 0, 0);
        for r in now {
            match old.get(name(r)) {
                None => added += 1,
                Some(o) => {
                    kept += 1;
                    changed += usize::from(!same(o, r));
                }
            }
        }
        (added, old.len() - kept, changed)
    }
    // Services are numbered in name order: a service added before a router's own renumbers
    // it without changing the router, so routers compare by their service's name (and by
    // pointer first: an unchanged router is shared with the last table).
    fn service_name(t: &TableSpec, id: ServiceId) -> Option<&str> {
        t.services.get(id.0 as usize).map(|s| s.name.as_str())
    }
    let http = count(
        &before.routers,
        &now.routers,
        |r| r.def.name.as_str(),
        |a, b| a.def == b.def && service_name(before, a.service) == service_name(now, b.service),
    );
    let tcp = count(
        &before.tcp_routers,
        &now.tcp_routers,
        |r| r.name.as_str(),
        |a, b| a == b,
    );
    (http.0 + tcp.0, http.1 + tcp.1, http.2 + tcp.2)
}

/// How long a burst of events on a certificate file settles before it is read again.
const CERT_SETTLE: Duration = Duration::from_millis(20);

/// Watches the certificate and key files of the current configuration (their folders, so that
/// a file replaced by a rename is seen too).
struct CertWatch {
    tx: mpsc::UnboundedSender<()>,
    files: Vec<std::path::PathBuf>,
    watcher: Option<notify::RecommendedWatcher>,
}

impl CertWatch {
    fn new(tx: mpsc::UnboundedSender<()>) -> CertWatch {
        CertWatch {
            tx,
            files: Vec::new(),
            watcher: None,
        }
    }

    fn update(&mut self, files: Vec<std::path::PathBuf>) {
        use notify::Watcher;
        if files == self.files {
            return;
        }
        self.watcher = None;
        self.files = files;
        if self.files.is_empty() {
            return;
        }
        let names: Vec<std::path::PathBuf> = self.files.clone();
        let tx = self.tx.clone();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            if matches!(event.kind, notify::EventKind::Access(_)) {
                return;
            }
            let ours = event.paths.iter().any(|p| {
                names
                    .iter()
                    .any(|f| p == f || (p.file_name() == f.file_name() && p.ends_with(f)))
            });
            if ours {
                let _ = tx.send(());
            }
        });
        let mut watcher = match watcher {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "cannot watch certificate files; changes need a configuration change");
                return;
            }
        };
        let mut dirs: Vec<std::path::PathBuf> = self
            .files
            .iter()
            .map(|f| {
                f.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."))
                    .to_path_buf()
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        for d in dirs {
            if let Err(e) = watcher.watch(&d, notify::RecursiveMode::NonRecursive) {
                tracing::warn!(path = %d.display(), error = %e, "cannot watch certificate folder");
            }
        }
        self.watcher = Some(watcher);
    }
}

/// Makes the kernel terminate this process when the data plane dies (even by SIGKILL).
fn die_with_parent() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes plain integer arguments and touches no memory.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGTERM as libc::c_ulong,
            0,
            0,
            0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringway_shared::table::{InternalService, RouterDef, RouterSpec, ServiceKind, ServiceSpec};
    use std::sync::Arc;

    fn table(routers: &[(&str, &str, &str)]) -> TableSpec {
        let mut t = TableSpec::default();
        let mut names: Vec<&str> = routers.iter().map(|r| r.2).collect();
        names.sort();
        names.dedup();
        for n in &names {
            t.services.push(Arc::new(ServiceSpec {
                name: n.to_string(),
                kind: ServiceKind::Internal(InternalService::Noop),
            }));
        }
        for (name, rule, service) in routers {
            t.routers.push(RouterSpec {
                service: ServiceId(names.binary_search(service).expect("service") as u32),
                def: Arc::new(RouterDef {
                    name: name.to_string(),
                    entry_points: vec!["web".to_string()],
                    rule: rule.to_string(),
                    priority: 0,
                    tls: false,
                    middlewares: Vec::new(),
                }),
            });
        }
        t
    }

    /// The control plane's side of `NeedFull`, with this test as the data plane: the first
    /// table comes whole, a change comes as a delta on it; answered `NeedFull` (as a data
    /// plane that does not serve the delta's base does), the control plane sends the table
    /// whole under a newer generation, and the next change is a delta on that one.
    #[test]
    fn a_data_plane_lacking_a_deltas_base_gets_the_whole_table() {
        use ringway_shared::table::{DecodedDelta, DecodedSpec, RouterItem};
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("dynamic.toml");
        let routers = |n: usize| -> String {
            (0..n)
                .map(|i| {
                    format!(
                        "[http.routers.r{i}]\nrule = \"Host(`r{i}`)\"\nservice = \"s\"\n"
                    )
                })
                .chain(["[http.services.s.loadBalancer]\nservers = [{ url = \"http://127.0.0.1:9\" }]\n".to_string()])
                .collect()
        };
        // Written whole, as an atomic writer does: a reader never sees it half written.
        let write = |text: String| {
            let tmp = dir.path().join(".dynamic.toml.tmp");
            std::fs::write(&tmp, text).expect("write");
            std::fs::rename(&tmp, &file).expect("rename");
        };
        write(routers(1));
        let cfg = StaticConfig::from_args(&[
            "--entrypoints.web.address=127.0.0.1:0".to_string(),
            format!("--providers.file.filename={}", file.display()),
            "--providers.providersThrottleDuration=0s".to_string(),
        ])
        .expect("static configuration");
        let (to_data, from_control) = ipc::channel::<ControlToData>().expect("channel");
        let (answers_tx, answers) = mpsc::unbounded_channel();
        let control = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(main_loop(cfg, to_data, answers, 0));
        });
        let next = || {
            from_control
                .try_recv_timeout(Duration::from_secs(10))
                .expect("a table from the control plane")
        };
        let whole = |msg: ControlToData| match msg {
            ControlToData::Table(p) => p.decode::<DecodedSpec>().expect("decodes"),
            other => panic!("expected a whole table, got {other:?}"),
        };
        let delta = |msg: ControlToData| match msg {
            ControlToData::Delta(p) => p.decode::<DecodedDelta>().expect("decodes"),
            other => panic!("expected a delta, got {other:?}"),
        };
        let ack = |generation| {
            answers_tx
                .send(DataToControl::Ack {
                    generation,
                    apply_micros: 1,
                })
                .expect("control plane running");
        };
        let first = whole(next());
        assert_eq!(first.routers.len(), 1);
        ack(first.generation);

        write(routers(2));
        let d = delta(next());
        assert_eq!(d.base, first.generation);
        assert_eq!(d.routers.len(), 2);
        answers_tx
            .send(DataToControl::NeedFull {
                generation: d.generation,
            })
            .expect("control plane running");
        let again = whole(next());
        assert!(again.generation > d.generation);
        let names: Vec<&str> = again.routers.iter().map(|r| r.def.name.as_str()).collect();
        assert_eq!(names, ["r0@file", "r1@file"]);
        ack(again.generation);

        write(routers(3));
        let d = delta(next());
        assert_eq!(d.base, again.generation);
        assert!(
            matches!(
                d.routers[..],
                [
                    RouterItem::Same { .. },
                    RouterItem::Same { .. },
                    RouterItem::New(_)
                ]
            ),
            "{:?}",
            d.routers
        );
        // The data plane going away ends the control plane.
        drop(answers_tx);
        control.join().expect("control plane thread");
    }

    #[test]
    fn a_service_renumbered_by_another_added_leaves_its_routers_unchanged() {
        let before = table(&[
            ("b@file", "Host(`b`)", "sb@file"),
            ("c@file", "Host(`c`)", "sc@file"),
        ]);
        // `sa@file` sorts first: every other service's number moves.
        let now = table(&[
            ("a@file", "Host(`a`)", "sa@file"),
            ("b@file", "Host(`b`)", "sb@file"),
            ("c@file", "Host(`c2`)", "sc@file"),
        ]);
        assert_ne!(before.routers[0].service, now.routers[1].service);
        assert_eq!(router_changes(Some(&before), &now), (1, 0, 1));
        assert_eq!(router_changes(Some(&now), &before), (0, 1, 1));
        // Same rule, other service: changed.
        let moved = table(&[
            ("b@file", "Host(`b`)", "sc@file"),
            ("c@file", "Host(`c`)", "sc@file"),
        ]);
        assert_eq!(router_changes(Some(&before), &moved), (0, 0, 1));
        assert_eq!(router_changes(None, &now), (3, 0, 0));
    }
}

//! The control plane's main loop: connect to the data plane, run the providers, coalesce
//! their updates, resolve them into a table, push it, and log the data plane's answers.

use crate::aggregator::{resolve, ProviderConfig};
use crate::providers::{docker::run_docker_provider, file::run_file_provider, ProviderEvent};
use ipc_channel::ipc::{self, IpcSender};
use ringway_shared::config::static_config::StaticConfig;
use ringway_shared::ipc::{ControlToData, DataToControl, PROTOCOL_VERSION, SERVER_ENV};
use ringway_shared::table::TableSpec;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Shortest coalescing window: bursts of provider events (an editor's several writes) are
/// applied once. `providers.providersThrottleDuration` lengthens it.
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

    let window = cfg.providers.throttle.max(MIN_COALESCE);
    let mut configs: BTreeMap<String, ProviderConfig> = BTreeMap::new();
    let mut last_sent: Option<TableSpec> = None;
    let mut last_errors: Vec<String> = Vec::new();
    let mut pending_since: Option<Instant> = None;
    let mut sent_times: BTreeMap<u64, Instant> = BTreeMap::new();
    let mut providers_open = true;

    loop {
        let all_reported = expected.iter().all(|p| configs.contains_key(*p));
        // A provider that has not reported yet (say its file does not parse) would look like
        // "no routes": push nothing until each has, so the data plane keeps what it serves.
        let due = if !all_reported {
            None
        } else if let Some(t) = pending_since {
            Some(t + window)
        } else if last_sent.is_none() {
            Some(Instant::now())
        } else {
            None
        };
        let sleep_until = due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            ev = events.recv(), if providers_open => match ev {
                Some(ProviderEvent::Config(pc)) => {
                    configs.insert(pc.provider.clone(), *pc);
                    pending_since.get_or_insert_with(Instant::now);
                }
                Some(ProviderEvent::Error { provider, error }) => {
                    tracing::error!(provider = %provider, "{error}; keeping the last good configuration");
                }
                None => providers_open = false,
            },
            answer = answers.recv() => match answer {
                Some(DataToControl::Ack { generation: g, apply_micros }) => {
                    let propagation = sent_times.remove(&g).map(|t| t.elapsed().as_micros() as u64);
                    tracing::info!(generation = g, apply_micros, propagation_micros = propagation, "table live on the data plane");
                }
                Some(DataToControl::Nack { generation: g, error }) => {
                    sent_times.remove(&g);
                    tracing::error!(generation = g, %error, "data plane refused the table");
                }
                Some(DataToControl::Shutdown) | None => {
                    tracing::debug!("data plane asked to stop");
                    return;
                }
                Some(DataToControl::Welcome { .. }) => {}
            },
            _ = tokio::time::sleep_until(sleep_until.into()), if due.is_some() => {
                pending_since = None;
                let providers: Vec<ProviderConfig> = configs.values().cloned().collect();
                // Resolution may look up host names: keep that off the event loop.
                let static_cfg = cfg.clone();
                let resolved = tokio::task::spawn_blocking(move || {
                    resolve(&providers, &static_cfg, &crate::check::resolve_std)
                })
                .await;
                let resolution = match resolved {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "configuration resolution failed; keeping the last table");
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
                let mut table = resolution.table;
                let unchanged = last_sent.as_ref().is_some_and(|prev| {
                    table.generation = prev.generation;
                    *prev == table
                });
                if unchanged {
                    continue;
                }
                generation += 1;
                table.generation = generation;
                tracing::info!(
                    generation,
                    routers = table.routers.len(),
                    services = table.services.len(),
                    "pushing configuration"
                );
                sent_times.insert(generation, Instant::now());
                if to_data.send(ControlToData::Table(Box::new(table.clone()))).is_err() {
                    tracing::error!("data plane is gone");
                    return;
                }
                last_sent = Some(table);
            }
        }
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

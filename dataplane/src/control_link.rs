//! The data plane's side of the control plane: spawns `ringway controlplane`, receives its
//! tables over ipc-channel, compiles and publishes them, and restarts it when it dies.
//!
//! Runs on its own thread; the workers never wait on it (they keep the last published table).

use crate::health::{Health, Probe};
use crate::snapshot::{Published, TableSlot};
use ipc_channel::ipc::{IpcOneShotServer, IpcReceiver, IpcSender};
use ringway_shared::ipc::{
    ControlToData, DataToControl, API_SOCKET_ENV, PROTOCOL_VERSION, SERVER_ENV,
};
use ringway_shared::stats::Stats;
use ringway_shared::table::{
    DecodedDelta, DecodedSpec, HealthCheckSpec, HealthFlag, RouteTable, RuleCache, ServerSpec,
    TableError,
};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A control plane that ran this long is considered healthy: the backoff resets.
const HEALTHY_RUN: Duration = Duration::from_secs(10);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// mimalloc's delay before freed memory is returned to the kernel, for the control plane.
const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";
const CONTROL_PLANE_PURGE_DELAY_MS: &str = "10000";

/// Handle used by the supervisor to stop the link and its child.
pub struct ControlLink {
    stop: Arc<AtomicBool>,
    reply: Arc<Mutex<Option<IpcSender<DataToControl>>>>,
    /// Pid of the running control plane (0: none), to kill it if it ignores the shutdown.
    child_pid: Arc<AtomicU32>,
    thread: Option<thread::JoinHandle<()>>,
    health: Option<Arc<Health>>,
}

/// Sends the workers' counters to the control plane (when one is connected).
pub struct StatsSink {
    reply: Arc<Mutex<Option<IpcSender<DataToControl>>>>,
    health: Option<Arc<Health>>,
}

impl StatsSink {
    /// Sends `stats` with the health-checked servers' states; dropped while no control plane
    /// is connected (the next second's counters include everything).
    pub fn send(&self, mut stats: Stats) {
        if let Some(h) = &self.health {
            stats.servers = h.states();
        }
        if let Ok(guard) = self.reply.lock() {
            if let Some(tx) = guard.as_ref() {
                let _ = tx.send(DataToControl::Stats(Box::new(stats)));
            }
        }
    }
}

impl ControlLink {
    /// Starts the link thread. `args` are the static-config arguments, passed on unchanged.
    pub fn start(
        args: Vec<String>,
        slot: Arc<TableSlot>,
        generated: Arc<CertifiedKey>,
        api_socket: Option<PathBuf>,
    ) -> ControlLink {
        let stop = Arc::new(AtomicBool::new(false));
        let reply = Arc::new(Mutex::new(None));
        let child_pid = Arc::new(AtomicU32::new(0));
        let health = Health::start()
            .map_err(|e| tracing::error!(error = %e, "cannot start the health checks"))
            .ok();
        let shared = Shared {
            stop: stop.clone(),
            reply: reply.clone(),
            child_pid: child_pid.clone(),
            compiler: Compiler {
                generated,
                health: health.clone(),
                rules: Default::default(),
            },
            api_socket,
        };
        let thread = thread::Builder::new()
            .name("control-link".into())
            .spawn(move || run(args, slot, shared))
            .map_err(|e| tracing::error!(error = %e, "cannot start the control-plane link"))
            .ok();
        ControlLink {
            stop,
            reply,
            child_pid,
            thread,
            health,
        }
    }

    /// Passes a signal on to the control plane, if one runs.
    pub fn signal_child(&self, signal: libc::c_int) {
        let pid = self.child_pid.load(Ordering::SeqCst);
        if pid != 0 {
            // SAFETY: kill(2) with a pid we spawned (0 when none runs) and a valid signal.
            unsafe {
                libc::kill(pid as libc::pid_t, signal);
            }
        }
    }

    /// Where the workers' counters go.
    pub fn stats_sink(&self) -> StatsSink {
        StatsSink {
            reply: self.reply.clone(),
            health: self.health.clone(),
        }
    }

    /// Tells the control plane to exit and waits for it (killing it after a short grace).
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Ok(guard) = self.reply.lock() {
            if let Some(tx) = guard.as_ref() {
                let _ = tx.send(DataToControl::Shutdown);
            }
        }
        if let Some(t) = self.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while !t.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            if !t.is_finished() {
                let pid = self.child_pid.load(Ordering::SeqCst);
                if pid != 0 {
                    tracing::warn!(pid, "control plane ignored the shutdown; killing it");
                    // SAFETY: kill(2) with a pid we spawned and a valid signal number.
                    unsafe {
                        libc::kill(pid as libc::pid_t, libc::SIGKILL);
                    }
                }
            }
            let _ = t.join();
        }
    }
}

/// What the link thread shares with its handle.
struct Shared {
    stop: Arc<AtomicBool>,
    reply: Arc<Mutex<Option<IpcSender<DataToControl>>>>,
    child_pid: Arc<AtomicU32>,
    compiler: Compiler,
    api_socket: Option<PathBuf>,
}

/// Builds what the workers use from a table: routes, TLS acceptor, health-check flags.
struct Compiler {
    /// The self-signed default certificate, generated once per process.
    generated: Arc<CertifiedKey>,
    /// `None` when the checker thread could not start (logged; servers count as up).
    health: Option<Arc<Health>>,
    /// The last table's compiled rules, reused by the next.
    rules: std::cell::RefCell<RuleCache>,
}

fn run(args: Vec<String>, slot: Arc<TableSlot>, shared: Shared) {
    let Shared {
        stop,
        reply: reply_slot,
        child_pid,
        compiler,
        api_socket,
    } = shared;
    let mut backoff = BACKOFF_MIN;
    let mut last_generation = slot.generation();
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        match session(
            (&args, api_socket.as_deref()),
            &slot,
            &stop,
            &reply_slot,
            &child_pid,
            &compiler,
            &mut last_generation,
        ) {
            Ok(()) => {}
            Err(e) => tracing::error!(error = %e, "control plane"),
        }
        if let Ok(mut g) = reply_slot.lock() {
            *g = None;
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if started.elapsed() > HEALTHY_RUN {
            backoff = BACKOFF_MIN;
        }
        tracing::warn!(
            retry_in_ms = backoff.as_millis() as u64,
            "control plane exited; restarting it"
        );
        let until = Instant::now() + backoff;
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(20));
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Marks every descriptor above stderr close-on-exec in the forked child, so the control
/// plane inherits nothing from the data plane. io_uring's accept (as monoio issues it) does
/// not set `SOCK_CLOEXEC`: a client connection accepted while the control plane is spawned
/// (at start, or when a crashed one is replaced) would otherwise stay open in the control
/// plane after the data plane closed it, and its client would wait for an end that never
/// comes. The control plane needs no inherited descriptor: it reaches the data plane by the
/// IPC server's name.
fn cloexec_inherited_fds() -> std::io::Result<()> {
    // SAFETY: close_range(2) with CLOSE_RANGE_CLOEXEC only sets flags on this process's
    // descriptors.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    // Kernels before 5.11: one fcntl per possible descriptor.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes the struct it is given.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur.min(1 << 20) as libc::c_int
    } else {
        1 << 16
    };
    for fd in 3..max {
        // SAFETY: fcntl(2) on a descriptor number; an unused one fails with EBADF, ignored.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// One control-plane process from spawn to exit.
/// `(args, api_socket)`: what the control plane is started with.
fn session(
    (args, api_socket): (&[String], Option<&std::path::Path>),
    slot: &TableSlot,
    stop: &AtomicBool,
    reply_slot: &Mutex<Option<IpcSender<DataToControl>>>,
    child_pid: &AtomicU32,
    compiler: &Compiler,
    last_generation: &mut u64,
) -> Result<(), String> {
    let (server, name) = IpcOneShotServer::<ControlToData>::new()
        .map_err(|e| format!("cannot create IPC server: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let mut command = Command::new(exe);
    command
        .arg("controlplane")
        .args(args)
        .env(SERVER_ENV, &name);
    if std::env::var_os(PURGE_DELAY_ENV).is_none() {
        // mimalloc gives freed pages back to the kernel after 10 ms by default: each reload
        // of a 10,000-router configuration then faults ~100 MB of pages in again (measured:
        // the file provider's merge 20 ms instead of 6, resolution 35 instead of 22). The
        // control plane keeps them for 10 s after a reload instead.
        command.env(PURGE_DELAY_ENV, CONTROL_PLANE_PURGE_DELAY_MS);
    }
    if let Some(socket) = api_socket {
        command.env(API_SOCKET_ENV, socket);
    }
    // SAFETY: the hook runs in the forked child before exec and only makes system calls
    // (close_range, getrlimit, fcntl), which are async-signal-safe.
    unsafe { command.pre_exec(cloexec_inherited_fds) };
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot spawn the control plane: {e}"))?;
    let pid = child.id();
    child_pid.store(pid, Ordering::SeqCst);
    tracing::info!(pid, "control plane started");

    // `accept` blocks: run it on a helper thread so a child that dies early is noticed.
    let (tx, rx) = mpsc::channel();
    let acceptor = thread::spawn(move || {
        let _ = tx.send(server.accept());
    });
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let accepted = loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(r) => break Some(r),
            Err(_) => {
                let dead = matches!(child.try_wait(), Ok(Some(_)));
                if dead || stop.load(Ordering::SeqCst) || Instant::now() > deadline {
                    // Unblock the acceptor with a connection that says nothing.
                    let _ = IpcSender::<ControlToData>::connect(name.clone());
                    break None;
                }
            }
        }
    };
    let _ = acceptor.join();
    let Some(Ok((receiver, hello))) = accepted else {
        reap(&mut child);
        return Err(format!(
            "control plane (pid {pid}) did not complete the handshake"
        ));
    };
    let ControlToData::Hello {
        protocol, reply, ..
    } = hello
    else {
        reap(&mut child);
        return Err("control plane spoke before saying hello".into());
    };
    if protocol != PROTOCOL_VERSION {
        reap(&mut child);
        return Err(format!(
            "control plane speaks protocol {protocol}, data plane {PROTOCOL_VERSION}"
        ));
    }
    let _ = reply.send(DataToControl::Welcome {
        protocol: PROTOCOL_VERSION,
        last_generation: *last_generation,
    });
    if let Ok(mut g) = reply_slot.lock() {
        *g = Some(reply.clone());
    }
    receive_tables(&receiver, &reply, slot, compiler, last_generation);
    reap(&mut child);
    child_pid.store(0, Ordering::SeqCst);
    Ok(())
}

fn receive_tables(
    receiver: &IpcReceiver<ControlToData>,
    reply: &IpcSender<DataToControl>,
    slot: &TableSlot,
    compiler: &Compiler,
    last_generation: &mut u64,
) {
    // Blocks until the control plane sends or goes away (exit, crash, or killed on shutdown):
    // no polling.
    loop {
        let (payload, delta) = match receiver.recv() {
            Ok(ControlToData::Table(payload)) => (payload, false),
            Ok(ControlToData::Delta(payload)) => (payload, true),
            Ok(ControlToData::Hello { .. }) => {
                tracing::warn!("unexpected second hello from the control plane");
                continue;
            }
            Err(_) => return,
        };
        let received = Instant::now();
        let generation = payload.generation;
        let compiled = if delta {
            let previous = slot.current();
            match payload.decode::<DecodedDelta>() {
                Ok(d) if d.base != previous.table.generation => {
                    tracing::info!(
                        generation,
                        base = d.base,
                        serving = previous.table.generation,
                        "a delta on a table not served here; asking for the whole table"
                    );
                    let _ = reply.send(DataToControl::NeedFull { generation });
                    continue;
                }
                Ok(d) => compiler.compile_delta(d, &previous.table),
                Err(e) => Err(e),
            }
        } else {
            payload
                .decode::<DecodedSpec>()
                .and_then(|spec| compiler.compile(spec))
        };
        // The shared memory is let go after the table is live and acknowledged.
        let _later = payload;
        match compiled {
            Ok((published, probes)) => {
                let routers = published.table.routers_len();
                retire(slot.publish(published));
                if let Some(h) = &compiler.health {
                    h.apply(probes);
                }
                *last_generation = generation;
                let apply_micros = received.elapsed().as_micros() as u64;
                tracing::info!(
                    generation,
                    routers,
                    apply_micros,
                    delta,
                    "configuration applied"
                );
                let _ = reply.send(DataToControl::Ack {
                    generation,
                    apply_micros,
                });
            }
            Err(e) => {
                tracing::error!(generation, error = %e, "configuration refused; keeping the last one");
                let _ = reply.send(DataToControl::Nack {
                    generation,
                    error: e.to_string(),
                });
            }
        }
    }
}

/// Frees a replaced table once no worker holds it any more, on a thread of its own: freeing
/// 10,000 routers takes milliseconds that would otherwise fall on the request of the worker
/// that happens to let go of it last.
fn retire(old: Arc<Published>) {
    let spawned = thread::Builder::new()
        .name("table-reaper".into())
        .spawn(move || {
            // Workers switch on their next request; an idle worker may hold it a long time,
            // so the checks thin out (no steady wakeups on an idle machine).
            let mut wait = Duration::from_millis(10);
            while Arc::strong_count(&old) > 1 {
                thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            drop(old);
        });
    if let Err(e) = spawned {
        tracing::debug!(error = %e, "no reaper thread; a worker frees the old table");
    }
}

/// Waits for the child briefly, then kills it.
fn reap(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            tracing::debug!(%status, "control plane exited");
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The servers a table's health checks probe, by (service, server URL).
type Probes = HashMap<(String, String), Probe>;

impl Compiler {
    /// The routes and TLS acceptor of a table, built off the workers, and the servers its
    /// health checks probe.
    fn compile(&self, spec: DecodedSpec) -> Result<(Published, Probes), String> {
        let tls = crate::tls::build(&spec.tls, &spec.acme.tls_alpn, &self.generated)
            .map_err(|e| e.to_string())?;
        // The spec's names, servers and middlewares move into the table.
        self.routes(tls, |rules, health_of| {
            RouteTable::compile_owned(spec, rules, health_of)
        })
    }

    /// As [`Compiler::compile`], for a delta on `previous` (the table of its base).
    fn compile_delta(
        &self,
        delta: DecodedDelta,
        previous: &RouteTable,
    ) -> Result<(Published, Probes), String> {
        let tls = crate::tls::build(&delta.tls, &delta.acme.tls_alpn, &self.generated)
            .map_err(|e| e.to_string())?;
        self.routes(tls, |rules, health_of| {
            RouteTable::compile_delta(delta, previous, rules, health_of)
        })
    }

    /// Runs `build` with the last table's rules and each health-checked server's flag.
    fn routes(
        &self,
        tls: crate::tls::Acceptors,
        build: impl FnOnce(&mut RuleCache, HealthOf<'_>) -> Result<RouteTable, TableError>,
    ) -> Result<(Published, Probes), String> {
        let mut probes = HashMap::new();
        let mut rules = self.rules.borrow_mut();
        let table = match &self.health {
            Some(h) => build(&mut rules, &mut |service, server, check| {
                h.flag_for(&mut probes, service, server, check)
            }),
            None => build(&mut rules, &mut |_, _, _| Arc::new(AtomicBool::new(true))),
        }
        .map_err(|e| e.to_string())?;
        Ok((Published { table, tls }, probes))
    }
}

/// Gives each health-checked server of a table its flag: `(service, server, check)`.
type HealthOf<'a> = &'a mut dyn FnMut(&str, &ServerSpec, &HealthCheckSpec) -> HealthFlag;

#[cfg(test)]
mod tests {
    use super::*;
    use ringway_shared::ipc::TablePayload;
    use ringway_shared::table::{
        LoadBalancerSpec, RouterDef, RouterSpec, ServiceId, ServiceKind, ServiceSpec, TableSpec,
    };

    fn table(generation: u64, routers: usize) -> TableSpec {
        TableSpec {
            generation,
            routers: (0..routers)
                .map(|i| RouterSpec {
                    def: Arc::new(RouterDef {
                        name: format!("r{i}@file"),
                        entry_points: vec!["web".into()],
                        rule: format!("Host(`r{i}.test`)"),
                        priority: 0,
                        tls: false,
                        middlewares: Vec::new(),
                    }),
                    service: ServiceId(0),
                })
                .collect(),
            services: vec![Arc::new(ServiceSpec {
                name: "s@file".into(),
                kind: ServiceKind::LoadBalancer(LoadBalancerSpec {
                    servers: Vec::new(),
                    pass_host_header: true,
                    health_check: None,
                }),
            })],
            ..TableSpec::default()
        }
    }

    /// Tables in, answers out, through the link's own loop: a whole table, a delta on it,
    /// and a delta on a table the data plane never applied (it asks for the whole table and
    /// keeps serving what it has).
    #[test]
    fn deltas_apply_on_their_base_only() {
        let generated = crate::tls::generate_default().expect("certificate");
        let tls = crate::tls::build(&Default::default(), &[], &generated).expect("tls");
        let slot = TableSlot::new(Published {
            table: RouteTable::empty(),
            tls,
        });
        let compiler = Compiler {
            generated,
            health: None,
            rules: Default::default(),
        };
        let (to_data, from_control) = ipc_channel::ipc::channel().expect("channel");
        let (reply, answers) = ipc_channel::ipc::channel().expect("channel");

        let first = table(1, 3);
        let mut second = first.clone();
        second.generation = 2;
        second.routers.push(table(0, 4).routers.pop().expect("r3"));
        let mut stale = second.clone();
        stale.generation = 9;
        let mut buffer = Vec::new();
        let sends = [
            ControlToData::Table(TablePayload::encode(&first).expect("encodes")),
            ControlToData::Delta(
                TablePayload::encode_delta(&first, &second, &mut buffer).expect("encodes"),
            ),
            // Based on generation 9, which the data plane never had.
            ControlToData::Delta({
                let mut next = stale.clone();
                next.generation = 10;
                TablePayload::encode_delta(&stale, &next, &mut buffer).expect("encodes")
            }),
        ];
        for m in sends {
            to_data.send(m).expect("sends");
        }
        drop(to_data);
        let mut last = 0;
        receive_tables(&from_control, &reply, &slot, &compiler, &mut last);

        let got: Vec<String> = (0..3)
            .map(|_| match answers.recv().expect("answer") {
                DataToControl::Ack { generation, .. } => format!("ack {generation}"),
                DataToControl::NeedFull { generation } => format!("need full {generation}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(got, ["ack 1", "ack 2", "need full 10"]);
        assert_eq!(last, 2);
        let live = slot.current();
        assert_eq!(live.table.generation, 2);
        assert_eq!(live.table.routers_len(), 4);
        assert_eq!(&*live.table.router(3).expect("r3").name, "r3@file");
    }
}

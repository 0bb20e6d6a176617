//! The data plane's side of the control plane: spawns `ringway controlplane`, receives its
//! tables over ipc-channel, compiles and publishes them, and restarts it when it dies.
//!
//! Runs on its own thread; the workers never wait on it (they keep the last published table).

use crate::snapshot::TableSlot;
use ipc_channel::ipc::{IpcOneShotServer, IpcReceiver, IpcSender, TryRecvError};
use ringway_shared::ipc::{ControlToData, DataToControl, PROTOCOL_VERSION, SERVER_ENV};
use ringway_shared::table::RouteTable;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A control plane that ran this long is considered healthy: the backoff resets.
const HEALTHY_RUN: Duration = Duration::from_secs(10);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handle used by the supervisor to stop the link and its child.
pub struct ControlLink {
    stop: Arc<AtomicBool>,
    reply: Arc<Mutex<Option<IpcSender<DataToControl>>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl ControlLink {
    /// Starts the link thread. `args` are the static-config arguments, passed on unchanged.
    pub fn start(args: Vec<String>, slot: Arc<TableSlot>) -> ControlLink {
        let stop = Arc::new(AtomicBool::new(false));
        let reply = Arc::new(Mutex::new(None));
        let (s, r) = (stop.clone(), reply.clone());
        let thread = thread::Builder::new()
            .name("control-link".into())
            .spawn(move || run(args, slot, s, r))
            .map_err(|e| tracing::error!(error = %e, "cannot start the control-plane link"))
            .ok();
        ControlLink {
            stop,
            reply,
            thread,
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
            let _ = t.join();
        }
    }
}

fn run(
    args: Vec<String>,
    slot: Arc<TableSlot>,
    stop: Arc<AtomicBool>,
    reply_slot: Arc<Mutex<Option<IpcSender<DataToControl>>>>,
) {
    let mut backoff = BACKOFF_MIN;
    let mut last_generation = slot.generation();
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        match session(&args, &slot, &stop, &reply_slot, &mut last_generation) {
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

/// One control-plane process from spawn to exit.
fn session(
    args: &[String],
    slot: &TableSlot,
    stop: &AtomicBool,
    reply_slot: &Mutex<Option<IpcSender<DataToControl>>>,
    last_generation: &mut u64,
) -> Result<(), String> {
    let (server, name) = IpcOneShotServer::<ControlToData>::new()
        .map_err(|e| format!("cannot create IPC server: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let mut child = Command::new(exe)
        .arg("controlplane")
        .args(args)
        .env(SERVER_ENV, &name)
        .spawn()
        .map_err(|e| format!("cannot spawn the control plane: {e}"))?;
    let pid = child.id();
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
    receive_tables(&receiver, &reply, slot, stop, last_generation);
    reap(&mut child);
    Ok(())
}

fn receive_tables(
    receiver: &IpcReceiver<ControlToData>,
    reply: &IpcSender<DataToControl>,
    slot: &TableSlot,
    stop: &AtomicBool,
    last_generation: &mut u64,
) {
    let mut stop_seen: Option<Instant> = None;
    loop {
        match receiver.try_recv_timeout(Duration::from_millis(100)) {
            Ok(ControlToData::Table(spec)) => {
                let received = Instant::now();
                let generation = spec.generation;
                match RouteTable::compile(&spec) {
                    Ok(table) => {
                        let routers = table.routers_len();
                        slot.publish(table);
                        *last_generation = generation;
                        let apply_micros = received.elapsed().as_micros() as u64;
                        tracing::info!(generation, routers, apply_micros, "configuration applied");
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
            Ok(ControlToData::Hello { .. }) => {
                tracing::warn!("unexpected second hello from the control plane")
            }
            Err(TryRecvError::Empty) => {
                if stop.load(Ordering::SeqCst) {
                    // The child was told to exit; give it a moment, then stop listening.
                    let since = *stop_seen.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(2) {
                        return;
                    }
                }
            }
            Err(TryRecvError::IpcError(_)) => return,
        }
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

//! A worker: one thread, one monoio runtime (io_uring, or epoll where io_uring is refused),
//! its own listeners, upstream pool, buffers and load-balancer state.

use crate::proxy;
use crate::shutdown::Shutdown;
use crate::snapshot::{LocalTable, TableSlot};
use crate::upstream_pool::UpstreamPool;
use futures_channel::oneshot;
use monoio::net::TcpListener;
use ringway_shared::config::static_config::EntryPoint;
use ringway_shared::stats::{Recorder, Stats};
use ringway_shared::table::UpstreamTimeouts;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything a worker thread is started with.
pub struct WorkerSpec {
    pub id: usize,
    pub listeners: Vec<(EntryPoint, std::net::TcpListener)>,
    pub table: Arc<TableSlot>,
    pub upstream: UpstreamTimeouts,
    pub max_idle_conns_per_host: usize,
    pub server_name: Arc<str>,
    /// Fired by the supervisor to start a graceful drain.
    pub drain: oneshot::Receiver<Duration>,
    pub access_log: Option<crate::accesslog::Logger>,
    /// Request counters, sent every [`STATS_EVERY`] to the supervisor's stats thread.
    pub metrics: Option<MetricsSpec>,
    /// The control plane's socket for `api@internal` and its siblings.
    pub api_socket: Option<std::path::PathBuf>,
}

/// A worker's side of the metrics: the histogram bounds and where its counters go.
pub struct MetricsSpec {
    pub bounds: Vec<f64>,
    pub to_stats: std::sync::mpsc::Sender<(usize, Stats)>,
}

/// How often a worker hands its counters over.
pub const STATS_EVERY: Duration = Duration::from_secs(1);

/// State shared by the tasks of one worker (never across threads).
pub struct WorkerCtx {
    pub table: LocalTable,
    pub pool: RefCell<UpstreamPool>,
    pub shutdown: Shutdown,
    pub upstream: UpstreamTimeouts,
    pub server_name: Arc<str>,
    /// Rewritten heads.
    pub heads: BufPool,
    /// Upstream response heads as read (and a small body read with them).
    pub replies: BufPool,
    /// Body streaming and upstream reads.
    pub bodies: BufPool,
    /// Pipes for splicing large bodies.
    pub pipes: crate::proxy::PipePool,
    pub access_log: Option<crate::accesslog::Logger>,
    pub metrics: Option<RefCell<Recorder>>,
    pub api_socket: Option<std::path::PathBuf>,
    active: Cell<usize>,
    /// A trim is scheduled (at most one at a time).
    trim_pending: Cell<bool>,
}

/// I/O buffers of one size reused across the requests of one worker, so that an idle
/// keep-alive connection holds only its small read buffer. At most `keep` are kept; buffers
/// that grew far beyond `size` are freed rather than kept.
pub struct BufPool {
    free: RefCell<Vec<Vec<u8>>>,
    size: usize,
    keep: usize,
}

/// Buffers that stream bodies.
pub const BODY_BUF: usize = 64 * 1024;
/// Buffers that hold a rewritten head (and a small body sent with it).
pub const HEAD_BUF: usize = 4 * 1024;
/// Buffers that read an upstream's response head: the head and a small body in one read, a
/// large body left in the socket for the splice or the body pump (which takes a `BODY_BUF`
/// then). Every response in flight holds one while its head is awaited.
pub const REPLY_BUF: usize = 16 * 1024;

impl BufPool {
    pub fn new(size: usize, keep: usize) -> Self {
        BufPool {
            free: RefCell::new(Vec::new()),
            size,
            keep,
        }
    }

    pub fn take(&self) -> Vec<u8> {
        self.free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.size))
    }

    pub fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() < self.size || buf.capacity() > self.size * 4 {
            return;
        }
        buf.clear();
        let mut free = self.free.borrow_mut();
        if free.len() < self.keep {
            free.push(buf);
        }
    }
}

impl WorkerCtx {
    /// Counts a connection for the drain; the guard uncounts it when dropped.
    pub fn enter(self: &Rc<Self>) -> ActiveGuard {
        self.active.set(self.active.get() + 1);
        ActiveGuard(self.clone())
    }
}

pub struct ActiveGuard(Rc<WorkerCtx>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let ctx = &self.0;
        ctx.active.set(ctx.active.get().saturating_sub(1));
        // Never once the drain began: a connection task dropped after the runtime stopped
        // (one that outlived the grace) must not spawn, which would panic outside it.
        if ctx.active.get() == 0 && !ctx.shutdown.is_fired() && !ctx.trim_pending.replace(true) {
            let ctx = ctx.clone();
            monoio::spawn(async move {
                monoio::time::sleep(TRIM_AFTER_IDLE).await;
                ctx.trim_pending.set(false);
                if ctx.active.get() == 0 {
                    // SAFETY: mi_collect only walks and trims this thread's heap.
                    unsafe { libmimalloc_sys::mi_collect(true) };
                }
            });
        }
    }
}

/// How long a worker stays without connections before it returns the memory its burst
/// freed to the kernel (mimalloc keeps freed pages for reuse otherwise).
const TRIM_AFTER_IDLE: Duration = Duration::from_millis(250);

/// Runs a worker until its drain completes.
pub fn run(spec: WorkerSpec) -> std::io::Result<()> {
    let (mut rt, driver) = build_runtime()?;
    tracing::debug!(worker = spec.id, driver, "worker started");
    rt.block_on(serve(spec));
    Ok(())
}

type Runtime = monoio::FusionRuntime<
    monoio::time::TimeDriver<monoio::IoUringDriver>,
    monoio::time::TimeDriver<monoio::LegacyDriver>,
>;

/// io_uring with deferred task running where the kernel has it (6.1+): completions are
/// processed when the worker asks for them, not by interrupting it, and the ring has a single
/// issuer. Falls back to a plain ring, then to epoll where io_uring is refused (Docker's
/// default seccomp profile).
fn build_runtime() -> std::io::Result<(Runtime, &'static str)> {
    let builder = || {
        monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .with_entries(1024)
            .enable_timer()
    };
    if monoio::utils::detect_uring() && std::env::var_os("RINGWAY_PLAIN_URING").is_none() {
        let mut urb = io_uring::IoUring::builder();
        urb.setup_coop_taskrun()
            .setup_single_issuer()
            .setup_defer_taskrun();
        match builder().uring_builder(urb).build() {
            Ok(rt) => return Ok((rt, "io_uring (defer_taskrun)")),
            Err(e) => tracing::debug!(error = %e, "io_uring without defer_taskrun"),
        }
    }
    let rt = builder().build()?;
    let driver = if monoio::utils::detect_uring() {
        "io_uring"
    } else {
        "epoll"
    };
    Ok((rt, driver))
}

async fn serve(spec: WorkerSpec) {
    let ctx = Rc::new(WorkerCtx {
        table: LocalTable::new(spec.table),
        pool: RefCell::new(UpstreamPool::new(
            spec.max_idle_conns_per_host,
            spec.upstream.idle_conn,
        )),
        shutdown: Shutdown::new(),
        upstream: spec.upstream,
        server_name: spec.server_name,
        heads: BufPool::new(HEAD_BUF, 64),
        replies: BufPool::new(REPLY_BUF, 16),
        bodies: BufPool::new(BODY_BUF, 8),
        pipes: crate::proxy::PipePool::default(),
        access_log: spec.access_log,
        metrics: spec
            .metrics
            .as_ref()
            .map(|m| RefCell::new(Recorder::new(&m.bounds))),
        api_socket: spec.api_socket,
        active: Cell::new(0),
        trim_pending: Cell::new(false),
    });
    if let Some(m) = spec.metrics {
        // Cumulative counters, every second: a lost message costs nothing.
        let ticker = ctx.clone();
        let id = spec.id;
        monoio::spawn(async move {
            loop {
                monoio::time::sleep(STATS_EVERY).await;
                let Some(recorder) = &ticker.metrics else {
                    return;
                };
                let snapshot = recorder.borrow().snapshot();
                if m.to_stats.send((id, snapshot)).is_err() || ticker.shutdown.is_fired() {
                    return;
                }
            }
        });
    }
    if ctx.access_log.is_some() {
        // Hands this worker's access log lines to the writer at least every 100 ms.
        let ticker = ctx.clone();
        monoio::spawn(async move {
            while !ticker.shutdown.is_fired() {
                monoio::time::sleep(crate::accesslog::FLUSH_EVERY).await;
                if let Some(log) = &ticker.access_log {
                    log.tick();
                }
            }
        });
    }
    for (ep, std_listener) in spec.listeners {
        match TcpListener::from_std(std_listener) {
            Ok(l) => {
                monoio::spawn(accept_loop(l, Rc::new(ep), ctx.clone()));
            }
            Err(e) => tracing::error!(entry_point = %ep.name, error = %e, "cannot use listener"),
        }
    }
    // Sender dropped (supervisor gone) also means drain, with the default grace.
    let grace = spec.drain.await.unwrap_or(Duration::from_secs(10));
    ctx.shutdown.fire();
    ctx.pool.borrow_mut().clear();
    let deadline = Instant::now() + grace;
    while ctx.active.get() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    if ctx.active.get() > 0 {
        tracing::warn!(
            worker = spec.id,
            connections = ctx.active.get(),
            "grace timeout reached; closing remaining connections"
        );
    }
    if let Some(log) = &ctx.access_log {
        log.flush();
    }
}

async fn accept_loop(listener: TcpListener, ep: Rc<EntryPoint>, ctx: Rc<WorkerCtx>) {
    let mut stop = std::pin::pin!(ctx.shutdown.wait());
    loop {
        monoio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let guard = ctx.enter();
                    let _ = stream.set_nodelay(true);
                    let task = proxy::serve_connection(stream, peer, ep.clone(), ctx.clone(), guard);
                    tracing::trace!(bytes = std::mem::size_of_val(&task), "connection task");
                    if let Some(m) = &ctx.metrics {
                        m.borrow_mut().open(&ep.name);
                        let (ctx, ep) = (ctx.clone(), ep.clone());
                        monoio::spawn(async move {
                            task.await;
                            if let Some(m) = &ctx.metrics {
                                m.borrow_mut().close(&ep.name);
                            }
                        });
                    } else {
                        monoio::spawn(task);
                    }
                }
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(entry_point = %ep.name, error = %e, "accept failed");
                    monoio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
    drop(listener);
}

//! Publishing routing tables to the workers: one shared slot, a worker-local cache.
//!
//! The supervisor stores a new `Arc<RouteTable>` and then bumps the generation. A worker reads
//! the generation (a shared cache line that is written once per reload, so reads stay local),
//! and only when it changed loads the new table. Requests clone an `Rc`, never the `Arc`:
//! nothing on the request path touches a cross-core reference count.

use arc_swap::ArcSwap;
use ringway_shared::lb::SmoothWrr;
use ringway_shared::table::{CompiledService, RouteTable, ServerSpec, ServiceId, TcpServiceKind};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What one generation of configuration gives the workers: the routes and the TLS acceptor.
pub struct Published {
    pub table: RouteTable,
    pub tls: crate::tls::Acceptors,
}

/// Shared between the supervisor (writer) and the workers (readers).
pub struct TableSlot {
    generation: AtomicU64,
    table: ArcSwap<Published>,
}

impl TableSlot {
    pub fn new(initial: Published) -> Self {
        TableSlot {
            generation: AtomicU64::new(initial.table.generation),
            table: ArcSwap::from_pointee(initial),
        }
    }

    /// Makes `published` the one every worker uses for its next request; returns the one it
    /// replaces (so that the caller, not a worker, frees it).
    pub fn publish(&self, published: Published) -> Arc<Published> {
        let generation = published.table.generation;
        let old = self.table.swap(Arc::new(published));
        self.generation.store(generation, Ordering::Release);
        old
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The table every worker uses for its next request.
    pub fn current(&self) -> Arc<Published> {
        self.table.load_full()
    }
}

/// A table as one worker sees it, with that worker's load-balancer state.
pub struct Snapshot {
    published: Arc<Published>,
    lb: RefCell<Vec<SmoothWrr>>,
    tcp_lb: RefCell<Vec<SmoothWrr>>,
}

impl Snapshot {
    fn new(published: Arc<Published>) -> Self {
        let lb = (0..published.table.services_len())
            .map(|_| SmoothWrr::default())
            .collect();
        let tcp_lb = (0..published.table.tcp_services_len())
            .map(|_| SmoothWrr::default())
            .collect();
        Snapshot {
            published,
            lb: RefCell::new(lb),
            tcp_lb: RefCell::new(tcp_lb),
        }
    }

    pub fn table(&self) -> &RouteTable {
        &self.published.table
    }

    pub fn tls(&self) -> &crate::tls::Acceptors {
        &self.published.tls
    }

    /// Picks a server for a service, descending through weighted services.
    /// Returns the server and whether the Host header is passed through.
    /// Skips the servers at `tried` (a retry goes to a server that has not failed this
    /// request yet, when there is one).
    pub fn pick_server_except(&self, mut service: ServiceId, tried: &[SocketAddr]) -> Pick<'_> {
        let mut lb = self.lb.borrow_mut();
        // Weighted services form a DAG (the control plane rejects cycles); bound the walk anyway.
        for _ in 0..32 {
            let Some(state) = lb.get_mut(service.0 as usize) else {
                return Pick::NoServer;
            };
            let table = &self.published.table;
            match table.service(service) {
                Some(
                    lb @ CompiledService::LoadBalancer {
                        servers,
                        weights,
                        pass_host_header,
                        ..
                    },
                ) => {
                    let fresh = |i: usize| lb.server_up(i) && !tried.contains(&servers[i].addr);
                    let pick = match state.pick(weights, fresh) {
                        Some(i) => Some(i),
                        // Every server has failed this request: any that is up.
                        None if !tried.is_empty() => state.pick(weights, |i| lb.server_up(i)),
                        None => None,
                    };
                    return match pick {
                        Some(i) => Pick::Server(&servers[i], *pass_host_header),
                        None => Pick::NoServer,
                    };
                }
                Some(CompiledService::Weighted {
                    children, weights, ..
                }) => match state.pick(weights, |i| {
                    table
                        .service(children[i])
                        .is_some_and(CompiledService::any_up)
                }) {
                    Some(i) => service = children[i],
                    None => return Pick::NoServer,
                },
                Some(CompiledService::Internal { .. }) | None => return Pick::NoServer,
            }
        }
        Pick::NoServer
    }
}

impl Snapshot {
    /// Picks a server for a TCP service, descending through a weighted one.
    pub fn pick_tcp_server(&self, mut service: u32) -> Option<std::net::SocketAddr> {
        let mut lb = self.tcp_lb.borrow_mut();
        for _ in 0..8 {
            let state = lb.get_mut(service as usize)?;
            match &self.published.table.tcp_service(service)?.kind {
                TcpServiceKind::LoadBalancer(servers) => {
                    let weights = servers.iter().map(|s| s.weight);
                    return state.pick_by(weights, |_| true).map(|i| servers[i].addr);
                }
                TcpServiceKind::Weighted(children) => {
                    let weights = children.iter().map(|c| c.1);
                    service = children[state.pick_by(weights, |_| true)?].0;
                }
            }
        }
        None
    }
}

pub enum Pick<'a> {
    Server(&'a ServerSpec, bool),
    NoServer,
}

/// Per-worker cache of the current table.
pub struct LocalTable {
    slot: Arc<TableSlot>,
    current: RefCell<(u64, Rc<Snapshot>)>,
}

impl LocalTable {
    pub fn new(slot: Arc<TableSlot>) -> Self {
        let snap = Rc::new(Snapshot::new(slot.table.load_full()));
        let generation = snap.table().generation;
        LocalTable {
            slot,
            current: RefCell::new((generation, snap)),
        }
    }

    /// The table for a new request.
    pub fn get(&self) -> Rc<Snapshot> {
        let generation = self.slot.generation();
        let mut cur = self.current.borrow_mut();
        if cur.0 != generation {
            let published = self.slot.table.load_full();
            *cur = (
                published.table.generation,
                Rc::new(Snapshot::new(published)),
            );
        }
        cur.1.clone()
    }
}

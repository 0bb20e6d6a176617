//! What one resolution built, kept for the next: an HTTP router or a load-balancer service
//! whose configuration did not change, and whose surroundings did not either, is reused
//! (shared, not rebuilt). A change to one router of 10,000 then builds one router.
//!
//! Only what a resolution builds from its own configuration alone is kept: routers without
//! `tls` (TLS routers feed the certificate requests and per-host TLS options) and without
//! errors, on entry points that have no TLS model; load-balancer services without errors or
//! warnings whose servers are IP addresses (a host name is resolved again on every
//! resolution). Everything else is built every time.
//!
//! It also remembers whether each HTTP rule text parses and compiles, whatever router it
//! belongs to (a changed router with a known rule is not parsed again).

use super::{MiddlewareResults, RouterStatus, RuleChecks, ServiceStatus};
use ringway_shared::config::dynamic::{RouterConfig, ServiceConfig};
use ringway_shared::table::{RouterDef, RouterSpec, ServiceId, ServiceSpec};
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

/// Kept between resolutions by the caller of [`super::resolve_with`].
#[derive(Default)]
pub struct Memo {
    /// The entry points known, and those given by default, when the routers were kept: a
    /// router's status depends on them.
    entry_points: (Vec<String>, Vec<String>),
    /// By provider, then router name as configured.
    routers: HashMap<String, HashMap<String, KeptRouter>>,
    /// By qualified name.
    services: HashMap<String, KeptService>,
    /// Resolutions so far: what the last one did not use is dropped at its end.
    round: u64,
    /// Rule texts checked (they do not depend on the entry points).
    pub(super) rule_checks: RuleChecks,
}

type KeptRouter = Kept<RouterConfig, (Arc<RouterStatus>, Arc<RouterDef>)>;
type KeptService = Kept<ServiceConfig, (Arc<ServiceStatus>, Arc<ServiceSpec>)>;

/// What a configuration built, and the last resolution that used it.
struct Kept<C, B> {
    /// The configuration's own `Arc`: while a provider's view keeps it, a comparison is one
    /// pointer.
    config: Arc<C>,
    built: B,
    round: u64,
}

impl Memo {
    /// Starts a resolution with these entry points (all known, and the default ones).
    pub(super) fn begin(&mut self, known: &[String], default: &[String]) {
        if self.entry_points.0 != known || self.entry_points.1 != default {
            *self = Memo {
                entry_points: (known.to_vec(), default.to_vec()),
                rule_checks: std::mem::take(&mut self.rule_checks),
                ..Memo::default()
            };
        }
        self.round += 1;
    }

    /// Ends a resolution: what it did not use goes.
    pub(super) fn end(&mut self) {
        let round = self.round;
        self.services.retain(|_, k| k.round == round);
        for routers in self.routers.values_mut() {
            routers.retain(|_, k| k.round == round);
        }
        self.routers.retain(|_, routers| !routers.is_empty());
    }

    /// The router `name` of `provider` as the last resolution built it, if its configuration
    /// is the same, its service still exists (under whatever number), and its middlewares
    /// still give the data plane the same.
    pub(super) fn router(
        &mut self,
        provider: &str,
        name: &str,
        config: &Arc<RouterConfig>,
        service_ids: &HashMap<String, ServiceId>,
        middlewares: &MiddlewareResults,
    ) -> Option<(Arc<RouterStatus>, RouterSpec)> {
        let kept = self.routers.get_mut(provider)?.get_mut(name)?;
        if !same(&mut kept.config, config) {
            return None;
        }
        let (status, def) = &kept.built;
        let &service = service_ids.get(status.service.as_str())?;
        let same_middlewares = status.middleware_names.iter().zip(&status.middlewares).all(
            |(q, spec)| matches!(middlewares.get(q.as_str()), Some((_, Ok(now))) if now == spec),
        );
        if !same_middlewares {
            return None;
        }
        kept.round = self.round;
        Some((
            status.clone(),
            RouterSpec {
                def: def.clone(),
                service,
            },
        ))
    }

    /// Keeps a router built from `config` alone (the caller checked: no `tls`, no error,
    /// no entry point model).
    pub(super) fn keep_router(
        &mut self,
        provider: &str,
        name: &str,
        config: &Arc<RouterConfig>,
        built: (&Arc<RouterStatus>, &Arc<RouterDef>),
    ) {
        let kept = Kept {
            config: config.clone(),
            built: (built.0.clone(), built.1.clone()),
            round: self.round,
        };
        match self.routers.get_mut(provider) {
            Some(routers) => {
                routers.insert(name.to_string(), kept);
            }
            None => {
                let routers = HashMap::from_iter([(name.to_string(), kept)]);
                self.routers.insert(provider.to_string(), routers);
            }
        }
    }

    /// The service `name` (qualified) as the last resolution built it, if its configuration
    /// is the same.
    pub(super) fn service(
        &mut self,
        name: &str,
        config: &Arc<ServiceConfig>,
    ) -> Option<(Arc<ServiceStatus>, Arc<ServiceSpec>)> {
        let kept = self.services.get_mut(name)?;
        if !same(&mut kept.config, config) {
            return None;
        }
        kept.round = self.round;
        Some(kept.built.clone())
    }

    /// Keeps a service built from `config` alone (the caller checked: a load balancer, no
    /// error or warning, no host name resolved).
    pub(super) fn keep_service(
        &mut self,
        name: &str,
        config: &Arc<ServiceConfig>,
        built: (&Arc<ServiceStatus>, &Arc<ServiceSpec>),
    ) {
        self.services.insert(
            name.to_string(),
            Kept {
                config: config.clone(),
                built: (built.0.clone(), built.1.clone()),
                round: self.round,
            },
        );
    }
}

/// The same configuration: the same `Arc` (the provider's view did not change it), or an equal
/// one (it was parsed again), which then replaces the kept one (the old parse can go, and the
/// next comparison is a pointer's).
fn same<C: PartialEq>(kept: &mut Arc<C>, now: &Arc<C>) -> bool {
    if Arc::ptr_eq(kept, now) {
        return true;
    }
    if **kept != **now {
        return false;
    }
    *kept = now.clone();
    true
}

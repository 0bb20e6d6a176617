//! The API, the dashboard and the Prometheus metrics, served on a private unix socket that the
//! data plane forwards `api@internal`, `dashboard@internal` and `prometheus@internal` to.
//!
//! The runtime feeds [`Api`] with each resolution, each table pushed and acknowledged, and the
//! data plane's counters; requests read a snapshot of that state.

mod dashboard;
mod json;
mod process;
mod prometheus;
mod server;

use crate::aggregator::{MiddlewareStatus, Resolution, RouterStatus, ServiceStatus};
use ringway_shared::config::static_config::StaticConfig;
use ringway_shared::stats::Stats;
use ringway_shared::table::{ServiceSpec, TableSpec, TcpServiceSpec};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What the API reports about the configuration: the last resolution.
#[derive(Debug, Default)]
pub struct Runtime {
    pub routers: Vec<Arc<RouterStatus>>,
    pub services: Vec<Arc<ServiceStatus>>,
    pub middlewares: Vec<MiddlewareStatus>,
    /// The valid services as sent to the data plane (servers, weights, health checks).
    pub service_specs: Vec<Arc<ServiceSpec>>,
    pub tcp_service_specs: Vec<TcpServiceSpec>,
    /// Index of each service in `service_specs`, by name.
    spec_index: HashMap<String, usize>,
}

impl Runtime {
    /// The valid service named `name`, as sent to the data plane.
    pub fn spec(&self, name: &str) -> Option<&ServiceSpec> {
        self.spec_index
            .get(name)
            .and_then(|&i| self.service_specs.get(i))
            .map(|s| &**s)
    }
}

/// A certificate served, for `traefik_tls_certs_not_after`.
#[derive(Debug, Clone, PartialEq)]
pub struct CertInfo {
    pub cn: String,
    pub sans: Vec<String>,
    pub serial: String,
    pub not_after: i64,
}

/// Counters of the configuration reloads.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reloads {
    pub total: u64,
    pub failures: u64,
    /// Unix time of the last table the data plane applied (0: none yet).
    pub last_success: f64,
    pub last_failure: f64,
}

/// Requests per second of each router and service, over the last few seconds.
#[derive(Debug, Default, Clone)]
pub struct Rates {
    pub routers: HashMap<String, f64>,
    pub services: HashMap<String, f64>,
}

/// How many seconds of counters the rates are computed over.
const RATE_WINDOW: usize = 5;

/// Requests so far per router and per service, at one time.
struct Sample {
    at: Instant,
    routers: HashMap<String, u64>,
    services: HashMap<String, u64>,
}

#[derive(Default)]
struct State {
    runtime: Arc<Runtime>,
    stats: Arc<Stats>,
    /// Totals per router and per service, one sample a second.
    history: VecDeque<Sample>,
    reloads: Reloads,
    certs: Arc<Vec<CertInfo>>,
    generation: u64,
}

/// A consistent view for one request.
pub struct View {
    pub runtime: Arc<Runtime>,
    pub stats: Arc<Stats>,
    pub reloads: Reloads,
    pub certs: Arc<Vec<CertInfo>>,
    pub generation: u64,
}

/// The API's handle; cheap to clone.
#[derive(Clone)]
pub struct Api {
    state: Arc<Mutex<State>>,
    pub(crate) settings: Arc<Settings>,
}

/// The static settings the API shows or obeys.
pub struct Settings {
    pub cfg: StaticConfig,
    pub start: SystemTime,
}

impl Api {
    /// Starts serving on the socket the data plane named, when the API or metrics are on;
    /// `None` otherwise. Must run inside the tokio runtime.
    pub fn start(cfg: &StaticConfig) -> Option<Api> {
        if cfg.api.is_none() && cfg.metrics.is_none() {
            return None;
        }
        let api = Api {
            state: Arc::default(),
            settings: Arc::new(Settings {
                cfg: cfg.clone(),
                start: SystemTime::now(),
            }),
        };
        match std::env::var_os(ringway_shared::ipc::API_SOCKET_ENV) {
            Some(path) => {
                let path = std::path::PathBuf::from(path);
                match server::bind(&path) {
                    Ok(listener) => {
                        tokio::spawn(server::serve(listener, api.clone()));
                    }
                    Err(e) => tracing::error!(
                        path = %path.display(),
                        error = %e,
                        "cannot serve the API, dashboard and metrics"
                    ),
                }
            }
            None => tracing::error!(
                "the data plane gave no socket for the API: the API, dashboard and metrics are off"
            ),
        }
        Some(api)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes what the API reports from a resolution (once its table was sent): its statuses,
    /// with the specs of the table the data plane serves (`served`).
    pub fn resolved(&self, r: &mut Resolution, served: Option<&TableSpec>) {
        let (services, tcp_services) = served.map_or((&[][..], &[][..]), |t| {
            (&t.services[..], &t.tcp_services[..])
        });
        let runtime = Runtime {
            routers: std::mem::take(&mut r.routers),
            services: std::mem::take(&mut r.services),
            middlewares: std::mem::take(&mut r.middlewares),
            service_specs: services.to_vec(),
            tcp_service_specs: tcp_services.to_vec(),
            spec_index: services
                .iter()
                .enumerate()
                .map(|(i, s)| (s.name.clone(), i))
                .collect(),
        };
        // The replaced statuses are freed outside the lock (API readers wait on it).
        let _old = std::mem::replace(&mut self.lock().runtime, Arc::new(runtime));
    }

    /// A table went out: its certificates are the ones served.
    pub fn pushed(&self, table: &TableSpec) {
        let certs = certificates(table);
        let mut st = self.lock();
        st.certs = Arc::new(certs);
        st.generation = table.generation;
    }

    /// The data plane applied a table (`ok`) or refused it.
    pub fn reloaded(&self, ok: bool) {
        let now = unix_now();
        let mut st = self.lock();
        if ok {
            st.reloads.total += 1;
            st.reloads.last_success = now;
        } else {
            st.reloads.failures += 1;
            st.reloads.last_failure = now;
        }
    }

    /// The data plane's counters arrived.
    pub fn stats(&self, stats: Stats) {
        let totals = |list: &[ringway_shared::stats::Labeled]| {
            let mut m: HashMap<String, u64> = HashMap::new();
            for l in list {
                *m.entry(l.name.clone()).or_default() += l.total();
            }
            m
        };
        let sample = Sample {
            at: Instant::now(),
            routers: totals(&stats.routers),
            services: totals(&stats.services),
        };
        let mut st = self.lock();
        st.history.push_back(sample);
        while st.history.len() > RATE_WINDOW + 1 {
            st.history.pop_front();
        }
        st.stats = Arc::new(stats);
    }

    /// Requests per second per router and service over the last few seconds.
    pub fn rates(&self) -> Rates {
        rates(&self.lock().history)
    }

    pub fn view(&self) -> View {
        let st = self.lock();
        View {
            runtime: st.runtime.clone(),
            stats: st.stats.clone(),
            reloads: st.reloads,
            certs: st.certs.clone(),
            generation: st.generation,
        }
    }
}

fn rates(history: &VecDeque<Sample>) -> Rates {
    let (Some(first), Some(last)) = (history.front(), history.back()) else {
        return Rates::default();
    };
    let secs = last.at.duration_since(first.at).as_secs_f64();
    if secs <= 0.0 {
        return Rates::default();
    }
    let per = |now: &HashMap<String, u64>, then: &HashMap<String, u64>| {
        now.iter()
            .map(|(k, v)| {
                let before = then.get(k).copied().unwrap_or(0);
                (k.clone(), v.saturating_sub(before) as f64 / secs)
            })
            .collect()
    };
    Rates {
        routers: per(&last.routers, &first.routers),
        services: per(&last.services, &first.services),
    }
}

/// Every certificate of the table (default included), parsed.
fn certificates(table: &TableSpec) -> Vec<CertInfo> {
    let mut out = Vec::new();
    let all = table
        .tls
        .certificates
        .iter()
        .chain(table.tls.default_certificate.iter());
    for c in all {
        let Some(der) = c.chain.first() else { continue };
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            continue;
        };
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|n| n.as_str().ok())
            .unwrap_or_default()
            .to_string();
        let sans = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|ext| {
                ext.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                        x509_parser::extensions::GeneralName::IPAddress(ip) => {
                            Some(format!("{ip:?}"))
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let info = CertInfo {
            cn,
            sans,
            serial: cert.raw_serial_as_string().replace(':', ""),
            not_after: cert.validity().not_after.timestamp(),
        };
        if !out.contains(&info) {
            out.push(info);
        }
    }
    out
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `2026-11-22T22:40:47Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = ringway_shared::civil::civil(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_rfc3339() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_387_247);
        assert_eq!(rfc3339(t), "2026-11-22T22:40:47Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }
}

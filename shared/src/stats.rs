//! Request counters: recorded by each data-plane worker on its own (no atomics, no locks),
//! shipped to the control plane every second as cumulative [`Stats`], summed there across
//! workers, and rendered as Traefik's Prometheus metrics and the dashboard's rates.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Methods kept as their own label value; any other is `EXTENSION_METHOD`, so that a client
/// cannot grow the label set without bound.
pub const METHODS: [&str; 10] = [
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "EXTENSION_METHOD",
];

/// The label value for `method`.
pub fn method_name(method: &str) -> &'static str {
    METHODS[method_index(method) as usize]
}

fn method_index(method: &str) -> u8 {
    METHODS[..METHODS.len() - 1]
        .iter()
        .position(|m| *m == method)
        .unwrap_or(METHODS.len() - 1) as u8
}

/// One label combination's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub code: u16,
    /// Index into [`METHODS`].
    pub method: u8,
    /// `protocol="websocket"` rather than `"http"`.
    pub websocket: bool,
    pub count: u64,
    /// Sum of the durations, in nanoseconds.
    pub duration_nanos: u64,
    /// Requests per bucket of the recorder's bounds (not cumulative); one more for `+Inf`.
    pub buckets: Vec<u64>,
    pub request_bytes: u64,
    pub response_bytes: u64,
}

impl Series {
    pub fn method(&self) -> &'static str {
        METHODS
            .get(self.method as usize)
            .copied()
            .unwrap_or("EXTENSION_METHOD")
    }

    pub fn protocol(&self) -> &'static str {
        if self.websocket {
            "websocket"
        } else {
            "http"
        }
    }

    fn key(&self) -> (u16, u8, bool) {
        (self.code, self.method, self.websocket)
    }

    fn add(&mut self, other: &Series) {
        self.count += other.count;
        self.duration_nanos += other.duration_nanos;
        self.request_bytes += other.request_bytes;
        self.response_bytes += other.response_bytes;
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), 0);
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
    }
}

/// The series of one entry point, router or service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Labeled {
    /// The entry point, router or service.
    pub name: String,
    /// A router's service (empty otherwise).
    pub service: String,
    pub series: Vec<Series>,
}

impl Labeled {
    /// Requests in all.
    pub fn total(&self) -> u64 {
        self.series.iter().map(|s| s.count).sum()
    }
}

/// A health-checked server's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerState {
    pub service: String,
    pub url: String,
    pub up: bool,
}

/// Cumulative counters since the data plane started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Upper bounds of the duration buckets, in seconds.
    pub bounds: Vec<f64>,
    pub entry_points: Vec<Labeled>,
    pub routers: Vec<Labeled>,
    pub services: Vec<Labeled>,
    /// Retries per service.
    pub retries: Vec<(String, u64)>,
    /// Open connections per entry point.
    pub open_connections: Vec<(String, u64)>,
    pub servers: Vec<ServerState>,
}

impl Stats {
    /// The health-checked servers found down, as (service, url).
    pub fn servers_down(&self) -> std::collections::HashSet<(&str, &str)> {
        self.servers
            .iter()
            .filter(|s| !s.up)
            .map(|s| (s.service.as_str(), s.url.as_str()))
            .collect()
    }

    /// Adds `other`'s counters (another worker's) to these.
    pub fn merge(&mut self, other: &Stats) {
        if self.bounds.is_empty() {
            self.bounds = other.bounds.clone();
        }
        for (mine, theirs) in [
            (&mut self.entry_points, &other.entry_points),
            (&mut self.routers, &other.routers),
            (&mut self.services, &other.services),
        ] {
            merge_labeled(mine, theirs);
        }
        for (mine, theirs) in [
            (&mut self.retries, &other.retries),
            (&mut self.open_connections, &other.open_connections),
        ] {
            let mut sum: BTreeMap<String, u64> = std::mem::take(mine).into_iter().collect();
            for (k, v) in theirs {
                *sum.entry(k.clone()).or_default() += v;
            }
            *mine = sum.into_iter().collect();
        }
        self.servers.extend(other.servers.iter().cloned());
    }
}

fn merge_labeled(mine: &mut Vec<Labeled>, theirs: &[Labeled]) {
    let mut index: HashMap<(String, String), usize> = mine
        .iter()
        .enumerate()
        .map(|(i, l)| ((l.name.clone(), l.service.clone()), i))
        .collect();
    for l in theirs {
        let i = *index
            .entry((l.name.clone(), l.service.clone()))
            .or_insert_with(|| {
                mine.push(Labeled {
                    name: l.name.clone(),
                    service: l.service.clone(),
                    series: Vec::new(),
                });
                mine.len() - 1
            });
        let target = &mut mine[i].series;
        for s in &l.series {
            match target.iter_mut().find(|t| t.key() == s.key()) {
                Some(t) => t.add(s),
                None => target.push(s.clone()),
            }
        }
    }
    mine.sort_by(|a, b| (&a.name, &a.service).cmp(&(&b.name, &b.service)));
}

/// One request, as the metrics see it.
pub struct Observation<'a> {
    pub entry_point: &'a str,
    pub router: Option<&'a str>,
    pub service: Option<&'a str>,
    pub method: &'a str,
    pub websocket: bool,
    pub code: u16,
    pub duration: Duration,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub retries: u32,
}

/// A router's series for one of its services.
type PerService = (Box<str>, Vec<Series>);

/// A worker's counters. Lookups hash the name only; label combinations per name are few and
/// scanned.
#[derive(Debug)]
pub struct Recorder {
    bounds: Vec<f64>,
    bounds_nanos: Vec<u64>,
    entry_points: HashMap<Box<str>, Vec<Series>>,
    /// Per router, per service (a router keeps its name when its service changes).
    routers: HashMap<Box<str>, Vec<PerService>>,
    services: HashMap<Box<str>, Vec<Series>>,
    retries: HashMap<Box<str>, u64>,
    open: HashMap<Box<str>, u64>,
}

impl Recorder {
    /// `bounds`: ascending upper bounds of the duration buckets, in seconds.
    pub fn new(bounds: &[f64]) -> Recorder {
        Recorder {
            bounds: bounds.to_vec(),
            bounds_nanos: bounds.iter().map(|b| (b * 1e9) as u64).collect(),
            entry_points: HashMap::new(),
            routers: HashMap::new(),
            services: HashMap::new(),
            retries: HashMap::new(),
            open: HashMap::new(),
        }
    }

    pub fn record(&mut self, o: &Observation<'_>) {
        let nanos = u64::try_from(o.duration.as_nanos()).unwrap_or(u64::MAX);
        let bucket = self
            .bounds_nanos
            .iter()
            .position(|&b| nanos <= b)
            .unwrap_or(self.bounds_nanos.len());
        let sample = Sample {
            code: o.code,
            method: method_index(o.method),
            websocket: o.websocket,
            nanos,
            bucket,
            buckets: self.bounds_nanos.len() + 1,
            request_bytes: o.request_bytes,
            response_bytes: o.response_bytes,
        };
        sample.add_to(slot(&mut self.entry_points, o.entry_point));
        if let Some(service) = o.service {
            if let Some(router) = o.router {
                let per_service = slot(&mut self.routers, router);
                let i = match per_service.iter().position(|(s, _)| &**s == service) {
                    Some(i) => i,
                    None => {
                        per_service.push((service.into(), Vec::new()));
                        per_service.len() - 1
                    }
                };
                sample.add_to(&mut per_service[i].1);
            }
            sample.add_to(slot(&mut self.services, service));
            if o.retries > 0 {
                *slot(&mut self.retries, service) += u64::from(o.retries);
            }
        }
    }

    /// A connection was accepted on `entry_point`.
    pub fn open(&mut self, entry_point: &str) {
        *slot(&mut self.open, entry_point) += 1;
    }

    /// A connection on `entry_point` closed.
    pub fn close(&mut self, entry_point: &str) {
        let n = slot(&mut self.open, entry_point);
        *n = n.saturating_sub(1);
    }

    /// The counters so far.
    pub fn snapshot(&self) -> Stats {
        fn labeled(map: &HashMap<Box<str>, Vec<Series>>) -> Vec<Labeled> {
            map.iter()
                .map(|(name, series)| Labeled {
                    name: name.to_string(),
                    service: String::new(),
                    series: series.clone(),
                })
                .collect()
        }
        let pairs = |m: &HashMap<Box<str>, u64>| -> Vec<(String, u64)> {
            m.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        Stats {
            bounds: self.bounds.clone(),
            entry_points: labeled(&self.entry_points),
            routers: self
                .routers
                .iter()
                .flat_map(|(name, per)| {
                    per.iter().map(move |(service, series)| Labeled {
                        name: name.to_string(),
                        service: service.to_string(),
                        series: series.clone(),
                    })
                })
                .collect(),
            services: labeled(&self.services),
            retries: pairs(&self.retries),
            open_connections: pairs(&self.open),
            servers: Vec::new(),
        }
    }
}

/// The entry for `name`, made on first use (the name is copied only then).
fn slot<'m, V: Default>(map: &'m mut HashMap<Box<str>, V>, name: &str) -> &'m mut V {
    if !map.contains_key(name) {
        map.insert(name.into(), V::default());
    }
    map.get_mut(name).expect("just inserted")
}

struct Sample {
    code: u16,
    method: u8,
    websocket: bool,
    nanos: u64,
    bucket: usize,
    buckets: usize,
    request_bytes: u64,
    response_bytes: u64,
}

impl Sample {
    fn add_to(&self, series: &mut Vec<Series>) {
        let i = match series.iter().position(|s| {
            s.code == self.code && s.method == self.method && s.websocket == self.websocket
        }) {
            Some(i) => i,
            None => {
                series.push(Series {
                    code: self.code,
                    method: self.method,
                    websocket: self.websocket,
                    buckets: vec![0; self.buckets],
                    ..Series::default()
                });
                series.len() - 1
            }
        };
        let s = &mut series[i];
        s.count += 1;
        s.duration_nanos = s.duration_nanos.saturating_add(self.nanos);
        if let Some(b) = s.buckets.get_mut(self.bucket) {
            *b += 1;
        }
        s.request_bytes += self.request_bytes;
        s.response_bytes += self.response_bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs<'a>(router: &'a str, code: u16, millis: u64) -> Observation<'a> {
        Observation {
            entry_point: "web",
            router: Some(router),
            service: Some("app@file"),
            method: "GET",
            websocket: false,
            code,
            duration: Duration::from_millis(millis),
            request_bytes: 10,
            response_bytes: 100,
            retries: 0,
        }
    }

    #[test]
    fn workers_are_summed_per_label_set() {
        let mut a = Recorder::new(&[0.1, 0.3]);
        let mut b = Recorder::new(&[0.1, 0.3]);
        a.record(&obs("r@file", 200, 5));
        a.record(&obs("r@file", 200, 200));
        b.record(&obs("r@file", 200, 900));
        b.record(&obs("r@file", 404, 1));
        b.record(&Observation {
            method: "BREW",
            ..obs("r@file", 200, 1)
        });
        let mut total = Stats::default();
        total.merge(&a.snapshot());
        total.merge(&b.snapshot());
        assert_eq!(total.bounds, [0.1, 0.3]);
        let ep = &total.entry_points[0];
        assert_eq!(ep.name, "web");
        assert_eq!(ep.total(), 5);
        let ok = ep
            .series
            .iter()
            .find(|s| s.code == 200 && s.method() == "GET")
            .expect("200 GET");
        assert_eq!(ok.count, 3);
        assert_eq!(ok.buckets, [1, 1, 1]);
        assert_eq!(ok.duration_nanos, 1_105_000_000);
        assert_eq!(ok.response_bytes, 300);
        assert!(ep
            .series
            .iter()
            .any(|s| s.method() == "EXTENSION_METHOD" && s.count == 1));
        assert_eq!(total.routers[0].service, "app@file");
        assert_eq!(total.services[0].total(), 5);
    }

    #[test]
    fn open_connections_never_go_negative() {
        let mut r = Recorder::new(&[1.0]);
        r.open("web");
        r.close("web");
        r.close("web");
        assert_eq!(r.snapshot().open_connections, [("web".to_string(), 0)]);
    }
}

//! `api.*` and `metrics.prometheus.*`: Traefik's API, dashboard and Prometheus settings,
//! validated.

use super::Origins;
use crate::config::node::from_node_at;
use crate::config::{ConfigError, Node};
use serde::Deserialize;

/// `api` with Traefik's defaults (`--api` alone enables it, dashboard included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    /// `api.insecure`: routers `api@internal` and `dashboard@internal` on the `traefik` entry
    /// point, unprotected.
    pub insecure: bool,
    /// `api.dashboard` (true).
    pub dashboard: bool,
    /// `api.basePath` ("/"), without a trailing slash ("" for the root).
    pub base_path: String,
}

/// Traefik's default histogram buckets for request durations, in seconds.
pub const DEFAULT_BUCKETS: [f64; 4] = [0.1, 0.3, 1.2, 5.0];

/// `metrics.prometheus` with Traefik's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Prometheus {
    /// Upper bounds of the duration histograms, ascending.
    pub buckets: Vec<f64>,
    pub add_entry_points_labels: bool,
    pub add_routers_labels: bool,
    pub add_services_labels: bool,
    /// Where `prometheus@internal` is routed (`traefik`), unless `manual_routing`.
    pub entry_point: String,
    /// `manualRouting`: no router is made; users route to `prometheus@internal` themselves.
    pub manual_routing: bool,
}

impl Default for Prometheus {
    fn default() -> Self {
        Prometheus {
            buckets: DEFAULT_BUCKETS.to_vec(),
            add_entry_points_labels: true,
            add_routers_labels: false,
            add_services_labels: true,
            entry_point: "traefik".to_string(),
            manual_routing: false,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ApiRaw {
    insecure: Option<bool>,
    dashboard: Option<bool>,
    base_path: Option<String>,
    debug: Option<Node>,
    disable_dashboard_ad: Option<Node>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct MetricsRaw {
    add_internals: Option<bool>,
    prometheus: Option<Node>,
    // Other backends: listed as unsupported.
    datadog: Option<Node>,
    #[serde(rename = "statsD")]
    statsd: Option<Node>,
    #[serde(rename = "influxDB")]
    influxdb: Option<Node>,
    #[serde(rename = "influxDB2")]
    influxdb2: Option<Node>,
    otlp: Option<Node>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PrometheusRaw {
    buckets: Option<Vec<f64>>,
    add_entry_points_labels: Option<bool>,
    add_routers_labels: Option<bool>,
    add_services_labels: Option<bool>,
    entry_point: Option<String>,
    manual_routing: Option<bool>,
    header_labels: Option<Node>,
}

/// `true`, `false`, or a section: `Some(None)` enabled with defaults, `Some(Some(node))` a
/// section to decode, `None` off.
fn enabled<'a>(
    node: &'a Node,
    path: &str,
    origins: &Origins<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<Option<&'a Node>> {
    match node {
        Node::Leaf(v) => match v.trim().to_ascii_lowercase().as_str() {
            "" | "true" => Some(None),
            "false" => None,
            _ => {
                errors.push(origins.error(path, format!("invalid boolean {v:?}")));
                None
            }
        },
        other => Some(Some(other)),
    }
}

/// Validates `api`.
pub(super) fn api(
    node: &Node,
    origins: &Origins<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<Api> {
    let section = enabled(node, "api", origins, errors)?;
    let raw: ApiRaw = match section.map(|n| from_node_at(n, "api")) {
        None => ApiRaw::default(),
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            errors.push(origins.error(&e.path, e.kind.to_string()));
            return None;
        }
    };
    let _ = (raw.debug, raw.disable_dashboard_ad);
    let base = raw.base_path.unwrap_or_default();
    let base = base.trim().trim_end_matches('/');
    if !base.is_empty() && !base.starts_with('/') {
        errors.push(origins.error("api.basePath", format!("{base:?} must start with '/'")));
        return None;
    }
    Some(Api {
        insecure: raw.insecure.unwrap_or(false),
        dashboard: raw.dashboard.unwrap_or(true),
        base_path: base.to_string(),
    })
}

/// Validates `metrics`: Prometheus is implemented; the other backends are reported in
/// `unsupported` (they cannot weaken anything, so they only warn).
pub(super) fn metrics(
    node: &Node,
    origins: &Origins<'_>,
    errors: &mut Vec<ConfigError>,
    unsupported: &mut Vec<String>,
) -> Option<Prometheus> {
    let section = enabled(node, "metrics", origins, errors)??;
    let raw: MetricsRaw = match from_node_at(section, "metrics") {
        Ok(r) => r,
        Err(e) => {
            errors.push(origins.error(&e.path, e.kind.to_string()));
            return None;
        }
    };
    for (name, node) in [
        ("datadog", &raw.datadog),
        ("statsD", &raw.statsd),
        ("influxDB", &raw.influxdb),
        ("influxDB2", &raw.influxdb2),
        ("otlp", &raw.otlp),
    ] {
        if node.is_some() {
            unsupported.push(format!("metrics.{name}"));
        }
    }
    let _ = raw.add_internals;
    let prom = enabled(
        raw.prometheus.as_ref()?,
        "metrics.prometheus",
        origins,
        errors,
    )?;
    let raw: PrometheusRaw = match prom.map(|n| from_node_at(n, "metrics.prometheus")) {
        None => PrometheusRaw::default(),
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            errors.push(origins.error(&e.path, e.kind.to_string()));
            return None;
        }
    };
    if raw.header_labels.is_some() {
        unsupported.push("metrics.prometheus.headerLabels".to_string());
    }
    let defaults = Prometheus::default();
    let buckets = raw.buckets.unwrap_or(defaults.buckets);
    if buckets.is_empty()
        || buckets.iter().any(|b| !b.is_finite())
        || buckets.windows(2).any(|w| w[0] >= w[1])
    {
        errors.push(origins.error(
            "metrics.prometheus.buckets",
            format!("{buckets:?}: buckets must be finite numbers in ascending order"),
        ));
        return None;
    }
    Some(Prometheus {
        buckets,
        add_entry_points_labels: raw
            .add_entry_points_labels
            .unwrap_or(defaults.add_entry_points_labels),
        add_routers_labels: raw
            .add_routers_labels
            .unwrap_or(defaults.add_routers_labels),
        add_services_labels: raw
            .add_services_labels
            .unwrap_or(defaults.add_services_labels),
        entry_point: raw
            .entry_point
            .filter(|e| !e.trim().is_empty())
            .unwrap_or(defaults.entry_point),
        manual_routing: raw.manual_routing.unwrap_or(false),
    })
}

//! `/metrics` in Prometheus' text format, with Traefik's metric names and labels, so that
//! dashboards made for Traefik work unchanged.

use super::server::Response;
use super::Api;
use ringway_shared::config::static_config::Prometheus;
use ringway_shared::stats::{Labeled, Series};
use ringway_shared::table::ServiceKind;
use std::fmt::Write as _;

pub fn render(api: &Api) -> Response {
    let view = api.view();
    let defaults = Prometheus::default();
    let cfg = api.settings.cfg.metrics.as_ref().unwrap_or(&defaults);
    let stats = &view.stats;
    let mut out = String::with_capacity(16 * 1024);

    let reloads = &view.reloads;
    for (name, kind, help, value) in [
        (
            "traefik_config_reloads_total",
            "counter",
            "Config reloads",
            reloads.total as f64,
        ),
        (
            "traefik_config_last_reload_success",
            "gauge",
            "Last config reload success",
            reloads.last_success,
        ),
        (
            "traefik_config_reloads_failure_total",
            "counter",
            "Config failure reloads",
            reloads.failures as f64,
        ),
        (
            "traefik_config_last_reload_failure",
            "gauge",
            "Last config reload failure",
            reloads.last_failure,
        ),
    ] {
        header(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }

    header(
        &mut out,
        "traefik_open_connections",
        "gauge",
        "How many open connections exist, by entryPoint and protocol",
    );
    for (ep, n) in &stats.open_connections {
        let _ = writeln!(
            out,
            "traefik_open_connections{{entrypoint=\"{}\",protocol=\"TCP\"}} {n}",
            esc(ep)
        );
    }

    header(
        &mut out,
        "traefik_tls_certs_not_after",
        "gauge",
        "Certificate expiration timestamp",
    );
    for c in view.certs.iter() {
        let _ = writeln!(
            out,
            "traefik_tls_certs_not_after{{cn=\"{}\",sans=\"{}\",serial=\"{}\"}} {}",
            esc(&c.cn),
            esc(&c.sans.join(",")),
            esc(&c.serial),
            c.not_after
        );
    }

    let bounds = &stats.bounds;
    if cfg.add_entry_points_labels {
        family(&mut out, "entrypoint", &stats.entry_points, bounds, |l| {
            format!("entrypoint=\"{}\"", esc(&l.name))
        });
    }
    if cfg.add_routers_labels {
        family(&mut out, "router", &stats.routers, bounds, |l| {
            format!(
                "router=\"{}\",service=\"{}\"",
                esc(&l.name),
                esc(&l.service)
            )
        });
    }
    if cfg.add_services_labels {
        family(&mut out, "service", &stats.services, bounds, |l| {
            format!("service=\"{}\"", esc(&l.name))
        });
        header(
            &mut out,
            "traefik_service_retries_total",
            "counter",
            "How many request retries happened on a service",
        );
        for (service, n) in &stats.retries {
            let _ = writeln!(
                out,
                "traefik_service_retries_total{{service=\"{}\"}} {n}",
                esc(service)
            );
        }
        header(
            &mut out,
            "traefik_service_server_up",
            "gauge",
            "service server is up, described by gauge value of 0 or 1",
        );
        let down = stats.servers_down();
        for s in &view.runtime.service_specs {
            let ServiceKind::LoadBalancer(lb) = &s.kind else {
                continue;
            };
            for srv in &lb.servers {
                let up = !down.contains(&(s.name.as_str(), srv.url.as_str()));
                let _ = writeln!(
                    out,
                    "traefik_service_server_up{{service=\"{}\",url=\"{}\"}} {}",
                    esc(&s.name),
                    esc(&srv.url),
                    u8::from(up)
                );
            }
        }
    }
    super::process::render(&mut out);
    Response::new(200, "text/plain; version=0.0.4; charset=utf-8", out)
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// `traefik_<scope>_requests_total`, `_request_duration_seconds`, `_requests_bytes_total`,
/// `_responses_bytes_total` for every series of every item.
fn family(
    out: &mut String,
    scope: &str,
    items: &[Labeled],
    bounds: &[f64],
    labels: impl Fn(&Labeled) -> String,
) {
    let what = match scope {
        "entrypoint" => "an entrypoint",
        "router" => "a router",
        _ => "a service",
    };
    let series = |f: &mut dyn FnMut(&str, &Series)| {
        for l in items {
            let own = labels(l);
            for s in &l.series {
                let all = format!(
                    "code=\"{}\",method=\"{}\",protocol=\"{}\",{own}",
                    s.code,
                    s.method(),
                    s.protocol()
                );
                f(&all, s);
            }
        }
    };
    let name = format!("traefik_{scope}_requests_total");
    header(
        out,
        &name,
        "counter",
        &format!("How many HTTP requests processed on {what}, partitioned by status code, protocol, and method."),
    );
    series(&mut |l, s| {
        let _ = writeln!(out, "{name}{{{l}}} {}", s.count);
    });
    let name = format!("traefik_{scope}_request_duration_seconds");
    header(
        out,
        &name,
        "histogram",
        &format!("How long it took to process the request on {what}, partitioned by status code, protocol, and method."),
    );
    series(&mut |l, s| {
        let mut cumulative = 0;
        for (i, b) in bounds.iter().enumerate() {
            cumulative += s.buckets.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{l},le=\"{b}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{l},le=\"+Inf\"}} {}", s.count);
        let _ = writeln!(out, "{name}_sum{{{l}}} {}", s.duration_nanos as f64 / 1e9);
        let _ = writeln!(out, "{name}_count{{{l}}} {}", s.count);
    });
    for (suffix, help, get) in [
        (
            "requests_bytes_total",
            "The total size of requests in bytes handled by",
            (|s: &Series| s.request_bytes) as fn(&Series) -> u64,
        ),
        (
            "responses_bytes_total",
            "The total size of responses in bytes handled by",
            |s: &Series| s.response_bytes,
        ),
    ] {
        let name = format!("traefik_{scope}_{suffix}");
        header(
            out,
            &name,
            "counter",
            &format!("{help} {what}, partitioned by status code, protocol, and method."),
        );
        series(&mut |l, s| {
            let _ = writeln!(out, "{name}{{{l}}} {}", get(s));
        });
    }
}

/// A label value, escaped as the text format wants.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

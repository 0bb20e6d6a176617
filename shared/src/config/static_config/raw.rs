//! Traefik v3's static configuration schema as serde structs, before validation.
//!
//! Sections that Traefik knows but ringway does not implement yet are `Option<Node>`: they
//! parse (so a Traefik configuration is never refused for them) and are listed by
//! [`StaticConfigRaw::unsupported`] so that the caller can warn.

use crate::config::{Node, TraefikDuration};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct StaticConfigRaw {
    pub global: Option<GlobalRaw>,
    pub servers_transport: Option<ServersTransportRaw>,
    pub tcp_servers_transport: Option<Node>,
    pub entry_points: BTreeMap<String, EntryPointRaw>,
    pub providers: Option<ProvidersRaw>,
    pub api: Option<Node>,
    pub metrics: Option<Node>,
    pub ping: Option<Node>,
    pub log: Option<LogRaw>,
    pub access_log: Option<Node>,
    pub tracing: Option<Node>,
    pub host_resolver: Option<Node>,
    pub certificates_resolvers: Option<Node>,
    pub experimental: Option<Node>,
    pub core: Option<Node>,
    pub spiffe: Option<Node>,
    pub ocsp: Option<Node>,
    /// ringway's own section.
    pub dataplane: Option<DataplaneRaw>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct GlobalRaw {
    /// ringway never phones home; accepted and ignored.
    pub check_new_version: Option<Node>,
    /// ringway never phones home; accepted and ignored.
    pub send_anonymous_usage: Option<Node>,
    pub not_append_x_forwarded_for: Option<Node>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ServersTransportRaw {
    pub insecure_skip_verify: Option<Node>,
    #[serde(rename = "rootCAs")]
    pub root_cas: Option<Node>,
    pub max_idle_conns_per_host: Option<i64>,
    pub forwarding_timeouts: Option<ForwardingTimeoutsRaw>,
    pub spiffe: Option<Node>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ForwardingTimeoutsRaw {
    pub dial_timeout: Option<TraefikDuration>,
    pub response_header_timeout: Option<TraefikDuration>,
    pub idle_conn_timeout: Option<TraefikDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct EntryPointRaw {
    pub address: Option<String>,
    #[serde(rename = "allowACMEByPass")]
    pub allow_acme_by_pass: Option<Node>,
    pub reuse_port: Option<Node>,
    pub as_default: Option<bool>,
    pub transport: Option<TransportRaw>,
    pub proxy_protocol: Option<Node>,
    pub forwarded_headers: Option<ForwardedHeadersRaw>,
    pub http: Option<EntryPointHttpRaw>,
    pub http2: Option<Node>,
    pub http3: Option<Node>,
    pub udp: Option<Node>,
    pub observability: Option<Node>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct TransportRaw {
    pub life_cycle: Option<LifeCycleRaw>,
    pub responding_timeouts: Option<RespondingTimeoutsRaw>,
    pub keep_alive_max_time: Option<Node>,
    pub keep_alive_max_requests: Option<Node>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct LifeCycleRaw {
    pub request_accept_grace_timeout: Option<TraefikDuration>,
    #[serde(rename = "graceTimeOut")]
    pub grace_time_out: Option<TraefikDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct RespondingTimeoutsRaw {
    pub read_timeout: Option<TraefikDuration>,
    pub write_timeout: Option<TraefikDuration>,
    pub idle_timeout: Option<TraefikDuration>,
    /// Traefik 3.1's layout (`respondingTimeouts.http.readTimeout`); wins over the flat keys.
    pub http: Option<HttpRespondingTimeoutsRaw>,
    pub tcp: Option<TcpRespondingTimeoutsRaw>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct HttpRespondingTimeoutsRaw {
    pub read_timeout: Option<TraefikDuration>,
    pub write_timeout: Option<TraefikDuration>,
    pub idle_timeout: Option<TraefikDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct TcpRespondingTimeoutsRaw {
    /// Traefik's: the longest wait for a connection's first bytes; accepted, the entry
    /// point's `readTimeout` bounds that wait here.
    pub lingering_timeout: Option<TraefikDuration>,
    /// ringway's: a TCP relay with no byte in either direction for this long is closed.
    pub idle_timeout: Option<TraefikDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ForwardedHeadersRaw {
    pub insecure: Option<bool>,
    #[serde(rename = "trustedIPs")]
    pub trusted_ips: Vec<String>,
    pub connection: Option<Node>,
    pub not_append_x_forwarded_for: Option<Node>,
    pub add_x_forwarded_scheme_headers: Option<Node>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct EntryPointHttpRaw {
    pub redirections: Option<RedirectionsRaw>,
    pub middlewares: Vec<String>,
    pub tls: Option<Node>,
    pub encoded_characters: Option<Node>,
    pub encode_query_semicolons: Option<Node>,
    pub sanitize_path: Option<Node>,
    pub max_header_bytes: Option<Node>,
    pub underscore_headers_strategy: Option<Node>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct EntryPointTlsRaw {
    pub options: Option<String>,
    pub cert_resolver: Option<String>,
    pub domains: Vec<DomainRaw>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct DomainRaw {
    pub main: String,
    pub sans: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct RedirectionsRaw {
    pub entry_point: Option<EntryPointRedirectRaw>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct EntryPointRedirectRaw {
    pub to: String,
    pub scheme: Option<String>,
    pub permanent: Option<bool>,
    pub priority: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ProvidersRaw {
    pub providers_throttle_duration: Option<TraefikDuration>,
    pub precedence: Option<Node>,
    pub file: Option<FileProviderRaw>,
    /// Decoded into [`DockerProviderRaw`] when set (`--providers.docker=false` is not).
    pub docker: Option<Node>,
    pub swarm: Option<Node>,
    pub kubernetes_ingress: Option<Node>,
    #[serde(rename = "kubernetesIngressNGINX")]
    pub kubernetes_ingress_nginx: Option<Node>,
    #[serde(rename = "kubernetesCRD")]
    pub kubernetes_crd: Option<Node>,
    pub kubernetes_gateway: Option<Node>,
    pub knative: Option<Node>,
    pub rest: Option<Node>,
    pub consul_catalog: Option<Node>,
    pub nomad: Option<Node>,
    pub ecs: Option<Node>,
    pub consul: Option<Node>,
    pub etcd: Option<Node>,
    pub zoo_keeper: Option<Node>,
    pub redis: Option<Node>,
    pub http: Option<Node>,
    pub plugin: Option<Node>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct FileProviderRaw {
    pub directory: Option<String>,
    pub watch: Option<bool>,
    pub filename: Option<String>,
    pub debug_log_generated_template: Option<Node>,
}

/// `providers.docker`. The settings after `allow_empty_services` are accepted but not
/// implemented yet (listed as unsupported).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct DockerProviderRaw {
    pub endpoint: Option<String>,
    pub exposed_by_default: Option<bool>,
    pub network: Option<String>,
    pub default_rule: Option<String>,
    pub constraints: Option<String>,
    pub watch: Option<bool>,
    pub allow_empty_services: Option<bool>,
    #[serde(rename = "useBindPortIP")]
    pub use_bind_port_ip: Option<Node>,
    pub tls: Option<Node>,
    pub http_client_timeout: Option<Node>,
    pub username: Option<Node>,
    pub password: Option<Node>,
    /// Traefik v2: the Docker provider reads Swarm services instead of containers.
    pub swarm_mode: Option<bool>,
    pub swarm_mode_refresh_seconds: Option<TraefikDuration>,
    /// `providers.swarm` only (Traefik v3).
    pub refresh_seconds: Option<TraefikDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct LogRaw {
    pub level: Option<String>,
    pub format: Option<String>,
    pub no_color: Option<Node>,
    pub file_path: Option<String>,
    pub max_size: Option<Node>,
    pub max_age: Option<Node>,
    pub max_backups: Option<Node>,
    pub compress: Option<Node>,
    pub otlp: Option<Node>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct PingRaw {
    pub entry_point: Option<String>,
    pub manual_routing: Option<bool>,
    pub terminating_status_code: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct DataplaneRaw {
    pub workers: Option<usize>,
}

impl ProvidersRaw {
    /// Providers other than `file` and `docker` (none is implemented yet), with their
    /// Traefik names.
    pub fn others(&self) -> [(&'static str, &Option<Node>); 16] {
        [
            ("swarm", &self.swarm),
            ("kubernetesIngress", &self.kubernetes_ingress),
            ("kubernetesIngressNGINX", &self.kubernetes_ingress_nginx),
            ("kubernetesCRD", &self.kubernetes_crd),
            ("kubernetesGateway", &self.kubernetes_gateway),
            ("knative", &self.knative),
            ("rest", &self.rest),
            ("consulCatalog", &self.consul_catalog),
            ("nomad", &self.nomad),
            ("ecs", &self.ecs),
            ("consul", &self.consul),
            ("etcd", &self.etcd),
            ("zooKeeper", &self.zoo_keeper),
            ("redis", &self.redis),
            ("http", &self.http),
            ("plugin", &self.plugin),
        ]
    }

    /// Whether any provider at all is configured (an explicitly disabled one,
    /// `--providers.docker=false`, does not count).
    pub fn any_configured(&self) -> bool {
        self.file.is_some() || is_set(&self.docker) || self.others().iter().any(|(_, n)| is_set(n))
    }
}

/// Present and not explicitly `false`.
pub(super) fn is_set(node: &Option<Node>) -> bool {
    match node {
        None => false,
        Some(Node::Leaf(s)) => !s.eq_ignore_ascii_case("false"),
        Some(_) => true,
    }
}

impl StaticConfigRaw {
    /// Dotted paths (Traefik's spelling) of the sections that parsed but that ringway does not
    /// implement yet.
    pub fn unsupported(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut note = |path: String, node: &Option<Node>| {
            if is_set(node) {
                out.push(path);
            }
        };
        if let Some(g) = &self.global {
            note(
                "global.notAppendXForwardedFor".into(),
                &g.not_append_x_forwarded_for,
            );
        }
        if let Some(st) = &self.servers_transport {
            note(
                "serversTransport.insecureSkipVerify".into(),
                &st.insecure_skip_verify,
            );
            note("serversTransport.rootCAs".into(), &st.root_cas);
            note("serversTransport.spiffe".into(), &st.spiffe);
        }
        note("tcpServersTransport".into(), &self.tcp_servers_transport);
        for (name, ep) in &self.entry_points {
            let p = |k: &str| format!("entryPoints.{name}.{k}");
            note(p("allowACMEByPass"), &ep.allow_acme_by_pass);
            note(p("reusePort"), &ep.reuse_port);
            note(p("proxyProtocol"), &ep.proxy_protocol);
            note(p("http2"), &ep.http2);
            note(p("http3"), &ep.http3);
            note(p("udp"), &ep.udp);
            note(p("observability"), &ep.observability);
            if let Some(t) = &ep.transport {
                note(p("transport.keepAliveMaxTime"), &t.keep_alive_max_time);
                note(
                    p("transport.keepAliveMaxRequests"),
                    &t.keep_alive_max_requests,
                );
            }
            if let Some(fh) = &ep.forwarded_headers {
                note(p("forwardedHeaders.connection"), &fh.connection);
                note(
                    p("forwardedHeaders.notAppendXForwardedFor"),
                    &fh.not_append_x_forwarded_for,
                );
                note(
                    p("forwardedHeaders.addXForwardedSchemeHeaders"),
                    &fh.add_x_forwarded_scheme_headers,
                );
            }
            if let Some(h) = &ep.http {
                note(p("http.encodedCharacters"), &h.encoded_characters);
                note(p("http.encodeQuerySemicolons"), &h.encode_query_semicolons);
                note(p("http.sanitizePath"), &h.sanitize_path);
                note(p("http.maxHeaderBytes"), &h.max_header_bytes);
                note(
                    p("http.underscoreHeadersStrategy"),
                    &h.underscore_headers_strategy,
                );
            }
        }
        if let Some(pr) = &self.providers {
            note("providers.precedence".into(), &pr.precedence);
            if let Some(f) = &pr.file {
                note(
                    "providers.file.debugLogGeneratedTemplate".into(),
                    &f.debug_log_generated_template,
                );
            }
            for (name, node) in pr.others() {
                note(format!("providers.{name}"), node);
            }
        }
        for (name, node) in [
            ("api", &self.api),
            ("metrics", &self.metrics),
            ("ping", &self.ping),
            ("tracing", &self.tracing),
            ("hostResolver", &self.host_resolver),
            ("experimental", &self.experimental),
            ("core", &self.core),
            ("spiffe", &self.spiffe),
            ("ocsp", &self.ocsp),
        ] {
            note(name.to_string(), node);
        }
        if let Some(l) = &self.log {
            for (name, node) in [
                ("noColor", &l.no_color),
                ("maxSize", &l.max_size),
                ("maxAge", &l.max_age),
                ("maxBackups", &l.max_backups),
                ("compress", &l.compress),
                ("otlp", &l.otlp),
            ] {
                note(format!("log.{name}"), node);
            }
        }
        out
    }
}

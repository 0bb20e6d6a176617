//! Routing tables: the serializable spec the control plane sends, and its compiled form.
//!
//! The control plane validates provider configuration into a [`TableSpec`] (names qualified,
//! references resolved to indexes, server addresses resolved); the data plane compiles the
//! spec into an immutable [`RouteTable`] off its workers and publishes it to all of them.

mod compiled;
mod delta;

pub use delta::{DecodedDelta, Delta, RouterItem, ServiceItem};

pub use compiled::{
    AcmeHttp, CompiledRouter, CompiledService, EntryRoutes, HealthFlag, RouteTable, RuleCache,
    TableError, TcpEntryRoutes, TcpRoute,
};

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Decoding straight into an `Arc`: serde's own goes through a `Box` (two allocations and a
/// copy per item; decoding a 10,000-router table took half as long again). Encoding an `Arc`
/// writes what it points to.
mod arc {
    use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
    use std::marker::PhantomData;
    use std::sync::Arc;

    pub fn one<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Arc<T>, D::Error> {
        T::deserialize(d).map(Arc::new)
    }

    pub fn each<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Vec<Arc<T>>, D::Error> {
        struct Each<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Each<T> {
            type Value = Vec<Arc<T>>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // Bounded: a length from the wire is a hint, not a promise.
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(item) = seq.next_element::<T>()? {
                    out.push(Arc::new(item));
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Each(PhantomData))
    }
}

/// Index of a service in [`TableSpec::services`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceId(pub u32);

/// A complete, validated routing table as sent from the control plane to the data plane.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableSpec {
    /// Monotonic version; the data plane acknowledges each one.
    pub generation: u64,
    /// Enabled HTTP routers only; disabled ones stay in the control plane with their errors.
    pub routers: Vec<RouterSpec>,
    /// Shared with the control plane's previous tables while unchanged (a reload that changes
    /// one service of 10,000 builds one).
    #[serde(deserialize_with = "arc::each")]
    pub services: Vec<Arc<ServiceSpec>>,
    /// Certificates for TLS termination.
    #[serde(default)]
    pub tls: TlsSpec,
    /// Enabled TCP routers (they apply before HTTP routers on an entry point).
    #[serde(default)]
    pub tcp_routers: Vec<TcpRouterSpec>,
    /// TCP services, indexed by `TcpRouterSpec::service`.
    #[serde(default)]
    pub tcp_services: Vec<TcpServiceSpec>,
    /// ACME challenges being answered right now.
    #[serde(default)]
    pub acme: AcmeChallengesSpec,
}

/// A [`TableSpec`] as the data plane decodes it: the same encoding (an `Arc` encodes as what
/// it points to), with each router and service held by value. The data plane shares nothing
/// between tables and moves them into the compiled table, so an `Arc` per router and service
/// would be allocated on decoding only to be taken apart (a 10,000-router table decoded
/// 2.6 ms slower that way).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DecodedSpec {
    pub generation: u64,
    pub routers: Vec<DecodedRouter>,
    pub services: Vec<ServiceSpec>,
    pub tls: TlsSpec,
    pub tcp_routers: Vec<TcpRouterSpec>,
    pub tcp_services: Vec<TcpServiceSpec>,
    pub acme: AcmeChallengesSpec,
}

/// A [`RouterSpec`] as the data plane decodes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DecodedRouter {
    pub def: RouterDef,
    pub service: ServiceId,
}

impl From<TableSpec> for DecodedSpec {
    /// Takes each router and service out of its `Arc` (copied only where still shared).
    fn from(spec: TableSpec) -> DecodedSpec {
        // Every field named: one added to `TableSpec` must be added here (and, in the same
        // place of the encoding, to `DecodedSpec`).
        let TableSpec {
            generation,
            routers,
            services,
            tls,
            tcp_routers,
            tcp_services,
            acme,
        } = spec;
        DecodedSpec {
            generation,
            routers: routers
                .into_iter()
                .map(|RouterSpec { def, service }| DecodedRouter {
                    def: Arc::unwrap_or_clone(def),
                    service,
                })
                .collect(),
            services: services.into_iter().map(Arc::unwrap_or_clone).collect(),
            tls,
            tcp_routers,
            tcp_services,
            acme,
        }
    }
}

/// What the data plane answers while the control plane's ACME orders are validated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AcmeChallengesSpec {
    /// Entry points that answer http-01 (`httpChallenge.entryPoint` of each resolver).
    pub http_entry_points: Vec<String>,
    /// http-01: `GET /.well-known/acme-challenge/<token>` answers the key authorization, before
    /// any router or entry point redirection.
    pub http: Vec<AcmeHttpChallenge>,
    /// tls-alpn-01: the self-signed certificate (RFC 8737) served to a ClientHello that offers
    /// only `acme-tls/1` for its name.
    pub tls_alpn: Vec<CertificateSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcmeHttpChallenge {
    pub token: String,
    pub key_authorization: String,
}

/// A TCP router whose rule parsed and whose service exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TcpRouterSpec {
    pub name: String,
    pub entry_points: Vec<String>,
    pub rule: String,
    pub priority: i64,
    /// Index into `TableSpec::tcp_services`.
    pub service: u32,
    pub tls: TcpTls,
}

/// How a TCP router treats TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TcpTls {
    /// No `tls` section: plain TCP (only `HostSNI(`*`)` can match).
    None,
    /// `tls.passthrough`: route on the ClientHello and forward the encrypted bytes.
    Passthrough,
    /// `tls: {}`: terminate TLS here and forward the plain bytes.
    Terminate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TcpServiceSpec {
    pub name: String,
    pub kind: TcpServiceKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TcpServiceKind {
    LoadBalancer(Vec<TcpServerSpec>),
    /// Children are indexes into `TableSpec::tcp_services`.
    Weighted(Vec<(u32, u32)>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TcpServerSpec {
    /// `host:port` as configured.
    pub address: String,
    pub addr: SocketAddr,
    pub weight: u32,
}

/// The certificates the data plane terminates TLS with (`tls.certificates` and
/// `tls.stores.default.defaultCertificate` of the dynamic configuration). Without a default,
/// the data plane serves a generated self-signed one, as Traefik does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsSpec {
    pub certificates: Vec<CertificateSpec>,
    pub default_certificate: Option<CertificateSpec>,
    /// `tls.options.default`, validated by the control plane: applies to every TLS connection
    /// whose SNI no router gave other options.
    #[serde(default)]
    pub options: TlsOptionsSpec,
    /// Named option sets that routers chose with `tls.options`, with the host names (from
    /// `tls.domains`, else the rule's `Host`/`HostSNI`) whose connections get them.
    #[serde(default)]
    pub sni_options: Vec<SniOptionsSpec>,
}

/// One named TLS options set and the SNI names it applies to (`*.example.com` for a wildcard).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SniOptionsSpec {
    /// The qualified name (`strict@file`), for logs.
    pub name: String,
    pub hosts: Vec<String>,
    pub options: TlsOptionsSpec,
}

/// A validated `tls.options.<name>` set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsOptionsSpec {
    /// 12 or 13 (`VersionTLS12`, `VersionTLS13`).
    pub min_version: u8,
    /// 12 or 13; 13 when not configured.
    pub max_version: u8,
    /// TLS 1.2 suites by IANA name (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`); empty = all.
    /// As in Go, TLS 1.3 suites are not configurable.
    pub cipher_suites: Vec<String>,
    pub alpn_protocols: Vec<String>,
    pub sni_strict: bool,
    pub client_auth: ClientAuthSpec,
}

impl Default for TlsOptionsSpec {
    fn default() -> Self {
        TlsOptionsSpec {
            min_version: 12,
            max_version: 13,
            cipher_suites: Vec::new(),
            alpn_protocols: vec!["http/1.1".into()],
            sni_strict: false,
            client_auth: ClientAuthSpec::default(),
        }
    }
}

/// `clientAuth` of a TLS options set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientAuthSpec {
    /// CA certificates (DER) that client certificates are verified against.
    pub ca_certs: Vec<Vec<u8>>,
    pub kind: ClientAuthKind,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientAuthKind {
    #[default]
    NoClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

/// A validated certificate chain and its private key, in DER.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateSpec {
    /// Where it came from (the certificate file), for logs.
    pub source: String,
    /// The DNS names it is selected for, lowercase: `a.example.com`, `*.example.com`.
    pub names: Vec<String>,
    /// Leaf first.
    pub chain: Vec<Vec<u8>>,
    /// PKCS#8, PKCS#1 or SEC1 private key.
    pub key: Vec<u8>,
}

/// An HTTP router whose rule parsed and whose service exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouterSpec {
    /// The router itself, shared with the control plane's previous tables while unchanged.
    #[serde(deserialize_with = "arc::one")]
    pub def: Arc<RouterDef>,
    /// Services are numbered in name order: one added renumbers the others without changing
    /// the routers that use them.
    pub service: ServiceId,
}

/// What an HTTP router is, apart from its service's number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterDef {
    /// Qualified name, `name@provider`.
    pub name: String,
    /// Entry points this router is attached to (already expanded from "all/default").
    pub entry_points: Vec<String>,
    pub rule: String,
    /// Explicit priority, or the rule's length when none was configured.
    pub priority: i64,
    /// `tls` section present: the router serves TLS connections only.
    pub tls: bool,
    /// Middlewares in order (only those the data plane implements reach it).
    #[serde(default)]
    pub middlewares: Vec<MiddlewareSpec>,
}

/// A middleware the data plane applies before forwarding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MiddlewareSpec {
    /// `redirectScheme`; also what `entryPoints.<ep>.http.redirections` becomes.
    RedirectScheme(RedirectSpec),
    /// `retry`: another server is tried when one cannot be reached.
    Retry(RetrySpec),
}

/// `retry.{attempts, initialInterval}`: up to `attempts` tries in all, the n-th retry after
/// `initial_interval × 1.5^(n-1)`. A try is repeated only when no byte of the request reached
/// the server (connection refused, a pooled connection found closed), or when the method is
/// idempotent, the whole body was buffered, and no byte of the response was sent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrySpec {
    pub attempts: u32,
    pub initial_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectSpec {
    pub scheme: String,
    /// `None`: the scheme's default port (no port in the Location).
    pub port: Option<u16>,
    /// 301/308 when true, 302/307 otherwise.
    pub permanent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// Qualified name, `name@provider`.
    pub name: String,
    pub kind: ServiceKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceKind {
    LoadBalancer(LoadBalancerSpec),
    /// Weighted round robin across other services (canary deployments).
    Weighted(Vec<WeightedChild>),
    /// Traefik's `api@internal`, `dashboard@internal`, `prometheus@internal`, `ping@internal`:
    /// answered by ringway itself.
    Internal(InternalService),
}

/// A service ringway answers itself. The API, the dashboard and the metrics are served by the
/// control plane on its private socket (the data plane forwards to it); ping by the data
/// plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InternalService {
    Api,
    Dashboard,
    Prometheus,
    /// `ping@internal` (`ping.manualRouting`), answering this status while shutting down.
    Ping {
        terminating_status: u16,
    },
    /// `noop@internal`: answers 418, for routers whose middlewares answer (redirections).
    Noop,
}

impl InternalService {
    /// The first path segment of a request forwarded to the control plane's socket (which
    /// serves each internal service under its own prefix).
    pub fn socket_prefix(self) -> Option<&'static str> {
        match self {
            InternalService::Api => Some("/api@internal"),
            InternalService::Dashboard => Some("/dashboard@internal"),
            InternalService::Prometheus => Some("/prometheus@internal"),
            InternalService::Ping { .. } | InternalService::Noop => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancerSpec {
    pub servers: Vec<ServerSpec>,
    /// Forward the client's Host header (default) or the server's authority.
    pub pass_host_header: bool,
    /// `healthCheck`: the data plane probes every server and skips those that fail.
    #[serde(default)]
    pub health_check: Option<HealthCheckSpec>,
}

/// `loadBalancer.healthCheck`, validated: an HTTP request to each server every `interval`
/// (`unhealthy_interval` while it is down); a server is down when the request fails, takes
/// longer than `timeout`, or answers another status than `status` (by default, anything
/// outside 200–399).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HealthCheckSpec {
    pub method: String,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Sent as Host instead of the server's address.
    pub hostname: Option<String>,
    /// Probed instead of the server's port.
    pub port: Option<u16>,
    pub interval: Duration,
    pub unhealthy_interval: Duration,
    pub timeout: Duration,
    /// The one healthy status; `None`: 200–399.
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedChild {
    pub service: ServiceId,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSpec {
    /// The URL as configured, for logs and the API.
    pub url: String,
    /// Resolved socket address (the control plane does DNS; the data plane never does).
    pub addr: SocketAddr,
    /// `host[:port]` of the URL, sent as Host when `pass_host_header` is false.
    pub authority: String,
    pub weight: u32,
}

/// Static transport settings for upstream connections (`serversTransport` in Traefik).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UpstreamTimeouts {
    pub dial: Duration,
    /// Zero means none.
    pub response_header: Duration,
    pub idle_conn: Duration,
}

//! Static configuration (Traefik's `traefik.toml` and `--flags`), validated into typed form.
//!
//! Sources, in order, later ones overriding earlier ones key by key:
//! 1. a configuration file: the one named by `--configfile` (or `--configFile`), else — only
//!    when no flag at all was given — the first of Traefik's search path that exists:
//!    `/etc/traefik/traefik.{toml,yaml,yml}`, `$XDG_CONFIG_HOME/traefik.{…}`,
//!    `$HOME/.config/traefik.{…}`, `./traefik.{…}`;
//! 2. the flags (`--entrypoints.web.address=:80`).
//!
//! Traefik uses one source only (file or flags); ringway merges both, which accepts every
//! Traefik setup and lets flags adjust a file. Keys are case-insensitive.

mod access_log;
mod acme;
mod args;
mod kv;
mod observability;
mod raw;

pub use access_log::{AccessLog, AccessLogFormat, FieldMode};
pub use acme::{AcmeEab, AcmeKeyType, AcmeResolver, LETS_ENCRYPT_PRODUCTION};
pub use observability::{Api, Prometheus, DEFAULT_BUCKETS};
#[cfg(test)]
mod tests;

use crate::config::node::{from_node, from_node_at, join};
use crate::config::{ConfigError, ConfigErrors, Node, NodeError, TraefikDuration};
use crate::table::UpstreamTimeouts;
use args::{load_file, parse_args, related_keys, Flag};
use ipnet::IpNet;
use raw::{is_set, DockerProviderRaw, EntryPointRaw, StaticConfigRaw};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

pub use kv::{
    KvProvider, KvStoreKind, KvTls, ETCD_DEFAULT_ENDPOINT, KV_DEFAULT_ROOT_KEY,
    REDIS_DEFAULT_ENDPOINT,
};

/// The validated static configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticConfig {
    pub entry_points: BTreeMap<String, EntryPoint>,
    pub providers: Providers,
    pub log: Log,
    pub servers_transport: ServersTransport,
    pub dataplane: Dataplane,
    /// `certificatesResolvers` by name.
    pub certificates_resolvers: BTreeMap<String, AcmeResolver>,
    /// `accessLog`: off when `None`.
    pub access_log: Option<AccessLog>,
    /// `api`: off when `None`.
    pub api: Option<Api>,
    /// `metrics.prometheus`: off when `None`.
    pub metrics: Option<Prometheus>,
    /// `ping.manualRouting`: ping is not attached to an entry point; routers use
    /// `ping@internal`, answering with this status while shutting down.
    pub ping_manual: Option<PingSettings>,
    /// Paths of the Traefik settings that were given but are not implemented yet
    /// (`api`, `providers.swarm`, `entryPoints.web.http2`): warn about them.
    pub unsupported: Vec<String>,
    /// The configuration file that was read, if any.
    pub config_file: Option<PathBuf>,
}

/// A listening address and its per-connection settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryPoint {
    pub name: String,
    /// `:8000` is `0.0.0.0:8000`; `[::]:8000` and `127.0.0.1:8000` as written.
    pub address: SocketAddr,
    /// `transport.respondingTimeouts.readTimeout`: whole request, body included (60 s).
    pub read_timeout: Duration,
    /// `transport.respondingTimeouts.writeTimeout`; zero means none (the default).
    pub write_timeout: Duration,
    /// `transport.respondingTimeouts.idleTimeout` between keep-alive requests (180 s).
    pub idle_timeout: Duration,
    /// `transport.respondingTimeouts.tcp.idleTimeout`: a TCP router's relay with no byte in
    /// either direction for this long is closed; zero (the default, as in Traefik) means never.
    pub tcp_idle_timeout: Duration,
    /// `transport.lifeCycle.graceTimeOut`: in-flight requests get this long at shutdown (10 s).
    pub grace_timeout: Duration,
    /// `transport.lifeCycle.requestAcceptGraceTimeout`: keep accepting this long after the
    /// shutdown signal (0).
    pub request_accept_grace_timeout: Duration,
    /// `forwardedHeaders.trustedIPs`: peers whose `X-Forwarded-*` headers are kept.
    pub trusted_ips: Vec<IpNet>,
    /// `forwardedHeaders.insecure`: trust every peer's `X-Forwarded-*` headers.
    pub forwarded_insecure: bool,
    /// `asDefault`: routers without `entryPoints` attach here.
    pub as_default: bool,
    /// `http.redirections.entryPoint`: every request is redirected (the seeds'
    /// `redirect-to-https`).
    pub redirect: Option<EntryPointRedirect>,
    /// `ping` is served on this entry point: `GET`/`HEAD /ping` answers `OK` from the data
    /// plane (this status while shutting down).
    pub ping: Option<PingSettings>,
    /// `http.tls`: the TLS settings of routers on this entry point that have none of their
    /// own (Traefik's entry point model).
    pub http_tls: Option<EntryPointTls>,
}

/// `entryPoints.<n>.http.tls` (`true`, or `options`, `certResolver`, `domains`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryPointTls {
    pub options: Option<String>,
    pub cert_resolver: Option<String>,
    /// `(main, sans)` per entry.
    pub domains: Vec<(String, Vec<String>)>,
}

/// `ping.{entryPoint, manualRouting, terminatingStatusCode}`, attached to its entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingSettings {
    /// The status while shutting down (Traefik: `terminatingStatusCode`, default 503).
    pub terminating_status: u16,
}

/// The default address of Traefik's `traefik` entry point (API, ping, metrics).
pub const TRAEFIK_ENTRY_POINT_ADDRESS: &str = ":8080";

/// `entryPoints.<name>.http.redirections.entryPoint`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPointRedirect {
    /// `https` by default.
    pub scheme: String,
    /// The port of the `to` entry point (or of `to` written as `:443`).
    pub port: u16,
    /// 301/308 when true (the default), 302/307 otherwise.
    pub permanent: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Providers {
    /// `providers.providersThrottleDuration`. Traefik's default is 2 s; ringway's is 0 because
    /// the aggregator already coalesces bursts over a few milliseconds and changes must be
    /// live within 100 ms.
    pub throttle: Duration,
    pub file: Option<FileProvider>,
    pub docker: Option<DockerProvider>,
    /// `providers.swarm` (v3), or `providers.docker.swarmMode` (v2).
    pub swarm: Option<SwarmProvider>,
    /// `providers.redis`: Traefik's key layout in Redis.
    pub redis: Option<KvProvider>,
    /// `providers.etcd`: Traefik's key layout in etcd v3.
    pub etcd: Option<KvProvider>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProvider {
    pub filename: Option<PathBuf>,
    /// When set, it wins over `filename` (as in Traefik).
    pub directory: Option<PathBuf>,
    /// Reload on change (default true).
    pub watch: bool,
}

/// `providers.docker`: routers and services from container labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerProvider {
    /// `unix:///var/run/docker.sock` (the default), `tcp://host:port` or `http://host:port`.
    pub endpoint: String,
    /// Containers without `traefik.enable=true` are routed too (default true).
    pub exposed_by_default: bool,
    /// The network whose address servers get, unless a container's `traefik.docker.network`
    /// label names another.
    pub network: Option<String>,
    /// A Go template; the control plane evaluates its supported forms.
    pub default_rule: String,
    /// Traefik's constraint expression (`Label(`a`,`b`) && !LabelRegex(...)`), if any.
    pub constraints: Option<String>,
    /// Follow Docker's events (default true); otherwise read the containers once.
    pub watch: bool,
    /// Keep services whose containers are all unhealthy, with no server (503), instead of
    /// dropping them (default false).
    pub allow_empty_services: bool,
}

/// `providers.swarm`: routers and services from the labels of Swarm services
/// (`deploy.labels`), servers at the tasks' addresses (or the service VIP with `lbswarm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmProvider {
    /// `swarm` (v3's `providers.swarm`) or `docker` (v2's `providers.docker.swarmMode`): the
    /// suffix of qualified names.
    pub name: &'static str,
    /// Endpoint, network, rule, constraints and the rest, as the Docker provider's.
    pub docker: DockerProvider,
    /// `refreshSeconds` (v2: `swarmModeRefreshSeconds`): polling besides events, default 15 s.
    pub refresh: Duration,
}

/// Traefik's default `providers.docker.defaultRule`.
pub const DOCKER_DEFAULT_RULE: &str = "Host(`{{ normalize .Name }}`)";
/// Traefik's default `providers.docker.endpoint`.
pub const DOCKER_DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    pub level: LogLevel,
    pub format: LogFormat,
    /// Standard output when `None`.
    pub file_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
    Panic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Common,
    Json,
}

/// The default transport to upstream servers (`serversTransport`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServersTransport {
    /// `forwardingTimeouts`: dial 30 s, response header 0 (none), idle connection 90 s.
    pub forwarding_timeouts: UpstreamTimeouts,
    /// `maxIdleConnsPerHost` (200; 0 when Traefik's "negative: no reuse" was given).
    pub max_idle_conns_per_host: usize,
}

/// ringway's own settings (`--dataplane.workers=N`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dataplane {
    /// Worker threads; one per core when `None`.
    pub workers: Option<usize>,
}

/// Where [`StaticConfig::from_args_with`] looks for files; [`ConfigEnv::from_process`] gives
/// the real ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEnv {
    /// Directories searched, in order, for `traefik.toml`, `traefik.yaml`, `traefik.yml` when
    /// no flag is given.
    pub search_dirs: Vec<PathBuf>,
    /// Used as the file provider's directory when no provider at all is configured and this
    /// directory exists.
    pub default_dynamic_dir: PathBuf,
}

/// The entry point created when none is configured.
pub const DEFAULT_ENTRY_POINT: &str = "web";
/// Its address: unprivileged, so that `ringway` runs without root.
pub const DEFAULT_ENTRY_POINT_ADDRESS: &str = ":8000";
/// What `ringway` runs with no flag and no configuration file: the `web` entry point on
/// `:8000`, and the dashboard and API on loopback only (`127.0.0.1:8080`, so that nothing
/// unprotected is reachable from the network).
pub const EMBEDDED_DEFAULT: &str = r#"
[entryPoints.web]
address = ":8000"

[entryPoints.traefik]
address = "127.0.0.1:8080"

[api]
insecure = true
dashboard = true

[ping]
"#;

/// The file provider's directory when no provider is configured (if it exists).
pub const DEFAULT_DYNAMIC_DIR: &str = "./ringway.d";
/// Traefik's internal entry point (API and dashboard); never a default entry point.
const INTERNAL_ENTRY_POINT: &str = "traefik";

impl ConfigEnv {
    /// Traefik's search path: `/etc/traefik/`, `$XDG_CONFIG_HOME/`, `$HOME/.config/`, `./`;
    /// and [`DEFAULT_DYNAMIC_DIR`].
    pub fn from_process() -> ConfigEnv {
        let mut search_dirs = vec![PathBuf::from("/etc/traefik")];
        if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            search_dirs.push(PathBuf::from(xdg));
        }
        if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            search_dirs.push(PathBuf::from(home).join(".config"));
        }
        search_dirs.push(PathBuf::from("."));
        ConfigEnv {
            search_dirs,
            default_dynamic_dir: PathBuf::from(DEFAULT_DYNAMIC_DIR),
        }
    }

    fn find_config_file(&self) -> Option<PathBuf> {
        self.search_dirs.iter().find_map(|dir| {
            ["traefik.toml", "traefik.yaml", "traefik.yml"]
                .iter()
                .map(|name| dir.join(name))
                .find(|p| p.is_file())
        })
    }
}

impl StaticConfig {
    /// Parses the process arguments after the subcommand (`--entrypoints.web.address=:80`,
    /// `--log.level debug`, `--providers.file`, `--configfile=path`) and the configuration
    /// file, with keys case-insensitive, using the real search path ([`ConfigEnv`]).
    ///
    /// With nothing configured: one entry point `web` on `:8000`, and, when no provider is
    /// configured at all, the file provider on `./ringway.d` if that directory exists.
    pub fn from_args(args: &[String]) -> Result<StaticConfig, ConfigErrors> {
        StaticConfig::from_args_with(args, &ConfigEnv::from_process())
    }

    /// [`StaticConfig::from_args`] with an explicit search path.
    pub fn from_args_with(args: &[String], env: &ConfigEnv) -> Result<StaticConfig, ConfigErrors> {
        let (flags, explicit_file) = parse_args(args)?;
        let config_file = match explicit_file {
            Some(p) => Some(p),
            None if flags.is_empty() => env.find_config_file(),
            None => None,
        };
        let mut errors = Vec::new();
        let mut tree = Node::empty();
        if config_file.is_none() && flags.is_empty() {
            tree = crate::config::Format::Toml
                .parse_tree(EMBEDDED_DEFAULT)
                .map_err(|e| ConfigErrors::one("embedded default", e))?;
        }
        if let Some(path) = &config_file {
            match load_file(path) {
                Ok(node) => {
                    check_leaves(&node, |e| file_error(path, e), &mut errors);
                    tree = node;
                }
                Err(e) => errors.push(e),
            }
        }
        for flag in &flags {
            match Node::from_flat([(&flag.key, flag.value.clone())]) {
                Ok(node) => check_leaves(&node, |e| flag_error(flag, e), &mut errors),
                Err(e) => errors.push(flag_error(flag, e)),
            }
        }
        let flag_tree = Node::from_flat(flags.iter().map(|f| (&f.key, f.value.clone())));
        match flag_tree {
            Ok(node) => tree.merge(node),
            Err(e) => {
                let flag = flags.iter().rev().find(|f| related_keys(&f.key, &e.path));
                errors.push(match flag {
                    Some(f) => flag_error(f, e),
                    None => ConfigError::new("flags", e.to_string()),
                });
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let raw: StaticConfigRaw =
            from_node(&tree).map_err(|e| ConfigErrors::one("configuration", e.to_string()))?;
        let origins = Origins {
            flags: &flags,
            file: config_file.as_deref(),
        };
        let mut cfg = validate(raw, &origins, env)?;
        cfg.config_file = config_file;
        Ok(cfg)
    }

    /// Entry point names, sorted.
    pub fn entry_point_names(&self) -> Vec<String> {
        self.entry_points.keys().cloned().collect()
    }

    /// Entry points a router with no `entryPoints` attaches to: those with `asDefault`, else
    /// all of them — except Traefik's internal `traefik` entry point, never a default.
    pub fn default_entry_points(&self) -> Vec<String> {
        let candidates = || {
            self.entry_points
                .values()
                .filter(|ep| ep.name != INTERNAL_ENTRY_POINT)
        };
        let marked: Vec<String> = candidates()
            .filter(|ep| ep.as_default)
            .map(|ep| ep.name.clone())
            .collect();
        if marked.is_empty() {
            candidates().map(|ep| ep.name.clone()).collect()
        } else {
            marked
        }
    }
}

impl EntryPoint {
    /// Whether `X-Forwarded-*` headers from this peer are kept: `insecure`, or the peer is in
    /// `trustedIPs` (an IPv4-mapped IPv6 peer matches IPv4 ranges).
    pub fn trusts(&self, ip: IpAddr) -> bool {
        if self.forwarded_insecure {
            return true;
        }
        let canonical = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.trusted_ips
            .iter()
            .any(|net| net.contains(&canonical) || net.contains(&ip))
    }
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
            LogLevel::Fatal => "FATAL",
            LogLevel::Panic => "PANIC",
        }
    }
}

impl FromStr for LogLevel {
    type Err = String;
    /// Case-insensitive; `warning` is accepted for `WARN`.
    fn from_str(s: &str) -> Result<LogLevel, String> {
        let levels = [
            LogLevel::Trace,
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Warn,
            LogLevel::Error,
            LogLevel::Fatal,
            LogLevel::Panic,
        ];
        let s = s.trim();
        if s.eq_ignore_ascii_case("warning") {
            return Ok(LogLevel::Warn);
        }
        levels
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("invalid log level {s:?} (valid: TRACE, DEBUG, INFO, WARN, ERROR, FATAL, PANIC)")
            })
    }
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s.trim() {
            f if f.eq_ignore_ascii_case("common") => Ok(LogFormat::Common),
            f if f.eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
            f => Err(format!("invalid log format {f:?} (valid: common, json)")),
        }
    }
}

impl Default for Log {
    fn default() -> Log {
        Log {
            level: LogLevel::Error,
            format: LogFormat::Common,
            file_path: None,
        }
    }
}

impl Default for ServersTransport {
    fn default() -> ServersTransport {
        ServersTransport {
            forwarding_timeouts: UpstreamTimeouts {
                dial: Duration::from_secs(30),
                response_header: Duration::ZERO,
                idle_conn: Duration::from_secs(90),
            },
            max_idle_conns_per_host: 200,
        }
    }
}

/// Parses an entry point address: `[host]:port[/tcp]`. An empty host listens on every IPv4
/// address; `localhost` is `127.0.0.1`; other host names are refused (no DNS here).
pub fn parse_entry_point_address(address: &str) -> Result<SocketAddr, String> {
    let (hostport, protocol) = match address.split_once('/') {
        Some((hp, proto)) => (hp, Some(proto)),
        None => (address, None),
    };
    match protocol {
        None => {}
        Some(p) if p.eq_ignore_ascii_case("tcp") => {}
        Some(p) if p.eq_ignore_ascii_case("udp") => {
            return Err(format!(
                "invalid address {address:?}: udp not supported yet"
            ))
        }
        Some(p) => {
            return Err(format!(
                "invalid address {address:?}: unknown protocol {p:?}"
            ))
        }
    }
    let (host, port) = hostport
        .rsplit_once(':')
        .ok_or_else(|| format!("invalid address {address:?}: missing port (use \":{address}\")"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("invalid address {address:?}: invalid port {port:?}"))?;
    let ip = if host.is_empty() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        IpAddr::V6(
            v6.parse::<Ipv6Addr>()
                .map_err(|_| format!("invalid address {address:?}: invalid IPv6 address"))?,
        )
    } else if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| format!("invalid address {address:?}: the host must be an IP address"))?
    };
    Ok(SocketAddr::new(ip, port))
}

/// Parses an IP (a /32 or /128) or a CIDR range.
pub fn parse_ip_or_cidr(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("invalid IP address or CIDR range {s:?}"))
}

/// Where each setting came from, to name it in errors found after merging.
struct Origins<'a> {
    flags: &'a [Flag],
    file: Option<&'a Path>,
}

impl Origins<'_> {
    fn error(&self, path: &str, message: impl Into<String>) -> ConfigError {
        if let Some(flag) = self.flags.iter().rev().find(|f| related_keys(&f.key, path)) {
            return ConfigError::new(flag.location(), message);
        }
        match self.file {
            Some(file) => ConfigError::new(format!("{}: {path}", file.display()), message),
            None => ConfigError::new(path, message),
        }
    }
}

/// Decodes each leaf of a source alone, so that every bad key is reported, not just the first.
fn check_leaves(
    node: &Node,
    mut to_error: impl FnMut(NodeError) -> ConfigError,
    errors: &mut Vec<ConfigError>,
) {
    for (_, single) in node.split_leaves() {
        if let Err(e) = from_node::<StaticConfigRaw>(&single) {
            errors.push(to_error(e));
        }
    }
}

fn file_error(file: &Path, e: NodeError) -> ConfigError {
    if e.path.is_empty() {
        ConfigError::new(file.display().to_string(), e.kind.to_string())
    } else {
        ConfigError::new(
            format!("{}: {}", file.display(), e.path),
            e.kind.to_string(),
        )
    }
}

fn flag_error(flag: &Flag, e: NodeError) -> ConfigError {
    let message = if e.path.is_empty() || e.path.eq_ignore_ascii_case(&flag.key) {
        e.kind.to_string()
    } else {
        e.to_string()
    };
    ConfigError::new(flag.location(), message)
}

fn dur(d: Option<TraefikDuration>, default: Duration) -> Duration {
    d.map_or(default, |d| d.0)
}

fn validate(
    raw: StaticConfigRaw,
    origins: &Origins<'_>,
    env: &ConfigEnv,
) -> Result<StaticConfig, ConfigErrors> {
    let mut errors = Vec::new();
    let mut unsupported = raw.unsupported();

    let mut entry_points = BTreeMap::new();
    for (name, ep) in &raw.entry_points {
        let path = join("entryPoints", name);
        if let Some(ep) = validate_entry_point(name, ep, &path, origins, &mut errors) {
            entry_points.insert(name.clone(), ep);
        }
    }
    let mut seen: BTreeMap<SocketAddr, &str> = BTreeMap::new();
    for ep in entry_points.values() {
        if ep.address.port() == 0 {
            continue;
        }
        if let Some(other) = seen.insert(ep.address, &ep.name) {
            errors.push(origins.error(
                &format!("entryPoints.{}.address", ep.name),
                format!(
                    "address {} is also used by entry point {other:?}",
                    ep.address
                ),
            ));
        }
    }
    // Redirections name another entry point: resolve them once all are known.
    for (name, ep) in &raw.entry_points {
        let Some(r) = ep
            .http
            .as_ref()
            .and_then(|h| h.redirections.as_ref())
            .and_then(|r| r.entry_point.as_ref())
        else {
            continue;
        };
        let path = join(&join("entryPoints", name), "http.redirections.entryPoint");
        let port = if let Some(p) = r.to.strip_prefix(':') {
            p.parse::<u16>().ok()
        } else {
            entry_points.get(&r.to).map(|t| t.address.port())
        };
        let Some(port) = port else {
            errors.push(origins.error(
                &join(&path, "to"),
                format!(
                    "{:?} is neither an entry point nor a port like \":443\"",
                    r.to
                ),
            ));
            continue;
        };
        if let Some(ep) = entry_points.get_mut(name) {
            ep.redirect = Some(EntryPointRedirect {
                scheme: r.scheme.clone().unwrap_or_else(|| "https".to_string()),
                port,
                permanent: r.permanent.unwrap_or(true),
            });
        }
    }
    let mut ping_manual = None;
    if is_set(&raw.ping) {
        unsupported.retain(|p| p != "ping");
        let empty = Node::empty();
        let node = match &raw.ping {
            Some(n) if !n.is_presence_marker() => n,
            _ => &empty,
        };
        match from_node_at::<raw::PingRaw>(node, "ping") {
            Err(e) => errors.push(origins.error(&e.path.clone(), e.kind.to_string())),
            Ok(p) => {
                let name = p
                    .entry_point
                    .clone()
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| INTERNAL_ENTRY_POINT.to_string());
                let status = p.terminating_status_code.unwrap_or(503);
                if !(100..=599).contains(&status) {
                    errors.push(origins.error(
                        "ping.terminatingStatusCode",
                        format!("{status} is not an HTTP status"),
                    ));
                }
                let settings = PingSettings {
                    terminating_status: status,
                };
                if p.manual_routing == Some(true) {
                    ping_manual = Some(settings);
                } else {
                    ensure_internal_entry_point(&name, &mut entry_points);
                }
                match entry_points
                    .get_mut(&name)
                    .filter(|_| ping_manual.is_none())
                {
                    Some(ep) => ep.ping = Some(settings),
                    None if ping_manual.is_some() => {}
                    None => errors.push(origins.error(
                        "ping.entryPoint",
                        format!("entry point {name:?} doesn't exist"),
                    )),
                }
            }
        }
    }
    unsupported.retain(|p| p != "api" && p != "metrics");
    let api = raw
        .api
        .as_ref()
        .and_then(|n| observability::api(n, origins, &mut errors));
    if api.as_ref().is_some_and(|a| a.insecure) {
        ensure_internal_entry_point(INTERNAL_ENTRY_POINT, &mut entry_points);
    }
    let metrics = raw
        .metrics
        .as_ref()
        .and_then(|n| observability::metrics(n, origins, &mut errors, &mut unsupported));
    if let Some(m) = metrics.as_ref().filter(|m| !m.manual_routing) {
        ensure_internal_entry_point(&m.entry_point, &mut entry_points);
        if !entry_points.contains_key(&m.entry_point) {
            errors.push(origins.error(
                "metrics.prometheus.entryPoint",
                format!("entry point {:?} doesn't exist", m.entry_point),
            ));
        }
    }
    if raw.entry_points.is_empty() {
        let address = parse_entry_point_address(DEFAULT_ENTRY_POINT_ADDRESS)
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 8000)));
        entry_points.insert(
            DEFAULT_ENTRY_POINT.to_string(),
            default_entry_point(DEFAULT_ENTRY_POINT, address),
        );
    }

    let providers_raw = raw.providers.unwrap_or_default();
    let mut file = None;
    if let Some(f) = &providers_raw.file {
        let directory = f
            .directory
            .as_deref()
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        let filename = f
            .filename
            .as_deref()
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        if directory.is_none() && filename.is_none() {
            errors.push(origins.error(
                "providers.file",
                "neither filename nor directory is defined",
            ));
        }
        file = Some(FileProvider {
            filename,
            directory,
            watch: f.watch.unwrap_or(true),
        });
    } else if !providers_raw.any_configured() && env.default_dynamic_dir.is_dir() {
        file = Some(FileProvider {
            filename: None,
            directory: Some(env.default_dynamic_dir.clone()),
            watch: true,
        });
    }
    let docker = docker_provider(
        "providers.docker",
        &providers_raw.docker,
        origins,
        &mut errors,
        &mut unsupported,
    );
    let mut swarm = docker_provider(
        "providers.swarm",
        &providers_raw.swarm,
        origins,
        &mut errors,
        &mut unsupported,
    )
    .map(|(docker, refresh, _)| SwarmProvider {
        name: "swarm",
        docker,
        refresh,
    });
    let docker = match docker {
        // v2: `providers.docker.swarmMode=true` is the Swarm provider, named `docker`.
        Some((d, refresh, true)) => {
            swarm = Some(SwarmProvider {
                name: "docker",
                docker: d,
                refresh,
            });
            None
        }
        other => other.map(|(d, _, _)| d),
    };
    let redis = kv::kv_provider(
        KvStoreKind::Redis,
        &providers_raw.redis,
        origins,
        &mut errors,
        &mut unsupported,
    );
    let etcd = kv::kv_provider(
        KvStoreKind::Etcd,
        &providers_raw.etcd,
        origins,
        &mut errors,
        &mut unsupported,
    );
    // Implemented now: not "unsupported" any more.
    unsupported
        .retain(|p| p != "providers.redis" && p != "providers.etcd" && p != "providers.swarm");
    let providers = Providers {
        throttle: dur(providers_raw.providers_throttle_duration, Duration::ZERO),
        file,
        docker,
        swarm,
        redis,
        etcd,
    };

    let mut log = Log::default();
    if let Some(l) = &raw.log {
        if let Some(level) = &l.level {
            match level.parse() {
                Ok(level) => log.level = level,
                Err(e) => errors.push(origins.error("log.level", e)),
            }
        }
        if let Some(format) = &l.format {
            match format.parse() {
                Ok(format) => log.format = format,
                Err(e) => errors.push(origins.error("log.format", e)),
            }
        }
        log.file_path = l
            .file_path
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
    }

    let access_log = raw
        .access_log
        .as_ref()
        .and_then(|n| access_log::access_log(n, origins, &mut errors));

    let mut servers_transport = ServersTransport::default();
    if let Some(st) = &raw.servers_transport {
        match st.max_idle_conns_per_host {
            None | Some(0) => {}
            Some(n) if n < 0 => servers_transport.max_idle_conns_per_host = 0,
            Some(n) => {
                servers_transport.max_idle_conns_per_host = usize::try_from(n).unwrap_or(usize::MAX)
            }
        }
        if let Some(ft) = &st.forwarding_timeouts {
            let t = &mut servers_transport.forwarding_timeouts;
            t.dial = dur(ft.dial_timeout, t.dial);
            t.response_header = dur(ft.response_header_timeout, t.response_header);
            t.idle_conn = dur(ft.idle_conn_timeout, t.idle_conn);
        }
    }

    let mut dataplane = Dataplane::default();
    if let Some(d) = &raw.dataplane {
        match d.workers {
            Some(0) => errors.push(origins.error("dataplane.workers", "must be at least 1")),
            w => dataplane.workers = w,
        }
    }

    let mut certificates_resolvers = BTreeMap::new();
    if let Some(node) = &raw.certificates_resolvers {
        let names: Vec<String> = entry_points.keys().cloned().collect();
        certificates_resolvers =
            acme::resolvers(node, origins, &names, &mut errors, &mut unsupported);
    }

    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok(StaticConfig {
        entry_points,
        providers,
        log,
        servers_transport,
        dataplane,
        certificates_resolvers,
        access_log,
        api,
        metrics,
        ping_manual,
        unsupported,
        config_file: None,
    })
}

/// As Traefik: the `traefik` entry point exists on :8080 when something needs it (ping, the
/// insecure API, metrics) and none is configured.
fn ensure_internal_entry_point(name: &str, entry_points: &mut BTreeMap<String, EntryPoint>) {
    if name == INTERNAL_ENTRY_POINT && !entry_points.contains_key(name) {
        let address = parse_entry_point_address(TRAEFIK_ENTRY_POINT_ADDRESS)
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 8080)));
        entry_points.insert(name.to_string(), default_entry_point(name, address));
    }
}

/// `providers.docker` (or `providers.swarm`, at `path`), with Traefik's defaults, its
/// refresh interval and whether v2's `swarmMode` is on; `None` when absent or `false`.
fn docker_provider(
    path: &str,
    node: &Option<Node>,
    origins: &Origins<'_>,
    errors: &mut Vec<ConfigError>,
    unsupported: &mut Vec<String>,
) -> Option<(DockerProvider, Duration, bool)> {
    if !is_set(node) {
        return None;
    }
    let empty = Node::empty();
    let node = match node {
        Some(n) if !n.is_presence_marker() => n,
        _ => &empty,
    };
    let raw: DockerProviderRaw = match from_node_at(node, path) {
        Ok(r) => r,
        Err(e) => {
            errors.push(origins.error(&e.path.clone(), e.kind.to_string()));
            return None;
        }
    };
    for (name, value) in [
        ("useBindPortIP", &raw.use_bind_port_ip),
        ("tls", &raw.tls),
        ("httpClientTimeout", &raw.http_client_timeout),
        ("username", &raw.username),
        ("password", &raw.password),
    ] {
        if is_set(value) {
            unsupported.push(format!("{path}.{name}"));
        }
    }
    let swarm_v3 = path == "providers.swarm";
    for (name, set) in [
        ("swarmMode", swarm_v3 && raw.swarm_mode.is_some()),
        (
            "swarmModeRefreshSeconds",
            swarm_v3 && raw.swarm_mode_refresh_seconds.is_some(),
        ),
        ("refreshSeconds", !swarm_v3 && raw.refresh_seconds.is_some()),
    ] {
        if set {
            errors.push(origins.error(
                &format!("{path}.{name}"),
                format!("unknown key {name:?} in {path}"),
            ));
        }
    }
    let refresh = raw
        .refresh_seconds
        .or(raw.swarm_mode_refresh_seconds)
        .map_or(Duration::from_secs(15), |d| d.0)
        .max(Duration::from_millis(100));
    let swarm_mode = raw.swarm_mode.unwrap_or(false);
    let docker = DockerProvider {
        endpoint: non_empty(&raw.endpoint)
            .unwrap_or(DOCKER_DEFAULT_ENDPOINT)
            .to_string(),
        exposed_by_default: raw.exposed_by_default.unwrap_or(true),
        network: non_empty(&raw.network).map(str::to_string),
        default_rule: non_empty(&raw.default_rule)
            .unwrap_or(DOCKER_DEFAULT_RULE)
            .to_string(),
        constraints: non_empty(&raw.constraints).map(str::to_string),
        watch: raw.watch.unwrap_or(true),
        allow_empty_services: raw.allow_empty_services.unwrap_or(false),
    };
    Some((docker, refresh, swarm_mode))
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn default_entry_point(name: &str, address: SocketAddr) -> EntryPoint {
    EntryPoint {
        name: name.to_string(),
        address,
        read_timeout: Duration::from_secs(60),
        write_timeout: Duration::ZERO,
        idle_timeout: Duration::from_secs(180),
        tcp_idle_timeout: Duration::ZERO,
        grace_timeout: Duration::from_secs(10),
        request_accept_grace_timeout: Duration::ZERO,
        trusted_ips: Vec::new(),
        forwarded_insecure: false,
        as_default: false,
        redirect: None,
        ping: None,
        http_tls: None,
    }
}

fn validate_entry_point(
    name: &str,
    raw: &EntryPointRaw,
    path: &str,
    origins: &Origins<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<EntryPoint> {
    let before = errors.len();
    let address_path = join(path, "address");
    let address = match raw.address.as_deref() {
        None | Some("") => {
            errors.push(origins.error(&address_path, "address is required (e.g. \":80\")"));
            None
        }
        Some(a) => match parse_entry_point_address(a) {
            Ok(addr) => Some(addr),
            Err(e) => {
                errors.push(origins.error(&address_path, e));
                None
            }
        },
    };
    let mut ep = default_entry_point(name, address.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))));
    ep.as_default = raw.as_default.unwrap_or(false);
    if let Some(t) = &raw.transport {
        if let Some(rt) = &t.responding_timeouts {
            ep.read_timeout = dur(rt.read_timeout, ep.read_timeout);
            ep.write_timeout = dur(rt.write_timeout, ep.write_timeout);
            ep.idle_timeout = dur(rt.idle_timeout, ep.idle_timeout);
            if let Some(h) = &rt.http {
                ep.read_timeout = dur(h.read_timeout, ep.read_timeout);
                ep.write_timeout = dur(h.write_timeout, ep.write_timeout);
                ep.idle_timeout = dur(h.idle_timeout, ep.idle_timeout);
            }
            if let Some(t) = &rt.tcp {
                ep.tcp_idle_timeout = dur(t.idle_timeout, ep.tcp_idle_timeout);
            }
        }
        if let Some(lc) = &t.life_cycle {
            ep.grace_timeout = dur(lc.grace_time_out, ep.grace_timeout);
            ep.request_accept_grace_timeout = dur(
                lc.request_accept_grace_timeout,
                ep.request_accept_grace_timeout,
            );
        }
    }
    if let Some(fh) = &raw.forwarded_headers {
        ep.forwarded_insecure = fh.insecure.unwrap_or(false);
        for ip in &fh.trusted_ips {
            match parse_ip_or_cidr(ip) {
                Ok(net) => ep.trusted_ips.push(net),
                Err(e) => errors.push(origins.error(&join(path, "forwardedHeaders.trustedIPs"), e)),
            }
        }
    }
    if let Some(http) = &raw.http {
        if let Some(node) = &http.tls {
            let tls_path = join(path, "http.tls");
            match node {
                Node::Leaf(v) => match v.trim().to_ascii_lowercase().as_str() {
                    "" | "true" => ep.http_tls = Some(EntryPointTls::default()),
                    "false" => {}
                    _ => errors.push(origins.error(&tls_path, format!("invalid boolean {v:?}"))),
                },
                _ => match from_node_at::<raw::EntryPointTlsRaw>(node, &tls_path) {
                    Ok(t) => {
                        ep.http_tls = Some(EntryPointTls {
                            options: t.options.filter(|o| !o.is_empty()),
                            cert_resolver: t.cert_resolver.filter(|r| !r.is_empty()),
                            domains: t.domains.into_iter().map(|d| (d.main, d.sans)).collect(),
                        })
                    }
                    Err(e) => errors.push(origins.error(&e.path, e.kind.to_string())),
                },
            }
        }
        if !http.middlewares.is_empty() {
            // Refused rather than ignored: these are often authentication middlewares, and
            // serving the routers without them would expose what they protect.
            errors.push(origins.error(
                &join(path, "http.middlewares"),
                "entry point middlewares are not supported yet",
            ));
        }
    }
    (errors.len() == before).then_some(ep)
}

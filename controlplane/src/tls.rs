//! TLS certificates from the dynamic configuration (`tls.certificates`,
//! `tls.stores.default.defaultCertificate`): files read, PEM parsed, key checked against the
//! certificate and names extracted here, so every error names its file and the data plane
//! receives only certificates that work.

use crate::aggregator::ProviderConfig;
use ringway_shared::config::node::from_node_at;
use ringway_shared::config::{ConfigError, Node};
use ringway_shared::table::{
    CertificateSpec, ClientAuthKind, ClientAuthSpec, SniOptionsSpec, TlsOptionsSpec, TlsSpec,
};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct TlsSection {
    certificates: Vec<CertFiles>,
    options: BTreeMap<String, Node>,
    stores: BTreeMap<String, Store>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct CertFiles {
    /// A path, or the PEM itself (Traefik accepts both).
    cert_file: String,
    key_file: String,
    stores: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Store {
    default_certificate: Option<CertFiles>,
    default_generated_cert: Option<Node>,
}

/// Collects every provider's certificates and TLS options sets (the named ones qualified
/// `name@provider`, as routers refer to them; `default` as it is). Errors and warnings are
/// appended with locations.
pub fn resolve_tls(
    providers: &[ProviderConfig],
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> (TlsSpec, BTreeMap<String, TlsOptionsSpec>) {
    let mut spec = TlsSpec::default();
    let mut named = BTreeMap::new();
    for p in providers {
        let Some(node) = &p.config.tls else { continue };
        let location = |path: &str| match p.config.origins.get("tls") {
            Some(src) => format!("{src}: {path}"),
            None => format!("provider {}: {path}", p.provider),
        };
        let section: TlsSection = match from_node_at(node, "tls") {
            Ok(s) => s,
            Err(e) => {
                errors.push(ConfigError::new(location("tls"), e.to_string()));
                continue;
            }
        };
        for (i, c) in section.certificates.iter().enumerate() {
            let path = format!("tls.certificates[{i}]");
            if c.stores.iter().any(|s| s != "default") {
                warnings.push(ConfigError::new(
                    location(&path),
                    "only the default TLS store exists; the certificate is added to it",
                ));
            }
            match load_kept(c) {
                Ok((cert, None)) => spec.certificates.push(cert),
                Ok((cert, Some(e))) => {
                    errors.push(ConfigError::new(location(&path), e));
                    spec.certificates.push(cert);
                }
                Err(e) => errors.push(ConfigError::new(location(&path), e)),
            }
        }
        for (name, store) in &section.stores {
            let path = format!("tls.stores.{name}");
            if name != "default" {
                warnings.push(ConfigError::new(
                    location(&path),
                    "only the default TLS store is supported; ignored",
                ));
                continue;
            }
            if store.default_generated_cert.is_some() {
                warnings.push(ConfigError::new(
                    location(&format!("{path}.defaultGeneratedCert")),
                    "ACME-generated default certificates are not supported yet; ignored",
                ));
            }
            if let Some(c) = &store.default_certificate {
                match load_kept(c) {
                    Ok((cert, None)) => spec.default_certificate = Some(cert),
                    Ok((cert, Some(e))) => {
                        errors.push(ConfigError::new(
                            location(&format!("{path}.defaultCertificate")),
                            e,
                        ));
                        spec.default_certificate = Some(cert);
                    }
                    Err(e) => errors.push(ConfigError::new(
                        location(&format!("{path}.defaultCertificate")),
                        e,
                    )),
                }
            }
        }
        for (name, node) in &section.options {
            let path = format!("tls.options.{name}");
            let raw: RawOptions = match from_node_at(node, &path) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(ConfigError::new(location(&path), e.to_string()));
                    continue;
                }
            };
            match options(&raw, &path, &mut |k, m| {
                warnings.push(ConfigError::new(location(k), m))
            }) {
                Ok(o) if name == "default" => spec.options = o,
                Ok(o) => {
                    named.insert(crate::aggregator::qualify(name, &p.provider), o);
                }
                Err((key, e)) => errors.push(ConfigError::new(location(&key), e)),
            }
        }
    }
    (spec, named)
}

/// The options set a router's `tls.options` names, qualified in the router's provider.
pub fn options_name(chosen: Option<&str>, provider: &str) -> String {
    match chosen.map(str::trim) {
        None | Some("") | Some("default") => "default".to_string(),
        Some(name) => crate::aggregator::qualify(name, provider),
    }
}

/// The TLS options TLS routers chose for their host names. As in Traefik, a host gets the
/// set that every TLS router on it names; when routers disagree it gets the default options
/// (with a warning).
#[derive(Debug, Default)]
pub struct HostOptions {
    /// Host (lowercase) → the chosen set and the first router that chose it, or a conflict.
    hosts: BTreeMap<String, HostChoice>,
}

#[derive(Debug)]
enum HostChoice {
    Set { options: String, router: String },
    Conflict,
}

impl HostOptions {
    pub fn add(
        &mut self,
        host: &str,
        options: &str,
        router: &str,
        warnings: &mut Vec<ConfigError>,
    ) {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return;
        }
        match self.hosts.get_mut(&host) {
            None => {
                self.hosts.insert(
                    host,
                    HostChoice::Set {
                        options: options.to_string(),
                        router: router.to_string(),
                    },
                );
            }
            Some(HostChoice::Set {
                options: first,
                router: by,
            }) if first != options => {
                warnings.push(ConfigError::new(
                    format!("TLS options for host {host}"),
                    format!(
                        "routers {by} and {router} chose different TLS options ({first}, \
                         {options}); the default options apply to this host"
                    ),
                ));
                self.hosts.insert(host, HostChoice::Conflict);
            }
            Some(_) => {}
        }
    }

    /// The sets the data plane selects by SNI (hosts on the default set need nothing).
    pub fn into_specs(self, named: &BTreeMap<String, TlsOptionsSpec>) -> Vec<SniOptionsSpec> {
        let mut by_set: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (host, choice) in self.hosts {
            if let HostChoice::Set { options, .. } = choice {
                if named.contains_key(&options) {
                    by_set.entry(options).or_default().push(host);
                }
            }
        }
        by_set
            .into_iter()
            .map(|(name, hosts)| SniOptionsSpec {
                options: named[&name].clone(),
                name,
                hosts,
            })
            .collect()
    }
}

/// The certificate and key files the TLS sections name (not inline PEM): the control plane
/// watches them and re-resolves when one changes.
pub fn cert_files(providers: &[ProviderConfig]) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for p in providers {
        let Some(node) = &p.config.tls else { continue };
        let Ok(section) = from_node_at::<TlsSection>(node, "tls") else {
            continue;
        };
        let stores = section
            .stores
            .values()
            .filter_map(|s| s.default_certificate.as_ref());
        for c in section.certificates.iter().chain(stores) {
            for v in [&c.cert_file, &c.key_file] {
                if !v.is_empty() && !v.trim_start().starts_with("-----BEGIN") {
                    out.push(std::path::PathBuf::from(v));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// [`load`], remembering the last good result per pair of files: when a file is replaced by
/// one that does not load (half written, a wrong key), the previous certificate keeps serving
/// and the error says so.
fn load_kept(c: &CertFiles) -> Result<(CertificateSpec, Option<String>), String> {
    type Kept = std::collections::HashMap<(String, String), CertificateSpec>;
    static KEPT: std::sync::Mutex<Option<Kept>> = std::sync::Mutex::new(None);
    let key = (c.cert_file.clone(), c.key_file.clone());
    match load(c) {
        Ok(cert) => {
            if let Ok(mut kept) = KEPT.lock() {
                kept.get_or_insert_with(Kept::new).insert(key, cert.clone());
            }
            Ok((cert, None))
        }
        Err(e) => {
            let previous = KEPT
                .lock()
                .ok()
                .and_then(|kept| kept.as_ref().and_then(|k| k.get(&key).cloned()));
            match previous {
                Some(cert) => Ok((
                    cert,
                    Some(format!("{e}; the previous certificate keeps serving")),
                )),
                None => Err(e),
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
struct RawOptions {
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Vec<String>,
    curve_preferences: Vec<String>,
    alpn_protocols: Option<Vec<String>>,
    sni_strict: bool,
    prefer_server_cipher_suites: Option<bool>,
    disable_session_tickets: Option<bool>,
    client_auth: Option<RawClientAuth>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
struct RawClientAuth {
    ca_files: Vec<String>,
    client_auth_type: Option<String>,
}

fn version(value: &str, key: &str, warn: &mut dyn FnMut(&str, String)) -> Result<u8, String> {
    match value {
        "VersionTLS13" => Ok(13),
        "VersionTLS12" => Ok(12),
        "VersionTLS10" | "VersionTLS11" => {
            warn(
                key,
                format!("{value}: TLS 1.0 and 1.1 are not supported (rustls); TLS 1.2 applies"),
            );
            Ok(12)
        }
        other => Err(format!(
            "unknown TLS version {other:?} (expected VersionTLS12 or VersionTLS13)"
        )),
    }
}

/// The rustls name of a Go/IANA cipher suite name, if rustls implements it.
pub fn rustls_suite_name(go_name: &str) -> Option<String> {
    let name = match go_name {
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => {
            format!("{go_name}_SHA256")
        }
        n if n.starts_with("TLS_AES_") || n.starts_with("TLS_CHACHA20_") => {
            format!("TLS13_{}", &n[4..])
        }
        n => n.to_string(),
    };
    rustls::crypto::ring::default_provider()
        .cipher_suites
        .iter()
        .any(|s| format!("{:?}", s.suite()) == name)
        .then_some(name)
}

/// Validates one options set; an error names its key.
fn options(
    raw: &RawOptions,
    path: &str,
    warn: &mut dyn FnMut(&str, String),
) -> Result<TlsOptionsSpec, (String, String)> {
    let mut o = TlsOptionsSpec::default();
    if let Some(v) = &raw.min_version {
        let key = format!("{path}.minVersion");
        o.min_version = version(v, &key, warn).map_err(|e| (key, e))?;
    }
    if let Some(v) = &raw.max_version {
        let key = format!("{path}.maxVersion");
        o.max_version = version(v, &key, warn).map_err(|e| (key, e))?;
    }
    if o.min_version > o.max_version {
        return Err((
            format!("{path}.minVersion"),
            "minVersion is above maxVersion".into(),
        ));
    }
    for (i, c) in raw.cipher_suites.iter().enumerate() {
        let key = format!("{path}.cipherSuites[{i}]");
        let Some(name) = rustls_suite_name(c) else {
            return Err((
                key,
                format!("unknown or unsupported cipher suite {c:?} (rustls offers AES-GCM and ChaCha20-Poly1305 ECDHE suites)"),
            ));
        };
        if !name.starts_with("TLS13_") {
            o.cipher_suites.push(name);
        }
    }
    if !raw.curve_preferences.is_empty() {
        warn(
            &format!("{path}.curvePreferences"),
            "not supported; rustls' defaults (X25519, P-256, P-384) apply".into(),
        );
    }
    if let Some(alpn) = &raw.alpn_protocols {
        o.alpn_protocols = Vec::new();
        for p in alpn {
            if p == "h2" {
                warn(
                    &format!("{path}.alpnProtocols"),
                    "h2 is not served yet; not offered".into(),
                );
            } else {
                o.alpn_protocols.push(p.clone());
            }
        }
    }
    o.sni_strict = raw.sni_strict;
    if let Some(ca) = &raw.client_auth {
        let key = format!("{path}.clientAuth.clientAuthType");
        let kind = match ca.client_auth_type.as_deref().unwrap_or("NoClientCert") {
            "NoClientCert" => ClientAuthKind::NoClientCert,
            "RequestClientCert" => {
                warn(
                    &key,
                    "RequestClientCert: the certificate would be unused; treated as NoClientCert"
                        .into(),
                );
                ClientAuthKind::NoClientCert
            }
            "VerifyClientCertIfGiven" => ClientAuthKind::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuthKind::RequireAndVerifyClientCert,
            "RequireAnyClientCert" => {
                return Err((key, "RequireAnyClientCert is not supported yet".into()))
            }
            other => return Err((key, format!("unknown client auth type {other:?} (expected NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)"))),
        };
        let mut ca_certs = Vec::new();
        for (i, f) in ca.ca_files.iter().enumerate() {
            let key = format!("{path}.clientAuth.caFiles[{i}]");
            let (pem, src) = read(f, "caFile").map_err(|e| (key.clone(), e))?;
            let certs: Vec<Vec<u8>> = rustls_pemfile::certs(&mut pem.as_slice())
                .map(|r| r.map(|der| der.as_ref().to_vec()))
                .collect::<Result<_, _>>()
                .map_err(|e| (key.clone(), format!("{src}: invalid PEM: {e}")))?;
            if certs.is_empty() {
                return Err((key, format!("{src}: no certificate in the file")));
            }
            ca_certs.extend(certs);
        }
        if kind != ClientAuthKind::NoClientCert && ca_certs.is_empty() {
            return Err((
                format!("{path}.clientAuth.caFiles"),
                "client certificates are verified, so caFiles is required".into(),
            ));
        }
        o.client_auth = ClientAuthSpec { ca_certs, kind };
    }
    Ok(o)
}

/// Reads a certificate file and its key, or takes them inline.
fn load(c: &CertFiles) -> Result<CertificateSpec, String> {
    let (cert_pem, cert_src) = read(&c.cert_file, "certFile")?;
    let (key_pem, key_src) = read(&c.key_file, "keyFile")?;
    from_pem(&cert_pem, &key_pem, cert_src, &key_src)
}

/// A certificate chain and its key from PEM, checked to belong together; `cert_src` and
/// `key_src` name them in errors (and `cert_src` in logs).
pub(crate) fn from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_src: String,
    key_src: &str,
) -> Result<CertificateSpec, String> {
    let chain: Vec<Vec<u8>> = rustls_pemfile::certs(&mut &cert_pem[..])
        .map(|r| r.map(|der| der.as_ref().to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{cert_src}: invalid PEM: {e}"))?;
    let Some(leaf) = chain.first() else {
        return Err(format!("{cert_src}: no certificate in the file"));
    };
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| format!("{key_src}: invalid PEM: {e}"))?
        .ok_or_else(|| format!("{key_src}: no private key in the file"))?;
    let key_der = key.secret_der().to_vec();
    check_pair(&chain, key, &cert_src, key_src)?;
    let names = names(leaf).map_err(|e| format!("{cert_src}: {e}"))?;
    Ok(CertificateSpec {
        source: cert_src,
        names,
        chain,
        key: key_der,
    })
}

fn read(value: &str, what: &str) -> Result<(Vec<u8>, String), String> {
    if value.is_empty() {
        return Err(format!("{what} is missing"));
    }
    if value.trim_start().starts_with("-----BEGIN") {
        return Ok((value.as_bytes().to_vec(), format!("{what} (inline)")));
    }
    std::fs::read(value)
        .map(|b| (b, value.to_string()))
        .map_err(|e| format!("{value}: cannot read {what}: {e}"))
}

/// The key must be usable and belong to the leaf certificate.
fn check_pair(
    chain: &[Vec<u8>],
    key: rustls::pki_types::PrivateKeyDer<'static>,
    cert_src: &str,
    key_src: &str,
) -> Result<(), String> {
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("{key_src}: unsupported private key: {e}"))?;
    let certs = chain
        .iter()
        .map(|c| rustls::pki_types::CertificateDer::from(c.clone()))
        .collect();
    let ck = rustls::sign::CertifiedKey::new(certs, signing);
    match ck.keys_match() {
        Ok(()) => Ok(()),
        Err(rustls::Error::InconsistentKeys(_)) => {
            Err(format!("{key_src} is not the private key of {cert_src}"))
        }
        // Keys whose public half cannot be derived (rare key types): accept.
        Err(_) => Ok(()),
    }
}

/// DNS names of a certificate: its subjectAltName DNS entries, else its common name.
fn names(der: &[u8]) -> Result<Vec<String>, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("invalid certificate: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push(d.trim_end_matches('.').to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        for cn in cert.subject().iter_common_name() {
            if let Ok(s) = cn.as_str() {
                names.push(s.trim_end_matches('.').to_ascii_lowercase());
            }
        }
    }
    Ok(names)
}

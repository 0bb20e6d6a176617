//! `certificatesResolvers.<name>.acme.*`: Traefik's ACME resolvers, parsed and validated with
//! Traefik's defaults (the control plane's `acme` module runs them).

use super::raw::is_set;
use super::Origins;
use crate::config::node::from_node_at;
use crate::config::{ConfigError, Node};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Let's Encrypt's production directory, Traefik's default `caServer`.
pub const LETS_ENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// `keyType` of the certificates' private keys (Traefik's default: RSA4096).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AcmeKeyType {
    Ec256,
    Ec384,
    Rsa2048,
    #[default]
    Rsa4096,
    Rsa8192,
}

impl AcmeKeyType {
    /// Traefik's spelling, also stored in `acme.json` (`KeyType`).
    pub fn as_str(self) -> &'static str {
        match self {
            AcmeKeyType::Ec256 => "EC256",
            AcmeKeyType::Ec384 => "EC384",
            AcmeKeyType::Rsa2048 => "RSA2048",
            AcmeKeyType::Rsa4096 => "RSA4096",
            AcmeKeyType::Rsa8192 => "RSA8192",
        }
    }
}

impl std::str::FromStr for AcmeKeyType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "EC256" => AcmeKeyType::Ec256,
            "EC384" => AcmeKeyType::Ec384,
            "RSA2048" => AcmeKeyType::Rsa2048,
            "RSA4096" => AcmeKeyType::Rsa4096,
            "RSA8192" => AcmeKeyType::Rsa8192,
            _ => {
                return Err(format!(
                    "unknown key type {s:?} (expected EC256, EC384, RSA2048, RSA4096 or RSA8192)"
                ))
            }
        })
    }
}

/// External account binding (`eab.kid`, `eab.hmacEncoded`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeEab {
    pub kid: String,
    /// Base64url HMAC key, as the CA hands it out.
    pub hmac_encoded: String,
}

/// One `certificatesResolvers.<name>.acme` section.
#[derive(Debug, Clone, PartialEq)]
pub struct AcmeResolver {
    pub name: String,
    pub email: Option<String>,
    /// `storage` (default `acme.json`).
    pub storage: PathBuf,
    /// `caServer` (default Let's Encrypt production).
    pub ca_server: String,
    pub key_type: AcmeKeyType,
    /// `certificatesDuration` in hours (default 2160 = 90 days); renewal starts when less
    /// than a third remains.
    pub certificates_duration_hours: u64,
    /// `caCertificates`: extra PEM roots trusted when talking to the CA.
    pub ca_certificates: Vec<PathBuf>,
    pub eab: Option<AcmeEab>,
    /// `httpChallenge.entryPoint`.
    pub http_challenge_entry_point: Option<String>,
    /// `tlsChallenge` given.
    pub tls_challenge: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ResolverRaw {
    acme: Option<AcmeRaw>,
    tailscale: Option<Node>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct AcmeRaw {
    email: Option<String>,
    storage: Option<String>,
    ca_server: Option<String>,
    key_type: Option<String>,
    certificates_duration: Option<i64>,
    ca_certificates: Vec<String>,
    ca_system_cert_pool: Option<Node>,
    ca_server_name: Option<Node>,
    eab: Option<EabRaw>,
    http_challenge: Option<HttpChallengeRaw>,
    tls_challenge: Option<Node>,
    dns_challenge: Option<Node>,
    pre_chain: Option<Node>,
    preferred_chain: Option<Node>,
    profile: Option<Node>,
    client_timeout: Option<Node>,
    client_response_header_timeout: Option<Node>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct EabRaw {
    kid: Option<String>,
    hmac_encoded: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct HttpChallengeRaw {
    entry_point: Option<String>,
    delay: Option<Node>,
}

/// Validates `certificatesResolvers`; settings parsed but not implemented go to `unsupported`.
pub(super) fn resolvers(
    node: &Node,
    origins: &Origins<'_>,
    entry_points: &[String],
    errors: &mut Vec<ConfigError>,
    unsupported: &mut Vec<String>,
) -> BTreeMap<String, AcmeResolver> {
    let raw: BTreeMap<String, ResolverRaw> = match from_node_at(node, "certificatesResolvers") {
        Ok(r) => r,
        Err(e) => {
            errors.push(origins.error(&e.path.clone(), e.kind.to_string()));
            return BTreeMap::new();
        }
    };
    let mut out = BTreeMap::new();
    for (name, r) in raw {
        let p = |k: &str| format!("certificatesResolvers.{name}.{k}");
        if is_set(&r.tailscale) {
            unsupported.push(p("tailscale"));
        }
        let Some(a) = r.acme else {
            if r.tailscale.is_none() {
                errors.push(origins.error(&p("acme"), "a resolver needs an acme section"));
            }
            continue;
        };
        let mut key_type = AcmeKeyType::default();
        if let Some(k) = a.key_type.as_deref().filter(|k| !k.is_empty()) {
            match k.parse() {
                Ok(k) => key_type = k,
                Err(e) => errors.push(origins.error(&p("acme.keyType"), e)),
            }
        }
        let certificates_duration_hours = match a.certificates_duration {
            None => 2160,
            Some(h) if h > 0 => h as u64,
            Some(_) => {
                errors.push(origins.error(&p("acme.certificatesDuration"), "must be positive"));
                2160
            }
        };
        let eab = match a.eab {
            None => None,
            Some(EabRaw {
                kid: Some(kid),
                hmac_encoded: Some(hmac_encoded),
            }) if !kid.is_empty() && !hmac_encoded.is_empty() => {
                Some(AcmeEab { kid, hmac_encoded })
            }
            Some(_) => {
                errors.push(origins.error(&p("acme.eab"), "needs both kid and hmacEncoded"));
                None
            }
        };
        let http_challenge_entry_point = match a.http_challenge {
            None => None,
            Some(h) => {
                if is_set(&h.delay) {
                    unsupported.push(p("acme.httpChallenge.delay"));
                }
                match h.entry_point.filter(|e| !e.is_empty()) {
                    Some(ep) if entry_points.iter().any(|e| e == &ep) => Some(ep),
                    Some(ep) => {
                        errors.push(origins.error(
                            &p("acme.httpChallenge.entryPoint"),
                            format!("unknown entry point {ep:?}"),
                        ));
                        None
                    }
                    None => {
                        errors.push(origins.error(
                            &p("acme.httpChallenge.entryPoint"),
                            "the HTTP challenge needs an entry point",
                        ));
                        None
                    }
                }
            }
        };
        let tls_challenge = is_set(&a.tls_challenge);
        for (k, n) in [
            ("acme.caSystemCertPool", &a.ca_system_cert_pool),
            ("acme.caServerName", &a.ca_server_name),
            ("acme.dnsChallenge", &a.dns_challenge),
            ("acme.preChain", &a.pre_chain),
            ("acme.preferredChain", &a.preferred_chain),
            ("acme.profile", &a.profile),
            ("acme.clientTimeout", &a.client_timeout),
            (
                "acme.clientResponseHeaderTimeout",
                &a.client_response_header_timeout,
            ),
        ] {
            if is_set(n) {
                unsupported.push(p(k));
            }
        }
        out.insert(
            name.clone(),
            AcmeResolver {
                name: name.clone(),
                email: a.email.filter(|e| !e.is_empty()),
                storage: PathBuf::from(
                    a.storage
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "acme.json".into()),
                ),
                ca_server: a
                    .ca_server
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| LETS_ENCRYPT_PRODUCTION.into()),
                key_type,
                certificates_duration_hours,
                ca_certificates: a
                    .ca_certificates
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .collect(),
                eab,
                http_challenge_entry_point,
                tls_challenge,
            },
        );
    }
    out
}

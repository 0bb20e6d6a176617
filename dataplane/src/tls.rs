//! TLS termination: the rustls server configuration compiled from a table's certificates, with
//! SNI selection (exact name, then wildcard, then the default certificate) and a generated
//! self-signed default when none is configured, as Traefik does.

use ringway_shared::table::{CertificateSpec, ClientAuthKind, TlsOptionsSpec, TlsSpec};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot generate the default certificate: {0}")]
    Generate(String),
    #[error("certificate {source_file}: {reason}")]
    Certificate { source_file: String, reason: String },
    #[error("TLS client authentication: {0}")]
    ClientAuth(String),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Generates the self-signed certificate served when nothing else matches (Traefik's
/// "TRAEFIK DEFAULT CERT").
pub fn generate_default() -> Result<Arc<CertifiedKey>, TlsError> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "TRAEFIK DEFAULT CERT");
    let key = rcgen::KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let key_der = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    certified(vec![cert.der().to_vec()], key_der).map_err(|reason| TlsError::Certificate {
        source_file: "generated".into(),
        reason,
    })
}

fn certified(
    chain: Vec<Vec<u8>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<CertifiedKey>, String> {
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| e.to_string())?;
    let certs = chain.into_iter().map(CertificateDer::from).collect();
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

fn from_spec(c: &CertificateSpec) -> Result<Arc<CertifiedKey>, TlsError> {
    let key = PrivateKeyDer::try_from(c.key.clone()).map_err(|e| TlsError::Certificate {
        source_file: c.source.clone(),
        reason: e.to_string(),
    })?;
    certified(c.chain.clone(), key).map_err(|reason| TlsError::Certificate {
        source_file: c.source.clone(),
        reason,
    })
}

/// The certificates of a table by name.
#[derive(Debug)]
struct Certs {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` stored under `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
    /// ACME tls-alpn-01 certificates by name, served only to `acme-tls/1` ClientHellos.
    acme_alpn: HashMap<String, Arc<CertifiedKey>>,
}

/// The ALPN protocol of ACME's tls-alpn-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &str = "acme-tls/1";

/// Looks `name` up as an exact name, then as a wildcard (one label deep).
fn by_name<'m, T>(
    exact: &'m HashMap<String, T>,
    wildcard: &'m HashMap<String, T>,
    name: &str,
) -> Option<&'m T> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if let Some(v) = exact.get(&name) {
        return Some(v);
    }
    name.split_once('.')
        .and_then(|(_, parent)| wildcard.get(parent))
}

/// Picks the certificate for a ClientHello's SNI.
#[derive(Debug)]
struct SniResolver {
    /// `sniStrict`: no certificate (handshake refused) for a missing or unknown SNI.
    strict: bool,
    certs: Arc<Certs>,
}

impl SniResolver {
    fn pick(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let certs = &self.certs;
        if let Some(c) = server_name.and_then(|n| by_name(&certs.exact, &certs.wildcard, n)) {
            return Some(c.clone());
        }
        (!self.strict).then(|| certs.default.clone())
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme = hello
            .alpn()
            .is_some_and(|mut p| p.any(|p| p == ACME_TLS_ALPN.as_bytes()));
        if acme {
            // A validation connection gets the challenge certificate or nothing.
            let name = hello
                .server_name()?
                .trim_end_matches('.')
                .to_ascii_lowercase();
            return self.certs.acme_alpn.get(&name).cloned();
        }
        self.pick(hello.server_name())
    }
}

/// The TLS acceptors of a table: the default options' one, and one per named options set that
/// routers chose for their hosts, selected by the ClientHello's SNI.
#[derive(Clone)]
pub struct Acceptors {
    default: monoio_rustls::TlsAcceptor,
    sets: Arc<OptionSets>,
}

struct OptionSets {
    acceptors: Vec<monoio_rustls::TlsAcceptor>,
    exact: HashMap<String, usize>,
    wildcard: HashMap<String, usize>,
}

impl Acceptors {
    /// Whether the acceptor depends on the SNI (then the ClientHello is read first).
    pub fn by_sni(&self) -> bool {
        !self.sets.acceptors.is_empty()
    }

    /// The acceptor for a connection with this SNI.
    pub fn for_sni(&self, sni: Option<&str>) -> &monoio_rustls::TlsAcceptor {
        let sets = &*self.sets;
        sni.and_then(|n| by_name(&sets.exact, &sets.wildcard, n))
            .map_or(&self.default, |&i| &sets.acceptors[i])
    }
}

/// Builds the acceptors for a table. A certificate the data plane cannot load is logged and
/// skipped; the others keep serving.
/// `acme_alpn` holds the tls-alpn-01 challenge certificates being validated.
pub fn build(
    spec: &TlsSpec,
    acme_alpn: &[CertificateSpec],
    generated: &Arc<CertifiedKey>,
) -> Result<Acceptors, TlsError> {
    let mut exact = HashMap::new();
    let mut wildcard = HashMap::new();
    for c in &spec.certificates {
        let ck = match from_spec(c) {
            Ok(ck) => ck,
            Err(e) => {
                tracing::error!(error = %e, "certificate skipped");
                continue;
            }
        };
        for name in &c.names {
            match name.strip_prefix("*.") {
                // The first certificate configured for a name wins, as in Traefik.
                Some(parent) => {
                    wildcard
                        .entry(parent.to_string())
                        .or_insert_with(|| ck.clone());
                }
                None => {
                    exact.entry(name.clone()).or_insert_with(|| ck.clone());
                }
            }
        }
    }
    let default = match &spec.default_certificate {
        Some(c) => from_spec(c).unwrap_or_else(|e| {
            tracing::error!(error = %e, "default certificate skipped; serving the generated one");
            generated.clone()
        }),
        None => generated.clone(),
    };
    let mut alpn_certs = HashMap::new();
    for c in acme_alpn {
        match from_spec(c) {
            Ok(ck) => {
                for name in &c.names {
                    alpn_certs.insert(name.to_ascii_lowercase(), ck.clone());
                }
            }
            Err(e) => tracing::error!(error = %e, "ACME challenge certificate skipped"),
        }
    }
    let certs = Arc::new(Certs {
        exact,
        wildcard,
        default,
        acme_alpn: alpn_certs,
    });
    let mut sets = OptionSets {
        acceptors: Vec::with_capacity(spec.sni_options.len()),
        exact: HashMap::new(),
        wildcard: HashMap::new(),
    };
    for set in &spec.sni_options {
        let i = sets.acceptors.len();
        sets.acceptors.push(acceptor(&set.options, &certs)?);
        for host in &set.hosts {
            let host = host.to_ascii_lowercase();
            match host.strip_prefix("*.") {
                Some(parent) => sets.wildcard.insert(parent.to_string(), i),
                None => sets.exact.insert(host, i),
            };
        }
    }
    Ok(Acceptors {
        default: acceptor(&spec.options, &certs)?,
        sets: Arc::new(sets),
    })
}

/// One rustls server configuration: an options set over the table's certificates.
fn acceptor(
    options: &TlsOptionsSpec,
    certs: &Arc<Certs>,
) -> Result<monoio_rustls::TlsAcceptor, TlsError> {
    let resolver = SniResolver {
        strict: options.sni_strict,
        certs: certs.clone(),
    };
    let mut provider = rustls::crypto::ring::default_provider();
    if !options.cipher_suites.is_empty() {
        provider.cipher_suites.retain(|s| {
            let name = format!("{:?}", s.suite());
            name.starts_with("TLS13_") || options.cipher_suites.contains(&name)
        });
    }
    let provider = Arc::new(provider);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (options.min_version..=options.max_version).contains(v))
            .map(|(_, p)| p)
            .collect();
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
    let builder = match options.client_auth.kind {
        ClientAuthKind::NoClientCert => builder.with_no_client_auth(),
        kind => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in &options.client_auth.ca_certs {
                roots.add(CertificateDer::from(ca.clone()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            let verifier = if kind == ClientAuthKind::VerifyClientCertIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::ClientAuth(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = options
        .alpn_protocols
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect();
    if !certs.acme_alpn.is_empty() {
        // Last: a client that offers it with others never gets it.
        config
            .alpn_protocols
            .push(ACME_TLS_ALPN.as_bytes().to_vec());
    }
    Ok(monoio_rustls::TlsAcceptor::from(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_for(names: &[&str]) -> CertificateSpec {
        let key = rcgen::KeyPair::generate().expect("key");
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        let cert = params.self_signed(&key).expect("cert");
        CertificateSpec {
            source: format!("{names:?}"),
            names: names.iter().map(|s| s.to_string()).collect(),
            chain: vec![cert.der().to_vec()],
            key: key.serialize_der(),
        }
    }

    #[test]
    fn sni_selects_exact_then_wildcard_then_default() {
        let generated = generate_default().expect("default");
        let a = cert_for(&["a.example.com"]);
        let wild = cert_for(&["*.example.com"]);
        let spec = TlsSpec {
            certificates: vec![a.clone(), wild.clone()],
            ..Default::default()
        };
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        let ca = from_spec(&a).expect("a");
        let cw = from_spec(&wild).expect("wild");
        exact.insert("a.example.com".to_string(), ca.clone());
        wildcard.insert("example.com".to_string(), cw.clone());
        let mut r = SniResolver {
            strict: false,
            certs: Arc::new(Certs {
                exact,
                wildcard,
                default: generated.clone(),
                acme_alpn: HashMap::new(),
            }),
        };
        assert!(Arc::ptr_eq(
            &r.pick(Some("A.Example.COM.")).expect("cert"),
            &ca
        ));
        assert!(Arc::ptr_eq(
            &r.pick(Some("b.example.com")).expect("cert"),
            &cw
        ));
        assert!(Arc::ptr_eq(
            &r.pick(Some("x.b.example.com")).expect("cert"),
            &generated
        ));
        assert!(Arc::ptr_eq(
            &r.pick(Some("other.org")).expect("cert"),
            &generated
        ));
        assert!(Arc::ptr_eq(&r.pick(None).expect("cert"), &generated));
        r.strict = true;
        assert!(r.pick(Some("other.org")).is_none());
        assert!(r.pick(None).is_none());
        assert!(r.pick(Some("b.example.com")).is_some());
        assert!(build(&spec, &[], &generated).is_ok());
    }

    #[test]
    fn a_broken_certificate_is_skipped_not_fatal() {
        let generated = generate_default().expect("default");
        let mut bad = cert_for(&["bad.example.com"]);
        bad.key = vec![1, 2, 3];
        let spec = TlsSpec {
            certificates: vec![bad, cert_for(&["good.example.com"])],
            ..Default::default()
        };
        assert!(build(&spec, &[], &generated).is_ok());
    }
}

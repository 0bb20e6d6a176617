//! Connections to a store: TCP with a deadline, optionally TLS (rustls; the CA bundle from
//! `tls.ca`, a client certificate from `tls.cert`/`tls.key`, or no verification with
//! `tls.insecureSkipVerify`).

use super::KvError;
use ringway_shared::config::static_config::KvTls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// How long one connection attempt may take (TCP and TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A byte stream to a store, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type Stream = Box<dyn Io>;

/// Connects to the first endpoint that answers.
pub async fn connect_any(endpoints: &[String], tls: Option<&KvTls>) -> Result<Stream, KvError> {
    let mut last = KvError::Config("no endpoint configured".into());
    for endpoint in endpoints {
        match tokio::time::timeout(CONNECT_TIMEOUT, connect(endpoint, tls)).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => last = e,
            Err(_) => {
                last = KvError::Connect {
                    endpoint: endpoint.clone(),
                    message: "timed out".into(),
                }
            }
        }
    }
    Err(last)
}

async fn connect(endpoint: &str, tls: Option<&KvTls>) -> Result<Stream, KvError> {
    let err = |message: String| KvError::Connect {
        endpoint: endpoint.to_string(),
        message,
    };
    let tcp = TcpStream::connect(endpoint)
        .await
        .map_err(|e| err(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let Some(tls) = tls else {
        return Ok(Box::new(tcp));
    };
    let config = client_config(tls)?;
    let host = endpoint
        .rsplit_once(':')
        .map_or(endpoint, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| err(format!("invalid TLS server name {host:?}: {e}")))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| err(format!("TLS handshake: {e}")))?;
    Ok(Box::new(stream))
}

fn client_config(tls: &KvTls) -> Result<rustls::ClientConfig, KvError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| KvError::Tls(e.to_string()))?;
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(accept_any_verifier(provider))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let Some(ca) = &tls.ca else {
            return Err(KvError::Tls(
                "tls.ca is required (the system bundle is not loaded), or tls.insecureSkipVerify"
                    .into(),
            ));
        };
        for cert in read_certs(ca)? {
            roots
                .add(cert)
                .map_err(|e| KvError::Tls(format!("{}: {e}", ca.display())))?;
        }
        builder.with_root_certificates(roots)
    };
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let certs = read_certs(cert)?;
            let pem =
                std::fs::read(key).map_err(|e| KvError::Tls(format!("{}: {e}", key.display())))?;
            let key_der = rustls_pemfile::private_key(&mut pem.as_slice())
                .map_err(|e| KvError::Tls(format!("{}: {e}", key.display())))?
                .ok_or_else(|| KvError::Tls(format!("{}: no private key", key.display())))?;
            builder
                .with_client_auth_cert(certs, key_der)
                .map_err(|e| KvError::Tls(e.to_string()))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

fn read_certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, KvError> {
    let pem = std::fs::read(path).map_err(|e| KvError::Tls(format!("{}: {e}", path.display())))?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut pem.as_slice()).collect();
    let certs = certs.map_err(|e| KvError::Tls(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(KvError::Tls(format!(
            "{}: no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// `insecureSkipVerify`: any certificate is accepted, signatures are still checked. (Also the
/// end-to-end tests' client, which checks *which* certificate a server presents.)
pub fn accept_any_verifier(
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Arc<dyn ServerCertVerifier> {
    Arc::new(NoVerify(provider))
}

#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

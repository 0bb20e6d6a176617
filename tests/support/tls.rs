//! A rustls client for tests that check *which* certificate a server presents: it accepts
//! any certificate (signatures are still verified).

use rustls::pki_types::CertificateDer;
use rustls::ClientConfig;
use std::sync::Arc;

/// A client configuration that accepts any server certificate.
pub fn accept_any_client() -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(ringway_controlplane::kv::accept_any_verifier(provider))
        .with_no_client_auth();
    Arc::new(config)
}

/// A client that accepts any server certificate, speaks only `versions`, offers `alpn`, and
/// presents `client_cert` (chain, PKCS#8 key) when given.
pub fn custom_client(
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&str],
    client_cert: Option<(Vec<Vec<u8>>, Vec<u8>)>,
) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(ringway_controlplane::kv::accept_any_verifier(provider));
    let mut config = match client_cert {
        Some((chain, key)) => builder
            .with_client_auth_cert(
                chain.into_iter().map(CertificateDer::from).collect(),
                rustls::pki_types::PrivateKeyDer::try_from(key).expect("key"),
            )
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Arc::new(config)
}

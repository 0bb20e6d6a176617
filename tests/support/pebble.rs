//! A real ACME CA for tests: Debian's `pebble`, with `pebble-challtestsrv` as its DNS server
//! (every name resolves to 127.0.0.1), both on loopback ports of their own. Pebble validates
//! http-01 on `http_port` and tls-alpn-01 on `tls_port`: point them at ringway's entry points.

use super::{free_port, wait_until, TestDir};
use rustls::pki_types::{CertificateDer, ServerName};
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

pub struct Pebble {
    pebble: Option<Child>,
    dns: Child,
    /// The ACME directory URL.
    pub directory: String,
    /// PEM of the CA that signed Pebble's own HTTPS certificate (ringway's `caCertificates`).
    pub tls_ca_path: PathBuf,
    tls_ca_der: Vec<u8>,
    management_port: u16,
    log_path: PathBuf,
}

fn spawn(cmd: &mut Command, log: &PathBuf) -> Child {
    let out = File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e} (scripts/test installs pebble)"))
}

impl Pebble {
    /// Starts challtestsrv and pebble; returns once the directory answers.
    pub fn start(dir: &TestDir, http_port: u16, tls_port: u16) -> Pebble {
        Pebble::start_with(dir, http_port, tls_port, None)
    }

    /// As [`Pebble::start`]; with `eab = (kid, base64url HMAC key)`, accounts need that
    /// external account binding.
    pub fn start_with(
        dir: &TestDir,
        http_port: u16,
        tls_port: u16,
        eab: Option<(&str, &str)>,
    ) -> Pebble {
        // Pebble's HTTPS certificate, from a CA of our own.
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pebble test CA");
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let cert = params.signed_by(&key, &issuer).expect("cert");
        let tls_ca_path = dir.join("pebble-ca.pem");
        std::fs::write(&tls_ca_path, ca.pem()).expect("write");
        let cert_path = dir.join("pebble-cert.pem");
        let key_path = dir.join("pebble-key.pem");
        std::fs::write(&cert_path, cert.pem()).expect("write");
        std::fs::write(&key_path, key.serialize_pem()).expect("write");

        let dns_port = free_port();
        let dns = spawn(
            Command::new("pebble-challtestsrv").args([
                "-dns01",
                &format!("127.0.0.1:{dns_port}"),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                &format!("127.0.0.1:{}", free_port()),
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
            ]),
            &dir.join("challtestsrv.log"),
        );

        let acme_port = free_port();
        let management_port = free_port();
        let config = dir.join("pebble.json");
        std::fs::write(
            &config,
            serde_json::json!({
                "pebble": {
                    "listenAddress": format!("127.0.0.1:{acme_port}"),
                    "managementListenAddress": format!("127.0.0.1:{management_port}"),
                    "certificate": cert_path,
                    "privateKey": key_path,
                    "httpPort": http_port,
                    "tlsPort": tls_port,
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": eab.is_some(),
                    "externalAccountMACKeys": eab
                        .map(|(kid, key)| serde_json::json!({ kid: key }))
                        .unwrap_or_else(|| serde_json::json!({}))
                }
            })
            .to_string(),
        )
        .expect("write");
        let log_path = dir.join("pebble.log");
        let pebble = spawn(
            Command::new("pebble")
                .args(["-config"])
                .arg(&config)
                .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                .env("PEBBLE_AUTHZREUSE", "0"),
            &log_path,
        );
        let p = Pebble {
            pebble: Some(pebble),
            dns,
            directory: format!("https://127.0.0.1:{acme_port}/dir"),
            tls_ca_path,
            tls_ca_der: ca.der().to_vec(),
            management_port,
            log_path,
        };
        let up = wait_until(Duration::from_secs(20), || {
            p.get(acme_port, "/dir")
                .is_some_and(|b| b.contains("newOrder"))
        });
        assert!(up, "pebble did not start:\n{}", p.logs());
        let mut p = p;
        if let Ok(Some(status)) = p.dns.try_wait() {
            panic!(
                "pebble-challtestsrv exited ({status}):\n{}",
                std::fs::read_to_string(dir.join("challtestsrv.log")).unwrap_or_default()
            );
        }
        p
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Orders pebble accepted so far (one log line per new order).
    pub fn orders(&self) -> usize {
        self.logs()
            .lines()
            .filter(|l| l.contains("POST /order-plz"))
            .count()
    }

    /// The root that signs the certificates pebble issues (regenerated at every start).
    pub fn issuing_root_der(&self) -> Vec<u8> {
        let pem = self
            .get(self.management_port, "/roots/0")
            .expect("pebble root");
        let der = rustls_pemfile::certs(&mut pem.as_bytes())
            .next()
            .expect("a PEM certificate")
            .expect("PEM");
        der.as_ref().to_vec()
    }

    /// Stops pebble (challtestsrv stays): the CA becomes unreachable.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.pebble.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A GET over HTTPS trusting our CA; the body.
    fn get(&self, port: u16, path: &str) -> Option<String> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.tls_ca_der.clone()))
            .ok()?;
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = ServerName::try_from("localhost").ok()?;
        let conn = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
        let sock = TcpStream::connect(("127.0.0.1", port)).ok()?;
        sock.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut tls = rustls::StreamOwned::new(conn, sock);
        tls.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .ok()?;
        let mut out = Vec::new();
        let _ = tls.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_string())
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
        let _ = self.dns.kill();
        let _ = self.dns.wait();
    }
}

/// Connects with `sni` trusting only `root`; returns the served leaf and the HTTP status of
/// `GET /`.
pub fn verified(port: u16, sni: &str, root: &[u8]) -> Result<(Vec<u8>, u16), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(root.to_vec()))
        .map_err(|e| e.to_string())?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    exchange(port, sni, Arc::new(config))
}

/// As [`verified`], accepting any certificate.
pub fn served(port: u16, sni: &str) -> Result<(Vec<u8>, u16), String> {
    exchange(port, sni, super::tls::accept_any_client())
}

fn exchange(
    port: u16,
    sni: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<(Vec<u8>, u16), String> {
    let name = ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let sock = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(format!("GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match tls.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => return Err(e.to_string()),
    }
    let leaf = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .ok_or("no certificate")?;
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP response: {text:?}"))?;
    Ok((leaf, status))
}

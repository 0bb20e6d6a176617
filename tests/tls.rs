//! End to end: TLS termination with certificates from the dynamic configuration, SNI
//! selection (exact, wildcard, default), the generated default certificate, TLS-only and
//! plain-only routers on one entry point, and X-Forwarded-Proto, with a real rustls client.

mod support;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use support::{lb_service, router, Origin, Proxy, Ringway, TestDir};

struct TlsReply {
    cert: Vec<u8>,
    response: String,
}

/// Connects with `sni`, sends one request for `host`, and returns the served certificate and
/// the raw response.
fn tls_get(addr: SocketAddr, sni: &str, host: &str, path: &str) -> Result<TlsReply, String> {
    let name = ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
    let conn = ClientConnection::new(support::tls::accept_any_client(), name)
        .map_err(|e| e.to_string())?;
    let sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut tls = StreamOwned::new(conn, sock);
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut out = Vec::new();
    match tls.read_to_end(&mut out) {
        Ok(_) => {}
        // A peer closing without close_notify still delivered the response.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => return Err(format!("read: {e}")),
    }
    let cert = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .ok_or("no peer certificate")?;
    Ok(TlsReply {
        cert,
        response: String::from_utf8_lossy(&out).into_owned(),
    })
}

struct CertFiles {
    der: Vec<u8>,
    cert_path: String,
    key_path: String,
}

fn make_cert(dir: &TestDir, name: &str, sans: &[&str]) -> CertFiles {
    let key = rcgen::KeyPair::generate().expect("key");
    let params =
        rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
    let cert = params.self_signed(&key).expect("cert");
    let cert_path = dir.join(&format!("{name}.crt"));
    let key_path = dir.join(&format!("{name}.key"));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    CertFiles {
        der: cert.der().to_vec(),
        cert_path: cert_path.display().to_string(),
        key_path: key_path.display().to_string(),
    }
}

fn status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn terminates_tls_with_sni_selection_and_separates_tls_and_plain_routers() {
    let certs_dir = TestDir::new("tls-certs");
    let a = make_cert(&certs_dir, "a", &["a.test"]);
    let wild = make_cert(&certs_dir, "wild", &["*.wild.test"]);
    let origin = Origin::start("o");
    let cfg = format!(
        "{}tls = {{}}\n{}{}\
         [[tls.certificates]]\ncertFile = \"{}\"\nkeyFile = \"{}\"\n\
         [[tls.certificates]]\ncertFile = \"{}\"\nkeyFile = \"{}\"\n",
        router(
            "secure",
            "Host(`a.test`) || HostRegexp(`^.+\\\\.wild\\\\.test$`)",
            "s"
        ),
        router("plain", "Host(`plain.test`)", "s"),
        lb_service("s", &[&origin]),
        a.cert_path,
        a.key_path,
        wild.cert_path,
        wild.key_path,
    );
    let p = Proxy::start("tls", &cfg, &[]);
    p.wait_routed("plain.test", "/", "o");

    // Exact SNI → its certificate; the TLS router serves; the origin sees https.
    let deadline = Instant::now() + Duration::from_secs(10);
    let r = loop {
        match tls_get(p.addr, "a.test", "a.test", "/hello") {
            Ok(r) if status(&r.response) == 200 && r.cert == a.der => break r,
            other if Instant::now() > deadline => panic!(
                "TLS router never served a.test with its certificate: {:?}\n{}",
                other.map(|r| r.response),
                p.ringway.logs()
            ),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    assert!(r.response.contains("\"origin\":\"o\""), "{}", r.response);
    let recorded = origin.requests_to("/hello");
    let last = recorded.last().expect("origin saw the request");
    assert_eq!(
        last.header("x-forwarded-proto"),
        Some("https"),
        "{}",
        last.head
    );
    assert_eq!(
        last.header("x-forwarded-port"),
        Some("443"),
        "{}",
        last.head
    );

    // Wildcard SNI → the wildcard certificate.
    let r = tls_get(p.addr, "x.wild.test", "x.wild.test", "/").expect("wildcard");
    assert_eq!(r.cert, wild.der, "wildcard certificate expected");
    assert_eq!(status(&r.response), 200, "{}", r.response);

    // Unknown SNI → the generated default certificate (Traefik's name for it).
    let r = tls_get(p.addr, "unknown.test", "unknown.test", "/").expect("default");
    assert!(
        contains(&r.cert, b"TRAEFIK DEFAULT CERT"),
        "default certificate expected"
    );
    assert_eq!(status(&r.response), 404, "{}", r.response);

    // A router without `tls` is not served over TLS, and a TLS router not over plain HTTP.
    let r = tls_get(p.addr, "plain.test", "plain.test", "/").expect("plain over tls");
    assert_eq!(
        status(&r.response),
        404,
        "plain router over TLS: {}",
        r.response
    );
    let plain = p.get("a.test", "/");
    assert_eq!(
        plain.status,
        404,
        "TLS router over plain HTTP: {}",
        plain.text()
    );
    assert_eq!(p.get("plain.test", "/").status, 200);
}

#[test]
fn a_bad_certificate_is_reported_with_its_file_and_the_others_keep_serving() {
    let certs_dir = TestDir::new("tls-bad");
    let good = make_cert(&certs_dir, "good", &["good.test"]);
    let other = make_cert(&certs_dir, "other", &["other.test"]);
    let broken = certs_dir.join("broken.crt");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let origin = Origin::start("o");
    let cfg = format!(
        "{}tls = {{}}\n{}\
         [[tls.certificates]]\ncertFile = \"{}\"\nkeyFile = \"{}\"\n\
         [[tls.certificates]]\ncertFile = \"{}\"\nkeyFile = \"{}\"\n\
         [[tls.certificates]]\ncertFile = \"{}\"\nkeyFile = \"{}\"\n",
        router("secure", "Host(`good.test`)", "s"),
        lb_service("s", &[&origin]),
        broken.display(),
        good.key_path,
        // A key that is not this certificate's.
        good.cert_path,
        other.key_path,
        good.cert_path,
        good.key_path,
    );
    let dir = TestDir::new("tls-bad-check");
    let dynamic = dir.join("dynamic.toml");
    std::fs::write(&dynamic, &cfg).expect("write dynamic");
    let (code, _out, err) = Ringway::run(
        &[
            "check".to_string(),
            "--entrypoints.web.address=127.0.0.1:0".to_string(),
            format!("--providers.file.filename={}", dynamic.display()),
        ],
        Duration::from_secs(20),
    );
    assert_eq!(code.code(), Some(1), "check must fail: {err}");
    assert!(
        err.contains(&broken.display().to_string()),
        "names the broken file: {err}"
    );
    assert!(
        err.contains("is not the private key of"),
        "names the mismatched pair: {err}"
    );

    let p = Proxy::start("tls-bad", &cfg, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tls_get(p.addr, "good.test", "good.test", "/") {
            Ok(r) if r.cert == good.der && status(&r.response) == 200 => break,
            other if Instant::now() > deadline => panic!(
                "the good certificate is not served: {:?}\n{}",
                other.map(|r| r.response),
                p.ringway.logs()
            ),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A TLS router for `a.test` to `origin` with `cert` in `tls.certificates`, plus `extra`
/// dynamic configuration.
fn a_test_config(origin: &Origin, cert: &CertFiles, extra: &str) -> String {
    format!(
        "{}tls = {{}}\n{}\
         [[tls.certificates]]\ncertFile = \"{}\"\nkeyFile = \"{}\"\n{extra}",
        router("secure", "Host(`a.test`)", "s"),
        lb_service("s", &[origin]),
        cert.cert_path,
        cert.key_path,
    )
}

/// Waits until `a.test` is served with the certificate `der`.
fn served_with(p: &Proxy, der: &[u8], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tls_get(p.addr, "a.test", "a.test", "/") {
            Ok(r) if r.cert == der => return,
            other if Instant::now() > deadline => panic!(
                "{what}: never served the expected certificate (last: {:?})\n{}",
                other.map(|r| r.response),
                p.ringway.logs()
            ),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

#[test]
fn certificate_files_changed_on_disk_are_reloaded_and_a_broken_one_keeps_the_last() {
    let certs_dir = TestDir::new("tls-reload");
    let first = make_cert(&certs_dir, "a", &["a.test"]);
    let origin = Origin::start("o");
    let p = Proxy::start("tls-reload", &a_test_config(&origin, &first, ""), &[]);
    served_with(&p, &first.der, "at start");

    // Renewed in place (same file names, new key and certificate, as certbot or a
    // cert-manager sidecar do): served without a restart or a configuration change.
    let renewed = make_cert(&certs_dir, "a", &["a.test"]);
    assert_ne!(renewed.der, first.der);
    served_with(&p, &renewed.der, "after the files changed");

    // A broken file (half written, or the wrong key): an error naming it, and the last good
    // certificate keeps serving.
    std::fs::write(&renewed.cert_path, "-----BEGIN CERTIFICATE-----\ngarbage\n").expect("write");
    let logged = support::wait_until(Duration::from_secs(10), || {
        p.ringway
            .logs()
            .contains("the previous certificate keeps serving")
    });
    assert!(logged, "no error for the broken file\n{}", p.ringway.logs());
    assert!(p.ringway.logs().contains(&renewed.cert_path));
    for _ in 0..5 {
        let r = tls_get(p.addr, "a.test", "a.test", "/").expect("handshake");
        assert_eq!(r.cert, renewed.der, "the last good certificate is served");
        assert_eq!(status(&r.response), 200);
    }
}

/// Completes a handshake with `config` and `sni`; returns the negotiated ALPN protocol.
fn handshake(
    addr: SocketAddr,
    config: std::sync::Arc<rustls::ClientConfig>,
    sni: &str,
) -> Result<Option<Vec<u8>>, String> {
    let name = ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
    let mut conn = ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let mut sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    }
    // TLS 1.3 reports a refused client certificate after the client's Finished: read once.
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = [0u8; 64];
    let n = tls.read(&mut buf).map_err(|e| format!("read: {e}"))?;
    if !buf[..n].starts_with(b"HTTP/1.1 ") {
        return Err(format!("no HTTP response: {:?}", &buf[..n]));
    }
    Ok(conn.alpn_protocol().map(|p| p.to_vec()))
}

#[test]
fn default_tls_options_apply_versions_alpn_sni_strict_and_client_auth() {
    let dir = TestDir::new("tls-options");
    let a = make_cert(&dir, "a", &["a.test"]);
    // A test CA and a client certificate it signed; another self-signed client certificate.
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ringway test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca =
        rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().expect("key"))
            .expect("ca");
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).expect("write ca");
    let client_key = rcgen::KeyPair::generate().expect("key");
    let client = rcgen::CertificateParams::new(vec!["client.test".to_string()])
        .expect("params")
        .signed_by(&client_key, &ca)
        .expect("client cert");
    let good = Some((vec![client.der().to_vec()], client_key.serialize_der()));
    let stray_key = rcgen::KeyPair::generate().expect("key");
    let stray = rcgen::CertificateParams::new(vec!["client.test".to_string()])
        .expect("params")
        .self_signed(&stray_key)
        .expect("stray cert");
    let stray = Some((vec![stray.der().to_vec()], stray_key.serialize_der()));

    let origin = Origin::start("o");
    let options = format!(
        "[tls.options.default]\nminVersion = \"VersionTLS13\"\nsniStrict = true\n\
         alpnProtocols = [\"x-test\", \"http/1.1\"]\n\
         [tls.options.default.clientAuth]\ncaFiles = [\"{}\"]\n\
         clientAuthType = \"RequireAndVerifyClientCert\"\n",
        ca_path.display(),
    );
    let cfg = a_test_config(&origin, &a, &options);
    let p = Proxy::start("tls-options", &cfg, &[]);
    use support::tls::custom_client;
    let v13: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    let v12: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

    // TLS 1.3 with a certificate from the CA: served, ALPN negotiated from the options.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match handshake(
            p.addr,
            custom_client(v13, &["x-test"], good.clone()),
            "a.test",
        ) {
            // Until the table is live the defaults serve (no x-test): retry.
            Ok(Some(alpn)) if alpn == b"x-test" => break,
            other if Instant::now() > deadline => {
                panic!("never negotiated x-test: {other:?}\n{}", p.ringway.logs())
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let alpn = handshake(
        p.addr,
        custom_client(v13, &["h2", "http/1.1"], good.clone()),
        "a.test",
    )
    .expect("http/1.1 client");
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    // minVersion 1.3: a TLS 1.2-only client is refused.
    let e = handshake(p.addr, custom_client(v12, &[], good.clone()), "a.test")
        .expect_err("TLS 1.2 refused");
    assert!(
        e.contains("ProtocolVersion") || e.contains("version"),
        "{e}"
    );
    // sniStrict: an unknown name gets no certificate.
    handshake(p.addr, custom_client(v13, &[], good.clone()), "other.test")
        .expect_err("unknown SNI refused");
    // RequireAndVerifyClientCert: no certificate, or one the CA did not sign, is refused.
    handshake(p.addr, custom_client(v13, &[], None), "a.test").expect_err("no client cert");
    handshake(p.addr, custom_client(v13, &[], stray), "a.test").expect_err("stray client cert");
}

#[test]
fn unknown_tls_option_values_are_errors_naming_the_key() {
    let dir = TestDir::new("tls-options-bad");
    let dynamic = dir.join("tls-options.toml");
    std::fs::write(
        &dynamic,
        "[tls.options.default]\nminVersion = \"VersionTLS14\"\n\
         [tls.options.other]\ncipherSuites = [\"TLS_RSA_WITH_RC4_128_SHA\"]\n\
         [tls.options.third]\nsniStrickt = true\n\
         [tls.options.fourth.clientAuth]\nclientAuthType = \"RequireAndVerifyClientCert\"\n",
    )
    .expect("write");
    let args = vec![
        "check".to_string(),
        format!(
            "--entrypoints.web.address=127.0.0.1:{}",
            support::free_port()
        ),
        format!("--providers.file.filename={}", dynamic.display()),
    ];
    let (status, out, err) = Ringway::run(&args, Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    for needle in [
        "tls.options.default.minVersion",
        "VersionTLS14",
        "tls.options.other.cipherSuites[0]",
        "TLS_RSA_WITH_RC4_128_SHA",
        "sniStrickt",
        "tls.options.fourth.clientAuth.caFiles",
        "tls-options.toml",
    ] {
        assert!(err.contains(needle), "stderr lacks {needle}:\n{err}");
    }
}

/// The same checks with the tools operators use: `curl --resolve` trusting the certificate,
/// and `openssl s_client` showing which certificate each SNI gets.
#[test]
fn curl_and_openssl_see_the_configured_and_the_default_certificates() {
    let certs_dir = TestDir::new("tls-cli");
    let a = make_cert(&certs_dir, "a", &["a.test"]);
    let origin = Origin::start("o");
    let p = Proxy::start("tls-cli", &a_test_config(&origin, &a, ""), &[]);
    served_with(&p, &a.der, "at start");
    let port = p.addr.port();

    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert", &a.cert_path])
        .args(["--resolve", &format!("a.test:{port}:127.0.0.1")])
        .args(["-w", "\n%{http_code}"])
        .arg(format!("https://a.test:{port}/from-curl"))
        .output()
        .expect("curl is installed by scripts/test");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.ends_with("\n200"),
        "curl: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(origin.requests_to("/from-curl").len(), 1);

    let s_client = |sni: &str| -> String {
        let out = std::process::Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(["-servername", sni])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl is installed by scripts/test");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let known = s_client("a.test");
    assert!(known.contains("rcgen self signed cert"), "{known}");
    let unknown = s_client("unknown.test");
    assert!(unknown.contains("TRAEFIK DEFAULT CERT"), "{unknown}");
}

#[test]
fn routers_select_named_tls_options_by_host() {
    let certs_dir = TestDir::new("tls-named-options-certs");
    let cert = make_cert(
        &certs_dir,
        "multi",
        &["a.test", "b.test", "c.test", "m.test"],
    );
    let origin = Origin::start("o");
    let routed =
        |name: &str, rule: &str, tls: &str| format!("{}tls = {tls}\n", router(name, rule, "s"));
    let cfg = format!(
        "{}{}{}{}{}{}\
         [[tls.certificates]]\ncertFile = \"{}\"\nkeyFile = \"{}\"\n\
         [tls.options.modern]\nminVersion = \"VersionTLS13\"\n\
         alpnProtocols = [\"x-modern\", \"http/1.1\"]\n",
        routed("a", "Host(`a.test`)", "{ options = \"modern\" }"),
        routed("b", "Host(`b.test`)", "{}"),
        routed("c1", "Host(`c.test`)", "{ options = \"modern\" }"),
        routed("c2", "Host(`c.test`) && Path(`/x`)", "{}"),
        routed("m", "Host(`m.test`)", "{ options = \"missing\" }"),
        lb_service("s", &[&origin]),
        cert.cert_path,
        cert.key_path,
    );
    let p = Proxy::start("tls-named-options", &cfg, &[]);
    use support::tls::custom_client;
    let v13: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    let v12: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

    // a.test: the router's "modern" set (its ALPN list shows it is the one in use).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match handshake(p.addr, custom_client(v13, &["x-modern"], None), "a.test") {
            Ok(Some(alpn)) if alpn == b"x-modern" => break,
            other if Instant::now() > deadline => {
                panic!(
                    "a.test never got its options: {other:?}\n{}",
                    p.ringway.logs()
                )
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let e = handshake(p.addr, custom_client(v12, &[], None), "a.test")
        .expect_err("TLS 1.2 refused on a.test");
    assert!(
        e.contains("ProtocolVersion") || e.contains("version"),
        "{e}"
    );
    // b.test: the default options (TLS 1.2 allowed, no x-modern).
    handshake(p.addr, custom_client(v12, &[], None), "b.test").expect("TLS 1.2 on b.test");
    let alpn = handshake(p.addr, custom_client(v13, &["x-modern"], None), "b.test");
    assert!(alpn.is_err() || alpn == Ok(None), "{alpn:?}");
    // c.test: two routers disagree, so the default applies (with a warning).
    handshake(p.addr, custom_client(v12, &[], None), "c.test").expect("TLS 1.2 on c.test");
    let logs = p.ringway.logs();
    assert!(logs.contains("chose different TLS options"), "{logs}");
    // A router naming options that do not exist is disabled, with the error.
    assert!(logs.contains("unknown TLS options: missing@file"), "{logs}");
    let r = tls_get(p.addr, "m.test", "m.test", "/").expect("m.test handshake");
    assert_eq!(status(&r.response), 404, "{}", r.response);
    let r = tls_get(p.addr, "a.test", "a.test", "/").expect("a.test request");
    assert_eq!(status(&r.response), 200, "{}", r.response);
}

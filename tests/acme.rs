//! End to end against a real ACME CA (Debian's pebble, with pebble-challtestsrv answering
//! every name with 127.0.0.1): http-01 (behind an entry point that redirects everything to
//! https) and tls-alpn-01 issue certificates that a client trusting pebble's root accepts;
//! a router added at run time gets its own (its resolver from the entry point's
//! `http.tls.certResolver`); `acme.json` is Traefik's format, mode 0600, and a
//! restart reuses it without a new order; a Traefik `acme.json` copied over is served at
//! once; a certificate near expiry is renewed; with the CA gone, errors name the domain and
//! the certificates keep serving.

mod support;

use base64::Engine;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;
use support::pebble::{served, verified, Pebble};
use support::{
    free_port, lb_service, wait_for, wait_until, write_dynamic, Origin, Ringway, TestDir,
};

/// Routers `(name, host, resolver)` to `origin`, on websecure with TLS from the resolver.
fn dynamic(origin: &Origin, routers: &[(&str, &str, &str)]) -> String {
    let mut out = lb_service("app", &[origin]);
    for (name, host, resolver) in routers {
        out.push_str(&format!(
            "[http.routers.{name}]\nrule = \"Host(`{host}`)\"\nservice = \"app\"\n\
             entryPoints = [\"websecure\"]\n[http.routers.{name}.tls]\ncertResolver = \"{resolver}\"\n"
        ));
    }
    out
}

/// ringway with `web` (redirecting to websecure) and `websecure`, and two resolvers sharing
/// one `acme.json`: `le` (http-01 on web) and `alpn` (tls-alpn-01).
fn args(http: u16, https: u16, pebble: &Pebble, storage: &Path, dynamic: &Path) -> Vec<String> {
    let mut args = vec![
        format!("--entrypoints.web.address=127.0.0.1:{http}"),
        format!("--entrypoints.websecure.address=127.0.0.1:{https}"),
        "--entrypoints.web.http.redirections.entrypoint.to=websecure".to_string(),
        "--entrypoints.websecure.http.tls.certresolver=le".to_string(),
        format!("--providers.file.filename={}", dynamic.display()),
        "--dataplane.workers=2".to_string(),
        "--log.level=DEBUG".to_string(),
    ];
    for (resolver, challenge) in [
        ("le", "httpchallenge.entrypoint=web"),
        ("alpn", "tlschallenge=true"),
    ] {
        let p = format!("--certificatesresolvers.{resolver}.acme");
        args.extend([
            format!("{p}.email=ops@example.test"),
            format!("{p}.storage={}", storage.display()),
            format!("{p}.caserver={}", pebble.directory),
            format!("{p}.cacertificates={}", pebble.tls_ca_path.display()),
            format!("{p}.keytype=EC256"),
            format!("{p}.{challenge}"),
        ]);
    }
    args
}

fn stored(storage: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(storage).expect("acme.json")).expect("JSON")
}

fn stored_mains(storage: &Path, resolver: &str) -> Vec<String> {
    stored(storage)[resolver]["Certificates"]
        .as_array()
        .map(|certs| {
            certs
                .iter()
                .filter_map(|c| c["domain"]["main"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn http01_and_tls_alpn01_issue_certificates_that_are_stored_and_reused() {
    let dir = TestDir::new("acme-issue");
    let (http, https) = (free_port(), free_port());
    let pebble = Pebble::start(&dir, http, https);
    let root = pebble.issuing_root_der();
    let origin = Origin::start("app");
    let file = dir.join("dynamic.toml");
    let storage = dir.join("acme.json");
    write_dynamic(
        &file,
        &dynamic(&origin, &[("a", "a.test", "le"), ("b", "b.test", "alpn")]),
    );
    let mut argv = args(http, https, &pebble, &storage, &file);
    let metrics_port = free_port();
    argv.extend([
        "--metrics.prometheus=true".to_string(),
        format!("--entrypoints.traefik.address=127.0.0.1:{metrics_port}"),
    ]);
    let r = Ringway::start(&argv);

    let issued = |r: &Ringway, host: &str| {
        wait_for(Duration::from_secs(60), || {
            verified(https, host, &root).ok()
        })
        .unwrap_or_else(|| {
            panic!(
                "no certificate for {host} from pebble\n{}\n--- pebble ---\n{}",
                r.logs(),
                pebble.logs()
            )
        })
    };
    // http-01 passes although web redirects every other request to https.
    let (a_cert, status) = issued(&r, "a.test");
    assert_eq!(status, 200);
    let plain = support::client::http_get(
        format!("127.0.0.1:{http}").parse().expect("addr"),
        "a.test",
        "/",
    )
    .expect("plain GET");
    assert!(
        [301, 308].contains(&plain.status),
        "web redirects: {}",
        plain.status
    );
    // tls-alpn-01.
    let (b_cert, _) = issued(&r, "b.test");
    assert_ne!(a_cert, b_cert);

    // traefik_tls_certs_not_after reports each issued certificate's expiry.
    let metrics_addr = format!("127.0.0.1:{metrics_port}").parse().expect("addr");
    for (host, der) in [("a.test", &a_cert), ("b.test", &b_cert)] {
        let (_, cert) = x509_parser::parse_x509_certificate(der).expect("x509");
        let want = format!(" {}", cert.validity().not_after.timestamp());
        let line = wait_for(Duration::from_secs(10), || {
            let text = support::client::http_get(metrics_addr, "localhost", "/metrics")
                .ok()?
                .text();
            text.lines()
                .find(|l| {
                    l.starts_with("traefik_tls_certs_not_after{")
                        && l.contains(&format!("sans=\"{host}\""))
                })
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no traefik_tls_certs_not_after for {host}\n{}", r.logs()));
        assert!(line.ends_with(&want), "{line} (expected{want})");
    }

    // acme.json: Traefik's layout, mode 0600, both resolvers in one file.
    let mode = std::fs::metadata(&storage)
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let json = stored(&storage);
    assert_eq!(json["le"]["Account"]["Email"], "ops@example.test");
    assert!(json["le"]["Account"]["Registration"]["uri"]
        .as_str()
        .is_some_and(|u| u.starts_with("https://127.0.0.1")));
    assert_eq!(stored_mains(&storage, "le"), ["a.test"]);
    assert_eq!(stored_mains(&storage, "alpn"), ["b.test"]);
    let pem = base64::engine::general_purpose::STANDARD
        .decode(
            json["le"]["Certificates"][0]["certificate"]
                .as_str()
                .expect("certificate"),
        )
        .expect("base64");
    assert!(pem.starts_with(b"-----BEGIN CERTIFICATE-----"));
    assert_eq!(json["le"]["Certificates"][0]["Store"], "default");

    // A router added at run time gets its own certificate; this one has no tls section and
    // gets it from the entry point (--entrypoints.websecure.http.tls.certresolver=le). A TCP
    // router terminating TLS for t.test asks the tls-alpn-01 resolver: its validation
    // handshake (ALPN acme-tls/1) is answered although TCP routers now read every ClientHello.
    let origin_addr = origin.url().trim_start_matches("http://").to_string();
    write_dynamic(
        &file,
        &format!(
            "{}[http.routers.c]\nrule = \"Host(`c.test`)\"\nservice = \"app\"\n\
             entryPoints = [\"websecure\"]\n\
             [tcp.routers.t]\nrule = \"HostSNI(`t.test`)\"\nservice = \"raw\"\n\
             entryPoints = [\"websecure\"]\ntls = {{ certResolver = \"alpn\" }}\n\
             [tcp.services.raw.loadBalancer]\nservers = [{{ address = \"{origin_addr}\" }}]\n",
            dynamic(&origin, &[("a", "a.test", "le"), ("b", "b.test", "alpn")])
        ),
    );
    issued(&r, "c.test");
    issued(&r, "t.test");
    let orders = pebble.orders();
    assert_eq!(orders, 4, "one order per certificate\n{}", pebble.logs());
    assert_eq!(stored_mains(&storage, "alpn"), ["b.test", "t.test"]);

    // A restart serves the stored certificates without a new order.
    drop(r);
    let r = Ringway::start(&argv);
    let again = wait_for(Duration::from_secs(20), || {
        verified(https, "a.test", &root)
            .ok()
            .filter(|(c, _)| *c == a_cert)
    });
    assert!(
        again.is_some(),
        "a.test not served from acme.json\n{}",
        r.logs()
    );
    for host in ["b.test", "c.test", "t.test"] {
        verified(https, host, &root).unwrap_or_else(|e| panic!("{host}: {e}\n{}", r.logs()));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(pebble.orders(), orders, "no new order after a restart");
}

/// A self-signed certificate for `host` valid for `days` more days, as Traefik stores it.
fn stored_cert(host: &str, days: i64) -> (serde_json::Value, Vec<u8>) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec![host.to_string()]).expect("params");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(60);
    params.not_after = now + time::Duration::days(days);
    let cert = params.self_signed(&key).expect("cert");
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    (
        serde_json::json!({
            "domain": { "main": host },
            "certificate": b64(cert.pem().as_bytes()),
            "key": b64(key.serialize_pem().as_bytes()),
            "Store": "default"
        }),
        cert.der().to_vec(),
    )
}

#[test]
fn a_traefik_acme_json_is_served_at_once_renewed_near_expiry_and_kept_when_the_ca_is_down() {
    let dir = TestDir::new("acme-renew");
    let (http, https) = (free_port(), free_port());
    let mut pebble = Pebble::start(&dir, http, https);
    let root = pebble.issuing_root_der();
    let origin = Origin::start("app");
    let file = dir.join("dynamic.toml");
    let storage = dir.join("acme.json");
    // What Traefik leaves: an RSA account (PKCS#1, which ringway cannot sign with: it
    // registers its own) and certificates; f.test has 80 days left, d.test one.
    let (fresh, fresh_der) = stored_cert("f.test", 80);
    let (old, old_der) = stored_cert("d.test", 1);
    let traefik = serde_json::json!({
        "le": {
            "Account": {
                "Email": "ops@example.test",
                "Registration": { "body": { "status": "valid" }, "uri": "https://ca.invalid/acct/1" },
                "PrivateKey": "MIIEowIBAAKCAQEA",
                "KeyType": "4096"
            },
            "Certificates": [fresh, old]
        }
    });
    std::fs::write(&storage, serde_json::to_vec_pretty(&traefik).expect("json")).expect("write");
    std::fs::set_permissions(&storage, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    write_dynamic(
        &file,
        &dynamic(&origin, &[("f", "f.test", "le"), ("d", "d.test", "le")]),
    );
    let r = Ringway::start(&args(http, https, &pebble, &storage, &file));

    // Served from the file as soon as the first table is live, no order needed.
    let f = wait_for(Duration::from_secs(20), || {
        served(https, "f.test")
            .ok()
            .filter(|(c, _)| *c == fresh_der)
    });
    assert!(
        f.is_some(),
        "f.test not served from acme.json\n{}",
        r.logs()
    );
    // d.test is renewed: pebble's certificate replaces the old one.
    let renewed = wait_for(Duration::from_secs(60), || {
        verified(https, "d.test", &root).ok()
    })
    .unwrap_or_else(|| panic!("d.test not renewed\n{}\n{}", r.logs(), pebble.logs()));
    assert_ne!(renewed.0, old_der);
    assert_eq!(
        pebble.orders(),
        1,
        "only d.test was ordered\n{}",
        pebble.logs()
    );
    let mut mains = stored_mains(&storage, "le");
    mains.sort();
    assert_eq!(mains, ["d.test", "f.test"]);

    // The CA goes away: a new router's order fails with an error naming its domain and the
    // reason, and the certificates in hand keep serving.
    pebble.stop();
    write_dynamic(
        &file,
        &dynamic(
            &origin,
            &[
                ("f", "f.test", "le"),
                ("d", "d.test", "le"),
                ("e", "e.test", "le"),
            ],
        ),
    );
    let logged = wait_until(Duration::from_secs(30), || {
        r.stderr().lines().any(|l| {
            l.contains("cannot obtain a certificate")
                && l.contains("e.test")
                && l.contains("127.0.0.1")
        })
    });
    assert!(logged, "no clear error for e.test\n{}", r.logs());
    assert_eq!(
        verified(https, "d.test", &root).expect("d.test").0,
        renewed.0
    );
    assert_eq!(served(https, "f.test").expect("f.test").0, fresh_der);
    // e.test gets the default certificate meanwhile, and its router still answers.
    let (e_cert, status) = served(https, "e.test").expect("e.test");
    assert_eq!(status, 200);
    assert_ne!(e_cert, fresh_der);
}

#[test]
fn external_account_binding_is_sent_and_a_wrong_key_is_a_clear_error() {
    let dir = TestDir::new("acme-eab");
    let (http, https) = (free_port(), free_port());
    let key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let pebble = Pebble::start_with(&dir, http, https, Some(("kid-1", key)));
    let root = pebble.issuing_root_der();
    let origin = Origin::start("app");
    let file = dir.join("dynamic.toml");
    write_dynamic(
        &file,
        &dynamic(&origin, &[("a", "a.test", "le"), ("w", "w.test", "wrong")]),
    );
    let mut argv = args(http, https, &pebble, &dir.join("acme.json"), &file);
    let good = "--certificatesresolvers.le.acme.eab";
    let bad = "--certificatesresolvers.wrong.acme";
    argv.extend([
        format!("{good}.kid=kid-1"),
        format!("{good}.hmacencoded={key}"),
        format!("{bad}.storage={}", dir.join("wrong.json").display()),
        format!("{bad}.caserver={}", pebble.directory),
        format!("{bad}.cacertificates={}", pebble.tls_ca_path.display()),
        format!("{bad}.httpchallenge.entrypoint=web"),
        format!("{bad}.eab.kid=kid-1"),
        format!("{bad}.eab.hmacencoded=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    ]);
    let r = Ringway::start(&argv);
    let a = wait_for(Duration::from_secs(60), || {
        verified(https, "a.test", &root).ok()
    });
    assert!(
        a.is_some(),
        "no certificate with EAB\n{}\n{}",
        r.logs(),
        pebble.logs()
    );
    let logged = wait_until(Duration::from_secs(20), || {
        r.stderr().lines().any(|l| {
            l.contains("cannot obtain a certificate")
                && l.contains("w.test")
                && l.contains("account")
        })
    });
    assert!(logged, "no clear error for the wrong EAB key\n{}", r.logs());
}

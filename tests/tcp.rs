//! End to end: TCP routers. Redis (a real redis-server) through `HostSNI(`*`)`, a
//! server-first protocol that speaks before the client, half-close in each direction, TLS
//! passthrough routed on the ClientHello's SNI to a TLS origin, and TLS terminated by
//! ringway in front of a plain TCP backend.

mod support;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use support::{free_port, Ringway, TestDir};

/// ringway with only the given dynamic config and an entry point `tcp` (no HTTP routers).
fn start(label: &str, dynamic: &str) -> (Ringway, SocketAddr, TestDir) {
    start_with(label, dynamic, &[])
}

fn start_with(label: &str, dynamic: &str, extra: &[&str]) -> (Ringway, SocketAddr, TestDir) {
    let dir = TestDir::new(label);
    let file = dir.join("dynamic.toml");
    std::fs::write(&file, dynamic).expect("write dynamic");
    let port = free_port();
    let mut args = vec![
        format!("--entrypoints.tcp.address=127.0.0.1:{port}"),
        format!("--providers.file.filename={}", file.display()),
        "--dataplane.workers=2".to_string(),
        "--log.level=DEBUG".to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let r = Ringway::start(&args);
    (r, SocketAddr::from(([127, 0, 0, 1], port)), dir)
}

/// Polls `f` until it returns Some, or panics with ringway's logs.
fn eventually<T>(r: &Ringway, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never happened\n{}",
            r.logs()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli is installed by scripts/test");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn redis_through_a_catch_all_tcp_router() {
    let redis_port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &redis_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is installed by scripts/test");
    let _redis = Redis(child);
    let (r, addr, _dir) = start(
        "redis",
        &format!(
            "[tcp.routers.redis]\nentryPoints = [\"tcp\"]\nrule = \"HostSNI(`*`)\"\nservice = \"redis\"\n\
             [tcp.services.redis.loadBalancer]\nservers = [{{ address = \"127.0.0.1:{redis_port}\" }}]\n"
        ),
    );
    let port = addr.port();
    eventually(&r, "PING through ringway", || {
        redis_cli(port, &["ping"]).filter(|o| o == "PONG")
    });
    assert_eq!(
        redis_cli(port, &["set", "ringway", "relayed"]).as_deref(),
        Some("OK")
    );
    assert_eq!(
        redis_cli(redis_port, &["get", "ringway"]).as_deref(),
        Some("relayed"),
        "the write reached redis"
    );
    // A large value both ways (the splice path).
    let big = "x".repeat(3 << 20);
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let cmd = format!(
        "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${}\r\n{big}\r\n*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n",
        big.len()
    );
    s.write_all(cmd.as_bytes()).expect("write");
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    reader.read_line(&mut line).expect("set reply");
    assert_eq!(line, "+OK\r\n");
    line.clear();
    reader.read_line(&mut line).expect("get header");
    assert_eq!(line, format!("${}\r\n", big.len()));
    let mut value = vec![0u8; big.len()];
    reader.read_exact(&mut value).expect("value");
    assert!(value == big.as_bytes(), "3 MiB value differs");

    // redis-benchmark through the router, unpipelined and pipelined: every request completes.
    for pipeline in ["1", "16"] {
        let out = Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args([
                "-t", "get,set", "-n", "2000", "-c", "10", "-P", pipeline, "-q",
            ])
            .args(["--csv"])
            .output()
            .expect("redis-benchmark is installed by scripts/test (redis-tools)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "redis-benchmark -P {pipeline}: {text}"
        );
        for test in ["SET", "GET"] {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("\"{test}\""))),
                "redis-benchmark -P {pipeline} did not complete {test}: {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // The benchmark's keys went through ringway to this redis.
    assert!(redis_cli(redis_port, &["exists", "key:__rand_int__"]).is_some());
}

#[test]
fn server_first_protocols_get_their_greeting_before_the_client_speaks() {
    let origin = TcpListener::bind("127.0.0.1:0").expect("bind");
    let origin_addr = origin.local_addr().expect("addr");
    thread::spawn(move || {
        for s in origin.incoming().flatten() {
            thread::spawn(move || {
                let mut s = s;
                let _ = s.write_all(b"220 smtp.test ESMTP ready\r\n");
                // Then echo lines until EOF, and report the byte count (half-close test).
                let mut total = 0usize;
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => total += n,
                    }
                }
                let _ = s.write_all(format!("250 got {total} bytes after your EOF\r\n").as_bytes());
            });
        }
    });
    let (r, addr, _dir) = start(
        "smtp",
        &format!(
            "[tcp.routers.smtp]\nrule = \"HostSNI(`*`)\"\nservice = \"smtp\"\n\
             [tcp.services.smtp.loadBalancer]\nservers = [{{ address = \"{origin_addr}\" }}]\n"
        ),
    );
    let greeting = eventually(&r, "the greeting", || {
        let mut s = TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).ok()?;
        (n > 0).then(|| (String::from_utf8_lossy(&buf[..n]).into_owned(), s))
    });
    assert_eq!(greeting.0, "220 smtp.test ESMTP ready\r\n");
    // Half-close from the client: the server sees EOF, and its answer still comes back.
    let mut s = greeting.1;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(&[b'a'; 100_000]).expect("send");
    s.shutdown(Shutdown::Write).expect("half-close");
    let mut rest = String::new();
    s.read_to_string(&mut rest)
        .expect("answer after half-close");
    assert_eq!(rest, "250 got 100000 bytes after your EOF\r\n");
}

#[test]
fn tcp_idle_timeout_closes_quiet_relays_but_not_one_way_streams() {
    // The origin echoes lines; after "stream" it sends a tick every 100 ms for 1.5 s.
    let origin = TcpListener::bind("127.0.0.1:0").expect("bind");
    let origin_addr = origin.local_addr().expect("addr");
    thread::spawn(move || {
        for s in origin.incoming().flatten() {
            thread::spawn(move || {
                let mut w = s.try_clone().expect("clone");
                for line in BufReader::new(s).lines() {
                    let Ok(line) = line else { return };
                    if line == "stream" {
                        for _ in 0..15 {
                            thread::sleep(Duration::from_millis(100));
                            if w.write_all(b"tick\n").is_err() {
                                return;
                            }
                        }
                        let _ = w.write_all(b"done\n");
                    } else if w.write_all(format!("{line}\n").as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let (r, addr, _dir) = start_with(
        "tcp-idle",
        &format!(
            "[tcp.routers.echo]\nrule = \"HostSNI(`*`)\"\nservice = \"echo\"\n\
             [tcp.services.echo.loadBalancer]\nservers = [{{ address = \"{origin_addr}\" }}]\n"
        ),
        &["--entrypoints.tcp.transport.respondingTimeouts.tcp.idleTimeout=500ms"],
    );
    let echo = |s: &mut TcpStream, line: &str| -> Option<String> {
        s.write_all(format!("{line}\n").as_bytes()).ok()?;
        let mut got = String::new();
        BufReader::new(s.try_clone().ok()?)
            .read_line(&mut got)
            .ok()?;
        Some(got)
    };
    let mut quiet = eventually(&r, "an echo", || {
        let mut s = TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        (echo(&mut s, "hello")? == "hello\n").then_some(s)
    });
    // Quiet both ways: closed about 500 ms after the last byte.
    let since = Instant::now();
    let mut buf = [0u8; 16];
    let n = quiet.read(&mut buf).unwrap_or(0);
    let waited = since.elapsed();
    assert_eq!(n, 0, "the quiet relay should be closed");
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(4),
        "closed after {waited:?}, expected ~500 ms"
    );
    // The client says nothing for 1.5 s while the server streams: kept open to the end.
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"stream\n").expect("send");
    let lines: Vec<String> = BufReader::new(s)
        .lines()
        .map_while(Result::ok)
        .take_while(|l| l != "done")
        .collect();
    assert_eq!(lines.len(), 15, "{lines:?}\n{}", r.logs());
}

fn cert(names: &[&str]) -> (Vec<u8>, String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
    let c = params.self_signed(&key).expect("cert");
    (c.der().to_vec(), c.pem(), key.serialize_pem())
}

/// A TLS echo server (rustls, in the test) for `name`; answers "tls:<line>".
fn tls_origin(name: &str) -> (SocketAddr, Vec<u8>) {
    let (der, _, _) = cert(&[]);
    let key = rcgen::KeyPair::generate().expect("key");
    let c = rcgen::CertificateParams::new(vec![name.to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let _ = der;
    let der = c.der().to_vec();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(der.clone())],
            PrivateKeyDer::try_from(key.serialize_der()).expect("key"),
        )
        .expect("server config");
    let config = Arc::new(config);
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            let config = config.clone();
            thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, s);
                let mut line = String::new();
                let mut reader = BufReader::new(&mut tls);
                if reader.read_line(&mut line).is_ok() {
                    let _ = tls.write_all(format!("tls:{line}").as_bytes());
                    let _ = tls.flush();
                }
            });
        }
    });
    (addr, der)
}

/// Connects with TLS and `sni`, sends a line, returns (served certificate, answer).
fn tls_exchange(addr: SocketAddr, sni: &str, line: &str) -> Option<(Vec<u8>, String)> {
    let conn = rustls::ClientConnection::new(
        support::tls::accept_any_client(),
        ServerName::try_from(sni.to_string()).ok()?,
    )
    .ok()?;
    let s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut tls = rustls::StreamOwned::new(conn, s);
    tls.write_all(format!("{line}\n").as_bytes()).ok()?;
    let mut answer = String::new();
    let mut reader = BufReader::new(&mut tls);
    reader.read_line(&mut answer).ok()?;
    let cert = tls.conn.peer_certificates()?.first()?.as_ref().to_vec();
    Some((cert, answer))
}

#[test]
fn tls_passthrough_and_termination_route_on_the_client_hello() {
    let (origin_addr, origin_der) = tls_origin("db.test");
    // A plain line-echo backend for the terminated router.
    let plain = TcpListener::bind("127.0.0.1:0").expect("bind");
    let plain_addr = plain.local_addr().expect("addr");
    thread::spawn(move || {
        for s in plain.incoming().flatten() {
            thread::spawn(move || {
                let mut line = String::new();
                let mut reader = BufReader::new(s.try_clone().expect("clone"));
                if reader.read_line(&mut line).is_ok() {
                    let _ = (&s).write_all(format!("plain:{line}").as_bytes());
                }
            });
        }
    });
    let dir = TestDir::new("tls-term-certs");
    let (term_der, term_pem, term_key) = cert(&["term.test"]);
    let cert_file = dir.join("term.crt");
    let key_file = dir.join("term.key");
    std::fs::write(&cert_file, term_pem).expect("cert");
    std::fs::write(&key_file, term_key).expect("key");
    let (r, addr, _d) = start(
        "tls-tcp",
        &format!(
            "[tcp.routers.db]\nrule = \"HostSNI(`db.test`)\"\nservice = \"db\"\n[tcp.routers.db.tls]\npassthrough = true\n\
             [tcp.routers.term]\nrule = \"HostSNI(`term.test`)\"\nservice = \"plain\"\n[tcp.routers.term.tls]\n\
             [tcp.services.db.loadBalancer]\nservers = [{{ address = \"{origin_addr}\" }}]\n\
             [tcp.services.plain.loadBalancer]\nservers = [{{ address = \"{plain_addr}\" }}]\n\
             [[tls.certificates]]\ncertFile = \"{}\"\nkeyFile = \"{}\"\n",
            cert_file.display(),
            key_file.display()
        ),
    );
    // Passthrough: the origin's own certificate, end to end encryption.
    // Until the first table arrives the connection is served as HTTPS: wait for the route.
    let (cert, answer) = eventually(&r, "passthrough", || {
        tls_exchange(addr, "db.test", "hello").filter(|(_, a)| a.starts_with("tls:"))
    });
    assert_eq!(
        cert, origin_der,
        "passthrough must present the origin's certificate"
    );
    assert_eq!(answer, "tls:hello\n");
    // Termination: ringway's configured certificate, plain bytes to the backend.
    let (cert, answer) = eventually(&r, "termination", || {
        tls_exchange(addr, "term.test", "hi").filter(|(_, a)| a.starts_with("plain:"))
    });
    assert_eq!(
        cert, term_der,
        "termination must present the configured certificate"
    );
    assert_eq!(answer, "plain:hi\n");
}

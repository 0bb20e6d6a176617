//! End to end: HTTP/1.1 routing and forwarding through the real `ringway` binary to real
//! origins, as Traefik v3 does it.

mod support;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::{
    chunk_payload, free_port, lb_service, pattern_bytes, router, rss_kib, Cksum, Origin, Proxy,
    RecordedRequest, Response, StopOnDrop,
};

/// A router with an explicit priority.
fn router_priority(name: &str, rule: &str, service: &str, priority: i64) -> String {
    format!("{}priority = {priority}\n", router(name, rule, service))
}

/// Asserts `r` is a 200 from origin `origin`.
fn assert_routed(r: &Response, origin: &str, what: &str) {
    assert_eq!(
        (r.status, r.origin()),
        (200, Some(origin)),
        "{what}: expected 200 from origin {origin}, body {:?}",
        r.text()
    );
}

fn assert_not_found(r: &Response, what: &str) {
    assert_eq!(r.status, 404, "{what}: expected 404, body {:?}", r.text());
    assert_eq!(
        r.text().trim_end(),
        "404 page not found",
        "{what}: 404 body"
    );
}

/// The single request the origin received for `path` (exact target).
fn only_request(origin: &Origin, target: &str) -> RecordedRequest {
    let reqs: Vec<_> = origin
        .requests()
        .into_iter()
        .filter(|r| r.target == target)
        .collect();
    assert_eq!(reqs.len(), 1, "requests for {target} at {}", origin.name);
    reqs.into_iter().next().expect("one request")
}

#[test]
fn routes_by_host_case_insensitively_ignoring_port_and_trailing_dot() {
    let a = Origin::start("a");
    let b = Origin::start("b");
    let cfg = [
        router("ra", "Host(`a.test`)", "sa"),
        router("rb", "Host(`b.test`)", "sb"),
        lb_service("sa", &[&a]),
        lb_service("sb", &[&b]),
    ]
    .concat();
    let p = Proxy::start("host", &cfg, &[]);
    p.wait_routed("a.test", "/", "a");

    let with_port = format!("a.test:{}", p.port);
    for host in [
        "a.test",
        "A.TEST",
        "a.Test",
        "a.test:8080",
        with_port.as_str(),
        "a.test.",
    ] {
        assert_routed(&p.get(host, "/x"), "a", &format!("Host {host}"));
    }
    assert_routed(&p.get("B.test:1", "/"), "b", "Host B.test:1");
    for host in ["c.test", "sub.a.test", "a.test.b.test", "aa.test"] {
        assert_not_found(&p.get(host, "/unrouted"), &format!("Host {host}"));
    }
    assert!(
        a.requests_to("/unrouted").is_empty() && b.requests_to("/unrouted").is_empty(),
        "an unmatched request reached an origin"
    );
}

#[test]
fn routes_by_path_prefix_and_path() {
    let a = Origin::start("a");
    let b = Origin::start("b");
    let cfg = [
        router("prefix", "Host(`p.test`) && PathPrefix(`/api`)", "sa"),
        router("exact", "Host(`p.test`) && Path(`/exact`)", "sb"),
        lb_service("sa", &[&a]),
        lb_service("sb", &[&b]),
    ]
    .concat();
    let p = Proxy::start("path", &cfg, &[]);
    p.wait_routed("p.test", "/api", "a");

    for path in ["/api", "/api/", "/api/v1/users?x=1", "/apiary"] {
        assert_routed(&p.get("p.test", path), "a", path);
    }
    for path in ["/exact", "/exact?q=1"] {
        assert_routed(&p.get("p.test", path), "b", path);
    }
    for path in ["/exact/", "/EXACT", "/Api", "/", "/other/api"] {
        assert_not_found(&p.get("p.test", path), path);
    }
    // The path reaches the origin unchanged, query included.
    let r = p.get("p.test", "/api/v1/users?x=1");
    assert_eq!(r.json()["path"], "/api/v1/users");
    assert_eq!(r.json()["query"], "x=1");
}

#[test]
fn routes_by_method_header_query_and_client_ip() {
    let a = Origin::start("a");
    let b = Origin::start("b");
    let cfg = [
        router("m-post", "Host(`m.test`) && Method(`POST`)", "sa"),
        router("m-any", "Host(`m.test`)", "sb"),
        router("hdr", "Host(`h.test`) && Header(`X-Env`, `canary`)", "sa"),
        router("query", "Host(`q.test`) && Query(`mobile`, `true`)", "sa"),
        router(
            "ip-local",
            "Host(`ip.test`) && ClientIP(`127.0.0.1/32`)",
            "sa",
        ),
        router("ip-ten", "Host(`ip2.test`) && ClientIP(`10.0.0.0/8`)", "sa"),
        lb_service("sa", &[&a]),
        lb_service("sb", &[&b]),
    ]
    .concat();
    let p = Proxy::start("matchers", &cfg, &[]);
    p.wait_routed("m.test", "/", "b");

    let mut c = p.connect();
    let post = c.request("POST", "m.test", "/", &[], b"x").expect("POST");
    assert_routed(&post, "a", "POST m.test");
    let put = c.request("PUT", "m.test", "/", &[], b"x").expect("PUT");
    assert_routed(&put, "b", "PUT m.test");
    assert_routed(&c.get("m.test", "/").expect("GET"), "b", "GET m.test");

    let h = |k: &'static str, v: &'static str| {
        let mut c = p.connect();
        c.request("GET", "h.test", "/", &[(k, v)], b"")
            .expect("GET h.test")
    };
    assert_routed(&h("X-Env", "canary"), "a", "X-Env: canary");
    assert_routed(&h("x-env", "canary"), "a", "x-env: canary");
    assert_not_found(&h("X-Env", "canaryx"), "X-Env: canaryx");
    assert_not_found(&h("X-Other", "canary"), "no X-Env");

    for q in ["/?mobile=true", "/p?a=1&mobile=true"] {
        assert_routed(&p.get("q.test", q), "a", q);
    }
    for q in ["/?mobile=false", "/", "/?mobile", "/mobile/true"] {
        assert_not_found(&p.get("q.test", q), q);
    }

    assert_routed(&p.get("ip.test", "/"), "a", "ClientIP 127.0.0.1/32");
    let mut c = p.connect();
    let spoofed = c
        .request(
            "GET",
            "ip2.test",
            "/",
            &[("X-Forwarded-For", "10.1.2.3"), ("X-Real-Ip", "10.1.2.3")],
            b"",
        )
        .expect("GET ip2.test");
    assert_not_found(&spoofed, "ClientIP 10.0.0.0/8 must ignore X-Forwarded-For");
}

#[test]
fn combines_rules_with_not_or_and() {
    let a = Origin::start("a");
    let b = Origin::start("b");
    let cfg = [
        router(
            "logic",
            "Host(`l.test`) && (PathPrefix(`/a`) || PathPrefix(`/b`)) && !Path(`/a/secret`)",
            "sa",
        ),
        router("negate", "Host(`n.test`) && !Header(`X-Block`, `1`)", "sa"),
        // && binds tighter than ||: (Host && Path(/x)) || Path(/only-path).
        router(
            "precedence",
            "Host(`prec.test`) && Path(`/x`) || Path(`/only-path`)",
            "sb",
        ),
        lb_service("sa", &[&a]),
        lb_service("sb", &[&b]),
    ]
    .concat();
    let p = Proxy::start("logic", &cfg, &[]);
    p.wait_routed("l.test", "/a", "a");

    for path in ["/a", "/a/x", "/b", "/bee", "/a/secret/more"] {
        assert_routed(&p.get("l.test", path), "a", path);
    }
    for path in ["/a/secret", "/c", "/"] {
        assert_not_found(&p.get("l.test", path), path);
    }

    assert_routed(&p.get("n.test", "/"), "a", "no X-Block");
    let mut c = p.connect();
    let blocked = c
        .request("GET", "n.test", "/", &[("X-Block", "1")], b"")
        .expect("GET n.test");
    assert_not_found(&blocked, "X-Block: 1");

    assert_routed(&p.get("prec.test", "/x"), "b", "prec.test /x");
    assert_routed(
        &p.get("other.test", "/only-path"),
        "b",
        "other.test /only-path",
    );
    assert_not_found(&p.get("prec.test", "/y"), "prec.test /y");
    assert_not_found(&p.get("other.test", "/x"), "other.test /x");
}

#[test]
fn priority_explicit_default_rule_length_and_name_tie_break() {
    let a = Origin::start("a");
    let b = Origin::start("b");
    let cfg = [
        // Default priority = rule length: the longer rule wins, wherever it is in the file
        // and whatever its name.
        router("a-short", "Host(`p.test`)", "sa"),
        router("z-long", "Host(`p.test`) && PathPrefix(`/api`)", "sb"),
        // Explicit priorities beat rule length.
        router_priority("e-long", "Host(`e.test`) && PathPrefix(`/api`)", "sa", 1),
        router_priority("e-short", "Host(`e.test`)", "sb", 10),
        // An explicit priority above the other rule's length.
        router_priority("d-short", "Host(`d.test`)", "sa", 100),
        router("d-long", "Host(`d.test`) && PathPrefix(`/api`)", "sb"),
        // Equal default priorities (same rule length): the alphabetically first name wins.
        router("tie-b", "Host(`t.test`) && Header(`X-B`, `1`)", "sb"),
        router("tie-a", "Host(`t.test`) && Header(`X-A`, `1`)", "sa"),
        // Equal explicit priorities: same.
        router_priority("u-zulu", "Host(`u.test`) && PathPrefix(`/`)", "sb", 5),
        router_priority("u-alpha", "Host(`u.test`)", "sa", 5),
        lb_service("sa", &[&a]),
        lb_service("sb", &[&b]),
    ]
    .concat();
    let p = Proxy::start("priority", &cfg, &[]);
    p.wait_routed("p.test", "/", "a");

    assert_routed(&p.get("p.test", "/api/x"), "b", "longer rule wins");
    assert_routed(
        &p.get("p.test", "/other"),
        "a",
        "only the short rule matches",
    );
    assert_routed(
        &p.get("e.test", "/api"),
        "b",
        "explicit 10 beats explicit 1",
    );
    assert_routed(
        &p.get("d.test", "/api"),
        "a",
        "explicit 100 beats rule length",
    );

    let tie_headers = [("X-A", "1"), ("X-B", "1")];
    for i in 0..40 {
        // New connections land on either worker; half go over one keep-alive connection.
        let mut c = p.connect();
        let r = c
            .request("GET", "t.test", "/", &tie_headers, b"")
            .expect("GET t.test");
        assert_routed(&r, "a", &format!("default-priority tie, request {i}"));
        assert_routed(
            &p.get("u.test", "/"),
            "a",
            &format!("explicit tie, request {i}"),
        );
    }
    let mut c = p.connect();
    for i in 0..40 {
        let r = c
            .request("GET", "t.test", "/", &tie_headers, b"")
            .expect("GET t.test keep-alive");
        assert_routed(&r, "a", &format!("tie over keep-alive, request {i}"));
    }
}

#[test]
fn keeps_connections_alive_on_both_sides() {
    let a = Origin::start("a");
    let cfg = [router("r", "Host(`k.test`)", "s"), lb_service("s", &[&a])].concat();
    let p = Proxy::start("keepalive", &cfg, &[]);
    p.wait_routed("k.test", "/", "a");

    let before = a.connections();
    let mut c = p.connect();
    for i in 0..100 {
        let path = format!("/req/{i}");
        let r = c
            .get("k.test", &path)
            .unwrap_or_else(|e| panic!("request {i} on the kept-alive connection: {e}"));
        assert_routed(&r, "a", &path);
        assert_eq!(r.json()["path"], path.as_str(), "response {i} out of order");
    }
    let opened = a.connections() - before;
    println!("100 client requests on one connection used {opened} upstream connections");
    assert!(
        opened <= 10,
        "upstream connections are not reused: {opened} opened for 100 requests"
    );
}

#[test]
fn content_length_chunked_and_close_delimited_bodies_arrive_intact() {
    let a = Origin::start("a");
    let cfg = [
        router("r", "Host(`body.test`)", "s"),
        lb_service("s", &[&a]),
    ]
    .concat();
    let p = Proxy::start("bodies", &cfg, &[]);
    p.wait_routed("body.test", "/", "a");

    let mut c = p.connect();
    let r = c.get("body.test", "/bytes/1000000").expect("GET /bytes");
    assert_eq!(r.status, 200);
    assert!(
        r.body == pattern_bytes(1_000_000),
        "Content-Length body differs"
    );

    // Around the response head read (16 KiB: a longer body is left to the pump) and the
    // splice threshold (64 KiB: the head and the bytes read with it go through the pipe).
    for n in [16_000, 16_384, 40_000, 65_535, 65_536, 70_000] {
        let r = c
            .get("body.test", &format!("/bytes/{n}"))
            .expect("GET /bytes/n");
        assert_eq!(r.status, 200);
        assert!(r.body == pattern_bytes(n), "{n}-byte body differs");
    }

    let r = c.get("body.test", "/chunked/50").expect("GET /chunked");
    assert_eq!(r.status, 200);
    let expected: Vec<u8> = (0..50).flat_map(chunk_payload).collect();
    assert_eq!(r.body.len(), expected.len(), "chunked body length");
    assert!(r.body == expected, "chunked body differs");

    let r = c.get("body.test", "/bytes/0").expect("GET /bytes/0");
    assert_eq!((r.status, r.body.len()), (200, 0));

    let r = c.get("body.test", "/close/100000").expect("GET /close");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 100_000, "close-delimited body length");
    assert!(
        r.body == pattern_bytes(100_000),
        "close-delimited body differs"
    );
}

#[test]
fn streams_a_one_gib_chunked_upload_with_bounded_memory() {
    const TOTAL: u64 = 1 << 30;
    const BLOCK: usize = 64 * 1024;
    const RSS_LIMIT_KIB: u64 = 200 * 1024;
    let a = Origin::start("up");
    let cfg = [router("r", "Host(`up.test`)", "s"), lb_service("s", &[&a])].concat();
    let p = Proxy::start("upload", &cfg, &[]);
    p.wait_routed("up.test", "/", "up");

    let pid = p.ringway.pid();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_panic = StopOnDrop(stop.clone());
    let max_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, max_rss) = (stop.clone(), max_rss.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if let Some(kib) = rss_kib(pid) {
                    max_rss.fetch_max(kib, Ordering::SeqCst);
                }
                thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let started = Instant::now();
    let mut c = p.connect();
    c.send(
        b"POST /upload HTTP/1.1\r\nHost: up.test\r\nTransfer-Encoding: chunked\r\n\
          Content-Type: application/octet-stream\r\n\r\n",
    )
    .expect("send upload head");
    // One chunk = size line + 64 KiB block + CRLF; each block starts with its index, so a
    // lost, repeated or reordered block changes the checksum.
    let prefix = format!("{BLOCK:x}\r\n").into_bytes();
    let mut chunk = prefix.clone();
    chunk.extend((0..BLOCK).map(|i| (i * 7 % 251) as u8));
    chunk.extend_from_slice(b"\r\n");
    let mut expected = Cksum::start();
    let mut sent = 0u64;
    for i in 0..TOTAL / BLOCK as u64 {
        chunk[prefix.len()..prefix.len() + 8].copy_from_slice(&i.to_le_bytes());
        expected.update(&chunk[prefix.len()..prefix.len() + BLOCK]);
        c.send(&chunk).unwrap_or_else(|e| {
            panic!(
                "upload write failed after {sent} bytes: {e}\n{}",
                p.ringway.logs()
            )
        });
        sent += BLOCK as u64;
    }
    c.send(b"0\r\n\r\n").expect("send last chunk");
    c.set_read_timeout(Duration::from_secs(120));
    let r = c
        .read_final_response("POST")
        .unwrap_or_else(|e| panic!("no response to the upload: {e}\n{}", p.ringway.logs()));
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    sampler.join().expect("rss sampler");

    let max_rss_kib = max_rss.load(Ordering::SeqCst);
    println!(
        "1 GiB upload through ringway in {elapsed:?}, data plane max RSS {} MiB",
        max_rss_kib / 1024
    );
    assert_eq!(r.status, 200, "upload response: {}", r.text());
    let body = r.json();
    assert_eq!(body["body_bytes"], TOTAL, "byte count at the origin");
    assert_eq!(
        body["body_cksum"],
        expected.finish().as_str(),
        "checksum at the origin"
    );
    assert!(max_rss_kib > 0, "could not read the data plane's VmRSS");
    assert!(
        max_rss_kib < RSS_LIMIT_KIB,
        "data plane RSS reached {} MiB while streaming (limit {} MiB)",
        max_rss_kib / 1024,
        RSS_LIMIT_KIB / 1024
    );
}

#[test]
fn expect_100_continue_gets_an_interim_response_before_the_body() {
    let a = Origin::start("a");
    let cfg = [router("r", "Host(`c.test`)", "s"), lb_service("s", &[&a])].concat();
    let p = Proxy::start("continue", &cfg, &[]);
    p.wait_routed("c.test", "/", "a");

    let mut c = p.connect();
    c.send(
        b"POST /continue HTTP/1.1\r\nHost: c.test\r\nExpect: 100-continue\r\n\
          Content-Length: 11\r\n\r\n",
    )
    .expect("send head");
    c.set_read_timeout(Duration::from_secs(5));
    let interim = c
        .read_response("POST")
        .expect("a 100 Continue while the body is held back");
    assert_eq!(interim.status, 100, "interim response");
    c.send(b"hello world").expect("send body");
    let r = c.read_final_response("POST").expect("final response");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["body_bytes"], 11);
    let rec = only_request(&a, "/continue");
    assert!(
        rec.body_complete && rec.body_len == 11,
        "origin got {rec:?}"
    );

    // The connection is still usable afterwards.
    let r = c.get("c.test", "/after").expect("GET after continue");
    assert_routed(&r, "a", "/after");
}

#[test]
fn head_responses_have_no_body_and_keep_the_connection_usable() {
    let a = Origin::start("a");
    let cfg = [
        router("r", "Host(`head.test`)", "s"),
        lb_service("s", &[&a]),
    ]
    .concat();
    let p = Proxy::start("head", &cfg, &[]);
    p.wait_routed("head.test", "/", "a");

    let mut c = p.connect();
    let r = c
        .request("HEAD", "head.test", "/bytes/1234", &[], b"")
        .expect("HEAD");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some("1234"),
        "HEAD keeps the GET's Content-Length"
    );
    // Had a body followed the HEAD response, this would read it as a status line.
    let r = c.get("head.test", "/bytes/10").expect("GET after HEAD");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, pattern_bytes(10));
}

#[test]
fn no_body_for_204_and_304_and_the_connection_stays_usable() {
    let a = Origin::start("a");
    let cfg = [router("r", "Host(`nb.test`)", "s"), lb_service("s", &[&a])].concat();
    let p = Proxy::start("nobody", &cfg, &[]);
    p.wait_routed("nb.test", "/", "a");

    let mut c = p.connect();
    for code in [204u16, 304] {
        let r = c
            .get("nb.test", &format!("/status/{code}"))
            .unwrap_or_else(|e| panic!("GET /status/{code}: {e}"));
        assert_eq!(r.status, code);
        assert!(
            r.header("transfer-encoding").is_none(),
            "{code} with Transfer-Encoding"
        );
        let r = c
            .get("nb.test", "/bytes/10")
            .unwrap_or_else(|e| panic!("GET after {code}: {e}"));
        assert_eq!((r.status, r.body.clone()), (200, pattern_bytes(10)));
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let a = Origin::start("a");
    let cfg = [
        router("r", "Host(`pipe.test`)", "s"),
        lb_service("s", &[&a]),
    ]
    .concat();
    let p = Proxy::start("pipeline", &cfg, &[]);
    p.wait_routed("pipe.test", "/", "a");

    let mut c = p.connect();
    c.send(
        b"GET /delay/300 HTTP/1.1\r\nHost: pipe.test\r\n\r\n\
          GET /second HTTP/1.1\r\nHost: pipe.test\r\n\r\n\
          GET /third?x=1 HTTP/1.1\r\nHost: pipe.test\r\n\r\n",
    )
    .expect("send three requests in one write");
    for expected in ["/delay/300", "/second", "/third"] {
        let r = c
            .read_response("GET")
            .unwrap_or_else(|e| panic!("response for {expected}: {e}"));
        assert_routed(&r, "a", expected);
        assert_eq!(r.json()["path"], expected, "responses out of order");
    }
}

#[test]
fn websocket_upgrade_relays_bytes_both_ways() {
    let a = Origin::start("a");
    let cfg = [router("r", "Host(`ws.test`)", "s"), lb_service("s", &[&a])].concat();
    let p = Proxy::start("ws", &cfg, &[]);
    p.wait_routed("ws.test", "/", "a");

    let mut c = p.connect();
    c.send(
        b"GET /ws HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .expect("send upgrade");
    let r = c.read_response("GET").expect("upgrade response");
    assert_eq!(r.status, 101, "upgrade status");
    assert_eq!(
        r.header("upgrade").map(str::to_ascii_lowercase).as_deref(),
        Some("websocket")
    );

    c.send(b"hello").expect("send after 101");
    assert_eq!(c.read_exact_bytes(5).expect("echo"), b"hello");

    let big = pattern_bytes(256 * 1024);
    let mut w = c.stream().try_clone().expect("clone stream");
    let to_send = big.clone();
    let writer = thread::spawn(move || w.write_all(&to_send));
    let echoed = c.read_exact_bytes(big.len()).expect("echo of 256 KiB");
    writer.join().expect("writer").expect("write 256 KiB");
    assert!(echoed == big, "echoed bytes differ");

    let rec = only_request(&a, "/ws");
    assert_eq!(rec.header("x-forwarded-proto"), Some("ws"));
    assert_eq!(
        rec.header("upgrade")
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("websocket"),
        "Upgrade forwarded"
    );
    assert!(
        rec.header("connection")
            .is_some_and(|v| v.to_ascii_lowercase().contains("upgrade")),
        "Connection: Upgrade forwarded, head: {}",
        rec.head
    );
}

#[test]
fn sets_forwarded_headers_and_drops_untrusted_client_values() {
    let a = Origin::start("a");
    let cfg = [router("r", "Host(`fw.test`)", "s"), lb_service("s", &[&a])].concat();
    let p = Proxy::start("forwarded", &cfg, &[]);
    p.wait_routed("fw.test", "/", "a");

    let host = format!("fw.test:{}", p.port);
    let mut c = p.connect();
    c.request("GET", &host, "/fw1", &[], b"").expect("GET /fw1");
    let rec = only_request(&a, "/fw1");
    assert_eq!(
        rec.header_all("x-forwarded-for"),
        ["127.0.0.1"],
        "{}",
        rec.head
    );
    assert_eq!(
        rec.header("x-forwarded-proto"),
        Some("http"),
        "{}",
        rec.head
    );
    assert_eq!(
        rec.header("x-forwarded-host"),
        Some(host.as_str()),
        "{}",
        rec.head
    );
    assert_eq!(
        rec.header("x-forwarded-port"),
        Some(p.port.to_string().as_str()),
        "{}",
        rec.head
    );
    assert!(
        rec.header("x-forwarded-server")
            .is_some_and(|s| !s.is_empty()),
        "X-Forwarded-Server: {}",
        rec.head
    );
    assert_eq!(rec.header("x-real-ip"), Some("127.0.0.1"), "{}", rec.head);

    let spoof = [
        ("X-Forwarded-For", "1.2.3.4"),
        ("X-Forwarded-Host", "evil.test"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Port", "443"),
        ("X-Real-Ip", "6.6.6.6"),
    ];
    c.request("GET", "fw.test", "/fw2", &spoof, b"")
        .expect("GET /fw2");
    let rec = only_request(&a, "/fw2");
    assert_eq!(
        rec.header_all("x-forwarded-for"),
        ["127.0.0.1"],
        "{}",
        rec.head
    );
    assert_eq!(
        rec.header("x-forwarded-host"),
        Some("fw.test"),
        "{}",
        rec.head
    );
    assert_eq!(
        rec.header("x-forwarded-proto"),
        Some("http"),
        "{}",
        rec.head
    );
    assert_eq!(rec.header("x-forwarded-port"), Some("80"), "{}", rec.head);
    assert_eq!(rec.header_all("x-real-ip"), ["127.0.0.1"], "{}", rec.head);
}

/// With the client trusted, its X-Forwarded-* values are kept and X-Forwarded-For appended.
fn assert_client_forwarded_headers_kept(label: &str, flag: &str) {
    let a = Origin::start("a");
    let cfg = [router("r", "Host(`fw.test`)", "s"), lb_service("s", &[&a])].concat();
    let p = Proxy::start(label, &cfg, &[flag]);
    p.wait_routed("fw.test", "/", "a");

    let mut c = p.connect();
    let spoof = [
        ("X-Forwarded-For", "1.2.3.4"),
        ("X-Forwarded-Host", "orig.test"),
        ("X-Forwarded-Proto", "https"),
        ("X-Real-Ip", "6.6.6.6"),
    ];
    c.request("GET", "fw.test", "/trusted", &spoof, b"")
        .expect("GET /trusted");
    let rec = only_request(&a, "/trusted");
    assert_eq!(
        rec.header_all("x-forwarded-for"),
        ["1.2.3.4, 127.0.0.1"],
        "{flag}: {}",
        rec.head
    );
    assert_eq!(
        rec.header("x-forwarded-host"),
        Some("orig.test"),
        "{flag}: {}",
        rec.head
    );
    assert_eq!(
        rec.header("x-forwarded-proto"),
        Some("https"),
        "{flag}: {}",
        rec.head
    );
    assert_eq!(
        rec.header("x-real-ip"),
        Some("6.6.6.6"),
        "{flag}: {}",
        rec.head
    );
}

#[test]
fn keeps_and_appends_forwarded_for_from_trusted_ips() {
    assert_client_forwarded_headers_kept(
        "trusted",
        "--entrypoints.web.forwardedHeaders.trustedIPs=10.0.0.0/8,127.0.0.1/32",
    );
}

#[test]
fn keeps_and_appends_forwarded_for_when_insecure() {
    assert_client_forwarded_headers_kept(
        "insecure",
        "--entrypoints.web.forwardedHeaders.insecure=true",
    );
}

#[test]
fn drops_forwarded_for_from_ips_outside_trusted_ips() {
    let a = Origin::start("a");
    let cfg = [router("r", "Host(`fw.test`)", "s"), lb_service("s", &[&a])].concat();
    let p = Proxy::start(
        "untrusted",
        &cfg,
        &["--entrypoints.web.forwardedHeaders.trustedIPs=10.0.0.0/8,192.168.0.0/16"],
    );
    p.wait_routed("fw.test", "/", "a");
    let mut c = p.connect();
    c.request(
        "GET",
        "fw.test",
        "/untrusted",
        &[("X-Forwarded-For", "1.2.3.4")],
        b"",
    )
    .expect("GET /untrusted");
    let rec = only_request(&a, "/untrusted");
    assert_eq!(
        rec.header_all("x-forwarded-for"),
        ["127.0.0.1"],
        "{}",
        rec.head
    );
}

#[test]
fn hop_by_hop_headers_are_not_forwarded() {
    let a = Origin::start("a");
    let cfg = [router("r", "Host(`hop.test`)", "s"), lb_service("s", &[&a])].concat();
    let p = Proxy::start("hop", &cfg, &[]);
    p.wait_routed("hop.test", "/", "a");

    let mut c = p.connect();
    let r = c
        .request(
            "GET",
            "hop.test",
            "/hop",
            &[
                ("Connection", "keep-alive, X-Custom"),
                ("Keep-Alive", "timeout=5"),
                ("TE", "deflate"),
                ("Proxy-Connection", "keep-alive"),
                ("X-Custom", "secret"),
                ("X-Kept", "yes"),
            ],
            b"",
        )
        .expect("GET /hop");
    assert_routed(&r, "a", "/hop");
    let rec = only_request(&a, "/hop");
    for h in ["keep-alive", "te", "proxy-connection", "x-custom"] {
        assert!(rec.header(h).is_none(), "{h} was forwarded: {}", rec.head);
    }
    for v in rec.header_all("connection") {
        assert!(
            !v.to_ascii_lowercase().contains("x-custom"),
            "the client's Connection header was forwarded: {}",
            rec.head
        );
    }
    assert_eq!(rec.header("x-kept"), Some("yes"), "end-to-end header lost");
}

#[test]
fn host_header_passed_through_by_default_and_replaced_without_pass_host_header() {
    let a = Origin::start("a");
    let b = Origin::start("b");
    let cfg = format!(
        "{}{}{}[http.services.nopass.loadBalancer]\npassHostHeader = false\n\
         servers = [{{ url = \"{}\" }}]\n",
        router("pass", "Host(`pass.test`)", "pass"),
        router("nopass", "Host(`nopass.test`)", "nopass"),
        lb_service("pass", &[&a]),
        b.url()
    );
    let p = Proxy::start("passhost", &cfg, &[]);
    p.wait_routed("pass.test", "/", "a");
    p.wait_routed("nopass.test", "/", "b");

    p.get("pass.test", "/h1");
    assert_eq!(only_request(&a, "/h1").header("host"), Some("pass.test"));
    let with_port = format!("pass.test:{}", p.port);
    p.get(&with_port, "/h2");
    assert_eq!(
        only_request(&a, "/h2").header("host"),
        Some(with_port.as_str())
    );

    p.get("nopass.test", "/h3");
    let rec = only_request(&b, "/h3");
    assert_eq!(
        rec.header("host"),
        Some(b.addr.to_string().as_str()),
        "{}",
        rec.head
    );
    assert_eq!(rec.header_all("host").len(), 1, "{}", rec.head);
}

#[test]
fn bad_gateway_when_the_server_refuses_connections() {
    let ok = Origin::start("ok");
    let dead = free_port();
    let cfg = format!(
        "{}{}{}[http.services.dead.loadBalancer]\nservers = [{{ url = \"http://127.0.0.1:{dead}\" }}]\n",
        router("ok", "Host(`ok.test`)", "ok"),
        router("dead", "Host(`dead.test`)", "dead"),
        lb_service("ok", &[&ok]),
    );
    let p = Proxy::start("502", &cfg, &[]);
    p.wait_routed("ok.test", "/", "ok");
    let r = p.get("dead.test", "/");
    assert_eq!(r.status, 502, "body {:?}", r.text());
    assert_routed(&p.get("ok.test", "/"), "ok", "still serving after a 502");
}

#[test]
fn service_unavailable_when_the_service_has_no_servers() {
    let ok = Origin::start("ok");
    let cfg = format!(
        "{}{}{}[http.services.empty.loadBalancer]\nservers = []\n",
        router("ok", "Host(`ok.test`)", "ok"),
        router("empty", "Host(`empty.test`)", "empty"),
        lb_service("ok", &[&ok]),
    );
    let p = Proxy::start("503", &cfg, &[]);
    p.wait_routed("ok.test", "/", "ok");
    let r = p.get("empty.test", "/");
    assert_eq!(r.status, 503, "body {:?}", r.text());
}

#[test]
fn gateway_timeout_when_the_response_head_is_late() {
    let a = Origin::start("slow");
    let cfg = [
        router("r", "Host(`slow.test`)", "s"),
        lb_service("s", &[&a]),
    ]
    .concat();
    let p = Proxy::start(
        "504",
        &cfg,
        &["--serversTransport.forwardingTimeouts.responseHeaderTimeout=1s"],
    );
    p.wait_routed("slow.test", "/", "slow");
    let r = p.get("slow.test", "/delay/3000");
    assert_eq!(r.status, 504, "body {:?}", r.text());
    assert_eq!(
        a.requests_to("/delay/3000").len(),
        1,
        "the origin got the request"
    );
    assert_routed(
        &p.get("slow.test", "/fast"),
        "slow",
        "still serving after a 504",
    );
}

/// Sends 400 requests on one connection and returns the origins in order.
fn sequence(p: &Proxy, host: &str) -> Vec<String> {
    let mut c = p.connect();
    (0..400)
        .map(|i| {
            let r = c
                .get(host, "/")
                .unwrap_or_else(|e| panic!("request {i}: {e}"));
            assert_eq!(r.status, 200, "request {i}");
            r.origin().expect("X-Origin").to_string()
        })
        .collect()
}

/// 3:1 exactly, and smooth: never two of the light one in a row, never more than three of
/// the heavy one in a row.
fn assert_three_to_one(seq: &[String], heavy: &str, light: &str) {
    let h = seq.iter().filter(|o| *o == heavy).count();
    let l = seq.iter().filter(|o| *o == light).count();
    assert_eq!((h, l), (300, 100), "split over 400 requests");
    let compact: String = seq
        .iter()
        .map(|o| if o == heavy { 'H' } else { 'L' })
        .collect();
    assert!(
        !compact.contains("LL") && !compact.contains("HHHH"),
        "not smooth: {compact}"
    );
}

#[test]
fn smooth_weighted_round_robin_between_servers() {
    let heavy = Origin::start("heavy");
    let light = Origin::start("light");
    let ready = Origin::start("ready");
    let cfg = format!(
        "{}{}{}[http.services.wrr.loadBalancer]\nservers = [{{ url = \"{}\", weight = 3 }}, \
         {{ url = \"{}\", weight = 1 }}]\n",
        router("ready", "Host(`ready.test`)", "ready"),
        router("wrr", "Host(`wrr.test`)", "wrr"),
        lb_service("ready", &[&ready]),
        heavy.url(),
        light.url()
    );
    let p = Proxy::start("wrr", &cfg, &["--dataplane.workers=1"]);
    p.wait_routed("ready.test", "/", "ready");
    assert_three_to_one(&sequence(&p, "wrr.test"), "heavy", "light");
}

#[test]
fn weighted_services_split_canary_traffic() {
    let v1 = Origin::start("v1");
    let v2 = Origin::start("v2");
    let ready = Origin::start("ready");
    let cfg = [
        router("ready", "Host(`ready.test`)", "ready"),
        router("canary", "Host(`canary.test`)", "canary"),
        lb_service("ready", &[&ready]),
        "[http.services.canary.weighted]\n\
         services = [{ name = \"v1\", weight = 3 }, { name = \"v2\", weight = 1 }]\n"
            .to_string(),
        lb_service("v1", &[&v1]),
        lb_service("v2", &[&v2]),
    ]
    .concat();
    let p = Proxy::start("canary", &cfg, &["--dataplane.workers=1"]);
    p.wait_routed("ready.test", "/", "ready");
    assert_three_to_one(&sequence(&p, "canary.test"), "v1", "v2");
}

/// Large Content-Length bodies take the splice path (pipe between the two sockets) in both
/// directions; pipelined requests behind them must survive, since splice reads exactly the
/// body and nothing past it.
#[test]
fn large_content_length_bodies_are_relayed_exactly_both_ways() {
    let a = Origin::start("big");
    let cfg = [router("r", "Host(`big.test`)", "s"), lb_service("s", &[&a])].concat();
    let p = Proxy::start("splice", &cfg, &[]);
    p.wait_routed("big.test", "/", "big");

    let body = pattern_bytes(8 << 20);
    let mut c = p.connect();
    // An 8 MiB upload followed, in the same write, by a pipelined GET of a 3 MiB response.
    let mut bytes = format!(
        "POST /upload HTTP/1.1\r\nHost: big.test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(&body);
    bytes.extend_from_slice(b"GET /bytes/3000000 HTTP/1.1\r\nHost: big.test\r\n\r\n");
    c.send(&bytes).expect("send");
    let up = c.read_final_response("POST").expect("upload response");
    assert_eq!(up.status, 200, "{}", up.text());
    let j = up.json();
    assert_eq!(j["body_bytes"], body.len() as u64);
    assert_eq!(j["body_cksum"], Cksum::of(&body).as_str());
    let down = c.read_final_response("GET").expect("pipelined download");
    assert_eq!(down.status, 200);
    assert_eq!(down.body.len(), 3_000_000);
    assert_eq!(down.body, pattern_bytes(3_000_000), "download bytes differ");
    // The connection is still in sync.
    let again = c.get("big.test", "/again").expect("third request");
    assert_eq!(again.status, 200);
    assert_eq!(again.origin(), Some("big"));
}

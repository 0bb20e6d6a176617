//! End to end: strict HTTP/1.1 request framing (RFC 9112). Ambiguous or malformed requests
//! get a 4xx from ringway and never reach the origin.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::{
    http_get, lb_service, raw_exchange, router, Conn, Origin, Proxy, RawReply, StopOnDrop,
};

/// A proxy routing every request (any Host, any path) to `origin`.
fn catch_all(label: &str, origin: &Origin, extra: &[&str]) -> Proxy {
    let cfg = [
        router("all", "PathPrefix(`/`)", "s"),
        lb_service("s", &[origin]),
    ]
    .concat();
    let p = Proxy::start(label, &cfg, extra);
    p.wait_routed("strict.test", "/ready", &origin.name);
    p
}

/// Sends every `(name, bytes)` on its own connection, in parallel.
fn exchange_all(p: &Proxy, cases: &[(&'static str, Vec<u8>)]) -> Vec<(&'static str, RawReply)> {
    let handles: Vec<_> = cases
        .iter()
        .map(|(name, bytes)| {
            let (addr, name, bytes) = (p.addr, *name, bytes.clone());
            thread::spawn(move || (name, raw_exchange(addr, &bytes, Duration::from_secs(5))))
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("exchange thread"))
        .collect()
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("<nothing>")
}

#[test]
fn rejects_ambiguous_and_malformed_heads_with_400_without_forwarding() {
    let o = Origin::start("s");
    let p = catch_all("strict", &o, &[]);

    let h = "Host: strict.test\r\n";
    let cases: Vec<(&'static str, Vec<u8>)> = vec![
        (
            "cl-and-te",
            format!(
                "POST /strict/cl-and-te HTTP/1.1\r\n{h}Content-Length: 5\r\n\
                 Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            ),
        ),
        (
            "duplicate-cl",
            format!(
                "POST /strict/duplicate-cl HTTP/1.1\r\n{h}Content-Length: 5\r\n\
                 Content-Length: 6\r\n\r\nhello!"
            ),
        ),
        (
            "cl-list",
            format!("POST /strict/cl-list HTTP/1.1\r\n{h}Content-Length: 5, 6\r\n\r\nhello!"),
        ),
        (
            "space-before-colon",
            format!("GET /strict/space-before-colon HTTP/1.1\r\n{h}X-Note : v\r\n\r\n"),
        ),
        (
            "nul-in-value",
            format!("GET /strict/nul-in-value HTTP/1.1\r\n{h}X-Note: a\0b\r\n\r\n"),
        ),
        (
            "bare-lf-in-value",
            format!(
                "GET /strict/bare-lf-in-value HTTP/1.1\r\n{h}X-Note: one\nX-Injected: two\r\n\r\n"
            ),
        ),
        (
            "bare-cr-in-value",
            format!("GET /strict/bare-cr-in-value HTTP/1.1\r\n{h}X-Note: one\rtwo\r\n\r\n"),
        ),
        (
            "te-gzip",
            format!("POST /strict/te-gzip HTTP/1.1\r\n{h}Transfer-Encoding: gzip\r\n\r\nhello"),
        ),
        (
            "missing-host",
            "GET /strict/missing-host HTTP/1.1\r\nX-Note: v\r\n\r\n".to_string(),
        ),
        (
            "two-hosts-same",
            format!("GET /strict/two-hosts-same HTTP/1.1\r\n{h}{h}\r\n"),
        ),
        (
            "two-hosts-different",
            format!("GET /strict/two-hosts-different HTTP/1.1\r\n{h}Host: other.test\r\n\r\n"),
        ),
    ]
    .into_iter()
    .map(|(n, s)| (n, s.into_bytes()))
    .collect();

    let failures: Vec<String> = exchange_all(&p, &cases)
        .into_iter()
        .filter(|(_, reply)| reply.status() != Some(400))
        .map(|(name, reply)| format!("{name}: got {:?}", first_line(&reply.text)))
        .collect();

    // A request after the bad ones, so anything forwarded has reached the origin by now.
    let r = http_get(p.addr, "strict.test", "/after").expect("GET /after");
    assert_eq!(
        r.status, 200,
        "ringway still serves after malformed requests"
    );

    let forwarded: Vec<String> = o
        .requests()
        .into_iter()
        .filter(|r| r.head.contains("/strict/"))
        .map(|r| r.head)
        .collect();
    assert!(
        failures.is_empty() && forwarded.is_empty(),
        "cases not answered 400:\n  {}\nforwarded to the origin:\n  {}\n{}",
        failures.join("\n  "),
        forwarded.join("\n  "),
        p.ringway.logs()
    );
}

#[test]
fn bad_chunk_sizes_never_reach_the_origin_as_a_complete_body() {
    let o = Origin::start("s");
    let p = catch_all("chunks", &o, &[]);

    let cases: Vec<(&'static str, Vec<u8>)> = [("zz", "zz"), ("overflow", "ffffffffffffffffff")]
        .into_iter()
        .map(|(name, size)| {
            let req = format!(
                "POST /chunk/{name} HTTP/1.1\r\nHost: strict.test\r\n\
                 Transfer-Encoding: chunked\r\n\r\n{size}\r\nhello\r\n0\r\n\r\n"
            );
            (name, req.into_bytes())
        })
        .collect();
    let mut failures = Vec::new();
    for (name, reply) in exchange_all(&p, &cases) {
        let status = reply.status();
        let ok = status == Some(400)
            || (reply.closed && !status.is_some_and(|s| (200..300).contains(&s)));
        if !ok {
            failures.push(format!(
                "{name}: neither 400 nor closed without a 2xx (closed: {}, got {:?})",
                reply.closed,
                first_line(&reply.text)
            ));
        }
    }
    let r = http_get(p.addr, "strict.test", "/after").expect("GET /after");
    assert_eq!(r.status, 200, "ringway still serves after bad chunks");

    for rec in o.requests_to("/chunk/") {
        if rec.body_complete || rec.body_error {
            failures.push(format!(
                "the origin received {} (complete body: {}, invalid chunk framing: {})",
                rec.target, rec.body_complete, rec.body_error
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        p.ringway.logs()
    );
}

#[test]
fn request_line_over_8_kib_gets_414() {
    let o = Origin::start("s");
    let p = catch_all("uri", &o, &[]);

    let ok_path = format!("/limits/{}", "b".repeat(4000));
    let r = http_get(p.addr, "strict.test", &ok_path).expect("4 KiB request line");
    assert_eq!(r.status, 200, "a 4 KiB request line is fine");

    let long = format!(
        "GET /limits/{} HTTP/1.1\r\nHost: strict.test\r\n\r\n",
        "a".repeat(9000)
    );
    let reply = raw_exchange(p.addr, long.as_bytes(), Duration::from_secs(5));
    assert_eq!(
        reply.status(),
        Some(414),
        "got {:?}\n{}",
        first_line(&reply.text),
        p.ringway.logs()
    );
    assert!(
        o.requests_to("/limits/aaa").is_empty(),
        "the long request was forwarded"
    );
}

#[test]
fn head_over_32_kib_gets_431() {
    let o = Origin::start("s");
    let p = catch_all("head", &o, &[]);

    let fill = |n: usize| -> String {
        (0..n)
            .map(|i| format!("X-Fill-{i}: {}\r\n", "v".repeat(1000)))
            .collect()
    };
    let ok = format!(
        "GET /head/ok HTTP/1.1\r\nHost: strict.test\r\n{}Connection: close\r\n\r\n",
        fill(16)
    );
    let reply = raw_exchange(p.addr, ok.as_bytes(), Duration::from_secs(5));
    assert_eq!(
        reply.status(),
        Some(200),
        "a 16 KiB head is fine: {:?}",
        first_line(&reply.text)
    );

    let big = format!(
        "GET /head/big HTTP/1.1\r\nHost: strict.test\r\n{}\r\n",
        fill(40)
    );
    let reply = raw_exchange(p.addr, big.as_bytes(), Duration::from_secs(5));
    assert_eq!(
        reply.status(),
        Some(431),
        "got {:?}\n{}",
        first_line(&reply.text),
        p.ringway.logs()
    );
    assert!(
        o.requests_to("/head/big").is_empty(),
        "the big head was forwarded"
    );
}

#[test]
fn slow_client_is_disconnected_while_others_are_served() {
    let o = Origin::start("s");
    let p = catch_all(
        "slowloris",
        &o,
        &["--entrypoints.web.transport.respondingTimeouts.readTimeout=1s"],
    );

    let mut slow = Conn::connect(p.addr).expect("connect slow client");
    slow.send(b"GET /slow HTTP/1.1\r\nHost: strict.test\r\nX-Partial: ")
        .expect("send half a head");
    let stalled_at = Instant::now();

    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_panic = StopOnDrop(stop.clone());
    let served = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let others = {
        let (stop, served, errors, addr) = (stop.clone(), served.clone(), errors.clone(), p.addr);
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match http_get(addr, "strict.test", "/other") {
                    Ok(r) if r.status == 200 => {
                        served.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => errors
                        .lock()
                        .expect("errors")
                        .push(format!("status {}", r.status)),
                    Err(e) => errors.lock().expect("errors").push(e.to_string()),
                }
                thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let outcome = slow.wait_closed(Duration::from_secs(4));
    let waited = stalled_at.elapsed();
    stop.store(true, Ordering::SeqCst);
    others.join().expect("others thread");

    let received = outcome.unwrap_or_else(|e| {
        panic!(
            "slow client not disconnected: {e} (readTimeout=1s)\n{}",
            p.ringway.logs()
        )
    });
    println!("slow client disconnected after {waited:?}");
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408") || text.starts_with("HTTP/1.1 400"),
        "slow client got {:?}",
        first_line(&text)
    );
    let errors = errors.lock().expect("errors");
    assert!(
        errors.is_empty(),
        "other clients failed meanwhile: {errors:?}"
    );
    assert!(
        served.load(Ordering::SeqCst) > 0,
        "no other client was served meanwhile"
    );
    assert!(
        o.requests_to("/slow").is_empty(),
        "the partial request was forwarded"
    );
}

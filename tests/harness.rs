//! Checks of the end-to-end harness itself (origin, clients, cksum), without ringway, so
//! a failing end-to-end test points at ringway and not at the harness.

mod support;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use support::{chunk_payload, pattern_bytes, raw_exchange, Cksum, Conn, Origin};

#[test]
fn cksum_matches_the_coreutils_digest() {
    assert_eq!(Cksum::of(b"abc"), "1219131554 3");
    let mut c = Cksum::start();
    c.update(b"a");
    c.update(b"bc");
    assert_eq!(c.finish(), "1219131554 3");
}

#[test]
fn origin_serves_its_endpoints_over_keep_alive() {
    let o = Origin::start("o");
    let mut c = Conn::connect(o.addr).expect("connect origin");
    let r = c.get("x.test", "/hello?a=1").expect("echo");
    assert_eq!((r.status, r.origin()), (200, Some("o")));
    assert_eq!(r.json()["path"], "/hello");
    assert_eq!(r.json()["query"], "a=1");

    let r = c.get("x.test", "/chunked/50").expect("chunked");
    assert_eq!(r.body, (0..50).flat_map(chunk_payload).collect::<Vec<u8>>());
    let r = c.get("x.test", "/bytes/1000").expect("bytes");
    assert_eq!(r.body, pattern_bytes(1000));
    for code in [204, 304] {
        let r = c.get("x.test", &format!("/status/{code}")).expect("status");
        assert_eq!(r.status, code);
    }
    let r = c
        .request("HEAD", "x.test", "/bytes/1234", &[], b"")
        .expect("HEAD");
    assert_eq!(r.header("content-length"), Some("1234"));
    let r = c
        .request("POST", "x.test", "/upload", &[], b"abc")
        .expect("POST");
    assert_eq!(r.json()["body_cksum"], Cksum::of(b"abc").as_str());

    c.send(b"GET /delay/100 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("pipeline");
    assert_eq!(
        c.read_response("GET").expect("1").json()["path"],
        "/delay/100"
    );
    assert_eq!(c.read_response("GET").expect("2").json()["path"], "/2");

    let r = c.get("x.test", "/close/5000").expect("close-delimited");
    assert_eq!(r.body, pattern_bytes(5000));
    assert_eq!(o.connections(), 1);
    assert_eq!(o.requests().len(), 10);
}

#[test]
fn origin_streams_chunked_uploads_continue_and_upgrades() {
    let o = Origin::start("o");
    let mut c = Conn::connect(o.addr).expect("connect origin");
    c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .expect("head");
    let mut sum = Cksum::start();
    let mut len = 0;
    for i in 0..100usize {
        let block = pattern_bytes(1000 + i);
        sum.update(&block);
        len += block.len();
        c.send(format!("{:x}\r\n", block.len()).as_bytes())
            .expect("size");
        c.send(&block).expect("data");
        c.send(b"\r\n").expect("crlf");
    }
    c.send(b"0\r\n\r\n").expect("last");
    let r = c.read_final_response("POST").expect("upload response");
    assert_eq!(r.json()["body_bytes"], len);
    assert_eq!(r.json()["body_cksum"], sum.finish().as_str());

    c.send(
        b"POST /continue HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    )
    .expect("expect head");
    assert_eq!(c.read_response("POST").expect("100").status, 100);
    c.send(b"abc").expect("body");
    assert_eq!(
        c.read_final_response("POST").expect("200").json()["body_bytes"],
        3
    );

    c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        .expect("upgrade");
    assert_eq!(c.read_response("GET").expect("101").status, 101);
    let big = pattern_bytes(300_000);
    let mut w = c.stream().try_clone().expect("clone");
    let to_send = big.clone();
    let t = thread::spawn(move || w.write_all(&to_send));
    assert!(c.read_exact_bytes(big.len()).expect("echo") == big);
    t.join().expect("join").expect("write");
}

#[test]
fn origin_records_bad_chunks_and_raw_exchange_stops_at_a_response() {
    let o = Origin::start("o");
    let started = Instant::now();
    let reply = raw_exchange(
        o.addr,
        b"POST /bad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(reply.status(), Some(400));
    assert!(started.elapsed() < Duration::from_secs(4));
    let rec = &o.requests_to("/bad")[0];
    assert!(rec.body_error && !rec.body_complete);

    let reply = raw_exchange(
        o.addr,
        b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(reply.status(), Some(200));
    assert!(!reply.closed, "keep-alive response returned before EOF");
}

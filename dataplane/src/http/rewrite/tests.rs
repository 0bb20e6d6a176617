//! Head rewriting tests: byte-exact outputs, trusted vs untrusted peers, canned errors.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;

use super::*;
use crate::http::header::classify;
use crate::http::request::{parse_request, Framing, Limits, ParseStatus};
use crate::http::response::parse_response;

fn context(trusted: bool, tls: bool) -> ForwardContext<'static> {
    ForwardContext {
        client_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), 5555),
        trusted,
        tls,
        entry_port: 8000,
        server_name: "edge1",
        upstream_host: None,
    }
}

fn forward(input: &str, ctx: &ForwardContext<'_>) -> String {
    let mut head = RequestHead::new();
    let status = parse_request(input.as_bytes(), &Limits::default(), &mut head).unwrap();
    assert_eq!(status, ParseStatus::Complete);
    let mut out = Vec::new();
    write_request_head(&mut out, input.as_bytes(), &head, ctx);
    String::from_utf8(out).unwrap()
}

fn forward_response(input: &str, was_head: bool, conn: ResponseConnection) -> String {
    let mut head = ResponseHead::new();
    let status = parse_response(input.as_bytes(), &Limits::default(), was_head, &mut head);
    assert_eq!(status, Ok(ParseStatus::Complete));
    let mut out = Vec::new();
    write_response_head_with(&mut out, input.as_bytes(), &head, conn);
    String::from_utf8(out).unwrap()
}

#[test]
fn untrusted_peer_loses_its_forwarded_headers() {
    let input = "GET /a?b=1 HTTP/1.1\r\n\
        Host: example.com\r\n\
        User-Agent: curl/8\r\n\
        X-Forwarded-For: 6.6.6.6\r\n\
        Accept: */*\r\n\
        Connection: keep-alive\r\n\
        X-Real-Ip: 6.6.6.6\r\n\
        x_forwarded_proto: https\r\n\
        X-Forwarded-Prefix: /evil\r\n\
        \r\n";
    assert_eq!(
        forward(input, &context(false, false)),
        "GET /a?b=1 HTTP/1.1\r\n\
        Host: example.com\r\n\
        User-Agent: curl/8\r\n\
        Accept: */*\r\n\
        X-Forwarded-For: 192.0.2.7\r\n\
        X-Forwarded-Proto: http\r\n\
        X-Forwarded-Host: example.com\r\n\
        X-Forwarded-Port: 80\r\n\
        X-Forwarded-Server: edge1\r\n\
        X-Real-Ip: 192.0.2.7\r\n\
        \r\n"
    );
}

#[test]
fn trusted_peer_keeps_and_extends_forwarded_headers() {
    let input = "POST /upload HTTP/1.1\r\n\
        Host: app.example:8443\r\n\
        X-Forwarded-For: 1.1.1.1, 2.2.2.2\r\n\
        X-Forwarded-Proto: https\r\n\
        X-Forwarded-For: 3.3.3.3\r\n\
        X-Real-Ip: 1.1.1.1\r\n\
        X-Forwarded-Server: other\r\n\
        X-Forwarded-Host:\r\n\
        X-Forwarded-Uri: /orig\r\n\
        X_Forwarded_Method: GET\r\n\
        Content-Length: 3\r\n\
        \r\n";
    let mapped = Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped();
    let ctx = ForwardContext {
        client_addr: SocketAddr::new(IpAddr::V6(mapped), 1),
        ..context(true, false)
    };
    assert_eq!(
        forward(input, &ctx),
        "POST /upload HTTP/1.1\r\n\
        Host: app.example:8443\r\n\
        X-Forwarded-Proto: https\r\n\
        X-Real-Ip: 1.1.1.1\r\n\
        X-Forwarded-Uri: /orig\r\n\
        X_Forwarded_Method: GET\r\n\
        Content-Length: 3\r\n\
        X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.1\r\n\
        X-Forwarded-Host: app.example:8443\r\n\
        X-Forwarded-Port: 8443\r\n\
        X-Forwarded-Server: edge1\r\n\
        \r\n"
    );
}

#[test]
fn trusted_https_proto_sets_port_443_and_empty_server_name_keeps_theirs() {
    let input = "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\n\
        X-Forwarded-Server: lb0\r\n\r\n";
    let ctx = ForwardContext {
        server_name: "",
        ..context(true, false)
    };
    assert_eq!(
        forward(input, &ctx),
        "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Server: lb0\r\n\
        X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Host: h\r\nX-Forwarded-Port: 443\r\n\
        X-Real-Ip: 192.0.2.7\r\n\r\n"
    );
}

#[test]
fn websocket_upgrade_over_tls() {
    let input = "GET /chat HTTP/1.1\r\n\
        Host: ws.example\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: abc\r\n\
        Sec-WebSocket-Version: 13\r\n\
        \r\n";
    let ctx = ForwardContext {
        client_addr: "[2001:db8::1]:4000".parse().unwrap(),
        ..context(false, true)
    };
    assert_eq!(
        forward(input, &ctx),
        "GET /chat HTTP/1.1\r\n\
        Host: ws.example\r\n\
        Upgrade: websocket\r\n\
        Sec-WebSocket-Key: abc\r\n\
        Sec-WebSocket-Version: 13\r\n\
        Connection: Upgrade\r\n\
        X-Forwarded-For: 2001:db8::1\r\n\
        X-Forwarded-Proto: wss\r\n\
        X-Forwarded-Host: ws.example\r\n\
        X-Forwarded-Port: 443\r\n\
        X-Forwarded-Server: edge1\r\n\
        X-Real-Ip: 2001:db8::1\r\n\
        \r\n"
    );
    // Without a Connection upgrade option the Upgrade header is hop-by-hop.
    let plain = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n";
    let out = forward(plain, &context(false, false));
    assert!(!out.contains("Upgrade") && out.contains("X-Forwarded-Proto: http\r\n"));
}

#[test]
fn absolute_form_with_upstream_host_and_hop_by_hop_removal() {
    let input = "PUT http://front.example/x/y?z HTTP/1.1\r\n\
        Host: front.example\r\n\
        Connection: close, X-Hop\r\n\
        X-Hop: 1\r\n\
        TE: trailers\r\n\
        Content-Length: 2\r\n\
        Content-Length: 2\r\n\
        Proxy-Authorization: secret\r\n\
        Keep-Alive: 5\r\n\
        Trailer: X-Sum\r\n\
        \r\n";
    let ctx = ForwardContext {
        upstream_host: Some("backend:9000"),
        server_name: "",
        ..context(false, false)
    };
    assert_eq!(
        forward(input, &ctx),
        "PUT /x/y?z HTTP/1.1\r\n\
        Host: backend:9000\r\n\
        Content-Length: 2\r\n\
        Te: trailers\r\n\
        X-Forwarded-For: 192.0.2.7\r\n\
        X-Forwarded-Proto: http\r\n\
        X-Forwarded-Host: front.example\r\n\
        X-Forwarded-Port: 80\r\n\
        X-Real-Ip: 192.0.2.7\r\n\
        \r\n"
    );
}

#[test]
fn absolute_form_host_comes_from_the_authority() {
    let input = "GET http://h:81 HTTP/1.0\r\nHost: other\r\nAccept: x\r\n\r\n";
    assert_eq!(
        forward(input, &context(false, false)),
        "GET / HTTP/1.0\r\nHost: h:81\r\nAccept: x\r\nConnection: keep-alive\r\nX-Forwarded-For: 192.0.2.7\r\n\
        X-Forwarded-Proto: http\r\nX-Forwarded-Host: h:81\r\nX-Forwarded-Port: 81\r\n\
        X-Forwarded-Server: edge1\r\nX-Real-Ip: 192.0.2.7\r\n\r\n"
    );
}

#[test]
fn chunked_requests_keep_framing_and_trailer_headers() {
    let input = "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\
        Trailer: X-Sum\r\nConnection: X-A\r\nX-A: 1\r\nX-B: 2\r\n\r\n";
    let out = forward(input, &context(false, false));
    assert!(out.starts_with(
        "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nX-B: 2\r\n"
    ));
    assert!(!out.contains("X-A") && !out.contains("Connection"));
}

#[test]
fn http10_without_host_and_asterisk_form() {
    let out = forward("GET /x HTTP/1.0\r\n\r\n", &context(false, false));
    assert_eq!(
        out,
        "GET /x HTTP/1.0\r\nConnection: keep-alive\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n\
        X-Forwarded-Port: 80\r\nX-Forwarded-Server: edge1\r\nX-Real-Ip: 192.0.2.7\r\n\r\n"
    );
    let out = forward(
        "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
        &context(false, true),
    );
    assert!(out.starts_with("OPTIONS * HTTP/1.1\r\nHost: h\r\n"));
    assert!(out
        .contains("X-Forwarded-Proto: https\r\nX-Forwarded-Host: h\r\nX-Forwarded-Port: 443\r\n"));
}

#[test]
fn unsafe_configured_values_are_not_written() {
    let ctx = ForwardContext {
        upstream_host: Some("evil\r\nX-Injected: 1"),
        server_name: "bad\nname",
        ..context(false, false)
    };
    let out = forward("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &ctx);
    assert!(out.starts_with("GET / HTTP/1.1\r\nHost: h\r\n"));
    assert!(!out.contains("Injected") && !out.contains("X-Forwarded-Server"));
}

#[test]
fn appends_to_the_output() {
    let buf = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let mut head = RequestHead::new();
    parse_request(buf, &Limits::default(), &mut head).unwrap();
    let mut out = b"prefix".to_vec();
    write_request_head(&mut out, buf, &head, &context(false, false));
    assert!(out.starts_with(b"prefixGET / HTTP/1.1\r\n"));
}

#[test]
fn response_hop_by_hop_removal_and_close() {
    let input = "HTTP/1.0 200 OK\r\n\
        Server: x\r\n\
        Connection: keep-alive, X-Internal\r\n\
        X-Internal: 1\r\n\
        Keep-Alive: timeout=5\r\n\
        Content-Length: 5\r\n\
        Upgrade: h2c\r\n\
        Proxy-Authenticate: Basic\r\n\
        \r\n";
    assert_eq!(
        forward_response(input, false, ResponseConnection::Close),
        "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
    );
    let mut head = ResponseHead::new();
    parse_response(input.as_bytes(), &Limits::default(), false, &mut head).unwrap();
    let mut out = Vec::new();
    write_response_head(&mut out, input.as_bytes(), &head, false);
    assert_eq!(
        out,
        b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 5\r\n\r\n"
    );
    out.clear();
    write_response_head(&mut out, input.as_bytes(), &head, true);
    assert!(out.ends_with(b"Content-Length: 5\r\nConnection: close\r\n\r\n"));
}

#[test]
fn response_switching_protocols() {
    let input = "HTTP/1.1 101 Switching Protocols\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Accept: xyz\r\n\
        \r\n";
    assert_eq!(
        forward_response(input, false, ResponseConnection::Close),
        "HTTP/1.1 101 Switching Protocols\r\n\
        Upgrade: websocket\r\n\
        Sec-WebSocket-Accept: xyz\r\n\
        Connection: Upgrade\r\n\
        \r\n"
    );
}

#[test]
fn response_chunked_keep_alive_and_duplicate_length() {
    let input = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nTE: x\r\n\r\n";
    assert_eq!(
        forward_response(input, false, ResponseConnection::KeepAlive),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\
        Connection: keep-alive\r\n\r\n"
    );
    let input = "HTTP/1.1 204\r\nContent-Length: 0, 0\r\nX: y\r\n\r\n";
    assert_eq!(
        forward_response(input, false, ResponseConnection::Default),
        "HTTP/1.1 204\r\nX: y\r\nContent-Length: 0\r\n\r\n"
    );
    let input = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n";
    assert_eq!(
        forward_response(input, true, ResponseConnection::Default),
        "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n"
    );
}

#[test]
fn error_responses_are_well_formed() {
    for status in [
        400, 403, 404, 405, 408, 413, 414, 417, 421, 429, 431, 500, 501, 502, 503, 504, 505, 418,
        499,
    ] {
        for close in [false, true] {
            let bytes = error_response(status, close);
            let mut head = ResponseHead::new();
            let parsed = parse_response(bytes, &Limits::default(), false, &mut head);
            assert_eq!(parsed, Ok(ParseStatus::Complete), "{status}");
            let want = if status == 499 { 500 } else { status };
            assert_eq!(head.status, want);
            let body = &bytes[head.head_len..];
            assert_eq!(head.framing, Framing::Length(body.len() as u64), "{status}");
            assert_eq!(head.keep_alive, !close, "{status}");
            assert!(body.starts_with(format!("{want} ").as_bytes()) || !body.is_empty());
            assert_eq!(
                head.header(bytes, "content-type"),
                Some(&b"text/plain; charset=utf-8"[..])
            );
        }
    }
    assert!(error_response(404, true).ends_with(b"\r\n\r\n404 page not found\n"));
    assert!(error_response(502, false).ends_with(b"\r\n\r\nBad Gateway"));
    let allow = error_response(405, true);
    let mut head = ResponseHead::new();
    parse_response(allow, &Limits::default(), false, &mut head).unwrap();
    assert!(head.header(allow, "allow").is_some());
}

proptest! {
    /// The forwarded head is itself a valid request with the same method, target path, query
    /// and framing, and carries no hop-by-hop header other than an upgrade's.
    #[test]
    fn forwarded_heads_reparse(
        names in proptest::collection::vec(
            prop_oneof![
                Just("Connection".to_string()),
                Just("Keep-Alive".to_string()),
                Just("X-Forwarded-For".to_string()),
                Just("X-Real-Ip".to_string()),
                Just("TE".to_string()),
                Just("Upgrade".to_string()),
                Just("Accept".to_string()),
                "[A-Za-z][A-Za-z0-9-]{0,12}",
            ],
            0..12,
        ),
        values in proptest::collection::vec("[a-zA-Z0-9, .=-]{0,16}", 12),
        chunked: bool,
        trusted: bool,
        tls: bool,
        v6: bool,
    ) {
        let mut input = String::from("POST /p/q?r=s HTTP/1.1\r\nHost: h.example:8080\r\n");
        for (name, value) in names.iter().zip(&values) {
            if !matches!(classify(name.as_bytes()), HeaderKind::Other
                | HeaderKind::Connection | HeaderKind::KeepAlive | HeaderKind::Te
                | HeaderKind::Upgrade | HeaderKind::XForwardedFor | HeaderKind::XRealIp)
            {
                continue;
            }
            input.push_str(&format!("{name}: {value}\r\n"));
        }
        input.push_str(if chunked { "Transfer-Encoding: chunked\r\n\r\n" } else { "Content-Length: 4\r\n\r\n" });
        let mut head = RequestHead::new();
        let Ok(ParseStatus::Complete) = parse_request(input.as_bytes(), &Limits::default(), &mut head) else {
            return Ok(()); // e.g. too many Connection options
        };
        let ip = if v6 { IpAddr::V6(Ipv6Addr::LOCALHOST) } else { IpAddr::V4(Ipv4Addr::LOCALHOST) };
        let ctx = ForwardContext { client_addr: SocketAddr::new(ip, 9), ..context(trusted, tls) };
        let mut out = Vec::new();
        write_request_head(&mut out, input.as_bytes(), &head, &ctx);
        let mut again = RequestHead::new();
        prop_assert_eq!(parse_request(&out, &Limits::default(), &mut again), Ok(ParseStatus::Complete));
        prop_assert_eq!(again.head_len, out.len());
        prop_assert_eq!(again.method(&out), "POST");
        prop_assert_eq!(again.target(&out), "/p/q?r=s");
        prop_assert_eq!(again.host(&out), Some("h.example:8080"));
        prop_assert_eq!(again.framing, head.framing);
        prop_assert_eq!(again.upgrade, head.upgrade);
        let xff = again.headers.iter().filter(|h| h.kind == HeaderKind::XForwardedFor).count();
        prop_assert_eq!(xff, 1);
        for h in &again.headers {
            let allowed = match h.kind {
                HeaderKind::Upgrade | HeaderKind::Connection => head.upgrade,
                HeaderKind::Te => head.te_trailers,
                _ => false,
            };
            prop_assert!(!h.hop_by_hop || allowed, "{:?}", String::from_utf8_lossy(&out));
        }
    }
}

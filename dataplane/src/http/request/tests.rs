//! Request head parsing tests: every rejection, framing case and split point.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use proptest::prelude::*;

use super::*;
use crate::http::header::{classify, MAX_CONNECTION_OPTIONS};

fn parse(buf: &[u8]) -> Result<RequestHead, RequestError> {
    parse_with(buf, &Limits::default())
}

fn parse_with(buf: &[u8], limits: &Limits) -> Result<RequestHead, RequestError> {
    let mut head = RequestHead::new();
    match parse_request(buf, limits, &mut head)? {
        ParseStatus::Complete => Ok(head),
        ParseStatus::Partial => panic!("partial: {:?}", String::from_utf8_lossy(buf)),
    }
}

fn status_of(buf: &[u8]) -> u16 {
    match parse(buf) {
        Ok(_) => panic!("accepted: {:?}", String::from_utf8_lossy(buf)),
        Err(e) => e.status(),
    }
}

fn with_headers(headers: &str) -> Vec<u8> {
    format!("POST /p HTTP/1.1\r\nHost: a.example\r\n{headers}\r\n").into_bytes()
}

#[test]
fn parses_a_simple_get() {
    let buf = b"GET /search?q=rust&x=1 HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\n\r\n";
    let head = parse(buf).unwrap();
    assert_eq!(head.head_len, buf.len());
    assert_eq!(head.method(buf), "GET");
    assert_eq!(head.target(buf), "/search?q=rust&x=1");
    assert_eq!(head.target_form, TargetForm::Origin);
    assert_eq!(head.path(buf), "/search");
    assert_eq!(head.query(buf), Some("q=rust&x=1"));
    assert_eq!(head.host(buf), Some("example.com:8080"));
    assert_eq!(head.host_name(buf), Some("example.com"));
    assert_eq!(head.minor_version, 1);
    assert_eq!(head.framing, Framing::None);
    assert!(head.keep_alive && !head.upgrade && !head.expect_continue && !head.has_body());
    assert_eq!(head.headers.len(), 2);
    assert_eq!(head.headers[0].kind, HeaderKind::Host);
    assert_eq!(head.header(buf, "accept"), Some(&b"*/*"[..]));
    assert_eq!(
        head.header_of(buf, HeaderKind::Host),
        Some(&b"example.com:8080"[..])
    );
    assert!(head.is_idempotent(buf) && !head.is_head(buf));
}

#[test]
fn query_edge_cases() {
    let buf = b"GET /p? HTTP/1.1\r\nHost: h\r\n\r\n";
    let head = parse(buf).unwrap();
    assert_eq!(head.path(buf), "/p");
    assert_eq!(head.query(buf), Some(""));
    let buf = b"GET /a/b HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(parse(buf).unwrap().query(buf), None);
}

#[test]
fn methods() {
    for (method, head, idem) in [
        ("HEAD", true, true),
        ("GET", false, true),
        ("PUT", false, true),
        ("DELETE", false, true),
        ("OPTIONS", false, true),
        ("TRACE", false, true),
        ("POST", false, false),
        ("PATCH", false, false),
        ("PURGE", false, false),
    ] {
        let buf = format!("{method} / HTTP/1.1\r\nHost: h\r\n\r\n");
        let h = parse(buf.as_bytes()).unwrap();
        assert_eq!(h.method(buf.as_bytes()), method);
        assert_eq!(h.is_head(buf.as_bytes()), head, "{method}");
        assert_eq!(h.is_idempotent(buf.as_bytes()), idem, "{method}");
    }
}

#[test]
fn pipelined_requests_have_exact_head_len() {
    let first = b"GET /one HTTP/1.1\r\nHost: h\r\n\r\n".to_vec();
    let second = b"POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc".to_vec();
    let buf = [first.clone(), second.clone()].concat();
    let head = parse(&buf).unwrap();
    assert_eq!(head.head_len, first.len());
    let rest = &buf[head.head_len..];
    let head2 = parse(rest).unwrap();
    assert_eq!(head2.path(rest), "/two");
    assert_eq!(head2.framing, Framing::Length(3));
    assert_eq!(head2.head_len, second.len() - 3);
}

#[test]
fn leading_empty_lines_are_skipped() {
    let buf = b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let head = parse(buf).unwrap();
    assert_eq!(head.head_len, buf.len());
    assert_eq!(head.method(buf), "GET");
    assert_eq!(status_of(b"\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
}

#[test]
fn every_split_point_is_partial_until_complete() {
    let requests: [&[u8]; 4] = [
        b"GET /search?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n",
        b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, x-a\r\nX-A: 1\r\n\r\n",
        b"GET http://h:81/x HTTP/1.1\r\nHost: h:81\r\n\r\n",
        b"OPTIONS * HTTP/1.0\r\n\r\n",
    ];
    for full in requests {
        let expected = parse(full).unwrap();
        let mut head = RequestHead::new();
        for cut in 0..full.len() {
            let status = parse_request(&full[..cut], &Limits::default(), &mut head);
            assert_eq!(status, Ok(ParseStatus::Partial), "cut {cut}");
        }
        assert_eq!(
            parse_request(full, &Limits::default(), &mut head),
            Ok(ParseStatus::Complete)
        );
        assert_eq!(head, expected);
    }
}

#[test]
fn head_reuse_keeps_the_allocation() {
    let buf = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
    let mut head = RequestHead::new();
    parse_request(buf, &Limits::default(), &mut head).unwrap();
    let ptr = head.headers.as_ptr();
    for _ in 0..10 {
        parse_request(buf, &Limits::default(), &mut head).unwrap();
        assert_eq!(head.headers.len(), 3);
    }
    assert_eq!(head.headers.as_ptr(), ptr);
}

#[test]
fn content_length_rules() {
    let h = parse(&with_headers("Content-Length: 42\r\n")).unwrap();
    assert_eq!(h.framing, Framing::Length(42));
    assert!(!h.content_length_dup);
    let h = parse(&with_headers("Content-Length: 0\r\n")).unwrap();
    assert_eq!(h.framing, Framing::None);
    let h = parse(&with_headers("Content-Length: 5\r\nContent-Length: 5\r\n")).unwrap();
    assert_eq!(h.framing, Framing::Length(5));
    assert!(h.content_length_dup);
    let h = parse(&with_headers("Content-Length: 5, 5\r\n")).unwrap();
    assert_eq!(h.framing, Framing::Length(5));
    assert!(h.content_length_dup);
    let h = parse(&with_headers("Content-Length: 18446744073709551615\r\n")).unwrap();
    assert_eq!(h.framing, Framing::Length(u64::MAX));
    for bad in [
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5, 6\r\n",
        "Content-Length: abc\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: +5\r\n",
        "Content-Length: 0x10\r\n",
        "Content-Length: 5 5\r\n",
        "Content-Length: 1.0\r\n",
        "Content-Length:\r\n",
        "Content-Length: ,\r\n",
        "Content-Length: 18446744073709551616\r\n",
        "Content-Length: 99999999999999999999999\r\n",
    ] {
        let err = parse(&with_headers(bad)).unwrap_err();
        assert_eq!(err.status(), 400, "{bad}");
        assert!(matches!(err, RequestError::Framing(_)), "{bad}: {err:?}");
    }
}

#[test]
fn transfer_encoding_rules() {
    for ok in [
        "Transfer-Encoding: chunked\r\n",
        "Transfer-Encoding: Chunked\r\n",
        "transfer-encoding:  chunked \r\n",
        "Transfer-Encoding: chunked,\r\n",
    ] {
        assert_eq!(
            parse(&with_headers(ok)).unwrap().framing,
            Framing::Chunked,
            "{ok}"
        );
    }
    for (bad, want) in [
        (
            "Transfer-Encoding: gzip\r\n",
            FieldError::UnsupportedTransferEncoding,
        ),
        (
            "Transfer-Encoding: identity\r\n",
            FieldError::UnsupportedTransferEncoding,
        ),
        (
            "Transfer-Encoding: gzip, chunked\r\n",
            FieldError::UnsupportedTransferEncoding,
        ),
        (
            "Transfer-Encoding: chunked, gzip\r\n",
            FieldError::UnsupportedTransferEncoding,
        ),
        (
            "Transfer-Encoding: chunked, chunked\r\n",
            FieldError::UnsupportedTransferEncoding,
        ),
        (
            "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
            FieldError::UnsupportedTransferEncoding,
        ),
        (
            "Transfer-Encoding: chunked;x=1\r\n",
            FieldError::UnsupportedTransferEncoding,
        ),
        (
            "Transfer-Encoding: \r\n",
            FieldError::UnsupportedTransferEncoding,
        ),
        (
            "Transfer-Encoding: xchunked\r\n",
            FieldError::UnsupportedTransferEncoding,
        ),
        (
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            FieldError::ContentLengthWithTransferEncoding,
        ),
        (
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            FieldError::ContentLengthWithTransferEncoding,
        ),
    ] {
        assert_eq!(
            parse(&with_headers(bad)),
            Err(RequestError::Framing(want)),
            "{bad}"
        );
    }
    let buf = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(
        parse(buf),
        Err(RequestError::Framing(FieldError::TransferEncodingInHttp10))
    );
}

#[test]
fn header_syntax_rejections() {
    for bad in [
        "Host : h\r\n",
        "X-A : 1\r\n",
        "X-A\t: 1\r\n",
        "X-A: a\0b\r\n",
        "X-A: a\rb\r\n",
        "X-A: a\r\n b\r\n",
        "X-A: a\r\n\tb\r\n",
        ": empty-name\r\n",
        "X A: 1\r\n",
        "X-A: \x7f\r\n",
        "X-A\r\n",
    ] {
        assert_eq!(status_of(&with_headers(bad)), 400, "{bad:?}");
    }
}

#[test]
fn bare_line_feeds_are_rejected() {
    for bad in [
        &b"GET / HTTP/1.1\nHost: h\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n\n",
        b"GET / HTTP/1.1\nHost: h\n\n",
    ] {
        assert_eq!(
            parse(bad),
            Err(RequestError::Malformed {
                part: Malformed::LineEnding
            }),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn host_rules() {
    assert_eq!(
        parse(b"GET / HTTP/1.1\r\n\r\n"),
        Err(RequestError::MissingHost)
    );
    assert_eq!(
        parse(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
        Err(RequestError::DuplicateHost)
    );
    let buf = b"GET / HTTP/1.0\r\n\r\n";
    let head = parse(buf).unwrap();
    assert_eq!(head.host(buf), None);
    assert!(!head.keep_alive);
    for ok in [
        "example.com",
        "EXAMPLE.com:443",
        "127.0.0.1:8080",
        "[::1]",
        "[2001:db8::1]:8443",
        "xn--bcher-kva.example",
        "a_b.example",
        "h:",
        "",
        "%41.example",
    ] {
        let buf = format!("GET / HTTP/1.1\r\nHost: {ok}\r\n\r\n");
        let head = parse(buf.as_bytes()).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(head.host(buf.as_bytes()), Some(ok));
    }
    for bad in [
        "exa mple.com",
        "host/path",
        "a@b",
        "[::1",
        "[::1]x",
        "[zz]",
        "h:99999",
        "h:123456",
        "h:8a",
        "h\"",
        "%4",
        "é.example",
        "a<b",
    ] {
        let buf = format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n");
        assert_eq!(status_of(buf.as_bytes()), 400, "{bad}");
    }
    let buf = b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n";
    assert_eq!(parse(buf).unwrap().host_name(buf), Some("[::1]"));
    let buf = b"GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n";
    assert_eq!(parse(buf).unwrap().host_name(buf), Some("[::1]"));
}

#[test]
fn absolute_form_takes_host_from_the_target() {
    let buf = b"GET http://Example.com:8080/a/b?c=d HTTP/1.1\r\nHost: other\r\n\r\n";
    let head = parse(buf).unwrap();
    assert_eq!(head.target_form, TargetForm::Absolute);
    assert_eq!(head.host(buf), Some("Example.com:8080"));
    assert_eq!(head.path(buf), "/a/b");
    assert_eq!(head.query(buf), Some("c=d"));
    let buf = b"GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n";
    let head = parse(buf).unwrap();
    assert_eq!(
        (head.host(buf), head.path(buf), head.query(buf)),
        (Some("h"), "/", None)
    );
    let buf = b"GET http://h?x=1 HTTP/1.1\r\nHost: h\r\n\r\n";
    let head = parse(buf).unwrap();
    assert_eq!((head.path(buf), head.query(buf)), ("/", Some("x=1")));
    // Host is still required on HTTP/1.1, and must still be valid.
    assert_eq!(
        parse(b"GET http://h/ HTTP/1.1\r\n\r\n"),
        Err(RequestError::MissingHost)
    );
    for bad in [
        "ftp://h/",
        "ws://h/",
        "http:///p",
        "http://",
        "http://user@h/",
        "http:/h",
        "h/p",
        "example.com:80",
    ] {
        let buf = format!("GET {bad} HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(status_of(buf.as_bytes()), 400, "{bad}");
    }
    assert_eq!(
        parse(b"GET http://a b/ HTTP/1.1\r\nHost: h\r\n\r\n").map(|_| ()),
        Err(RequestError::Malformed {
            part: Malformed::Version
        })
    );
    assert_eq!(
        parse(b"GET http://a%zz/ HTTP/1.1\r\nHost: h\r\n\r\n"),
        Err(RequestError::InvalidHost)
    );
}

#[test]
fn connect_and_asterisk_forms() {
    assert_eq!(
        parse(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"),
        Err(RequestError::ConnectNotSupported)
    );
    assert_eq!(RequestError::ConnectNotSupported.status(), 405);
    let buf = b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n";
    let head = parse(buf).unwrap();
    assert_eq!(head.target_form, TargetForm::Asterisk);
    assert_eq!(head.path(buf), "*");
    assert_eq!(status_of(b"GET * HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
}

#[test]
fn target_rejections() {
    for bad in [
        &b"GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /  HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /\r\nHost: h\r\n\r\n",
        b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
    ] {
        assert_eq!(status_of(bad), 400, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn versions() {
    let buf = b"GET / HTTP/1.0\r\n\r\n";
    assert_eq!(parse(buf).unwrap().minor_version, 0);
    for (line, major, minor) in [
        ("GET / HTTP/2.0\r\n", 2, Some(0)),
        ("GET / HTTP/1.2\r\n", 1, Some(2)),
        ("GET / HTTP/3\r\n", 3, None),
        ("GET / HTTP/0.9\r\n", 0, Some(9)),
    ] {
        let buf = format!("{line}Host: h\r\n\r\n");
        let err = parse(buf.as_bytes()).unwrap_err();
        assert_eq!(
            err,
            RequestError::UnsupportedVersion { major, minor },
            "{line}"
        );
        assert_eq!(err.status(), 505);
    }
    for line in [
        "GET / http/1.1\r\n",
        "GET / HTTP/x\r\n",
        "GET / FOO\r\n",
        "GET / HTTP/1.1x\r\n",
    ] {
        let buf = format!("{line}Host: h\r\n\r\n");
        assert_eq!(status_of(buf.as_bytes()), 400, "{line}");
    }
}

#[test]
fn request_line_limit_is_414_even_when_partial() {
    let limits = Limits {
        max_request_line: 64,
        ..Limits::default()
    };
    let mut head = RequestHead::new();
    // The line (with CRLF) is exactly 64 bytes: accepted.
    let path = "/".repeat(64 - "GET  HTTP/1.1\r\n".len());
    let buf = format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(parse_with(buf.as_bytes(), &limits).is_ok());
    // One more byte: refused, with or without the rest of the head.
    let buf = format!("GET {path}/ HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(
        parse_with(buf.as_bytes(), &limits),
        Err(RequestError::RequestLineTooLong { max: 64 })
    );
    let partial = format!("GET /{}", "a".repeat(70));
    assert_eq!(
        parse_request(partial.as_bytes(), &limits, &mut head),
        Err(RequestError::RequestLineTooLong { max: 64 })
    );
    assert_eq!(RequestError::RequestLineTooLong { max: 64 }.status(), 414);
    // Shorter than the limit and incomplete: wait for more.
    assert_eq!(
        parse_request(b"GET /aaaa", &limits, &mut head),
        Ok(ParseStatus::Partial)
    );
}

#[test]
fn head_limit_is_431_even_when_partial() {
    let limits = Limits {
        max_head: 256,
        ..Limits::default()
    };
    let mut head = RequestHead::new();
    let big = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n",
        "a".repeat(300)
    );
    assert_eq!(
        parse_request(big.as_bytes(), &limits, &mut head),
        Err(RequestError::HeadTooLarge { max: 256 })
    );
    let complete = format!("{big}\r\n");
    assert_eq!(
        parse_request(complete.as_bytes(), &limits, &mut head),
        Err(RequestError::HeadTooLarge { max: 256 })
    );
    assert_eq!(RequestError::HeadTooLarge { max: 256 }.status(), 431);
    // A head of exactly max_head bytes is fine, with body bytes after it.
    let filler = 256 - "GET / HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n".len();
    let exact = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\nBODY",
        "b".repeat(filler)
    );
    let parsed = parse_with(exact.as_bytes(), &limits).unwrap();
    assert_eq!(parsed.head_len, 256);
    // Endless empty lines are bounded too.
    let crlfs = "\r\n".repeat(200);
    assert_eq!(
        parse_request(crlfs.as_bytes(), &limits, &mut head),
        Err(RequestError::HeadTooLarge { max: 256 })
    );
}

#[test]
fn too_many_headers_is_431_even_when_partial() {
    let limits = Limits {
        max_headers: 4,
        ..Limits::default()
    };
    let ok = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(parse_with(ok, &limits).unwrap().headers.len(), 4);
    let mut head = RequestHead::new();
    let partial = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n";
    assert_eq!(
        parse_request(partial, &limits, &mut head),
        Err(RequestError::TooManyHeaders { max: 4 })
    );
    assert_eq!(RequestError::TooManyHeaders { max: 4 }.status(), 431);
    let many: String = (0..300).map(|i| format!("X-{i}: v\r\n")).collect();
    let huge = Limits {
        max_headers: 1000,
        ..Limits::default()
    };
    let buf = format!("GET / HTTP/1.1\r\nHost: h\r\n{many}\r\n");
    assert_eq!(
        parse_with(buf.as_bytes(), &huge),
        Err(RequestError::TooManyHeaders {
            max: MAX_HEADERS_CAP
        })
    );
}

#[test]
fn keep_alive_rules() {
    for (req, want) in [
        ("GET / HTTP/1.1\r\nHost: h\r\n\r\n", true),
        (
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            false,
        ),
        (
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, CLOSE\r\n\r\n",
            false,
        ),
        (
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: x\r\nConnection: close\r\n\r\n",
            false,
        ),
        ("GET / HTTP/1.0\r\n\r\n", false),
        ("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true),
        ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
        ("GET / HTTP/1.0\r\nKeep-Alive: 300\r\n\r\n", false),
    ] {
        assert_eq!(parse(req.as_bytes()).unwrap().keep_alive, want, "{req}");
    }
}

#[test]
fn upgrade_and_expect() {
    let ws = b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\r\n";
    let head = parse(ws).unwrap();
    assert!(head.upgrade && head.websocket);
    let h2c = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n";
    let head = parse(h2c).unwrap();
    assert!(head.upgrade && !head.websocket);
    for no in [
        &b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade:\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    ] {
        let head = parse(no).unwrap();
        assert!(!head.upgrade && !head.websocket);
        assert!(head
            .headers
            .iter()
            .filter(|h| h.kind == HeaderKind::Upgrade)
            .all(|h| h.hop_by_hop));
    }
    let head = parse(&with_headers(
        "Expect: 100-Continue\r\nContent-Length: 3\r\n",
    ))
    .unwrap();
    assert!(head.expect_continue);
    let head = parse(&with_headers("Expect: something\r\n")).unwrap();
    assert!(!head.expect_continue);
    let buf = b"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n";
    assert!(!parse(buf).unwrap().expect_continue);
    let head = parse(&with_headers("TE: deflate, trailers\r\n")).unwrap();
    assert!(head.te_trailers);
}

#[test]
fn hop_by_hop_marks() {
    let buf = with_headers(
        "Connection: X-Secret, x-forwarded-for, Content-Length, host, transfer-encoding\r\n\
         X-Secret: 1\r\nx-secret: 2\r\nX-Forwarded-For: 1.2.3.4\r\nKeep-Alive: 5\r\n\
         Proxy-Connection: x\r\nTE: trailers\r\nProxy-Authorization: b\r\n\
         Proxy-Authenticate: c\r\nContent-Length: 0\r\nTrailer: X\r\nX-Keep: y\r\n",
    );
    let head = parse(&buf).unwrap();
    let hop: Vec<&str> = head
        .headers
        .iter()
        .filter(|h| h.hop_by_hop)
        .map(|h| std::str::from_utf8(&buf[h.name.clone()]).unwrap())
        .collect();
    assert_eq!(
        hop,
        [
            "Connection",
            "X-Secret",
            "x-secret",
            "Keep-Alive",
            "Proxy-Connection",
            "TE",
            "Proxy-Authorization",
            "Proxy-Authenticate",
            "Trailer",
        ]
    );
    let chunked = with_headers("Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\n");
    let head = parse(&chunked).unwrap();
    assert!(head.headers.iter().all(|h| !h.hop_by_hop));
}

#[test]
fn connection_options_are_bounded() {
    let list: Vec<String> = (0..=MAX_CONNECTION_OPTIONS)
        .map(|i| format!("o{i}"))
        .collect();
    let buf = with_headers(&format!("Connection: {}\r\n", list.join(",")));
    assert_eq!(
        parse(&buf),
        Err(RequestError::Framing(
            FieldError::TooManyConnectionOptions {
                max: MAX_CONNECTION_OPTIONS
            }
        ))
    );
    let buf = with_headers(&format!("Connection: {}\r\n", list[1..].join(",")));
    assert!(parse(&buf).is_ok());
}

#[test]
fn classification_is_case_insensitive() {
    for (name, kind) in [
        ("host", HeaderKind::Host),
        ("HOST", HeaderKind::Host),
        ("Content-Length", HeaderKind::ContentLength),
        ("TRANSFER-ENCODING", HeaderKind::TransferEncoding),
        ("connection", HeaderKind::Connection),
        ("Keep-Alive", HeaderKind::KeepAlive),
        ("Proxy-Connection", HeaderKind::ProxyConnection),
        ("te", HeaderKind::Te),
        ("Trailer", HeaderKind::Trailer),
        ("Upgrade", HeaderKind::Upgrade),
        ("Proxy-Authenticate", HeaderKind::ProxyAuthenticate),
        ("proxy-authorization", HeaderKind::ProxyAuthorization),
        ("Expect", HeaderKind::Expect),
        ("X-Forwarded-For", HeaderKind::XForwardedFor),
        ("x-forwarded-proto", HeaderKind::XForwardedProto),
        ("X-FORWARDED-HOST", HeaderKind::XForwardedHost),
        ("X-Forwarded-Port", HeaderKind::XForwardedPort),
        ("X-Forwarded-Server", HeaderKind::XForwardedServer),
        ("X-Forwarded-Uri", HeaderKind::XForwardedUri),
        ("X-Forwarded-Method", HeaderKind::XForwardedMethod),
        ("X-Forwarded-Prefix", HeaderKind::XForwardedPrefix),
        (
            "X-Forwarded-Tls-Client-Cert",
            HeaderKind::XForwardedTlsClientCert,
        ),
        (
            "X-Forwarded-Tls-Client-Cert-Info",
            HeaderKind::XForwardedTlsClientCertInfo,
        ),
        ("X-Forwarded-Scheme", HeaderKind::XForwardedScheme),
        ("X-Scheme", HeaderKind::XScheme),
        ("X-Real-Ip", HeaderKind::XRealIp),
        ("x-real-ip", HeaderKind::XRealIp),
        ("X_Forwarded_For", HeaderKind::XForwardedAlias),
        ("x_real_ip", HeaderKind::XForwardedAlias),
        ("X-Forwarded_Proto", HeaderKind::XForwardedAlias),
        ("X-Forwarded-Fox", HeaderKind::Other),
        ("X-Request-Id", HeaderKind::Other),
        ("Hosts", HeaderKind::Other),
        ("Cont-Length", HeaderKind::Other),
        ("", HeaderKind::Other),
        ("X", HeaderKind::Other),
    ] {
        assert_eq!(classify(name.as_bytes()), kind, "{name}");
    }
}

#[test]
fn ranges_ignore_a_foreign_buffer() {
    let buf = b"GET /path HTTP/1.1\r\nHost: example.com\r\n\r\n";
    let head = parse(buf).unwrap();
    let other = b"x";
    assert_eq!(head.method(other), "");
    assert_eq!(head.path(other), "/");
    assert_eq!(head.host(other), Some(""));
    assert!(!head.is_head(other));
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}"
}

fn field_value() -> impl Strategy<Value = String> {
    "[ -~]{0,40}".prop_map(|v| v.trim().to_string())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut head = RequestHead::new();
        let _ = parse_request(&bytes, &Limits::default(), &mut head);
        let tight = Limits { max_head: 64, max_request_line: 16, max_headers: 3 };
        let _ = parse_request(&bytes, &tight, &mut head);
    }

    #[test]
    fn mutated_requests_never_panic(
        pos in 0usize..200,
        byte in any::<u8>(),
        cut in 0usize..200,
    ) {
        let mut buf = b"POST http://h:8/a?b HTTP/1.1\r\nHost: h:8\r\nConnection: x, upgrade\r\n\
            Upgrade: websocket\r\nX: 1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let pos = pos % buf.len();
        buf[pos] = byte;
        buf.truncate(cut.max(pos + 1).min(buf.len()));
        let mut head = RequestHead::new();
        if let Ok(ParseStatus::Complete) = parse_request(&buf, &Limits::default(), &mut head) {
            prop_assert!(head.head_len <= buf.len());
            for h in &head.headers {
                prop_assert!(h.name.end <= head.head_len && h.value.end <= head.head_len);
            }
        }
    }

    #[test]
    fn generated_heads_parse_back(
        path in "/[a-zA-Z0-9/._~-]{0,30}",
        query in proptest::option::of("[a-zA-Z0-9=&]{0,20}"),
        headers in proptest::collection::vec((token(), field_value()), 0..20),
        trailing in proptest::collection::vec(any::<u8>(), 0..20),
    ) {
        let headers: Vec<_> = headers
            .into_iter()
            .filter(|(n, _)| classify(n.as_bytes()) == HeaderKind::Other)
            .collect();
        let target = match &query {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        let mut text = format!("GET {target} HTTP/1.1\r\nHost: example.com\r\n");
        for (n, v) in &headers {
            text.push_str(&format!("{n}: {v}\r\n"));
        }
        text.push_str("\r\n");
        let head_len = text.len();
        let mut buf = text.into_bytes();
        buf.extend_from_slice(&trailing);
        let head = parse(&buf).unwrap();
        prop_assert_eq!(head.head_len, head_len);
        prop_assert_eq!(head.path(&buf), path.as_str());
        prop_assert_eq!(head.query(&buf), query.as_deref());
        prop_assert_eq!(head.headers.len(), headers.len() + 1);
        for (h, (n, v)) in head.headers[1..].iter().zip(&headers) {
            prop_assert_eq!(&buf[h.name.clone()], n.as_bytes());
            prop_assert_eq!(&buf[h.value.clone()], v.as_bytes());
        }
    }
}

//! Response head parsing tests: framing, strictness and split points.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use proptest::prelude::*;

use super::*;

fn parse(buf: &[u8], was_head: bool) -> Result<ResponseHead, ResponseError> {
    let mut head = ResponseHead::new();
    match parse_response(buf, &Limits::default(), was_head, &mut head)? {
        ParseStatus::Complete => Ok(head),
        ParseStatus::Partial => panic!("partial: {:?}", String::from_utf8_lossy(buf)),
    }
}

fn framing(buf: &str, was_head: bool) -> (Framing, bool) {
    let head = parse(buf.as_bytes(), was_head).unwrap();
    (head.framing, head.keep_alive)
}

#[test]
fn parses_a_simple_response() {
    let buf = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
    let head = parse(buf, false).unwrap();
    assert_eq!(head.head_len, buf.len() - 5);
    assert_eq!(head.status, 200);
    assert_eq!(&buf[head.status_line.clone()], b"200 OK");
    assert_eq!(head.minor_version, 1);
    assert_eq!(head.framing, Framing::Length(5));
    assert!(head.keep_alive && head.has_body() && !head.is_informational());
    assert_eq!(head.headers.len(), 2);
    assert_eq!(head.header(buf, "content-type"), Some(&b"text/plain"[..]));
    assert_eq!(
        head.header_of(buf, HeaderKind::ContentLength),
        Some(&b"5"[..])
    );
}

#[test]
fn status_line_variants() {
    for (line, status, rest) in [
        ("HTTP/1.1 200 OK", 200, "200 OK"),
        ("HTTP/1.1 404 ", 404, "404 "),
        ("HTTP/1.1 204", 204, "204"),
        (
            "HTTP/1.0 500 Internal Server Error",
            500,
            "500 Internal Server Error",
        ),
        ("HTTP/1.1 299 Odd\tReason", 299, "299 Odd\tReason"),
    ] {
        let buf = format!("{line}\r\nContent-Length: 0\r\n\r\n");
        let head = parse(buf.as_bytes(), false).unwrap();
        assert_eq!(head.status, status);
        assert_eq!(
            &buf.as_bytes()[head.status_line.clone()],
            rest.as_bytes(),
            "{line}"
        );
    }
    for bad in [
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 600 High\r\n\r\n",
        "HTTP/1.1 20 Short\r\n\r\n",
        "HTTP/1.1 2000 Long\r\n\r\n",
        "HTTP/2 200\r\n\r\n",
        "HTTP/1.1 200 O\0K\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "HTTP/1.1  200 OK\r\n\r\n",
    ] {
        let err = parse(bad.as_bytes(), false).unwrap_err();
        assert_eq!(err.status(), 502, "{bad:?}");
    }
}

#[test]
fn framing_rules() {
    let ka = true;
    for (resp, was_head, want) in [
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
            false,
            (Framing::Length(10), ka),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            false,
            (Framing::None, ka),
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
            (Framing::Chunked, ka),
        ),
        (
            "HTTP/1.1 200 OK\r\n\r\n",
            false,
            (Framing::UntilClose, false),
        ),
        (
            "HTTP/1.0 200 OK\r\n\r\n",
            false,
            (Framing::UntilClose, false),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
            true,
            (Framing::None, ka),
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            true,
            (Framing::None, ka),
        ),
        ("HTTP/1.1 200 OK\r\n\r\n", true, (Framing::None, ka)),
        (
            "HTTP/1.1 204 No Content\r\n\r\n",
            false,
            (Framing::None, ka),
        ),
        (
            "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
            false,
            (Framing::None, ka),
        ),
        (
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
            false,
            (Framing::None, ka),
        ),
        ("HTTP/1.1 100 Continue\r\n\r\n", false, (Framing::None, ka)),
        (
            "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
            false,
            (Framing::None, ka),
        ),
        (
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            false,
            (Framing::None, ka),
        ),
        (
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
            false,
            (Framing::Length(1), false),
        ),
        (
            "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
            false,
            (Framing::Length(1), false),
        ),
        (
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n",
            false,
            (Framing::Length(1), true),
        ),
    ] {
        assert_eq!(framing(resp, was_head), want, "{resp:?} head={was_head}");
    }
    let head = parse(b"HTTP/1.1 100 Continue\r\n\r\n", false).unwrap();
    assert!(head.is_informational());
}

#[test]
fn framing_faults_are_502() {
    for (bad, want) in [
        (
            "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n",
            FieldError::ContentLengthWithTransferEncoding,
        ),
        (
            "Content-Length: 1\r\nContent-Length: 2\r\n",
            FieldError::ConflictingContentLength,
        ),
        (
            "Content-Length: 1, 2\r\n",
            FieldError::ConflictingContentLength,
        ),
        ("Content-Length: x\r\n", FieldError::InvalidContentLength),
        (
            "Transfer-Encoding: gzip\r\n",
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
    ] {
        let buf = format!("HTTP/1.1 200 OK\r\n{bad}\r\n");
        let err = parse(buf.as_bytes(), false).unwrap_err();
        assert_eq!(err, ResponseError::Framing(want), "{bad}");
        assert_eq!(err.status(), 502);
    }
    let buf = b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(
        parse(buf, false),
        Err(ResponseError::Framing(FieldError::TransferEncodingInHttp10))
    );
    let dup = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n";
    let head = parse(dup, false).unwrap();
    assert!(head.content_length_dup);
    assert_eq!(head.framing, Framing::Length(3));
}

#[test]
fn header_syntax_rejections() {
    for bad in [
        "Server : x\r\n",
        "X-A: a\r\n folded\r\n",
        "X-A: a\0\r\n",
        "X-A: a\rb\r\n",
        "X-A: a\nX-B: b\r\n",
        " X-A: a\r\n",
    ] {
        let buf = format!("HTTP/1.1 200 OK\r\n{bad}\r\n");
        assert_eq!(
            parse(buf.as_bytes(), false).unwrap_err().status(),
            502,
            "{bad:?}"
        );
    }
    assert_eq!(
        parse(b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", false),
        Err(ResponseError::Malformed {
            part: Malformed::LineEnding
        })
    );
}

#[test]
fn hop_by_hop_and_trailer_marks() {
    let buf = b"HTTP/1.1 200 OK\r\nConnection: x-private\r\nX-Private: 1\r\nKeep-Alive: t=5\r\n\
        Trailer: X-Sum\r\nContent-Length: 1\r\nProxy-Authenticate: B\r\nX-Pub: 2\r\n\r\n";
    let head = parse(buf, false).unwrap();
    let hop: Vec<_> = head
        .headers
        .iter()
        .map(|h| {
            (
                std::str::from_utf8(&buf[h.name.clone()]).unwrap(),
                h.hop_by_hop,
            )
        })
        .collect();
    assert_eq!(
        hop,
        [
            ("Connection", true),
            ("X-Private", true),
            ("Keep-Alive", true),
            ("Trailer", true),
            ("Content-Length", false),
            ("Proxy-Authenticate", true),
            ("X-Pub", false),
        ]
    );
    let chunked = b"HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(parse(chunked, false)
        .unwrap()
        .headers
        .iter()
        .all(|h| !h.hop_by_hop));
}

#[test]
fn every_split_point_is_partial_until_complete() {
    let full =
        b"HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Length: 2\r\n\r\n";
    let expected = parse(full, false).unwrap();
    let mut head = ResponseHead::new();
    for cut in 0..full.len() {
        assert_eq!(
            parse_response(&full[..cut], &Limits::default(), false, &mut head),
            Ok(ParseStatus::Partial),
            "cut {cut}"
        );
    }
    let mut with_body = full.to_vec();
    with_body.extend_from_slice(b"okHTTP/1.1 ...");
    parse_response(&with_body, &Limits::default(), false, &mut head).unwrap();
    assert_eq!(head, expected);
}

#[test]
fn limits() {
    let tight = Limits {
        max_head: 64,
        max_request_line: 8,
        max_headers: 2,
    };
    let mut head = ResponseHead::new();
    let big = format!("HTTP/1.1 200 OK\r\nX: {}\r\n", "a".repeat(80));
    assert_eq!(
        parse_response(big.as_bytes(), &tight, false, &mut head),
        Err(ResponseError::HeadTooLarge { max: 64 })
    );
    let many = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n";
    assert_eq!(
        parse_response(many, &tight, false, &mut head),
        Err(ResponseError::TooManyHeaders { max: 2 })
    );
    // The request-line limit does not apply to status lines.
    let long_reason = format!("HTTP/1.1 200 {}\r\n\r\n", "r".repeat(30));
    assert_eq!(
        parse_response(long_reason.as_bytes(), &tight, false, &mut head),
        Ok(ParseStatus::Complete)
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), was_head: bool) {
        let mut head = ResponseHead::new();
        let _ = parse_response(&bytes, &Limits::default(), was_head, &mut head);
    }

    #[test]
    fn mutated_responses_never_panic(pos in 0usize..200, byte in any::<u8>(), was_head: bool) {
        let mut buf = b"HTTP/1.1 101 Switching\r\nConnection: upgrade, x\r\nUpgrade: websocket\r\n\
            X: 1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let pos = pos % buf.len();
        buf[pos] = byte;
        let mut head = ResponseHead::new();
        if let Ok(ParseStatus::Complete) = parse_response(&buf, &Limits::default(), was_head, &mut head) {
            prop_assert!(head.head_len <= buf.len());
            prop_assert!(head.status_line.start <= head.status_line.end);
            prop_assert!(head.status_line.end <= head.head_len);
        }
    }
}

//! Writes the forwarded heads (as Traefik's forwardedheaders middleware plus Go's reverse
//! proxy would) and the proxy's own canned error responses.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

use super::header::{authority_port, slice, HeaderKind, HeaderRef};
use super::request::{RequestHead, TargetForm};
use super::response::ResponseHead;

/// What the proxy knows about the downstream connection when forwarding a request.
#[derive(Debug, Clone, Copy)]
pub struct ForwardContext<'a> {
    pub client_addr: SocketAddr,
    /// The peer is in `entryPoints.<ep>.forwardedHeaders.trustedIPs` (or `insecure` is set):
    /// its `X-Forwarded-*`/`X-Real-Ip` headers are kept.
    pub trusted: bool,
    /// The downstream connection is TLS.
    pub tls: bool,
    /// The entrypoint's listening port. Not used for `X-Forwarded-Port`, which Traefik takes
    /// from the Host port, else 443/80 by scheme.
    pub entry_port: u16,
    /// This host's name, for `X-Forwarded-Server` (none is written when empty).
    pub server_name: &'a str,
    /// `Some(host[:port])` when `passHostHeader=false`: replaces the `Host` header.
    pub upstream_host: Option<&'a str>,
}

/// The `Connection` header to put on a forwarded response (101 always gets
/// `Connection: Upgrade`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseConnection {
    /// None: HTTP/1.1 clients keep the connection open by default.
    Default,
    /// `Connection: close`: the proxy closes the client connection after this response.
    Close,
    /// `Connection: keep-alive`: for HTTP/1.0 clients that asked to keep the connection.
    KeepAlive,
}

/// What a trusted peer sent for a header the proxy would otherwise set: the first value.
#[derive(Default)]
struct Prior<'b> {
    proto: Option<&'b [u8]>,
    host: Option<&'b [u8]>,
    port: Option<&'b [u8]>,
    real_ip: Option<&'b [u8]>,
}

/// Appends the head to send upstream for `head` (parsed from `buf`) to `out`.
///
/// - Request line: the method, the target in origin-form (an absolute-form target loses its
///   scheme and authority) and the client's HTTP version.
/// - `Host`: passed through in place, or written first when `upstream_host` replaces it or an
///   absolute-form target supplies it (RFC 9112 §3.2.2).
/// - Hop-by-hop headers are dropped (`Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`,
///   `Proxy-Authenticate`, `Proxy-Authorization`, `Upgrade`, `Trailer` unless the body is
///   chunked, and every header a `Connection` option names). `Transfer-Encoding` and
///   `Content-Length` stay (duplicate Content-Lengths become one). Upgrades keep `Upgrade`
///   and get `Connection: Upgrade`; `TE: trailers` is re-sent as Go's proxy does.
/// - From an untrusted peer every `X-Forwarded-*`/`X-Real-Ip` header (underscore spellings
///   too) is dropped. Then, as Traefik: `X-Forwarded-For` is the trusted prior list plus the
///   client IP; `X-Forwarded-Proto` (`http`/`https`, `ws`/`wss` for WebSocket),
///   `X-Forwarded-Host` (the client's host, if any), `X-Forwarded-Port` (Host port, else 443
///   for https/wss, else 80) and `X-Real-Ip` are set unless a trusted peer sent a non-empty
///   one; `X-Forwarded-Server` always becomes `server_name`.
///
/// Kept headers are copied in contiguous runs of the original bytes.
pub fn write_request_head(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &RequestHead,
    ctx: &ForwardContext<'_>,
) {
    out.reserve(head.head_len + 256);
    out.extend_from_slice(slice(buf, &head.method));
    out.push(b' ');
    match head.target_form {
        TargetForm::Absolute => {
            match slice(buf, &head.path) {
                [] => out.push(b'/'),
                path => out.extend_from_slice(path),
            }
            if let Some(query) = &head.query {
                out.push(b'?');
                out.extend_from_slice(slice(buf, query));
            }
        }
        TargetForm::Origin | TargetForm::Asterisk => {
            out.extend_from_slice(slice(buf, &head.target));
        }
    }
    out.extend_from_slice(if head.minor_version == 0 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });

    let client_host = head.host.as_ref().map(|h| slice(buf, h));
    let upstream_host = ctx
        .upstream_host
        .map(str::as_bytes)
        .filter(|h| is_field_value(h));
    let replace_host = upstream_host.is_some() || head.target_form == TargetForm::Absolute;
    if replace_host {
        if let Some(host) = upstream_host.or(client_host) {
            push_header(out, b"Host: ", host);
        }
    }

    let mut prior = Prior::default();
    if ctx.trusted {
        for h in &head.headers {
            let slot = match h.kind {
                HeaderKind::XForwardedProto => &mut prior.proto,
                HeaderKind::XForwardedHost => &mut prior.host,
                HeaderKind::XForwardedPort => &mut prior.port,
                HeaderKind::XRealIp => &mut prior.real_ip,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(slice(buf, &h.value));
            }
        }
    }
    let present = |v: Option<&[u8]>| v.is_some_and(|v| !v.is_empty());
    let (proto_sent, host_sent, port_sent, real_ip_sent) = (
        present(prior.proto),
        present(prior.host),
        present(prior.port),
        present(prior.real_ip),
    );
    let server_name =
        Some(ctx.server_name.as_bytes()).filter(|s| !s.is_empty() && is_field_value(s));

    copy_kept(out, buf, head.head_len, &head.headers, |h| match h.kind {
        HeaderKind::Connection => false,
        HeaderKind::Upgrade if head.upgrade => true,
        _ if h.hop_by_hop => false,
        HeaderKind::Host => !replace_host,
        HeaderKind::ContentLength => !head.content_length_dup,
        kind if kind.is_forwarded() => {
            ctx.trusted
                && match kind {
                    HeaderKind::XForwardedFor => false,
                    HeaderKind::XForwardedProto => proto_sent,
                    HeaderKind::XForwardedHost => host_sent,
                    HeaderKind::XForwardedPort => port_sent,
                    HeaderKind::XRealIp => real_ip_sent,
                    HeaderKind::XForwardedServer => server_name.is_none(),
                    _ => true,
                }
        }
        _ => true,
    });

    if head.content_length_dup {
        push_content_length(out, head.content_length.unwrap_or(0));
    }
    if head.upgrade {
        out.extend_from_slice(b"Connection: Upgrade\r\n");
    } else if head.minor_version == 0 {
        // HTTP/1.0 closes by default: ask the upstream to keep the pooled connection open.
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    if head.te_trailers {
        out.extend_from_slice(b"Te: trailers\r\n");
    }

    let ip = ctx.client_addr.ip().to_canonical();
    out.extend_from_slice(b"X-Forwarded-For: ");
    if ctx.trusted {
        for h in head
            .headers
            .iter()
            .filter(|h| h.kind == HeaderKind::XForwardedFor)
        {
            let value = slice(buf, &h.value);
            if !value.is_empty() {
                out.extend_from_slice(value);
                out.extend_from_slice(b", ");
            }
        }
    }
    push_ip(out, ip);
    out.extend_from_slice(b"\r\n");

    let proto: &[u8] = match prior.proto {
        Some(proto) if proto_sent => proto,
        _ => {
            let ours: &[u8] = match (head.websocket, ctx.tls) {
                (true, true) => b"wss",
                (true, false) => b"ws",
                (false, true) => b"https",
                (false, false) => b"http",
            };
            push_header(out, b"X-Forwarded-Proto: ", ours);
            ours
        }
    };
    if !host_sent {
        if let Some(host) = client_host.filter(|h| !h.is_empty()) {
            push_header(out, b"X-Forwarded-Host: ", host);
        }
    }
    if !port_sent {
        let port: &[u8] = match client_host.and_then(authority_port) {
            Some(port) => port,
            None if proto == b"https" || proto == b"wss" || ctx.tls => b"443",
            None => b"80",
        };
        push_header(out, b"X-Forwarded-Port: ", port);
    }
    if let Some(name) = server_name {
        push_header(out, b"X-Forwarded-Server: ", name);
    }
    if !real_ip_sent {
        out.extend_from_slice(b"X-Real-Ip: ");
        push_ip(out, ip);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends the head to send to the client for an upstream response: `HTTP/1.1` plus the
/// status code and reason as received, hop-by-hop headers dropped (`Transfer-Encoding` kept,
/// duplicate Content-Lengths collapsed), a 101 keeping `Upgrade` with `Connection: Upgrade`,
/// and `Connection: close` when `close`.
pub fn write_response_head(out: &mut Vec<u8>, buf: &[u8], head: &ResponseHead, close: bool) {
    let connection = if close {
        ResponseConnection::Close
    } else {
        ResponseConnection::Default
    };
    write_response_head_with(out, buf, head, connection);
}

/// [`write_response_head`] with a choice of `Connection` header (HTTP/1.0 clients need
/// `Connection: keep-alive` to keep the connection).
pub fn write_response_head_with(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &ResponseHead,
    connection: ResponseConnection,
) {
    out.reserve(head.head_len + 64);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(slice(buf, &head.status_line));
    out.extend_from_slice(b"\r\n");
    let switching = head.status == 101;
    copy_kept(out, buf, head.head_len, &head.headers, |h| match h.kind {
        HeaderKind::Connection => false,
        HeaderKind::Upgrade if switching => true,
        _ if h.hop_by_hop => false,
        HeaderKind::ContentLength => !head.content_length_dup,
        _ => true,
    });
    if head.content_length_dup {
        push_content_length(out, head.content_length.unwrap_or(0));
    }
    if switching {
        out.extend_from_slice(b"Connection: Upgrade\r\n");
    } else {
        match connection {
            ResponseConnection::Default => {}
            ResponseConnection::Close => out.extend_from_slice(b"Connection: close\r\n"),
            ResponseConnection::KeepAlive => {
                out.extend_from_slice(b"Connection: keep-alive\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Copies the header lines `keep` accepts, one `extend_from_slice` per run of consecutive
/// kept lines. A header line runs from its name to the next header's name; the last one ends
/// before the head's final CRLF.
fn copy_kept(
    out: &mut Vec<u8>,
    buf: &[u8],
    head_len: usize,
    headers: &[HeaderRef],
    keep: impl Fn(&HeaderRef) -> bool,
) {
    let mut run: Option<usize> = None;
    for h in headers {
        match (keep(h), run) {
            (true, None) => run = Some(h.name.start),
            (false, Some(start)) => {
                out.extend_from_slice(slice(buf, &(start..h.name.start)));
                run = None;
            }
            _ => {}
        }
    }
    if let Some(start) = run {
        out.extend_from_slice(slice(buf, &(start..head_len.saturating_sub(2))));
    }
}

fn push_header(out: &mut Vec<u8>, name_colon_space: &[u8], value: &[u8]) {
    out.extend_from_slice(name_colon_space);
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn push_content_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"Content-Length: ");
    push_u64(out, n);
    out.extend_from_slice(b"\r\n");
}

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
}

/// The client IP without port or zone; IPv4-mapped IPv6 as IPv4 (as Go prints it).
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_u64(out, u64::from(octet));
            }
        }
        // Writing to a Vec cannot fail.
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// Whether configured text is safe as a header value (no CR, LF, NUL or other controls).
fn is_field_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
}

macro_rules! canned {
    ($status:literal $reason:literal, $extra:literal, $body:literal, $len:literal) => {
        (
            concat!(
                "HTTP/1.1 ",
                $status,
                " ",
                $reason,
                "\r\n",
                "Content-Type: text/plain; charset=utf-8\r\n",
                "X-Content-Type-Options: nosniff\r\n",
                $extra,
                "Content-Length: ",
                $len,
                "\r\n",
                "Connection: close\r\n\r\n",
                $body
            )
            .as_bytes(),
            concat!(
                "HTTP/1.1 ",
                $status,
                " ",
                $reason,
                "\r\n",
                "Content-Type: text/plain; charset=utf-8\r\n",
                "X-Content-Type-Options: nosniff\r\n",
                $extra,
                "Content-Length: ",
                $len,
                "\r\n\r\n",
                $body
            )
            .as_bytes(),
        )
    };
}

/// A complete response the proxy sends itself, with the short text body Traefik (Go) would
/// send: `404 page not found\n`, `Bad Gateway`, `400 Bad Request`, …, and `Connection: close`
/// when `close`. Covers 400, 403, 404, 405 (with `Allow`), 408, 413, 414, 417, 421, 429, 431,
/// 500, 501, 502, 503, 504 and 505; any other status gets the 500 response. There is no
/// `Date` header (the bytes are static).
pub fn error_response(status: u16, close: bool) -> &'static [u8] {
    let (with_close, without) = match status {
        400 => canned!("400" "Bad Request", "", "400 Bad Request", "15"),
        403 => canned!("403" "Forbidden", "", "Forbidden\n", "10"),
        404 => canned!("404" "Not Found", "", "404 page not found\n", "19"),
        405 => canned!(
            "405" "Method Not Allowed",
            "Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE, PATCH\r\n",
            "405 Method Not Allowed",
            "22"
        ),
        408 => canned!("408" "Request Timeout", "", "408 Request Timeout", "19"),
        413 => canned!("413" "Content Too Large", "", "413 Request Entity Too Large", "28"),
        414 => canned!("414" "URI Too Long", "", "414 URI Too Long", "16"),
        417 => canned!("417" "Expectation Failed", "", "417 Expectation Failed", "22"),
        418 => canned!("418" "I'm a teapot", "", "I'm a teapot", "12"),
        421 => canned!("421" "Misdirected Request", "", "Misdirected Request\n", "20"),
        429 => canned!("429" "Too Many Requests", "", "Too Many Requests\n", "18"),
        431 => canned!(
            "431" "Request Header Fields Too Large",
            "",
            "431 Request Header Fields Too Large",
            "35"
        ),
        501 => canned!("501" "Not Implemented", "", "Not Implemented", "15"),
        502 => canned!("502" "Bad Gateway", "", "Bad Gateway", "11"),
        503 => canned!("503" "Service Unavailable", "", "Service Unavailable\n", "20"),
        504 => canned!("504" "Gateway Timeout", "", "Gateway Timeout", "15"),
        505 => canned!(
            "505" "HTTP Version Not Supported",
            "",
            "505 HTTP Version Not Supported",
            "30"
        ),
        _ => canned!("500" "Internal Server Error", "", "Internal Server Error", "21"),
    };
    if close {
        with_close
    } else {
        without
    }
}

#[cfg(test)]
mod tests;

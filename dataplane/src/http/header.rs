//! Header fields shared by requests and responses: classification, list syntax, framing rules.

use std::ops::Range;

use super::request::Framing;

/// Most options a `Connection` header may name besides `close`, `keep-alive` and `upgrade`.
///
/// Each named option is matched against every header, so the count is bounded to keep a
/// hostile head from costing more than a few microseconds.
pub const MAX_CONNECTION_OPTIONS: usize = 64;

/// A header field of a parsed head, as ranges into the caller's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRef {
    /// The field name, as received (case preserved).
    pub name: Range<usize>,
    /// The field value without leading and trailing whitespace.
    pub value: Range<usize>,
    /// What the name means to the proxy.
    pub kind: HeaderKind,
    /// Removed when forwarding: an RFC 9110 §7.6.1 connection-specific field, or a field
    /// named by a `Connection` option. `Transfer-Encoding` is never marked (the body is
    /// forwarded verbatim); `Upgrade` is marked and kept by the writer for upgrades.
    pub hop_by_hop: bool,
}

/// The header names the proxy acts on; everything else is [`HeaderKind::Other`].
///
/// Classification is ASCII case-insensitive. The `X-…` kinds are the headers Traefik's
/// forwardedheaders middleware manages; [`HeaderKind::XForwardedAlias`] is an underscore
/// spelling of one of them (`X_Forwarded_For`), dropped from untrusted peers like the original
/// because CGI-style backends map `_` and `-` to the same variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderKind {
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
    ProxyConnection,
    Te,
    Trailer,
    Upgrade,
    ProxyAuthenticate,
    ProxyAuthorization,
    Expect,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    XForwardedPort,
    XForwardedServer,
    XForwardedUri,
    XForwardedMethod,
    XForwardedPrefix,
    XForwardedTlsClientCert,
    XForwardedTlsClientCertInfo,
    XForwardedScheme,
    XScheme,
    XRealIp,
    XForwardedAlias,
    Other,
}

/// A framing or connection-management fault in the header fields (RFC 9112 §6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("Content-Length is not a decimal number that fits in 64 bits")]
    InvalidContentLength,
    #[error("Content-Length values disagree")]
    ConflictingContentLength,
    #[error("both Content-Length and Transfer-Encoding are present")]
    ContentLengthWithTransferEncoding,
    #[error("Transfer-Encoding must be exactly `chunked`")]
    UnsupportedTransferEncoding,
    #[error("Transfer-Encoding in an HTTP/1.0 message")]
    TransferEncodingInHttp10,
    #[error("Connection names more than {max} options")]
    TooManyConnectionOptions { max: usize },
}

/// The part of a head that failed to tokenize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Method, request-target or separators of the request line.
    RequestLine,
    /// Status code or reason phrase of the status line.
    StatusLine,
    /// The request-target is not origin-, absolute- or asterisk-form, has a fragment, or holds
    /// bytes outside ASCII.
    Target,
    /// A header name holds a byte outside `tchar`, whitespace before the colon, or an
    /// obs-fold continuation line.
    HeaderName,
    /// A header value holds a control byte (NUL, bare CR, …).
    HeaderValue,
    /// A line ends in something other than CRLF (bare LF or bare CR).
    LineEnding,
    /// The protocol version is not `HTTP/1.0` or `HTTP/1.1`.
    Version,
}

/// What the header fields say about framing and the connection, before the
/// message-type-specific rules (request vs response) apply.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    pub content_length: Option<u64>,
    /// More than one Content-Length value (all equal): the writer emits a single one.
    pub content_length_dup: bool,
    pub transfer_encoding: bool,
    /// The Transfer-Encoding list is exactly `chunked`.
    pub chunked: bool,
    pub close: bool,
    pub keep_alive: bool,
    pub upgrade_option: bool,
    /// Index of the first `Upgrade` header with a non-empty value.
    pub upgrade_header: Option<usize>,
    pub host_count: usize,
    /// Index of the first `Host` header.
    pub host_header: Option<usize>,
    pub expect_continue: bool,
    pub te_trailers: bool,
    pub trailer: bool,
}

impl HeaderKind {
    /// Connection-specific by definition (RFC 9110 §7.6.1; `Proxy-*` and `Keep-Alive` as Go's
    /// reverse proxy). `Trailer` is decided per message: it stays with a chunked body.
    pub fn is_hop_by_hop(self) -> bool {
        matches!(
            self,
            HeaderKind::Connection
                | HeaderKind::KeepAlive
                | HeaderKind::ProxyConnection
                | HeaderKind::Te
                | HeaderKind::Upgrade
                | HeaderKind::ProxyAuthenticate
                | HeaderKind::ProxyAuthorization
        )
    }

    /// One of the `X-Forwarded-*`/`X-Real-Ip` headers dropped from untrusted peers.
    pub fn is_forwarded(self) -> bool {
        matches!(
            self,
            HeaderKind::XForwardedFor
                | HeaderKind::XForwardedProto
                | HeaderKind::XForwardedHost
                | HeaderKind::XForwardedPort
                | HeaderKind::XForwardedServer
                | HeaderKind::XForwardedUri
                | HeaderKind::XForwardedMethod
                | HeaderKind::XForwardedPrefix
                | HeaderKind::XForwardedTlsClientCert
                | HeaderKind::XForwardedTlsClientCertInfo
                | HeaderKind::XForwardedScheme
                | HeaderKind::XScheme
                | HeaderKind::XRealIp
                | HeaderKind::XForwardedAlias
        )
    }

    /// Whether a `Connection` option may make this header hop-by-hop. Framing headers, `Host`
    /// and the forwarded headers the proxy manages are immune (as in Traefik).
    fn nominatable(self) -> bool {
        !matches!(
            self,
            HeaderKind::Host | HeaderKind::ContentLength | HeaderKind::TransferEncoding
        ) && !self.is_forwarded()
    }
}

/// Classifies a header name, ASCII case-insensitively.
pub fn classify(name: &[u8]) -> HeaderKind {
    let Some(&first) = name.first() else {
        return HeaderKind::Other;
    };
    let is = |lower: &[u8]| name.eq_ignore_ascii_case(lower);
    match (name.len(), first | 0x20) {
        (2, b't') if is(b"te") => HeaderKind::Te,
        (4, b'h') if is(b"host") => HeaderKind::Host,
        (6, b'e') if is(b"expect") => HeaderKind::Expect,
        (7, b't') if is(b"trailer") => HeaderKind::Trailer,
        (7, b'u') if is(b"upgrade") => HeaderKind::Upgrade,
        (10, b'c') if is(b"connection") => HeaderKind::Connection,
        (10, b'k') if is(b"keep-alive") => HeaderKind::KeepAlive,
        (14, b'c') if is(b"content-length") => HeaderKind::ContentLength,
        (16, b'p') if is(b"proxy-connection") => HeaderKind::ProxyConnection,
        (17, b't') if is(b"transfer-encoding") => HeaderKind::TransferEncoding,
        (18, b'p') if is(b"proxy-authenticate") => HeaderKind::ProxyAuthenticate,
        (19, b'p') if is(b"proxy-authorization") => HeaderKind::ProxyAuthorization,
        (8..=32, b'x') => classify_x(name),
        _ => HeaderKind::Other,
    }
}

const X_HEADERS: [(&[u8], HeaderKind); 13] = [
    (b"x-forwarded-for", HeaderKind::XForwardedFor),
    (b"x-forwarded-proto", HeaderKind::XForwardedProto),
    (b"x-forwarded-host", HeaderKind::XForwardedHost),
    (b"x-forwarded-port", HeaderKind::XForwardedPort),
    (b"x-forwarded-server", HeaderKind::XForwardedServer),
    (b"x-forwarded-uri", HeaderKind::XForwardedUri),
    (b"x-forwarded-method", HeaderKind::XForwardedMethod),
    (b"x-forwarded-prefix", HeaderKind::XForwardedPrefix),
    (
        b"x-forwarded-tls-client-cert",
        HeaderKind::XForwardedTlsClientCert,
    ),
    (
        b"x-forwarded-tls-client-cert-info",
        HeaderKind::XForwardedTlsClientCertInfo,
    ),
    (b"x-forwarded-scheme", HeaderKind::XForwardedScheme),
    (b"x-scheme", HeaderKind::XScheme),
    (b"x-real-ip", HeaderKind::XRealIp),
];

fn classify_x(name: &[u8]) -> HeaderKind {
    for (lower, kind) in X_HEADERS {
        if lower.len() == name.len()
            && name.iter().zip(lower).all(|(&b, &l)| {
                (if b == b'_' {
                    b'-'
                } else {
                    b.to_ascii_lowercase()
                }) == l
            })
        {
            if name.contains(&b'_') {
                return HeaderKind::XForwardedAlias;
            }
            return kind;
        }
    }
    HeaderKind::Other
}

/// The non-empty elements of a comma-separated list value (RFC 9110 §5.6.1), trimmed of OWS.
pub fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|item| !item.is_empty())
}

/// Whether a list value holds `token`, ASCII case-insensitively.
pub fn list_contains(value: &[u8], token: &[u8]) -> bool {
    list_items(value).any(|item| item.eq_ignore_ascii_case(token))
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The bytes of `range` in `buf`, or nothing if the range does not fit (a head used with
/// another buffer than the one it was parsed from).
#[inline]
/// The value of the first header named `name` (ASCII case-insensitive).
pub fn find<'b>(buf: &'b [u8], headers: &[HeaderRef], name: &str) -> Option<&'b [u8]> {
    headers
        .iter()
        .find(|h| slice(buf, &h.name).eq_ignore_ascii_case(name.as_bytes()))
        .map(|h| slice(buf, &h.value))
}

/// The value of the first header of `kind`.
pub fn find_kind<'b>(buf: &'b [u8], headers: &[HeaderRef], kind: HeaderKind) -> Option<&'b [u8]> {
    headers
        .iter()
        .find(|h| h.kind == kind)
        .map(|h| slice(buf, &h.value))
}

pub(crate) fn slice<'b>(buf: &'b [u8], range: &Range<usize>) -> &'b [u8] {
    buf.get(range.clone()).unwrap_or_default()
}

/// The range of `part` within `buf`; `part` must be a subslice of `buf` (httparse output).
#[inline]
pub(crate) fn range_of(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
    start..start.wrapping_add(part.len())
}

/// Whether a complete head has an LF that is not preceded by CR.
///
/// httparse accepts bare LF as a line ending but rejects a CR that is not followed by LF, so
/// in a head it accepted every CR is the first half of a CRLF: the counts differ exactly when
/// some LF stands alone. Counting in 64-byte blocks with `i8` sums keeps the loop in byte-wide
/// SIMD lanes.
pub(crate) fn has_bare_lf(head: &[u8]) -> bool {
    let mut balance: isize = 0;
    for block in head.chunks(64) {
        let d: i8 = block
            .iter()
            .map(|&b| i8::from(b == b'\r') - i8::from(b == b'\n'))
            .fold(0i8, i8::wrapping_add);
        balance += isize::from(d);
    }
    balance != 0
}

/// Maps an httparse failure (other than `TooManyHeaders`) to the malformed part.
pub(crate) fn malformed(err: httparse::Error, line: Malformed) -> Malformed {
    match err {
        httparse::Error::HeaderName => Malformed::HeaderName,
        httparse::Error::HeaderValue => Malformed::HeaderValue,
        httparse::Error::NewLine => Malformed::LineEnding,
        httparse::Error::Version => Malformed::Version,
        httparse::Error::Status | httparse::Error::Token | httparse::Error::TooManyHeaders => line,
    }
}

/// Whether `value` is a valid `Host`/authority: `uri-host [ ":" port ]` (RFC 9110 §7.2,
/// RFC 3986 §3.2.2) with no userinfo. An empty value is valid (an empty reg-name).
pub fn valid_authority(value: &[u8]) -> bool {
    let (host, port) = split_authority_raw(value);
    let Some(host) = host else {
        return false;
    };
    let host_ok = if let [b'[', inner @ .., b']'] = host {
        !inner.is_empty()
            && inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        valid_reg_name(host)
    };
    host_ok
        && match port {
            None => true,
            Some(port) => {
                port.len() <= 5
                    && port.iter().all(u8::is_ascii_digit)
                    && parse_decimal(port).is_none_or(|p| p <= 65_535)
            }
        }
}

/// The port of a valid authority, if it has a non-empty one.
pub fn authority_port(value: &[u8]) -> Option<&[u8]> {
    match split_authority_raw(value) {
        (Some(_), Some(port)) if !port.is_empty() => Some(port),
        _ => None,
    }
}

/// Splits `host[:port]`; `None` host when an IP literal is not closed or is followed by junk.
fn split_authority_raw(value: &[u8]) -> (Option<&[u8]>, Option<&[u8]>) {
    if value.first() == Some(&b'[') {
        let Some(close) = value.iter().position(|&b| b == b']') else {
            return (None, None);
        };
        let (host, rest) = value.split_at(close + 1);
        match rest {
            [] => (Some(host), None),
            [b':', port @ ..] => (Some(host), Some(port)),
            _ => (None, None),
        }
    } else {
        match value.iter().rposition(|&b| b == b':') {
            Some(colon) => (value.get(..colon), value.get(colon + 1..)),
            None => (Some(value), None),
        }
    }
}

/// RFC 3986 `unreserved` and `sub-delims`: the bytes a reg-name holds besides `%XX`.
static REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        b += 1;
    }
    table
};

fn valid_reg_name(host: &[u8]) -> bool {
    // The common case, no percent-encoding, is one table lookup per byte.
    if host.iter().all(|&b| REG_NAME[usize::from(b)]) {
        return true;
    }
    let mut i = 0;
    while let Some(&b) = host.get(i) {
        if b == b'%' {
            let hex = |j: usize| host.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else if REG_NAME[usize::from(b)] {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// A non-empty run of ASCII digits as a `u64`, `None` if empty, not digits, or overflowing.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(n)
}

/// Converts httparse's headers into [`HeaderRef`]s (appended to `out`, which the caller
/// cleared) and collects what they say about framing and the connection.
pub(crate) fn scan_fields(
    buf: &[u8],
    raw: &[httparse::Header<'_>],
    out: &mut Vec<HeaderRef>,
) -> Result<Fields, FieldError> {
    let mut f = Fields::default();
    let mut te_items = 0usize;
    let mut te_chunked_first = false;
    let mut options = 0usize;
    for (index, h) in raw.iter().enumerate() {
        let name = range_of(buf, h.name.as_bytes());
        let value = range_of(buf, h.value);
        let kind = classify(h.name.as_bytes());
        match kind {
            HeaderKind::ContentLength => {
                for item in list_items(h.value) {
                    let n = parse_decimal(item).ok_or(FieldError::InvalidContentLength)?;
                    match f.content_length {
                        Some(prev) if prev != n => {
                            return Err(FieldError::ConflictingContentLength);
                        }
                        Some(_) => f.content_length_dup = true,
                        None => f.content_length = Some(n),
                    }
                }
                if f.content_length.is_none() {
                    return Err(FieldError::InvalidContentLength);
                }
            }
            HeaderKind::TransferEncoding => {
                f.transfer_encoding = true;
                for item in list_items(h.value) {
                    te_items += 1;
                    if te_items == 1 {
                        te_chunked_first = item.eq_ignore_ascii_case(b"chunked");
                    }
                }
            }
            HeaderKind::Connection => {
                for item in list_items(h.value) {
                    if item.eq_ignore_ascii_case(b"close") {
                        f.close = true;
                    } else if item.eq_ignore_ascii_case(b"keep-alive") {
                        f.keep_alive = true;
                    } else if item.eq_ignore_ascii_case(b"upgrade") {
                        f.upgrade_option = true;
                    } else {
                        options += 1;
                    }
                }
            }
            HeaderKind::Upgrade if f.upgrade_header.is_none() && !h.value.is_empty() => {
                f.upgrade_header = Some(index);
            }
            HeaderKind::Host => {
                f.host_count += 1;
                if f.host_header.is_none() {
                    f.host_header = Some(index);
                }
            }
            HeaderKind::Expect => {
                f.expect_continue |= h.value.eq_ignore_ascii_case(b"100-continue");
            }
            HeaderKind::Te => f.te_trailers |= list_contains(h.value, b"trailers"),
            HeaderKind::Trailer => f.trailer = true,
            _ => {}
        }
        out.push(HeaderRef {
            name,
            value,
            kind,
            hop_by_hop: kind.is_hop_by_hop(),
        });
    }
    f.chunked = te_items == 1 && te_chunked_first;
    if options > MAX_CONNECTION_OPTIONS {
        return Err(FieldError::TooManyConnectionOptions {
            max: MAX_CONNECTION_OPTIONS,
        });
    }
    if options > 0 {
        mark_connection_options(buf, out);
    }
    Ok(f)
}

/// Marks every header named by a `Connection` option as hop-by-hop (RFC 9110 §7.6.1).
fn mark_connection_options(buf: &[u8], headers: &mut [HeaderRef]) {
    for c in 0..headers.len() {
        let value = match headers.get(c) {
            Some(conn) if conn.kind == HeaderKind::Connection => conn.value.clone(),
            _ => continue,
        };
        for option in list_items(slice(buf, &value)) {
            for h in headers.iter_mut() {
                if h.kind.nominatable()
                    && h.name.len() == option.len()
                    && slice(buf, &h.name).eq_ignore_ascii_case(option)
                {
                    h.hop_by_hop = true;
                }
            }
        }
    }
}

impl Fields {
    /// The framing the fields declare, or `None` when there is neither Content-Length nor
    /// Transfer-Encoding (RFC 9112 §6.3 rules 3–5, strict: every doubt is an error).
    pub fn declared_framing(&self, minor_version: u8) -> Result<Option<Framing>, FieldError> {
        if self.transfer_encoding {
            if minor_version == 0 {
                return Err(FieldError::TransferEncodingInHttp10);
            }
            if self.content_length.is_some() {
                return Err(FieldError::ContentLengthWithTransferEncoding);
            }
            if !self.chunked {
                return Err(FieldError::UnsupportedTransferEncoding);
            }
            return Ok(Some(Framing::Chunked));
        }
        Ok(self.content_length.map(|n| match n {
            0 => Framing::None,
            n => Framing::Length(n),
        }))
    }

    /// Keep-alive per RFC 9112 §9.3: `close` wins; HTTP/1.1 persists by default, HTTP/1.0 only
    /// with `keep-alive`.
    pub fn persistent(&self, minor_version: u8) -> bool {
        !self.close && (minor_version >= 1 || self.keep_alive)
    }
}

/// Marks `Trailer` hop-by-hop unless the body is chunked (the trailers it announces travel
/// verbatim inside the chunked body, and Go's proxy re-announces them likewise).
pub(crate) fn settle_trailer(headers: &mut [HeaderRef], framing: Framing) {
    if framing != Framing::Chunked {
        for h in headers.iter_mut().filter(|h| h.kind == HeaderKind::Trailer) {
            h.hop_by_hop = true;
        }
    }
}

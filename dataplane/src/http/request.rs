//! HTTP/1.1 request heads: strict RFC 9112 parsing into ranges over the caller's buffer.

use std::mem::MaybeUninit;
use std::ops::Range;

use super::header::{
    has_bare_lf, list_contains, malformed, range_of, scan_fields, settle_trailer, slice,
    valid_authority, FieldError, Malformed,
};
pub use super::header::{HeaderKind, HeaderRef};

/// Header slots httparse gets on the stack; a larger [`Limits::max_headers`] is clamped to it.
pub const MAX_HEADERS_CAP: usize = 256;

/// Size limits for a head. The defaults suit an edge router (Traefik/Go accept 1 MiB of
/// header bytes, nginx 4 × 8 KiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The whole head, request line and empty lines before it included. Default 32 KiB.
    pub max_head: usize,
    /// The request line including its CRLF. Default 8 KiB. Unused for responses.
    pub max_request_line: usize,
    /// Header fields (clamped to [`MAX_HEADERS_CAP`]). Default 100.
    pub max_headers: usize,
}

/// How a message body is delimited (RFC 9112 §6.3). Chunked bytes pass through verbatim;
/// [`super::ChunkedDecoder`] finds their end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (also `Content-Length: 0`).
    None,
    /// Exactly this many bytes (never 0).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Responses only: the body runs until the upstream closes the connection.
    UntilClose,
}

/// Whether a parse found a complete head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseStatus {
    /// The head is complete: its fields are set and `head_len` bytes belong to it.
    Complete,
    /// More bytes are needed; call again with the same bytes and more appended.
    Partial,
}

/// The form of the request-target (RFC 9112 §3.2). Authority-form only comes with CONNECT,
/// which is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`.
    Origin,
    /// `http://authority/path?query`; the authority is the host.
    Absolute,
    /// `*`, with OPTIONS only.
    Asterisk,
}

/// A parsed request head. Every range points into the buffer given to [`parse_request`];
/// reuse one `RequestHead` per connection so its header `Vec` is allocated once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Bytes of the head, empty lines before the request line and the final CRLF included;
    /// the body (or the next pipelined request) starts here.
    pub head_len: usize,
    pub method: Range<usize>,
    /// The request-target as received.
    pub target: Range<usize>,
    pub target_form: TargetForm,
    /// The path: empty for an absolute-form target without one (it means `/`), `*` for the
    /// asterisk form.
    pub path: Range<usize>,
    /// The query without its `?` (`Some` and empty for a bare `?`).
    pub query: Option<Range<usize>>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// The host to route on: the absolute-form authority, else the `Host` value (`None` only
    /// for HTTP/1.0 without `Host`). May carry a port.
    pub host: Option<Range<usize>>,
    pub headers: Vec<HeaderRef>,
    pub framing: Framing,
    /// The client connection may carry another request after this one.
    pub keep_alive: bool,
    /// HTTP/1.1, a `Connection: upgrade` option and a non-empty `Upgrade` header.
    pub upgrade: bool,
    /// An upgrade whose `Upgrade` lists `websocket`.
    pub websocket: bool,
    /// HTTP/1.1 with `Expect: 100-continue`.
    pub expect_continue: bool,
    /// `TE` lists `trailers` (re-sent upstream as `Te: trailers`, as Go's proxy does).
    pub te_trailers: bool,
    /// The Content-Length value, if sent (also when the framing ignores it: HEAD, 204, 304).
    pub content_length: Option<u64>,
    /// Content-Length came more than once (all equal): forward a single one.
    pub content_length_dup: bool,
}

/// Why a request head is refused. [`RequestError::status`] gives the response status; the
/// request is never forwarded and the connection should be closed after the response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("malformed request: bad {part:?}")]
    Malformed { part: Malformed },
    #[error("unsupported HTTP version {major}.{minor:?}")]
    UnsupportedVersion { major: u8, minor: Option<u8> },
    #[error("request line longer than {max} bytes")]
    RequestLineTooLong { max: usize },
    #[error("request head larger than {max} bytes")]
    HeadTooLarge { max: usize },
    #[error("more than {max} header fields")]
    TooManyHeaders { max: usize },
    #[error("CONNECT is not supported")]
    ConnectNotSupported,
    #[error("HTTP/1.1 request without Host")]
    MissingHost,
    #[error("more than one Host header")]
    DuplicateHost,
    #[error("invalid Host or target authority")]
    InvalidHost,
    #[error(transparent)]
    Framing(#[from] FieldError),
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 32 * 1024,
            max_request_line: 8 * 1024,
            max_headers: 100,
        }
    }
}

impl Default for RequestHead {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestHead {
    /// An empty head with room for 32 headers.
    pub fn new() -> Self {
        RequestHead {
            headers: Vec::with_capacity(32),
            ..Self::EMPTY
        }
    }

    const EMPTY: RequestHead = RequestHead {
        head_len: 0,
        method: 0..0,
        target: 0..0,
        target_form: TargetForm::Origin,
        path: 0..0,
        query: None,
        minor_version: 1,
        host: None,
        headers: Vec::new(),
        framing: Framing::None,
        keep_alive: false,
        upgrade: false,
        websocket: false,
        expect_continue: false,
        te_trailers: false,
        content_length: None,
        content_length_dup: false,
    };

    /// Clears every field, keeping the header `Vec`'s allocation.
    fn reset(&mut self) {
        let mut headers = std::mem::take(&mut self.headers);
        headers.clear();
        *self = RequestHead {
            headers,
            ..Self::EMPTY
        };
    }

    pub fn method<'b>(&self, buf: &'b [u8]) -> &'b str {
        as_str(slice(buf, &self.method))
    }

    /// The request-target as received.
    pub fn target<'b>(&self, buf: &'b [u8]) -> &'b str {
        as_str(slice(buf, &self.target))
    }

    /// The path (`/` for an absolute-form target without one, `*` for asterisk-form).
    pub fn path<'b>(&self, buf: &'b [u8]) -> &'b str {
        match slice(buf, &self.path) {
            [] => "/",
            path => as_str(path),
        }
    }

    /// The query without its `?`.
    pub fn query<'b>(&self, buf: &'b [u8]) -> Option<&'b str> {
        self.query.as_ref().map(|q| as_str(slice(buf, q)))
    }

    /// The routing host, port included if sent.
    pub fn host<'b>(&self, buf: &'b [u8]) -> Option<&'b str> {
        self.host.as_ref().map(|h| as_str(slice(buf, h)))
    }

    /// The routing host without its port (brackets kept on IPv6 literals).
    pub fn host_name<'b>(&self, buf: &'b [u8]) -> Option<&'b str> {
        let host = self.host(buf)?;
        let end = match host.rfind(':') {
            Some(colon) if !host.get(colon..).is_some_and(|p| p.contains(']')) => colon,
            _ => host.len(),
        };
        host.get(..end)
    }

    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header<'b>(&self, buf: &'b [u8], name: &str) -> Option<&'b [u8]> {
        super::header::find(buf, &self.headers, name)
    }

    /// The value of the first header of `kind`.
    pub fn header_of<'b>(&self, buf: &'b [u8], kind: HeaderKind) -> Option<&'b [u8]> {
        super::header::find_kind(buf, &self.headers, kind)
    }

    pub fn is_head(&self, buf: &[u8]) -> bool {
        slice(buf, &self.method) == b"HEAD"
    }

    /// GET, HEAD, OPTIONS, TRACE, PUT or DELETE (RFC 9110 §9.2.2): safe to retry on another
    /// server when the body (if any) can be replayed.
    pub fn is_idempotent(&self, buf: &[u8]) -> bool {
        matches!(
            slice(buf, &self.method),
            b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE"
        )
    }

    /// Whether body bytes follow the head.
    pub fn has_body(&self) -> bool {
        !matches!(self.framing, Framing::None)
    }
}

impl RequestError {
    /// The status to answer with: 414 request line too long; 431 head too large or too many
    /// headers; 405 CONNECT; 505 a well-formed `HTTP/x…` version other than 1.0/1.1; 400 for
    /// everything else (malformed syntax, bad Host, CL/TE conflicts, unsupported
    /// Transfer-Encoding, which RFC 9112 would answer with 501).
    pub fn status(&self) -> u16 {
        match self {
            RequestError::RequestLineTooLong { .. } => 414,
            RequestError::HeadTooLarge { .. } | RequestError::TooManyHeaders { .. } => 431,
            RequestError::ConnectNotSupported => 405,
            RequestError::UnsupportedVersion { .. } => 505,
            RequestError::Malformed { .. }
            | RequestError::MissingHost
            | RequestError::DuplicateHost
            | RequestError::InvalidHost
            | RequestError::Framing(_) => 400,
        }
    }
}

/// Parses the request head at the start of `buf` into `head` (its previous content is
/// discarded). On [`ParseStatus::Partial`], call again once more bytes are appended; limits are
/// enforced on partial input too, so a hostile client cannot make the caller buffer more than
/// `limits.max_head` bytes. On error, `head` holds no meaningful request.
pub fn parse_request(
    buf: &[u8],
    limits: &Limits,
    head: &mut RequestHead,
) -> Result<ParseStatus, RequestError> {
    head.reset();
    let line_start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    if line_start >= limits.max_head {
        return Err(RequestError::HeadTooLarge {
            max: limits.max_head,
        });
    }
    let rest = buf.get(line_start..).unwrap_or_default();
    if rest.is_empty() {
        return Ok(ParseStatus::Partial);
    }
    let window = rest.get(..limits.max_request_line).unwrap_or(rest);
    if rest.len() >= limits.max_request_line && !window.contains(&b'\n') {
        return Err(RequestError::RequestLineTooLong {
            max: limits.max_request_line,
        });
    }

    let scan = buf.get(..limits.max_head).unwrap_or(buf);
    let max_headers = limits.max_headers.min(MAX_HEADERS_CAP);
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
    let slots = slots.get_mut(..max_headers).unwrap_or_default();
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(scan, slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_head => {
            return Err(RequestError::HeadTooLarge {
                max: limits.max_head,
            })
        }
        Ok(httparse::Status::Partial) => return Ok(ParseStatus::Partial),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(RequestError::TooManyHeaders { max: max_headers })
        }
        Err(httparse::Error::Version) => return Err(version_error(rest)),
        Err(e) => {
            return Err(RequestError::Malformed {
                part: malformed(e, Malformed::RequestLine),
            })
        }
    };
    if has_bare_lf(buf.get(..head_len).unwrap_or_default()) {
        return Err(RequestError::Malformed {
            part: Malformed::LineEnding,
        });
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(RequestError::Malformed {
            part: Malformed::RequestLine,
        });
    };
    head.head_len = head_len;
    head.method = range_of(buf, method.as_bytes());
    head.target = range_of(buf, target.as_bytes());
    head.minor_version = minor;
    let fields = scan_fields(buf, req.headers, &mut head.headers)?;

    if method == "CONNECT" {
        return Err(RequestError::ConnectNotSupported);
    }
    parse_target(buf, method, head)?;

    if fields.host_count > 1 {
        return Err(RequestError::DuplicateHost);
    }
    let host_header = fields
        .host_header
        .and_then(|i| head.headers.get(i))
        .map(|h| h.value.clone());
    match &host_header {
        None if minor == 1 => return Err(RequestError::MissingHost),
        Some(value) if !valid_authority(slice(buf, value)) => {
            return Err(RequestError::InvalidHost)
        }
        _ => {}
    }
    if head.target_form != TargetForm::Absolute {
        head.host = host_header;
    }

    head.framing = fields.declared_framing(minor)?.unwrap_or(Framing::None);
    settle_trailer(&mut head.headers, head.framing);
    head.keep_alive = fields.persistent(minor);
    let upgrade_value = fields
        .upgrade_header
        .and_then(|i| head.headers.get(i))
        .map(|h| slice(buf, &h.value));
    head.upgrade = minor == 1 && fields.upgrade_option && upgrade_value.is_some();
    head.websocket = head.upgrade && upgrade_value.is_some_and(|v| list_contains(v, b"websocket"));
    head.expect_continue = minor == 1 && fields.expect_continue;
    head.te_trailers = fields.te_trailers;
    head.content_length = fields.content_length;
    head.content_length_dup = fields.content_length_dup;
    Ok(ParseStatus::Complete)
}

/// Classifies the request-target and fills `target_form`, `path`, `query` (and `host` for the
/// absolute form).
fn parse_target(buf: &[u8], method: &str, head: &mut RequestHead) -> Result<(), RequestError> {
    let bad_target = RequestError::Malformed {
        part: Malformed::Target,
    };
    let target = slice(buf, &head.target);
    // No early exit: the fold stays branch-free and vectorizes.
    let flags = target
        .iter()
        .fold(0u8, |acc, &b| acc | (b & 0x80) | u8::from(b == b'#'));
    if flags != 0 {
        return Err(bad_target);
    }
    let start = head.target.start;
    match target {
        [b'/', ..] => {
            head.target_form = TargetForm::Origin;
            split_path_query(start, target, head);
            Ok(())
        }
        b"*" if method == "OPTIONS" => {
            head.target_form = TargetForm::Asterisk;
            head.path = head.target.clone();
            Ok(())
        }
        _ => {
            let scheme_len = if starts_with_ignore_case(target, b"http://") {
                7
            } else if starts_with_ignore_case(target, b"https://") {
                8
            } else {
                return Err(bad_target);
            };
            let after_scheme = target.get(scheme_len..).unwrap_or_default();
            let authority_len = after_scheme
                .iter()
                .position(|&b| b == b'/' || b == b'?')
                .unwrap_or(after_scheme.len());
            let authority = after_scheme.get(..authority_len).unwrap_or_default();
            if authority.is_empty() || authority.contains(&b'@') {
                return Err(bad_target);
            }
            if !valid_authority(authority) {
                return Err(RequestError::InvalidHost);
            }
            let authority_start = start + scheme_len;
            head.target_form = TargetForm::Absolute;
            head.host = Some(authority_start..authority_start + authority_len);
            let rest_start = authority_start + authority_len;
            split_path_query(
                rest_start,
                after_scheme.get(authority_len..).unwrap_or_default(),
                head,
            );
            Ok(())
        }
    }
}

fn split_path_query(start: usize, path_and_query: &[u8], head: &mut RequestHead) {
    match path_and_query.iter().position(|&b| b == b'?') {
        Some(q) => {
            head.path = start..start + q;
            head.query = Some(start + q + 1..start + path_and_query.len());
        }
        None => head.path = start..start + path_and_query.len(),
    }
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// 505 for a version shaped like `HTTP/<digit>…` that httparse refused (HTTP/2.0, HTTP/1.2),
/// else 400. The decision only looks at bytes up to the first bad one, so it does not depend
/// on how the input was split.
fn version_error(line: &[u8]) -> RequestError {
    let end = line
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(line.len());
    let line = line.get(..end).unwrap_or_default();
    let version = line.splitn(3, |&b| b == b' ').nth(2).unwrap_or_default();
    match version {
        [b'H', b'T', b'T', b'P', b'/', major @ b'0'..=b'9', rest @ ..] => {
            let minor = match rest {
                [b'.', minor @ b'0'..=b'9', ..] => Some(minor - b'0'),
                _ => None,
            };
            RequestError::UnsupportedVersion {
                major: major - b'0',
                minor,
            }
        }
        _ => RequestError::Malformed {
            part: Malformed::Version,
        },
    }
}

fn as_str(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests;

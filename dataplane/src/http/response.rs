//! HTTP/1.1 response heads from upstream: strict RFC 9112 parsing and body framing.

use std::mem::MaybeUninit;
use std::ops::Range;

use super::header::{
    has_bare_lf, malformed, scan_fields, settle_trailer, FieldError, HeaderKind, HeaderRef,
    Malformed,
};
use super::request::{Framing, Limits, ParseStatus, MAX_HEADERS_CAP};

/// A parsed response head. Ranges point into the buffer given to [`parse_response`]; reuse one
/// `ResponseHead` per upstream connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Bytes of the head including the final CRLF; the body starts here.
    pub head_len: usize,
    pub status: u16,
    /// The status line after `HTTP/1.x `: status code and reason phrase as received
    /// (`200 OK`, `204`, `404 `).
    pub status_line: Range<usize>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    pub headers: Vec<HeaderRef>,
    pub framing: Framing,
    /// The upstream connection may be reused after this response's body.
    pub keep_alive: bool,
    /// The Content-Length value, if sent (also when the framing ignores it: HEAD, 204, 304).
    pub content_length: Option<u64>,
    /// Content-Length came more than once (all equal): forward a single one.
    pub content_length_dup: bool,
}

/// Why an upstream response head is refused; the caller answers the client with 502
/// ([`ResponseError::status`]) and closes the upstream connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("malformed response: bad {part:?}")]
    Malformed { part: Malformed },
    #[error("response head larger than {max} bytes")]
    HeadTooLarge { max: usize },
    #[error("more than {max} header fields")]
    TooManyHeaders { max: usize },
    #[error("status code {status} outside 100..=599")]
    InvalidStatus { status: u16 },
    #[error(transparent)]
    Framing(#[from] FieldError),
}

impl ResponseError {
    /// Always 502 Bad Gateway: the upstream broke the protocol.
    pub fn status(&self) -> u16 {
        502
    }
}

impl Default for ResponseHead {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseHead {
    /// An empty head with room for 32 headers.
    pub fn new() -> Self {
        ResponseHead {
            headers: Vec::with_capacity(32),
            ..Self::EMPTY
        }
    }

    const EMPTY: ResponseHead = ResponseHead {
        head_len: 0,
        status: 0,
        status_line: 0..0,
        minor_version: 1,
        headers: Vec::new(),
        framing: Framing::None,
        keep_alive: false,
        content_length: None,
        content_length_dup: false,
    };

    fn reset(&mut self) {
        let mut headers = std::mem::take(&mut self.headers);
        headers.clear();
        *self = ResponseHead {
            headers,
            ..Self::EMPTY
        };
    }

    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header<'b>(&self, buf: &'b [u8], name: &str) -> Option<&'b [u8]> {
        super::header::find(buf, &self.headers, name)
    }

    /// The value of the first header of `kind`.
    pub fn header_of<'b>(&self, buf: &'b [u8], kind: HeaderKind) -> Option<&'b [u8]> {
        super::header::find_kind(buf, &self.headers, kind)
    }

    /// 1xx: another response head follows on the same connection (101 switches protocols).
    pub fn is_informational(&self) -> bool {
        (100..200).contains(&self.status)
    }

    /// Whether body bytes follow the head.
    pub fn has_body(&self) -> bool {
        !matches!(self.framing, Framing::None)
    }
}

/// Parses the response head at the start of `buf` into `head` (previous content discarded).
///
/// Framing (RFC 9112 §6.3): none for 1xx, 204, 304 and responses to HEAD; else chunked,
/// Content-Length, or until the upstream closes (then `keep_alive` is false). CL/TE faults are
/// errors even where the body length would not depend on them. `limits.max_request_line` is
/// not used.
pub fn parse_response(
    buf: &[u8],
    limits: &Limits,
    request_was_head: bool,
    head: &mut ResponseHead,
) -> Result<ParseStatus, ResponseError> {
    head.reset();
    let scan = buf.get(..limits.max_head).unwrap_or(buf);
    let max_headers = limits.max_headers.min(MAX_HEADERS_CAP);
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
    let slots = slots.get_mut(..max_headers).unwrap_or_default();
    let mut res = httparse::Response::new(&mut []);
    let config = httparse::ParserConfig::default();
    let head_len = match config.parse_response_with_uninit_headers(&mut res, scan, slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_head => {
            return Err(ResponseError::HeadTooLarge {
                max: limits.max_head,
            })
        }
        Ok(httparse::Status::Partial) => return Ok(ParseStatus::Partial),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ResponseError::TooManyHeaders { max: max_headers })
        }
        Err(e) => {
            return Err(ResponseError::Malformed {
                part: malformed(e, Malformed::StatusLine),
            })
        }
    };
    let bytes = buf.get(..head_len).unwrap_or_default();
    if has_bare_lf(bytes) {
        return Err(ResponseError::Malformed {
            part: Malformed::LineEnding,
        });
    }
    let (Some(minor), Some(status)) = (res.version, res.code) else {
        return Err(ResponseError::Malformed {
            part: Malformed::StatusLine,
        });
    };
    if !(100..=599).contains(&status) {
        return Err(ResponseError::InvalidStatus { status });
    }
    // The status line starts after any empty lines; "HTTP/1.x " is 9 bytes, and it ends at
    // its CRLF (no bare LF, checked above).
    let line_start = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(0);
    let line_end = bytes
        .iter()
        .skip(line_start)
        .position(|&b| b == b'\r')
        .map_or(line_start, |p| line_start + p);
    head.status_line = (line_start + 9).min(line_end)..line_end;
    head.head_len = head_len;
    head.status = status;
    head.minor_version = minor;
    let fields = scan_fields(buf, res.headers, &mut head.headers)?;
    let declared = fields.declared_framing(minor)?;
    let bodiless = request_was_head || status < 200 || status == 204 || status == 304;
    head.framing = match declared {
        _ if bodiless => Framing::None,
        Some(framing) => framing,
        None => Framing::UntilClose,
    };
    settle_trailer(&mut head.headers, head.framing);
    head.keep_alive = fields.persistent(minor) && head.framing != Framing::UntilClose;
    head.content_length = fields.content_length;
    head.content_length_dup = fields.content_length_dup;
    Ok(ParseStatus::Complete)
}

#[cfg(test)]
mod tests;

//! Sans-io HTTP/1.1 codec for the reverse proxy: head parsing, body framing, head rewriting.
//!
//! Nothing here does I/O. The proxy loop reads bytes into a reused buffer, calls
//! [`parse_request`], routes, writes the head produced by [`write_request_head`] upstream,
//! forwards the body verbatim (finding its end with [`Framing`] and [`ChunkedDecoder`]), then
//! does the same for the response with [`parse_response`] and [`write_response_head`]. Parsed
//! heads hold ranges into the caller's buffer and reuse their `Vec`s, so a steady-state request
//! allocates nothing.

pub mod chunked;
pub mod header;
pub mod request;
pub mod response;
pub mod rewrite;

pub use chunked::{ChunkError, ChunkedDecoder, Progress};
pub use header::{FieldError, HeaderKind, HeaderRef, Malformed};
pub use request::{
    parse_request, Framing, Limits, ParseStatus, RequestError, RequestHead, TargetForm,
};
pub use response::{parse_response, ResponseError, ResponseHead};
pub use rewrite::{
    error_response, write_request_head, write_response_head, write_response_head_with,
    ForwardContext, ResponseConnection,
};

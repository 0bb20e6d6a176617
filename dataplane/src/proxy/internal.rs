//! Traefik's internal services. `api@internal`, `dashboard@internal` and `prometheus@internal`
//! are served by the control plane on its private unix socket: the request goes there under
//! the service's own prefix (which a client cannot choose), and the whole response comes back
//! (always delimited by Content-Length, so the client's connection stays open). `ping@internal`
//! and `noop@internal` are answered here.

use super::io::{read_append, with_timeout};
use crate::http::request::RequestHead;
use monoio::io::AsyncWriteRentExt;
use monoio::net::UnixStream;
use ringway_shared::table::InternalService;
use std::path::Path;
use std::time::Duration;

/// The control plane builds API answers from memory: this is generous.
const TIMEOUT: Duration = Duration::from_secs(30);
/// `/api/rawdata` at 10,000 routers is a few MB.
const MAX_RESPONSE: usize = 256 * 1024 * 1024;

/// The complete response to a request for `kind`, or the status of a canned local answer
/// (`error_response`).
pub async fn response(
    kind: InternalService,
    rbuf: &[u8],
    head: &RequestHead,
    socket: Option<&Path>,
    terminating: bool,
    close: bool,
) -> Result<Vec<u8>, u16> {
    let method = head.method(rbuf);
    match kind {
        InternalService::Ping { terminating_status } => {
            return Ok(super::ping::response(
                method,
                terminating,
                terminating_status,
                close,
            ))
        }
        // Traefik's noop handler answers 418 to whatever reaches it.
        InternalService::Noop => return Err(418),
        _ => {}
    }
    if method != "GET" && method != "HEAD" {
        // The API answers GET and HEAD only, as ping does: the same 405.
        return Ok(super::ping::response(method, false, 0, close));
    }
    let (Some(prefix), Some(socket)) = (kind.socket_prefix(), socket) else {
        return Err(503);
    };
    let text = |r: &std::ops::Range<usize>| rbuf.get(r.clone()).unwrap_or_default();
    let mut request = Vec::with_capacity(256);
    request.extend_from_slice(method.as_bytes());
    request.push(b' ');
    request.extend_from_slice(prefix.as_bytes());
    request.extend_from_slice(text(&head.path));
    if let Some(q) = &head.query {
        request.push(b'?');
        request.extend_from_slice(text(q));
    }
    request.extend_from_slice(b" HTTP/1.1\r\nConnection: close\r\n\r\n");
    match with_timeout(TIMEOUT, exchange(socket, request)).await {
        Some(Ok(mut bytes)) if bytes.starts_with(b"HTTP/1.1 ") => {
            if close {
                add_close(&mut bytes);
            }
            Ok(bytes)
        }
        Some(Ok(_)) => {
            tracing::warn!("the control plane answered an internal request with garbage");
            Err(502)
        }
        Some(Err(e)) => {
            // Restarting, most likely: the socket comes back with the new control plane.
            tracing::debug!(error = %e, "control plane socket");
            Err(503)
        }
        None => Err(504),
    }
}

async fn exchange(socket: &Path, request: Vec<u8>) -> std::io::Result<Vec<u8>> {
    let mut conn = UnixStream::connect(socket).await?;
    let (res, _) = conn.write_all(request).await;
    res?;
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        let (res, b) = read_append(&mut conn, buf, 64 * 1024).await;
        buf = b;
        if res? == 0 {
            return Ok(buf);
        }
        if buf.len() > MAX_RESPONSE {
            return Err(std::io::Error::other("response too large"));
        }
    }
}

/// Adds `Connection: close` after the status line.
fn add_close(bytes: &mut Vec<u8>) {
    if let Some(eol) = bytes.windows(2).position(|w| w == b"\r\n") {
        let at = eol + 2;
        bytes.splice(at..at, b"Connection: close\r\n".iter().copied());
    }
}

//! A small HTTP/1.1 server on the private unix socket: one request per connection (the data
//! plane sends `Connection: close`), every answer with a Content-Length.

use super::Api;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

const MAX_HEAD: usize = 16 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `path` (replacing a socket left by a previous control plane), readable by this
/// user only.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

pub async fn serve(listener: UnixListener, api: Api) {
    loop {
        match listener.accept().await {
            Ok((conn, _)) => {
                tokio::spawn(handle(conn, api.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "API socket: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// An answer.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn json(value: &serde_json::Value) -> Response {
        Response::new(200, "application/json", value.to_string())
    }

    /// Traefik's error body: `{"message": "..."}`.
    pub fn error(status: u16, message: &str) -> Response {
        Response::new(
            status,
            "application/json",
            serde_json::json!({ "message": message }).to_string(),
        )
    }

    pub fn redirect(status: u16, location: String) -> Response {
        let mut r = Response::new(status, "text/plain; charset=utf-8", "");
        r.headers.push(("Location", location));
        r
    }

    fn encode(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (k, v) in &self.headers {
            out.push_str(k);
            out.push_str(": ");
            out.push_str(v);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        let mut out = out.into_bytes();
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Status",
    }
}

async fn handle(mut conn: UnixStream, api: Api) {
    let mut buf = Vec::with_capacity(1024);
    let head = tokio::time::timeout(READ_TIMEOUT, async {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Some(end);
            }
            if buf.len() > MAX_HEAD {
                return None;
            }
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let Ok(Some(end)) = head else { return };
    let line = buf[..end].split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let response = if method == "GET" || method == "HEAD" {
        route(&api, target)
    } else {
        Response::error(405, "method not allowed")
    };
    let _ = conn.write_all(&response.encode(method == "HEAD")).await;
    let _ = conn.shutdown().await;
}

/// Which internal service a request is for (the data plane's prefix), then its path.
fn route(api: &Api, target: &str) -> Response {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = parse_query(query);
    let base = api
        .settings
        .cfg
        .api
        .as_ref()
        .map_or("", |a| a.base_path.as_str());
    let dashboard_on = api.settings.cfg.api.as_ref().is_some_and(|a| a.dashboard);
    if let Some(_rest) = path.strip_prefix("/prometheus@internal") {
        return super::prometheus::render(api);
    }
    if let Some(rest) = path.strip_prefix("/api@internal") {
        let rest = rest.strip_prefix(base).unwrap_or(rest);
        if rest == "/api" || rest.starts_with("/api/") {
            return super::json::handle(api, &rest[4..], &query);
        }
        if dashboard_on {
            if let Some(r) = super::dashboard::handle(base, rest) {
                return r;
            }
        }
        return Response::error(404, "not found");
    }
    if let Some(rest) = path.strip_prefix("/dashboard@internal") {
        let rest = rest.strip_prefix(base).unwrap_or(rest);
        if rest.is_empty() || rest == "/" {
            return Response::redirect(302, format!("{base}/dashboard/"));
        }
        if let Some(r) = super::dashboard::handle(base, rest) {
            return r;
        }
    }
    Response::error(404, "not found")
}

/// `a=1&b=x%20y` → pairs, percent-decoded (`+` is a space).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("0");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_decoded() {
        assert_eq!(
            parse_query("search=a%40b+c&page=2&x&bad=%zz%4"),
            [
                ("search".to_string(), "a@b c".to_string()),
                ("page".to_string(), "2".to_string()),
                ("x".to_string(), String::new()),
                ("bad".to_string(), "%zz%4".to_string()),
            ]
        );
    }
}

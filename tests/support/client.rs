//! Minimal HTTP/1.1 clients written for the tests (independent of the product's parser).

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long a client waits for a response before calling it a failure.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        super::header_values(&self.headers, name).next()
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        super::header_values(&self.headers, name).collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): status {} body {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// The `X-Origin` header set by the test origin.
    pub fn origin(&self) -> Option<&str> {
        self.header("x-origin")
    }

    fn is_chunked(&self) -> bool {
        self.header_all("transfer-encoding")
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("chunked"))
    }
}

/// A client connection that can carry several requests (keep-alive, pipelining).
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
        stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
        let writer = stream.try_clone()?;
        Ok(Conn {
            reader: BufReader::with_capacity(64 * 1024, stream),
            writer,
        })
    }

    pub fn stream(&self) -> &TcpStream {
        &self.writer
    }

    pub fn set_read_timeout(&self, t: Duration) {
        self.writer
            .set_read_timeout(Some(t))
            .expect("set_read_timeout");
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Reads raw bytes (whatever is buffered first), e.g. after a 101.
    pub fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }

    /// Reads exactly `n` raw bytes.
    pub fn read_exact_bytes(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut v = vec![0; n];
        self.reader.read_exact(&mut v)?;
        Ok(v)
    }

    /// Reads one response (1xx included) to a request made with `method`.
    pub fn read_response(&mut self, method: &str) -> io::Result<Response> {
        let line = read_line(&mut self.reader)?;
        if line.is_empty() {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "connection closed before a response",
            ));
        }
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches(['\r', '\n']);
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            return Err(invalid(format!("bad status line {line:?}")));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {line:?}")))?;
        let reason = parts.next().unwrap_or_default().to_string();
        let headers = read_headers(&mut self.reader)?;
        let mut resp = Response {
            status,
            reason,
            headers,
            body: Vec::new(),
        };
        let no_body = method.eq_ignore_ascii_case("HEAD")
            || (100..200).contains(&status)
            || status == 204
            || status == 304;
        if no_body {
            return Ok(resp);
        }
        if resp.is_chunked() {
            resp.body = read_chunked(&mut self.reader)?;
        } else if let Some(cl) = resp.header("content-length") {
            let n: usize = cl
                .trim()
                .parse()
                .map_err(|_| invalid(format!("bad content-length {cl:?}")))?;
            let mut body = vec![0; n];
            self.reader.read_exact(&mut body)?;
            resp.body = body;
        } else {
            self.reader.read_to_end(&mut resp.body)?;
        }
        Ok(resp)
    }

    /// Reads the final response, skipping `100 Continue` and other 1xx except 101.
    pub fn read_final_response(&mut self, method: &str) -> io::Result<Response> {
        loop {
            let r = self.read_response(method)?;
            if !(100..200).contains(&r.status) || r.status == 101 {
                return Ok(r);
            }
        }
    }

    /// Sends one request and reads its final response. Adds `Host` and, with a body,
    /// `Content-Length`.
    pub fn request(
        &mut self,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.send(&bytes)?;
        self.read_final_response(method)
    }

    pub fn get(&mut self, host: &str, path: &str) -> io::Result<Response> {
        self.request("GET", host, path, &[], b"")
    }

    /// Waits up to `timeout` for the peer to close: `Ok(bytes received before the close)`,
    /// `Err` if it is still open at the deadline.
    pub fn wait_closed(&mut self, timeout: Duration) -> Result<Vec<u8>, String> {
        self.set_read_timeout(timeout);
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return Ok(got),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if is_timeout(&e) => {
                    return Err(format!(
                        "still open after {timeout:?}, received {:?}",
                        String::from_utf8_lossy(&got)
                    ))
                }
                Err(_) => return Ok(got),
            }
        }
    }
}

/// `GET path` with `Host: host` on a new connection with `Connection: close`.
pub fn http_get(addr: SocketAddr, host: &str, path: &str) -> io::Result<Response> {
    let mut c = Conn::connect(addr)?;
    c.request("GET", host, path, &[("Connection", "close")], b"")
}

/// What came back for a raw request.
#[derive(Debug, Clone)]
pub struct RawReply {
    /// Everything received, lossily decoded.
    pub text: String,
    /// The peer closed (EOF or reset) before the deadline.
    pub closed: bool,
}

impl RawReply {
    /// The status code of the first non-1xx response in the reply.
    pub fn status(&self) -> Option<u16> {
        let mut rest = self.text.as_str();
        loop {
            let line = rest.lines().next()?;
            let code: u16 = line
                .strip_prefix("HTTP/1.")?
                .get(2..5)
                .and_then(|c| c.parse().ok())?;
            if !(100..200).contains(&code) || code == 101 {
                return Some(code);
            }
            rest = &rest[rest.find("\r\n\r\n")? + 4..];
        }
    }
}

/// Writes `bytes` on a new connection and returns everything read until EOF or 5 s.
pub fn raw_request(addr: SocketAddr, bytes: &[u8]) -> String {
    raw_io(addr, bytes, Duration::from_secs(5), false).text
}

/// Writes `bytes` on a new connection and reads until the first complete final response,
/// EOF, reset, or `timeout`.
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> RawReply {
    raw_io(addr, bytes, timeout, true)
}

fn raw_io(addr: SocketAddr, bytes: &[u8], timeout: Duration, stop_at_response: bool) -> RawReply {
    let deadline = Instant::now() + timeout;
    let mut stream = match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) => panic!("connect to {addr}: {e}"),
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(timeout));
    // The server may answer and close before reading everything: ignore write errors.
    let _ = stream.write_all(bytes);
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let closed = loop {
        if stop_at_response && has_complete_response(&got) {
            break false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break false;
        }
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if is_timeout(&e) => break false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break true,
        }
    };
    RawReply {
        text: String::from_utf8_lossy(&got).into_owned(),
        closed,
    }
}

/// Whether `buf` holds a whole final response whose length is known from its head.
fn has_complete_response(buf: &[u8]) -> bool {
    let mut rest = buf;
    loop {
        let Some(end) = find(rest, b"\r\n\r\n") else {
            return false;
        };
        let head = String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase();
        let body = &rest[end + 4..];
        let code: u16 = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        if (100..200).contains(&code) && code != 101 {
            rest = body;
            continue;
        }
        if code == 101 || code == 204 || code == 304 {
            return true;
        }
        let mut cl = None;
        let mut chunked = false;
        for line in head.lines().skip(1) {
            if let Some((k, v)) = line.split_once(':') {
                match k.trim() {
                    "content-length" => cl = v.trim().parse::<usize>().ok(),
                    "transfer-encoding" => chunked = v.contains("chunked"),
                    _ => {}
                }
            }
        }
        return if chunked {
            find(body, b"0\r\n\r\n").is_some()
        } else if let Some(cl) = cl {
            body.len() >= cl
        } else {
            false
        };
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, msg)
}

/// One line including its `\n` (empty at EOF); lines over 64 KiB are an error.
pub fn read_line<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    r.by_ref().take(64 * 1024).read_until(b'\n', &mut line)?;
    if !line.is_empty() && !line.ends_with(b"\n") && line.len() >= 64 * 1024 {
        return Err(invalid("line too long".into()));
    }
    Ok(line)
}

/// Header lines up to the empty line.
pub fn read_headers<R: BufRead>(r: &mut R) -> io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "connection closed inside a head",
            ));
        }
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Ok(headers);
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        headers.push((k.to_string(), v.trim().to_string()));
    }
}

/// A whole chunked body (trailers dropped).
fn read_chunked<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r)?;
        let line = String::from_utf8_lossy(&line);
        let size_str = line.trim_end_matches(['\r', '\n']);
        let size_str = size_str.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_str, 16)
            .map_err(|_| invalid(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            read_headers(r)?;
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        let crlf = read_line(r)?;
        if crlf != b"\r\n" {
            return Err(invalid(format!("missing CRLF after chunk: {crlf:?}")));
        }
    }
}

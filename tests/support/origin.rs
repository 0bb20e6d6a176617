//! A real HTTP/1.1 origin server running in threads of the test process. It records every
//! request head it receives so tests can assert what ringway forwarded (or did not).
//!
//! Endpoints (any Host): `/status/<n>`, `/delay/<ms>`, `/chunked/<n>`, `/close/<bytes>`,
//! `/bytes/<n>`, `/upload`, `/continue`, `/ws`; anything else echoes the request as JSON.
//! Every request body is streamed and counted, never held; `/upload` also checksums it
//! ([`Cksum`]).

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::client::read_line;

/// One request as the origin saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The raw head, request line included, up to the empty line.
    pub head: String,
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// Body bytes received.
    pub body_len: u64,
    /// The body was received whole, as its framing announced.
    pub body_complete: bool,
    /// The body's framing was invalid (e.g. a bad chunk size reached the origin).
    pub body_error: bool,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        super::header_values(&self.headers, name).next()
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        super::header_values(&self.headers, name).collect()
    }

    /// The target without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

struct Shared {
    name: String,
    requests: Mutex<Vec<RecordedRequest>>,
    connections: AtomicUsize,
    stop: AtomicBool,
    /// Open connections by id, so drop can shut them down.
    streams: Mutex<HashMap<usize, TcpStream>>,
    /// The status `/health` answers (200 until set).
    health: std::sync::atomic::AtomicU16,
    /// Reset every connection once a request has been read, answering nothing.
    reset: AtomicBool,
}

/// The test origin; stops accepting and closes its connections on drop.
pub struct Origin {
    pub addr: SocketAddr,
    pub name: String,
    shared: Arc<Shared>,
}

impl Origin {
    pub fn start(name: &str) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind origin");
        let addr = listener.local_addr().expect("origin addr");
        let shared = Arc::new(Shared {
            name: name.to_string(),
            requests: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            streams: Mutex::new(HashMap::new()),
            health: std::sync::atomic::AtomicU16::new(200),
            reset: AtomicBool::new(false),
        });
        let s = shared.clone();
        thread::Builder::new()
            .name(format!("origin-{name}"))
            .spawn(move || accept_loop(listener, s))
            .expect("spawn origin thread");
        Origin {
            addr,
            name: name.to_string(),
            shared,
        }
    }

    /// `http://127.0.0.1:<port>`, for a `servers` entry.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().expect("requests lock").clone()
    }

    /// Recorded requests whose target starts with `prefix`.
    pub fn requests_to(&self, prefix: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.target.starts_with(prefix))
            .collect()
    }

    /// Makes `/health` answer `status` from now on.
    #[allow(dead_code)]
    pub fn set_health(&self, status: u16) {
        self.shared.health.store(status, Ordering::SeqCst);
    }

    /// From now on, reads each request and resets the connection without answering.
    #[allow(dead_code)]
    pub fn reset_requests(&self) {
        self.shared.reset.store(true, Ordering::SeqCst);
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        for s in self.shared.streams.lock().expect("streams lock").values() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let id = shared.connections.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            shared
                .streams
                .lock()
                .expect("streams lock")
                .insert(id, clone);
        }
        let s = shared.clone();
        let _ = thread::Builder::new()
            .name(format!("origin-{}-conn", shared.name))
            .spawn(move || {
                let _ = serve(stream, &s);
                s.streams.lock().expect("streams lock").remove(&id);
            });
    }
}

/// A deterministic byte pattern for response bodies of `n` bytes.
pub fn pattern_bytes(n: usize) -> Vec<u8> {
    (0..n).map(pattern_byte).collect()
}

fn pattern_byte(i: usize) -> u8 {
    (i ^ (i >> 8) ^ (i >> 16)).wrapping_mul(31) as u8
}

/// The payload of chunk `i` of `/chunked/<n>`: sizes vary from 1 byte to a few KiB.
pub fn chunk_payload(i: usize) -> Vec<u8> {
    let len = 1 + (i * 397) % 5000;
    let mut v = format!("[{i}]").into_bytes();
    v.extend((0..len).map(|j| b'a' + ((i + j) % 26) as u8));
    v
}

/// A streaming checksum of a byte stream: coreutils' `cksum` (POSIX CRC-32 and length) fed
/// through a pipe. The optimised C tool costs ~0.2 s of CPU per GiB, where the same loop in
/// these unoptimised test builds costs seconds; nothing is held in memory.
pub struct Cksum {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
}

impl Cksum {
    pub fn start() -> Cksum {
        let mut child = Command::new("cksum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run cksum (coreutils)");
        let stdin = child.stdin.take();
        Cksum {
            child: Some(child),
            stdin,
        }
    }

    /// The digest of `data` alone.
    pub fn of(data: &[u8]) -> String {
        let mut c = Cksum::start();
        c.update(data);
        c.finish()
    }

    pub fn update(&mut self, data: &[u8]) {
        self.stdin
            .as_mut()
            .expect("cksum still open")
            .write_all(data)
            .expect("write to cksum");
    }

    /// `"<crc> <length>"`, as `cksum` prints it.
    pub fn finish(mut self) -> String {
        drop(self.stdin.take());
        let out = self
            .child
            .take()
            .expect("cksum child")
            .wait_with_output()
            .expect("cksum output");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Cksum {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct Head {
    raw: String,
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    fn wants_close(&self) -> bool {
        self.has_token("connection", "close")
            || (self.version == "HTTP/1.0" && !self.has_token("connection", "keep-alive"))
    }
}

/// Reads a head (skipping empty lines before it). `Ok(None)` at a clean EOF; a partial head
/// is returned as such (with `complete == false`) so it is still recorded.
fn read_head<R: BufRead>(r: &mut R) -> io::Result<Option<(String, bool)>> {
    let mut raw = Vec::new();
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            return Ok(if raw.is_empty() {
                None
            } else {
                Some((String::from_utf8_lossy(&raw).into_owned(), false))
            });
        }
        let blank = line == b"\r\n" || line == b"\n";
        if blank && raw.is_empty() {
            continue;
        }
        raw.extend_from_slice(&line);
        if blank {
            return Ok(Some((String::from_utf8_lossy(&raw).into_owned(), true)));
        }
        if raw.len() > 1024 * 1024 {
            return Err(io::Error::new(ErrorKind::InvalidData, "head over 1 MiB"));
        }
    }
}

fn parse_head(raw: &str) -> Option<Head> {
    let mut lines = raw.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let mut rl = lines.next()?.split(' ');
    let method = rl.next()?.to_string();
    let target = rl.next()?.to_string();
    let version = rl.next()?.to_string();
    let mut headers = Vec::new();
    for l in lines.filter(|l| !l.is_empty()) {
        let (k, v) = l.split_once(':')?;
        headers.push((k.to_string(), v.trim().to_string()));
    }
    Some(Head {
        raw: raw.to_string(),
        method,
        target,
        version,
        headers,
    })
}

/// What the origin learnt from a request body.
struct BodySummary {
    len: u64,
    /// `cksum` output, for `/upload` only.
    cksum: Option<String>,
}

enum Framing {
    Length(u64),
    Chunked,
    Invalid,
}

fn framing(head: &Head) -> Framing {
    let te: Vec<&str> = head
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .collect();
    if !te.is_empty() {
        return if te.last().is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
            Framing::Chunked
        } else {
            Framing::Invalid
        };
    }
    let cls: Vec<&str> = head
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .collect();
    match cls.first() {
        None => Framing::Length(0),
        Some(first) if cls.iter().all(|c| c == first) => {
            first.parse().map_or(Framing::Invalid, Framing::Length)
        }
        Some(_) => Framing::Invalid,
    }
}

/// Streams the body through `sink`; `Ok(true)` when it arrived whole.
fn read_body<R: BufRead>(
    r: &mut R,
    framing: &Framing,
    sink: &mut dyn FnMut(&[u8]),
) -> io::Result<bool> {
    let mut buf = vec![0u8; 64 * 1024];
    match *framing {
        Framing::Invalid => Err(io::Error::new(ErrorKind::InvalidData, "bad framing")),
        Framing::Length(mut left) => {
            while left > 0 {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = r.read(&mut buf[..want])?;
                if n == 0 {
                    return Ok(false);
                }
                sink(&buf[..n]);
                left -= n as u64;
            }
            Ok(true)
        }
        Framing::Chunked => loop {
            let line = read_line(r)?;
            if line.is_empty() {
                return Ok(false);
            }
            let text = String::from_utf8_lossy(&line);
            let size = text.trim_end_matches(['\r', '\n']);
            let size = size.split(';').next().unwrap_or_default().trim();
            if size.is_empty() || size.len() > 16 {
                return Err(io::Error::new(ErrorKind::InvalidData, "bad chunk size"));
            }
            let mut left = u64::from_str_radix(size, 16)
                .map_err(|_| io::Error::new(ErrorKind::InvalidData, "bad chunk size"))?;
            if left == 0 {
                loop {
                    let t = read_line(r)?;
                    if t.is_empty() {
                        return Ok(false);
                    }
                    if t == b"\r\n" || t == b"\n" {
                        return Ok(true);
                    }
                }
            }
            while left > 0 {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = r.read(&mut buf[..want])?;
                if n == 0 {
                    return Ok(false);
                }
                sink(&buf[..n]);
                left -= n as u64;
            }
            let crlf = read_line(r)?;
            if crlf.is_empty() {
                return Ok(false);
            }
            if crlf != b"\r\n" {
                return Err(io::Error::new(
                    ErrorKind::InvalidData,
                    "no CRLF after chunk",
                ));
            }
        },
    }
}

fn serve(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
    let mut w = stream;
    loop {
        let Some((raw, complete)) = read_head(&mut reader)? else {
            return Ok(());
        };
        let parsed = parse_head(&raw);
        let idx = {
            let mut reqs = shared.requests.lock().expect("requests lock");
            reqs.push(RecordedRequest {
                head: raw.clone(),
                method: parsed
                    .as_ref()
                    .map(|h| h.method.clone())
                    .unwrap_or_default(),
                target: parsed
                    .as_ref()
                    .map(|h| h.target.clone())
                    .unwrap_or_default(),
                headers: parsed
                    .as_ref()
                    .map(|h| h.headers.clone())
                    .unwrap_or_default(),
                body_len: 0,
                body_complete: false,
                body_error: false,
            });
            reqs.len() - 1
        };
        let Some(head) = parsed.filter(|_| complete) else {
            let _ = w.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            return Ok(());
        };
        let path = head
            .target
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string();

        if path == "/continue" && head.has_token("expect", "100-continue") {
            w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let mut cksum = (path == "/upload").then(Cksum::start);
        let mut body_len = 0u64;
        let body = read_body(&mut reader, &framing(&head), &mut |data: &[u8]| {
            body_len += data.len() as u64;
            if let Some(c) = cksum.as_mut() {
                c.update(data);
            }
        });
        let sum = BodySummary {
            len: body_len,
            cksum: cksum.map(Cksum::finish),
        };
        {
            let mut reqs = shared.requests.lock().expect("requests lock");
            let rec = &mut reqs[idx];
            rec.body_len = body_len;
            rec.body_complete = matches!(body, Ok(true));
            rec.body_error = body.is_err();
        }
        match body {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(_) => {
                let _ = w.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                );
                return Ok(());
            }
        }

        let keep = respond(&mut w, &mut reader, shared, &head, &path, &sum)?;
        if !keep || head.wants_close() {
            let _ = w.shutdown(Shutdown::Write);
            return Ok(());
        }
    }
}

/// Writes the response; `Ok(false)` when the connection must close afterwards.
fn respond<R: BufRead>(
    w: &mut TcpStream,
    reader: &mut R,
    shared: &Shared,
    head: &Head,
    path: &str,
    sum: &BodySummary,
) -> io::Result<bool> {
    let is_head = head.method.eq_ignore_ascii_case("HEAD");
    let close = if head.wants_close() {
        "Connection: close\r\n"
    } else {
        ""
    };
    let name = &shared.name;
    if shared.reset.load(Ordering::SeqCst) {
        // The request was read; the connection is reset without an answer.
        let _ = socket2::SockRef::from(&*w).set_linger(Some(Duration::ZERO));
        return Err(io::Error::other("reset on purpose"));
    }
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let first = segments.next().unwrap_or_default();
    let arg: Option<u64> = segments.next().and_then(|a| a.parse().ok());

    match (first, arg) {
        ("health", None) => {
            let code = shared.health.load(Ordering::SeqCst);
            let body = format!("health {code}\n");
            send_full(w, code, name, close, "text/plain", body.as_bytes(), is_head)?;
            Ok(true)
        }
        ("status", Some(code)) => {
            let code = code as u16;
            if code == 204 || code == 304 {
                let reply = format!(
                    "HTTP/1.1 {code} {}\r\nX-Origin: {name}\r\n{close}\r\n",
                    reason(code)
                );
                w.write_all(reply.as_bytes())?;
            } else {
                let body = format!("status {code}\n");
                send_full(w, code, name, close, "text/plain", body.as_bytes(), is_head)?;
            }
            Ok(true)
        }
        ("delay", Some(ms)) => {
            thread::sleep(Duration::from_millis(ms));
            let body = echo_json(name, head, sum);
            send_full(w, 200, name, close, "application/json", &body, is_head)?;
            Ok(true)
        }
        ("bytes", Some(n)) => {
            let body = pattern_bytes(n as usize);
            send_full(
                w,
                200,
                name,
                close,
                "application/octet-stream",
                &body,
                is_head,
            )?;
            Ok(true)
        }
        ("chunked", Some(n)) => {
            let h = format!(
                "HTTP/1.1 200 OK\r\nX-Origin: {name}\r\nContent-Type: text/plain\r\n\
                 Transfer-Encoding: chunked\r\n{close}\r\n"
            );
            w.write_all(h.as_bytes())?;
            if !is_head {
                for i in 0..n as usize {
                    let c = chunk_payload(i);
                    w.write_all(format!("{:x}\r\n", c.len()).as_bytes())?;
                    w.write_all(&c)?;
                    w.write_all(b"\r\n")?;
                }
                w.write_all(b"0\r\n\r\n")?;
            }
            Ok(true)
        }
        ("close", Some(n)) => {
            let h = format!(
                "HTTP/1.1 200 OK\r\nX-Origin: {name}\r\nContent-Type: application/octet-stream\r\n\
                 Connection: close\r\n\r\n"
            );
            w.write_all(h.as_bytes())?;
            if !is_head {
                w.write_all(&pattern_bytes(n as usize))?;
            }
            Ok(false)
        }
        ("ws", None) if head.header("upgrade").is_some() => {
            let h = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 X-Origin: {name}\r\n\r\n"
            );
            w.write_all(h.as_bytes())?;
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    return Ok(false);
                }
                w.write_all(&buf[..n])?;
            }
        }
        _ => {
            let body = echo_json(name, head, sum);
            send_full(w, 200, name, close, "application/json", &body, is_head)?;
            Ok(true)
        }
    }
}

fn send_full(
    w: &mut TcpStream,
    code: u16,
    name: &str,
    close: &str,
    content_type: &str,
    body: &[u8],
    is_head: bool,
) -> io::Result<()> {
    let h = format!(
        "HTTP/1.1 {code} {}\r\nX-Origin: {name}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n{close}\r\n",
        reason(code),
        body.len()
    );
    let mut out = h.into_bytes();
    if !is_head {
        out.extend_from_slice(body);
    }
    w.write_all(&out)
}

fn echo_json(name: &str, head: &Head, sum: &BodySummary) -> Vec<u8> {
    let (path, query) = head.target.split_once('?').unwrap_or((&head.target, ""));
    let v = serde_json::json!({
        "origin": name,
        "method": head.method,
        "path": path,
        "query": query,
        "headers": head.headers.iter().map(|(k, v)| [k, v]).collect::<Vec<_>>(),
        "body_bytes": sum.len,
        "body_cksum": sum.cksum,
        "raw_head_bytes": head.raw.len(),
    });
    v.to_string().into_bytes()
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

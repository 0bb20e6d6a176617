//! The access log (`accessLog.*`), in Traefik's Common Log Format or JSON, with its field
//! names.
//!
//! Each worker formats its lines into a buffer of its own and hands whole buffers to one
//! writer thread (every 100 ms, at `bufferingSize` lines, or at 64 KiB); the handoff is a
//! bounded channel that a worker never waits on: when the writer lags and the channel is
//! full, the buffer is dropped and counted (reported in the log), so a slow disk never slows
//! the proxy.

use crate::http::request::{Framing, RequestHead};
use crate::snapshot::Snapshot;
use ringway_shared::config::static_config::{AccessLog, AccessLogFormat, EntryPoint, FieldMode};
use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Buffers in flight between the workers and the writer.
const CHANNEL: usize = 256;
/// A worker's buffer is handed over at this size.
const FLUSH_BYTES: usize = 64 * 1024;
/// ... or this long after its first line.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// One request, as the proxy saw it.
pub struct Entry<'a> {
    pub start: SystemTime,
    pub duration: Duration,
    pub client: SocketAddr,
    pub method: &'a str,
    /// Path and query, as requested.
    pub uri: &'a str,
    pub protocol: &'a str,
    pub host: &'a str,
    pub tls: bool,
    pub status: u16,
    /// Response body bytes (from its Content-Length; 0 when unknown).
    pub size: u64,
    pub request_size: u64,
    pub referer: &'a str,
    pub user_agent: &'a str,
    pub router: Option<&'a str>,
    pub service: Option<&'a str>,
    pub service_url: Option<&'a str>,
    pub service_addr: Option<SocketAddr>,
    pub origin_status: u16,
    pub origin_duration: Duration,
    pub retries: u32,
    pub entry_point: &'a str,
    /// Request headers, when any header is logged.
    pub headers: &'a [(String, String)],
}

/// What became of a request, filled in by the proxy as it goes (only when the access log or
/// the metrics are on).
#[derive(Default)]
pub struct Observed {
    pub enabled: bool,
    /// ping, ACME challenges: not logged (Traefik's `addInternals` is off by default).
    pub internal: bool,
    pub status: u16,
    pub size: u64,
    /// The table the request was routed on and its router's index there.
    pub route: Option<(Rc<Snapshot>, u32)>,
    /// Copied only when the access log is on (metrics do not name servers).
    pub service_url: Option<String>,
    pub service_addr: Option<SocketAddr>,
    pub origin_status: u16,
    pub origin_duration: Duration,
    pub retries: u32,
}

impl Observed {
    /// The router that took the request (`name@provider`).
    pub fn router(&self) -> Option<&str> {
        let (snap, index) = self.route.as_ref()?;
        snap.table().router(*index).map(|r| &*r.name)
    }

    /// That router's service.
    pub fn service(&self) -> Option<&str> {
        let (snap, index) = self.route.as_ref()?;
        let table = snap.table();
        table
            .service(table.router(*index)?.service)
            .map(|s| s.name())
    }
}

/// The parts of a request the log needs, copied before the proxy consumes the head.
pub struct Request {
    method: String,
    uri: String,
    protocol: &'static str,
    host: String,
    referer: String,
    user_agent: String,
    request_size: u64,
    headers: Vec<(String, String)>,
}

impl Request {
    pub fn capture(head: &RequestHead, buf: &[u8], with_headers: bool) -> Request {
        let text = |r: &std::ops::Range<usize>| {
            String::from_utf8_lossy(buf.get(r.clone()).unwrap_or_default()).into_owned()
        };
        let mut uri = text(&head.path);
        if let Some(q) = &head.query {
            uri.push('?');
            uri.push_str(&text(q));
        }
        let mut referer = String::new();
        let mut user_agent = String::new();
        let mut headers = Vec::new();
        for h in &head.headers {
            let name = buf.get(h.name.clone()).unwrap_or_default();
            if name.eq_ignore_ascii_case(b"referer") {
                referer = text(&h.value);
            } else if name.eq_ignore_ascii_case(b"user-agent") {
                user_agent = text(&h.value);
            }
            if with_headers {
                headers.push((text(&h.name), text(&h.value)));
            }
        }
        Request {
            method: head.method(buf).to_string(),
            uri,
            protocol: if head.minor_version == 0 {
                "HTTP/1.0"
            } else {
                "HTTP/1.1"
            },
            host: head.host.as_ref().map(text).unwrap_or_default(),
            referer,
            user_agent,
            request_size: match head.framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            headers,
        }
    }

    pub fn entry<'a>(
        &'a self,
        start: SystemTime,
        duration: Duration,
        client: SocketAddr,
        tls: bool,
        ep: &'a EntryPoint,
        obs: &'a Observed,
    ) -> Entry<'a> {
        Entry {
            start,
            duration,
            client,
            method: &self.method,
            uri: &self.uri,
            protocol: self.protocol,
            host: &self.host,
            tls,
            status: obs.status,
            size: obs.size,
            request_size: self.request_size,
            referer: &self.referer,
            user_agent: &self.user_agent,
            router: obs.router(),
            service: obs.service(),
            service_url: obs.service_url.as_deref(),
            service_addr: obs.service_addr,
            origin_status: obs.origin_status,
            origin_duration: obs.origin_duration,
            retries: obs.retries,
            entry_point: &ep.name,
            headers: &self.headers,
        }
    }
}

/// The writer thread's end: started once per process.
pub struct Writer {
    config: Arc<AccessLog>,
    tx: SyncSender<Vec<u8>>,
    thread: std::thread::JoinHandle<()>,
    reopen: Arc<AtomicBool>,
}

/// Where the lines go: the file (reopened on request) or standard output.
struct Output {
    path: Option<PathBuf>,
    out: Box<dyn std::io::Write + Send>,
}

fn open(path: &Option<PathBuf>) -> std::io::Result<Box<dyn std::io::Write + Send>> {
    Ok(match path {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )
        }
        None => Box::new(std::io::stdout()),
    })
}

impl Writer {
    /// Opens the file (or standard output) and starts the writer thread.
    pub fn start(config: AccessLog) -> std::io::Result<Writer> {
        let output = Output {
            out: open(&config.file_path)?,
            path: config.file_path.clone(),
        };
        let (tx, rx) = sync_channel(CHANNEL);
        let reopen = Arc::new(AtomicBool::new(false));
        let flag = reopen.clone();
        let thread = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_loop(rx, output, &flag))?;
        Ok(Writer {
            config: Arc::new(config),
            tx,
            thread,
            reopen,
        })
    }

    /// Reopens the file before the next write (SIGUSR1, after a log rotation moved it).
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Release);
    }

    /// Writes what the workers handed over (they have flushed and exited) and stops. (An
    /// empty buffer is the stop mark: workers never send one.)
    pub fn finish(self) {
        if self.tx.send(Vec::new()).is_ok() {
            let _ = self.thread.join();
        }
    }

    /// A worker's logger.
    pub fn logger(&self) -> Logger {
        Logger {
            config: self.config.clone(),
            tx: self.tx.clone(),
            buf: RefCell::new(Vec::new()),
            lines: Cell::new(0),
            since: Cell::new(None),
            dropped: Cell::new(0),
            reported: Cell::new(Instant::now()),
            count: Cell::new(0),
            clock: RefCell::new(Clock::default()),
        }
    }
}

fn write_loop(rx: Receiver<Vec<u8>>, mut output: Output, reopen: &AtomicBool) {
    while let Ok(buf) = rx.recv() {
        if buf.is_empty() {
            return;
        }
        if reopen.swap(false, Ordering::AcqRel) && output.path.is_some() {
            match open(&output.path) {
                Ok(out) => output.out = out,
                Err(e) => tracing::error!(error = %e, "cannot reopen the access log"),
            }
        }
        let out = &mut output.out;
        if let Err(e) = out.write_all(&buf).and_then(|()| out.flush()) {
            tracing::error!(error = %e, "access log write failed");
        }
    }
}

/// One worker's side: formats lines into its own buffer.
pub struct Logger {
    config: Arc<AccessLog>,
    tx: SyncSender<Vec<u8>>,
    buf: RefCell<Vec<u8>>,
    lines: Cell<usize>,
    since: Cell<Option<Instant>>,
    dropped: Cell<u64>,
    reported: Cell<Instant>,
    /// Requests seen by this worker (Traefik's `RequestCount` is per process; here per worker).
    count: Cell<u64>,
    clock: RefCell<Clock>,
}

impl Logger {
    pub fn config(&self) -> &AccessLog {
        &self.config
    }

    /// Logs `e` if the filters keep it.
    pub fn log(&self, e: &Entry<'_>) {
        let n = self.count.get() + 1;
        self.count.set(n);
        if !self.config.keep(e.status, e.retries, e.duration) {
            return;
        }
        {
            let mut buf = self.buf.borrow_mut();
            match self.config.format {
                AccessLogFormat::Common => {
                    common(&mut buf, e, n, &self.config, &mut self.clock.borrow_mut())
                }
                AccessLogFormat::Json => json(&mut buf, e, n, &self.config),
            }
        }
        self.lines.set(self.lines.get() + 1);
        if self.since.get().is_none() {
            self.since.set(Some(Instant::now()));
        }
        let full = self.buf.borrow().len() >= FLUSH_BYTES
            || (self.config.buffering_size > 0 && self.lines.get() >= self.config.buffering_size);
        if full {
            self.flush();
        }
    }

    /// Hands the buffer over when it is due (called by the worker's ticker).
    pub fn tick(&self) {
        if self.since.get().is_some_and(|t| t.elapsed() >= FLUSH_EVERY) {
            self.flush();
        }
    }

    pub fn flush(&self) {
        let buf = std::mem::take(&mut *self.buf.borrow_mut());
        let lines = self.lines.replace(0);
        self.since.set(None);
        if buf.is_empty() {
            return;
        }
        match self.tx.try_send(buf) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.set(self.dropped.get() + lines as u64);
                if self.reported.get().elapsed() >= Duration::from_secs(10) {
                    self.reported.set(Instant::now());
                    tracing::warn!(
                        dropped = self.dropped.get(),
                        "access log lines dropped: the writer cannot keep up"
                    );
                }
            }
        }
    }
}

struct Utc {
    y: i64,
    mo: u32,
    d: u32,
    h: u64,
    mi: u64,
    s: u64,
    nanos: u32,
}

fn utc(t: SystemTime) -> Utc {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (y, mo, d) = ringway_shared::civil::civil((secs / 86_400) as i64);
    let rem = secs % 86_400;
    Utc {
        y,
        mo,
        d,
        h: rem / 3600,
        mi: rem % 3600 / 60,
        s: rem % 60,
        nanos: since.subsec_nanos(),
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `field` as its mode says: the value, `REDACTED`, or `None` (dropped).
fn shown<'v>(config: &AccessLog, field: &str, value: &'v str) -> Option<&'v str> {
    match config.field(field) {
        FieldMode::Keep => Some(value),
        FieldMode::Redact => Some("REDACTED"),
        FieldMode::Drop => None,
    }
}

/// The `[02/Jan/2006:15:04:05 +0000]` part, formatted once per second.
#[derive(Default)]
pub struct Clock {
    second: u64,
    text: String,
}

impl Clock {
    fn clf(&mut self, t: SystemTime) -> &str {
        let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        if secs != self.second || self.text.is_empty() {
            let u = utc(t);
            self.second = secs;
            self.text.clear();
            let _ = write!(
                self.text,
                "[{:02}/{}/{}:{:02}:{:02}:{:02} +0000]",
                u.d,
                MONTHS[(u.mo - 1) as usize],
                u.y,
                u.h,
                u.mi,
                u.s
            );
        }
        &self.text
    }
}

/// `v` or `-` when dropped or empty; `quote` wraps a present value in quotes.
fn put(out: &mut Vec<u8>, v: Option<&str>, quote: bool) {
    match v {
        Some(s) if !s.is_empty() => {
            if quote {
                out.push(b'"');
            }
            out.extend_from_slice(s.as_bytes());
            if quote {
                out.push(b'"');
            }
        }
        _ => out.push(b'-'),
    }
}

/// Traefik's common format:
/// `host - user [02/Jan/2006:15:04:05 -0700] "GET /p HTTP/1.1" 200 12 "referer" "agent" 1
/// "router" "service URL" 3ms`.
fn common(out: &mut Vec<u8>, e: &Entry<'_>, count: u64, config: &AccessLog, clock: &mut Clock) {
    use std::io::Write as _;
    match config.field("ClientHost") {
        FieldMode::Keep => {
            let _ = write!(out, "{}", e.client.ip());
        }
        FieldMode::Redact => out.extend_from_slice(b"REDACTED"),
        FieldMode::Drop => out.push(b'-'),
    }
    out.extend_from_slice(b" - ");
    put(out, shown(config, "ClientUsername", ""), false);
    out.push(b' ');
    out.extend_from_slice(clock.clf(e.start).as_bytes());
    out.extend_from_slice(b" \"");
    put(out, shown(config, "RequestMethod", e.method), false);
    out.push(b' ');
    put(out, shown(config, "RequestPath", e.uri), false);
    out.push(b' ');
    put(out, shown(config, "RequestProtocol", e.protocol), false);
    let _ = write!(out, "\" {} {} \"", e.status, e.size);
    put(
        out,
        Some(e.referer).filter(|s| !s.is_empty()).or(Some("-")),
        false,
    );
    out.extend_from_slice(b"\" \"");
    put(
        out,
        Some(e.user_agent).filter(|s| !s.is_empty()).or(Some("-")),
        false,
    );
    let _ = write!(out, "\" {count} ");
    put(
        out,
        e.router.and_then(|r| shown(config, "RouterName", r)),
        true,
    );
    out.push(b' ');
    put(
        out,
        e.service_url.and_then(|u| shown(config, "ServiceURL", u)),
        true,
    );
    let _ = writeln!(out, " {}ms", e.duration.as_millis());
}

/// A JSON string literal.
fn js(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[from..i]);
        if esc.is_empty() {
            let _ = std::io::Write::write_fmt(out, format_args!("\\u{b:04x}"));
        } else {
            out.extend_from_slice(esc);
        }
        from = i + 1;
    }
    out.extend_from_slice(&bytes[from..]);
    out.push(b'"');
}

/// Writes `"key":` with a comma before every key but the first.
struct Obj<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl Obj<'_> {
    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// A field as its mode says: left out, `"REDACTED"`, or written by `value`.
    fn field(&mut self, config: &AccessLog, k: &str, value: impl FnOnce(&mut Vec<u8>)) {
        match config.field(k) {
            FieldMode::Drop => {}
            FieldMode::Redact => {
                self.key(k);
                js(self.out, "REDACTED");
            }
            FieldMode::Keep => {
                self.key(k);
                value(self.out);
            }
        }
    }

    fn text(&mut self, config: &AccessLog, k: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.field(config, k, |o| js(o, v));
        }
    }

    /// A string formatted in place (`ClientAddr`, …).
    fn display(&mut self, config: &AccessLog, k: &str, v: impl std::fmt::Display) {
        self.field(config, k, |o| {
            let _ = std::io::Write::write_fmt(o, format_args!("\"{v}\""));
        });
    }

    fn number(&mut self, config: &AccessLog, k: &str, v: u64) {
        self.field(config, k, |o| {
            let _ = std::io::Write::write_fmt(o, format_args!("{v}"));
        });
    }
}

/// Traefik's JSON format: one object per line with its field names.
fn json(out: &mut Vec<u8>, e: &Entry<'_>, count: u64, config: &AccessLog) {
    let t = utc(e.start);
    let start = format_args!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.y, t.mo, t.d, t.h, t.mi, t.s, t.nanos
    );
    let (req_host, req_port) = match e.host.rsplit_once(':') {
        Some((h, p))
            if !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (!h.contains(':') || h.ends_with(']')) =>
        {
            (h, p)
        }
        _ => (e.host, "-"),
    };
    out.push(b'{');
    let mut o = Obj { out, first: true };
    o.display(config, "ClientAddr", e.client);
    o.display(config, "ClientHost", e.client.ip());
    o.display(config, "ClientPort", e.client.port());
    o.text(config, "ClientUsername", Some("-"));
    o.text(config, "RequestAddr", Some(e.host));
    o.text(config, "RequestHost", Some(req_host));
    o.text(config, "RequestPort", Some(req_port));
    o.text(config, "RequestMethod", Some(e.method));
    o.text(config, "RequestPath", Some(e.uri));
    o.text(config, "RequestProtocol", Some(e.protocol));
    o.text(
        config,
        "RequestScheme",
        Some(if e.tls { "https" } else { "http" }),
    );
    o.text(config, "RouterName", e.router);
    o.text(config, "ServiceName", e.service);
    o.text(config, "ServiceURL", e.service_url);
    if let Some(a) = e.service_addr {
        o.display(config, "ServiceAddr", a);
    }
    o.display(config, "StartUTC", start);
    // The process runs in UTC unless told otherwise: the same instant as StartUTC.
    o.display(config, "StartLocal", start);
    o.text(config, "entryPointName", Some(e.entry_point));
    let overhead = e.duration.saturating_sub(e.origin_duration);
    for (k, v) in [
        ("DownstreamContentSize", e.size),
        ("DownstreamStatus", u64::from(e.status)),
        ("Duration", e.duration.as_nanos() as u64),
        ("OriginContentSize", e.size),
        ("OriginDuration", e.origin_duration.as_nanos() as u64),
        ("OriginStatus", u64::from(e.origin_status)),
        ("Overhead", overhead.as_nanos() as u64),
        ("RequestContentSize", e.request_size),
        ("RequestCount", count),
        ("RetryAttempts", u64::from(e.retries)),
    ] {
        o.number(config, k, v);
    }
    for (name, value) in e.headers {
        match config.header(name) {
            FieldMode::Drop => {}
            mode => {
                o.key(&format!("request_{name}"));
                js(
                    o.out,
                    if mode == FieldMode::Redact {
                        "REDACTED"
                    } else {
                        value
                    },
                );
            }
        }
    }
    o.key("level");
    o.out.extend_from_slice(b"\"info\"");
    o.key("msg");
    o.out.extend_from_slice(b"\"\"");
    let now = utc(SystemTime::now());
    o.key("time");
    let _ = std::io::Write::write_fmt(
        o.out,
        format_args!(
            "\"{}-{:02}-{:02}T{:02}:{:02}:{:02}Z\"",
            now.y, now.mo, now.d, now.h, now.mi, now.s
        ),
    );
    o.out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry<'static> {
        Entry {
            start: UNIX_EPOCH + Duration::from_secs(1_795_359_845),
            duration: Duration::from_millis(3),
            client: "10.0.0.7:51234".parse().expect("addr"),
            method: "GET",
            uri: "/a?b=1",
            protocol: "HTTP/1.1",
            host: "app.test:8000",
            tls: false,
            status: 200,
            size: 12,
            request_size: 0,
            referer: "",
            user_agent: "curl/8.0",
            router: Some("app@file"),
            service: Some("app@file"),
            service_url: Some("http://127.0.0.1:9000"),
            service_addr: Some("127.0.0.1:9000".parse().expect("addr")),
            origin_status: 200,
            origin_duration: Duration::from_millis(2),
            retries: 0,
            entry_point: "web",
            headers: &[],
        }
    }

    #[test]
    fn common_format_is_traefiks() {
        let mut out = Vec::new();
        common(
            &mut out,
            &entry(),
            7,
            &AccessLog::default(),
            &mut Clock::default(),
        );
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "10.0.0.7 - - [22/Nov/2026:15:04:05 +0000] \"GET /a?b=1 HTTP/1.1\" 200 12 \"-\" \
             \"curl/8.0\" 7 \"app@file\" \"http://127.0.0.1:9000\" 3ms\n"
        );
    }

    #[test]
    fn json_has_traefiks_fields_modes_and_headers() {
        let mut config = AccessLog::default();
        config.fields.insert("ClientHost".into(), FieldMode::Redact);
        config.fields.insert("ClientAddr".into(), FieldMode::Drop);
        config.headers.insert("x-keep".into(), FieldMode::Keep);
        config
            .headers
            .insert("authorization".into(), FieldMode::Redact);
        let headers = vec![
            ("X-Keep".to_string(), "y\"e\\s\n\u{1}".to_string()),
            ("Authorization".to_string(), "secret".to_string()),
            ("X-Other".to_string(), "no".to_string()),
        ];
        let mut e = entry();
        e.headers = &headers;
        let mut out = Vec::new();
        json(&mut out, &e, 1, &config);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["ClientHost"], "REDACTED");
        assert!(v.get("ClientAddr").is_none());
        assert_eq!(v["RequestHost"], "app.test");
        assert_eq!(v["RequestPort"], "8000");
        assert_eq!(v["DownstreamStatus"], 200);
        assert_eq!(v["Duration"], 3_000_000);
        assert_eq!(v["RouterName"], "app@file");
        assert_eq!(v["ServiceURL"], "http://127.0.0.1:9000");
        assert_eq!(v["StartUTC"], "2026-11-22T15:04:05.000000000Z");
        assert_eq!(v["entryPointName"], "web");
        assert_eq!(v["request_X-Keep"], "y\"e\\s\n\u{1}");
        assert_eq!(v["request_Authorization"], "REDACTED");
        assert!(v.get("request_X-Other").is_none());
        assert_eq!(v["level"], "info");
    }
}

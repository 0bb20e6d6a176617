//! The access log (`accessLog.*`), in Traefik's Common Log Format or JSON, with its field
//! names.
//!
//! Each worker formats its lines into a buffer of its own and hands whole buffers to one
//! writer thread (every 100 ms, at `bufferingSize` lines, or at 64 KiB); the handoff is a
//! bounded channel that a worker never waits on: when the writer lags and the channel is
//! full, the buffer is dropped and counted (reported in the log), so a slow disk never slows
//! the proxy.

use crate::http::request::{Framing, RequestHead};
use ringway_shared::config::static_config::{AccessLog, AccessLogFormat, EntryPoint, FieldMode};
use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
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

/// What became of a request, filled in by the proxy as it goes (strings only when the access
/// log is on).
#[derive(Debug, Default)]
pub struct Observed {
    pub enabled: bool,
    /// ping, ACME challenges: not logged (Traefik's `addInternals` is off by default).
    pub internal: bool,
    pub status: u16,
    pub size: u64,
    pub router: Option<String>,
    pub service: Option<String>,
    pub service_url: Option<String>,
    pub service_addr: Option<SocketAddr>,
    pub origin_status: u16,
    pub origin_duration: Duration,
    pub retries: u32,
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
            let name = text(&h.name);
            if name.eq_ignore_ascii_case("referer") {
                referer = text(&h.value);
            } else if name.eq_ignore_ascii_case("user-agent") {
                user_agent = text(&h.value);
            }
            if with_headers {
                headers.push((name, text(&h.value)));
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
            router: obs.router.as_deref(),
            service: obs.service.as_deref(),
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
}

impl Writer {
    /// Opens the file (or standard output) and starts the writer thread.
    pub fn start(config: AccessLog) -> std::io::Result<Writer> {
        let out: Box<dyn std::io::Write + Send> = match &config.file_path {
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
        };
        let (tx, rx) = sync_channel(CHANNEL);
        let thread = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_loop(rx, out))?;
        Ok(Writer {
            config: Arc::new(config),
            tx,
            thread,
        })
    }

    /// Writes what the workers handed over (they have flushed and exited) and stops.
    pub fn finish(self) {
        drop(self.tx);
        let _ = self.thread.join();
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
        }
    }
}

fn write_loop(rx: Receiver<Vec<u8>>, mut out: Box<dyn std::io::Write + Send>) {
    while let Ok(buf) = rx.recv() {
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
                AccessLogFormat::Common => common(&mut buf, e, n, &self.config),
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

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
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
    let (y, mo, d) = civil((secs / 86_400) as i64);
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

/// Traefik's common format:
/// `host - user [02/Jan/2006:15:04:05 -0700] "GET /p HTTP/1.1" 200 12 "referer" "agent" 1
/// "router" "service URL" 3ms`.
fn common(out: &mut Vec<u8>, e: &Entry<'_>, count: u64, config: &AccessLog) {
    let t = utc(e.start);
    let dash = |v: Option<&str>| match v {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "-".to_string(),
    };
    let quoted = |v: Option<&str>| match v {
        Some(s) if !s.is_empty() => format!("\"{s}\""),
        _ => "-".to_string(),
    };
    let ip = e.client.ip().to_string();
    let mut line = String::with_capacity(256);
    let _ = writeln!(
        line,
        "{} - {} [{:02}/{}/{}:{:02}:{:02}:{:02} +0000] \"{} {} {}\" {} {} \"{}\" \"{}\" {} {} {} {}ms",
        dash(shown(config, "ClientHost", &ip)),
        dash(shown(config, "ClientUsername", "")),
        t.d,
        MONTHS[(t.mo - 1) as usize],
        t.y,
        t.h,
        t.mi,
        t.s,
        dash(shown(config, "RequestMethod", e.method)),
        dash(shown(config, "RequestPath", e.uri)),
        dash(shown(config, "RequestProtocol", e.protocol)),
        e.status,
        e.size,
        if e.referer.is_empty() { "-" } else { e.referer },
        if e.user_agent.is_empty() { "-" } else { e.user_agent },
        count,
        quoted(e.router.and_then(|r| shown(config, "RouterName", r))),
        quoted(e.service_url.and_then(|u| shown(config, "ServiceURL", u))),
        e.duration.as_millis(),
    );
    out.extend_from_slice(line.as_bytes());
}

/// A JSON string literal.
fn js(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Traefik's JSON format: one object per line with its field names.
fn json(out: &mut Vec<u8>, e: &Entry<'_>, count: u64, config: &AccessLog) {
    let t = utc(e.start);
    let start = format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.y, t.mo, t.d, t.h, t.mi, t.s, t.nanos
    );
    let now = utc(SystemTime::now());
    let time = format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.y, now.mo, now.d, now.h, now.mi, now.s
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
    let client_ip = e.client.ip().to_string();
    let client_port = e.client.port().to_string();
    let client_addr = e.client.to_string();
    let service_addr = e.service_addr.map(|a| a.to_string());
    let strings: [(&str, Option<&str>); 17] = [
        ("ClientAddr", Some(&client_addr)),
        ("ClientHost", Some(&client_ip)),
        ("ClientPort", Some(&client_port)),
        ("ClientUsername", Some("-")),
        ("RequestAddr", Some(e.host)),
        ("RequestHost", Some(req_host)),
        ("RequestPort", Some(req_port)),
        ("RequestMethod", Some(e.method)),
        ("RequestPath", Some(e.uri)),
        ("RequestProtocol", Some(e.protocol)),
        ("RequestScheme", Some(if e.tls { "https" } else { "http" })),
        ("RouterName", e.router),
        ("ServiceName", e.service),
        ("ServiceURL", e.service_url),
        ("ServiceAddr", service_addr.as_deref()),
        ("StartUTC", Some(&start)),
        ("entryPointName", Some(e.entry_point)),
    ];
    let overhead = e.duration.saturating_sub(e.origin_duration);
    let numbers: [(&str, u64); 10] = [
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
    ];
    let mut line = String::with_capacity(768);
    line.push('{');
    let mut first = true;
    let mut key = |line: &mut String, k: &str| {
        if !first {
            line.push(',');
        }
        first = false;
        js(line, k);
        line.push(':');
    };
    for (k, v) in strings {
        let Some(v) = v else { continue };
        if let Some(v) = shown(config, k, v) {
            key(&mut line, k);
            js(&mut line, v);
        }
    }
    for (k, v) in numbers {
        match config.field(k) {
            FieldMode::Drop => {}
            FieldMode::Redact => {
                key(&mut line, k);
                js(&mut line, "REDACTED");
            }
            FieldMode::Keep => {
                key(&mut line, k);
                let _ = write!(line, "{v}");
            }
        }
    }
    // StartLocal: the process runs in UTC unless told otherwise; same instant as StartUTC.
    if let Some(v) = shown(config, "StartLocal", &start) {
        key(&mut line, "StartLocal");
        js(&mut line, v);
    }
    for (name, value) in e.headers {
        match config.header(name) {
            FieldMode::Drop => {}
            mode => {
                key(&mut line, &format!("request_{name}"));
                js(
                    &mut line,
                    if mode == FieldMode::Redact {
                        "REDACTED"
                    } else {
                        value
                    },
                );
            }
        }
    }
    key(&mut line, "level");
    js(&mut line, "info");
    key(&mut line, "msg");
    js(&mut line, "");
    key(&mut line, "time");
    js(&mut line, &time);
    line.push_str("}\n");
    out.extend_from_slice(line.as_bytes());
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
        common(&mut out, &entry(), 7, &AccessLog::default());
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
            ("X-Keep".to_string(), "yes".to_string()),
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
        assert_eq!(v["request_X-Keep"], "yes");
        assert_eq!(v["request_Authorization"], "REDACTED");
        assert!(v.get("request_X-Other").is_none());
        assert_eq!(v["level"], "info");
    }
}

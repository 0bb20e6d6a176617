//! A small Redis client (RESP2 over TCP or TLS) with what the KV provider, `kv sync` and the
//! lock need: AUTH/SELECT, SCAN + MGET, MULTI/EXEC, keyspace notifications, EVAL.
//!
//! Replies are parsed from an internal buffer, so a read cancelled by a timeout loses nothing.

use super::net::{connect_any, Stream};
use super::KvError;
use ringway_shared::config::static_config::KvProvider;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Keys per MGET and per SCAN step.
const BATCH: usize = 500;
/// With no notification for this long the subscription is checked with a PING.
const PING_EVERY: Duration = Duration::from_secs(4);
/// A PING unanswered for this long means the connection is dead.
const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// The poll interval when the server refuses keyspace notifications (stretched to ten times
/// the last full read, so that a large store is not read back to back).
pub const POLL_EVERY: Duration = Duration::from_millis(50);

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

impl Resp {
    fn into_bulk_string(self) -> Option<String> {
        match self {
            Resp::Bulk(Some(b)) => String::from_utf8(b).ok(),
            Resp::Simple(s) => Some(s),
            _ => None,
        }
    }
}

/// One connection.
pub struct RedisConn {
    stream: Stream,
    buf: Vec<u8>,
    /// Keys of the last [`RedisConn::list`] that hold no string, with their type.
    not_strings: Vec<(String, String)>,
}

impl RedisConn {
    /// Connects to the first endpoint that answers, authenticates and selects the database.
    pub async fn connect(cfg: &KvProvider) -> Result<RedisConn, KvError> {
        let stream = connect_any(&cfg.endpoints, cfg.tls.as_ref()).await?;
        let mut conn = RedisConn {
            stream,
            buf: Vec::with_capacity(4096),
            not_strings: Vec::new(),
        };
        if let Some(password) = &cfg.password {
            let reply = match &cfg.username {
                Some(user) => conn.call(&["AUTH", user, password]).await?,
                None => conn.call(&["AUTH", password]).await?,
            };
            expect_ok("AUTH", reply)?;
        }
        if cfg.db != 0 {
            let reply = conn.call(&["SELECT", &cfg.db.to_string()]).await?;
            expect_ok("SELECT", reply)?;
        }
        Ok(conn)
    }

    /// Sends one command and reads its reply (an error reply is returned, not raised).
    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Resp, KvError> {
        self.send(args).await?;
        self.read().await
    }

    /// Writes one command without reading its reply (pipelining).
    pub async fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<(), KvError> {
        let mut out = Vec::with_capacity(64);
        encode(&mut out, args);
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// Reads one reply. Cancel-safe.
    pub async fn read(&mut self) -> Result<Resp, KvError> {
        loop {
            if let Some((resp, used)) = parse(&self.buf)? {
                self.buf.drain(..used);
                return Ok(resp);
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(KvError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Every `key, value` whose key starts with `prefix` (SCAN + MGET). Keys that vanish
    /// between the two are skipped; keys that hold no string are listed in
    /// [`RedisConn::not_strings`].
    pub async fn list(&mut self, prefix: &str) -> Result<Vec<(String, String)>, KvError> {
        let pattern = format!("{}*", glob_escape(prefix));
        let mut keys: Vec<String> = Vec::new();
        let mut cursor = "0".to_string();
        let count = BATCH.to_string();
        loop {
            let reply = self
                .call(&["SCAN", &cursor, "MATCH", &pattern, "COUNT", &count])
                .await?;
            let Resp::Array(Some(mut parts)) = reply else {
                return Err(server_error("SCAN", reply));
            };
            if parts.len() != 2 {
                return Err(KvError::Protocol("SCAN reply is not [cursor, keys]".into()));
            }
            let batch = parts.pop();
            cursor = parts
                .pop()
                .and_then(Resp::into_bulk_string)
                .ok_or_else(|| KvError::Protocol("SCAN cursor".into()))?;
            if let Some(Resp::Array(Some(items))) = batch {
                keys.extend(items.into_iter().filter_map(Resp::into_bulk_string));
            }
            if cursor == "0" {
                break;
            }
        }
        keys.sort();
        keys.dedup(); // SCAN may return a key twice
        let mut out = Vec::with_capacity(keys.len());
        let mut missing = Vec::new();
        for chunk in keys.chunks(BATCH) {
            let mut args: Vec<&str> = Vec::with_capacity(chunk.len() + 1);
            args.push("MGET");
            args.extend(chunk.iter().map(String::as_str));
            let reply = self.call(&args).await?;
            let Resp::Array(Some(values)) = reply else {
                return Err(server_error("MGET", reply));
            };
            for (key, value) in chunk.iter().zip(values) {
                match value {
                    Resp::Bulk(Some(v)) => {
                        out.push((key.clone(), String::from_utf8_lossy(&v).into_owned()))
                    }
                    _ => missing.push(key.clone()),
                }
            }
        }
        // Gone meanwhile, or not a string (a hash written by hand): say which.
        self.not_strings.clear();
        for key in missing {
            if let Some(kind) = self.call(&["TYPE", &key]).await?.into_bulk_string() {
                if kind != "none" {
                    self.not_strings.push((key, kind));
                }
            }
        }
        Ok(out)
    }

    /// The keys of the last `list` that hold another type than a string, with that type.
    pub fn not_strings(&self) -> &[(String, String)] {
        &self.not_strings
    }

    /// Sets `puts` and deletes `deletes` in one MULTI/EXEC transaction.
    pub async fn apply(
        &mut self,
        puts: &[(String, String)],
        deletes: &[String],
    ) -> Result<(), KvError> {
        if puts.is_empty() && deletes.is_empty() {
            return Ok(());
        }
        let mut out = Vec::new();
        encode(&mut out, &["MULTI"]);
        for (k, v) in puts {
            encode(&mut out, &["SET", k.as_str(), v.as_str()]);
        }
        for chunk in deletes.chunks(BATCH) {
            let mut args = vec!["DEL"];
            args.extend(chunk.iter().map(String::as_str));
            encode(&mut out, &args);
        }
        encode(&mut out, &["EXEC"]);
        self.stream.write_all(&out).await?;
        let queued = 1 + puts.len() + deletes.len().div_ceil(BATCH);
        let mut first_error = None;
        for _ in 0..queued {
            if let Resp::Error(e) = self.read().await? {
                first_error.get_or_insert(e);
            }
        }
        let exec = self.read().await?;
        if let Some(e) = first_error {
            return Err(KvError::Server {
                command: "MULTI".into(),
                message: e,
            });
        }
        match exec {
            Resp::Array(Some(results)) => {
                for r in results {
                    if let Resp::Error(e) = r {
                        return Err(KvError::Server {
                            command: "EXEC".into(),
                            message: e,
                        });
                    }
                }
                Ok(())
            }
            other => Err(server_error("EXEC", other)),
        }
    }
}

/// A change feed: keyspace notifications on a subscribed connection, or a poll when the
/// server does not allow them.
pub enum RedisWatch {
    Notify {
        conn: RedisConn,
        ping_sent: Option<tokio::time::Instant>,
    },
    /// Polling: every `every` ([`POLL_EVERY`], longer when a full read is slow).
    Poll { every: Duration },
}

impl RedisWatch {
    /// Subscribes to the keyspace events of the keys under `prefix`, enabling them first when
    /// the server's `notify-keyspace-events` lacks them and `CONFIG SET` is allowed.
    pub async fn start(cfg: &KvProvider, prefix: &str) -> Result<RedisWatch, KvError> {
        let mut conn = RedisConn::connect(cfg).await?;
        if !notifications_enabled(&mut conn).await? {
            tracing::warn!(
                provider = "redis",
                "the server does not send keyspace notifications and refuses CONFIG SET; polling every {} ms",
                POLL_EVERY.as_millis()
            );
            return Ok(RedisWatch::Poll { every: POLL_EVERY });
        }
        let channel = format!("__keyspace@{}__:{}*", cfg.db, glob_escape(prefix));
        let reply = conn.call(&["PSUBSCRIBE", &channel]).await?;
        match &reply {
            Resp::Array(Some(parts)) if parts.first() == Some(&bulk("psubscribe")) => {}
            _ => return Err(server_error("PSUBSCRIBE", reply)),
        }
        Ok(RedisWatch::Notify {
            conn,
            ping_sent: None,
        })
    }

    /// Waits for the next change (any event on a key under the prefix).
    pub async fn changed(&mut self) -> Result<(), KvError> {
        match self {
            RedisWatch::Poll { every } => {
                tokio::time::sleep(*every).await;
                Ok(())
            }
            RedisWatch::Notify { conn, ping_sent } => loop {
                let wait = match ping_sent {
                    Some(at) => {
                        (*at + PING_TIMEOUT).saturating_duration_since(tokio::time::Instant::now())
                    }
                    None => PING_EVERY,
                };
                match tokio::time::timeout(wait, conn.read()).await {
                    Ok(reply) => {
                        let Resp::Array(Some(parts)) = reply? else {
                            return Err(KvError::Protocol(
                                "unexpected reply on the subscription".into(),
                            ));
                        };
                        match parts.first() {
                            Some(k) if *k == bulk("pmessage") => return Ok(()),
                            Some(k) if *k == bulk("pong") => *ping_sent = None,
                            _ => {}
                        }
                    }
                    Err(_) if ping_sent.is_some() => {
                        return Err(KvError::Protocol(
                            "the subscription stopped answering PING".into(),
                        ))
                    }
                    Err(_) => {
                        conn.send(&["PING"]).await?;
                        *ping_sent = Some(tokio::time::Instant::now());
                    }
                }
            },
        }
    }
}

/// Whether keyspace notifications for every command are on (after turning them on if needed
/// and allowed).
async fn notifications_enabled(conn: &mut RedisConn) -> Result<bool, KvError> {
    let reply = conn
        .call(&["CONFIG", "GET", "notify-keyspace-events"])
        .await?;
    let current = match reply {
        Resp::Array(Some(mut parts)) if parts.len() == 2 => parts
            .pop()
            .and_then(Resp::into_bulk_string)
            .unwrap_or_default(),
        Resp::Error(_) => return Ok(false),
        other => return Err(server_error("CONFIG GET", other)),
    };
    // K: keyspace channel; A: events of every type (a hash written by hand is reported too).
    if current.contains('K') && current.contains('A') {
        return Ok(true);
    }
    let mut wanted = current.clone();
    for c in ['K', 'A'] {
        if !wanted.contains(c) {
            wanted.push(c);
        }
    }
    let reply = conn
        .call(&["CONFIG", "SET", "notify-keyspace-events", &wanted])
        .await?;
    Ok(reply == Resp::Simple("OK".into()))
}

fn bulk(s: &str) -> Resp {
    Resp::Bulk(Some(s.as_bytes().to_vec()))
}

fn expect_ok(command: &str, reply: Resp) -> Result<(), KvError> {
    match reply {
        Resp::Simple(_) => Ok(()),
        other => Err(server_error(command, other)),
    }
}

pub(crate) fn server_error(command: &str, reply: Resp) -> KvError {
    KvError::Server {
        command: command.to_string(),
        message: match reply {
            Resp::Error(e) => e,
            other => format!("unexpected reply {other:?}"),
        },
    }
}

/// Escapes glob characters for SCAN MATCH and PSUBSCRIBE.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn encode<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Parses one reply from the front of `buf`: `None` when incomplete.
fn parse(buf: &[u8]) -> Result<Option<(Resp, usize)>, KvError> {
    let Some(line_end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let Some((&kind, line)) = buf[..line_end].split_first() else {
        return Err(KvError::Protocol("empty reply line".into()));
    };
    let line =
        std::str::from_utf8(line).map_err(|_| KvError::Protocol("non-UTF-8 reply line".into()))?;
    let after = line_end + 2;
    let int = || -> Result<i64, KvError> {
        line.parse()
            .map_err(|_| KvError::Protocol(format!("bad length or integer {line:?}")))
    };
    match kind {
        b'+' => Ok(Some((Resp::Simple(line.to_string()), after))),
        b'-' => Ok(Some((Resp::Error(line.to_string()), after))),
        b':' => Ok(Some((Resp::Int(int()?), after))),
        b'$' => {
            let len = int()?;
            if len < 0 {
                return Ok(Some((Resp::Bulk(None), after)));
            }
            let len = usize::try_from(len).map_err(|_| KvError::Protocol("bulk length".into()))?;
            if buf.len() < after + len + 2 {
                return Ok(None);
            }
            Ok(Some((
                Resp::Bulk(Some(buf[after..after + len].to_vec())),
                after + len + 2,
            )))
        }
        b'*' => {
            let n = int()?;
            if n < 0 {
                return Ok(Some((Resp::Array(None), after)));
            }
            let mut items = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(1024));
            let mut at = after;
            for _ in 0..n {
                match parse(&buf[at..])? {
                    Some((item, used)) => {
                        items.push(item);
                        at += used;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Resp::Array(Some(items)), at)))
        }
        other => Err(KvError::Protocol(format!(
            "unknown reply type {:?}",
            other as char
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_and_wait_for_more() {
        let full = b"*3\r\n$8\r\npmessage\r\n:7\r\n$-1\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]).expect("ok"), None, "cut at {cut}");
        }
        let (resp, used) = parse(full).expect("ok").expect("complete");
        assert_eq!(used, full.len());
        assert_eq!(
            resp,
            Resp::Array(Some(vec![bulk("pmessage"), Resp::Int(7), Resp::Bulk(None)]))
        );
        assert!(parse(b"?x\r\n").is_err());
        assert_eq!(glob_escape("a*b[1]"), "a\\*b\\[1\\]");
    }
}

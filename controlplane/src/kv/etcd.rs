//! An etcd v3 client over etcd's JSON gateway (`/v3/kv/range`, `/v3/kv/txn`, `/v3/watch`,
//! `/v3/lease/*`, `/v3/auth/authenticate`; keys and values base64), on hyper's HTTP/1.1
//! client. The gRPC client (`etcd-client`) needs protoc and tonic; the gateway is in every
//! etcd v3 server since 3.4 and costs nothing to build here.

use super::net::{connect_any, Stream};
use super::KvError;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use ringway_shared::config::static_config::KvProvider;
use serde_json::{json, Value};

/// etcd's default `--max-txn-ops`: a larger change is applied in several transactions.
pub const MAX_TXN_OPS: usize = 128;

/// One HTTP/1.1 connection to the gateway (requests one after another).
pub struct EtcdConn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    token: Option<String>,
}

impl EtcdConn {
    pub async fn connect(cfg: &KvProvider) -> Result<EtcdConn, KvError> {
        let mut conn = EtcdConn::open(cfg, None).await?;
        if let (Some(user), Some(password)) = (&cfg.username, &cfg.password) {
            let reply = conn
                .post(
                    "/v3/auth/authenticate",
                    json!({ "name": user, "password": password }),
                )
                .await?;
            let token = reply
                .get("token")
                .and_then(Value::as_str)
                .ok_or_else(|| KvError::Protocol("authenticate: no token".into()))?;
            conn.token = Some(token.to_string());
        }
        Ok(conn)
    }

    async fn open(cfg: &KvProvider, token: Option<String>) -> Result<EtcdConn, KvError> {
        let (sender, host) = handshake(cfg).await?;
        Ok(EtcdConn {
            sender,
            host,
            token,
        })
    }

    fn request(&self, path: &str, body: &Value) -> Result<hyper::Request<Full<Bytes>>, KvError> {
        let mut req = hyper::Request::post(path)
            .header(hyper::header::HOST, &self.host)
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(t) = &self.token {
            req = req.header(hyper::header::AUTHORIZATION, t);
        }
        req.body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| KvError::Protocol(e.to_string()))
    }

    async fn send(
        &mut self,
        path: &str,
        body: &Value,
    ) -> Result<hyper::Response<Incoming>, KvError> {
        let req = self.request(path, body)?;
        self.sender
            .ready()
            .await
            .map_err(|e| KvError::Protocol(e.to_string()))?;
        self.sender
            .send_request(req)
            .await
            .map_err(|e| KvError::Protocol(format!("{path}: {e}")))
    }

    /// One request, its whole JSON answer; gateway errors become [`KvError::Server`].
    pub async fn post(&mut self, path: &str, body: Value) -> Result<Value, KvError> {
        self.post_first(path, body).await
    }

    /// One request, the first JSON object of its answer (a stream answers several).
    pub async fn post_first(&mut self, path: &str, body: Value) -> Result<Value, KvError> {
        let resp = self.send(path, &body).await?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| KvError::Protocol(e.to_string()))?
            .to_bytes();
        let first = serde_json::Deserializer::from_slice(&bytes)
            .into_iter::<Value>()
            .next();
        let value: Value = match first {
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                return Err(KvError::Protocol(format!(
                    "{path}: HTTP {status}, not JSON: {e}"
                )))
            }
            None => {
                return Err(KvError::Protocol(format!(
                    "{path}: HTTP {status}, empty answer"
                )))
            }
        };
        if !status.is_success() || value.get("error").is_some() {
            let message = value
                .get("message")
                .or_else(|| value.get("error"))
                .and_then(Value::as_str)
                .unwrap_or("error")
                .to_string();
            return Err(KvError::Server {
                command: path.to_string(),
                message: format!("HTTP {status}: {message}"),
            });
        }
        Ok(value)
    }

    /// Every `key, value` under `prefix`.
    pub async fn list(&mut self, prefix: &str) -> Result<Vec<(String, String)>, KvError> {
        let reply = self
            .post(
                "/v3/kv/range",
                json!({ "key": b64(prefix), "range_end": b64_bytes(&prefix_end(prefix)) }),
            )
            .await?;
        let mut out = Vec::new();
        for kv in reply
            .get("kvs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = decode_field(kv, "key")?;
            let value = decode_field(kv, "value")?;
            out.push((key, value));
        }
        out.sort();
        Ok(out)
    }

    /// Puts and deletes in one transaction (several when more than [`MAX_TXN_OPS`]).
    pub async fn apply(
        &mut self,
        puts: &[(String, String)],
        deletes: &[String],
    ) -> Result<(), KvError> {
        let ops: Vec<Value> = puts
            .iter()
            .map(|(k, v)| json!({ "request_put": { "key": b64(k), "value": b64(v) } }))
            .chain(
                deletes
                    .iter()
                    .map(|k| json!({ "request_delete_range": { "key": b64(k) } })),
            )
            .collect();
        for chunk in ops.chunks(MAX_TXN_OPS) {
            self.post("/v3/kv/txn", json!({ "success": chunk })).await?;
        }
        Ok(())
    }
}

/// A watch on every key under a prefix, on its own connection.
pub struct EtcdWatch {
    body: Incoming,
    buf: Vec<u8>,
}

impl EtcdWatch {
    pub async fn start(
        cfg: &KvProvider,
        token: Option<String>,
        prefix: &str,
    ) -> Result<EtcdWatch, KvError> {
        let mut conn = EtcdConn::open(cfg, token).await?;
        let body = json!({ "create_request": {
            "key": b64(prefix),
            "range_end": b64_bytes(&prefix_end(prefix)),
        }});
        let resp = conn.send("/v3/watch", &body).await?;
        if !resp.status().is_success() {
            return Err(KvError::Server {
                command: "/v3/watch".into(),
                message: format!("HTTP {}", resp.status()),
            });
        }
        let mut watch = EtcdWatch {
            body: resp.into_body(),
            buf: Vec::new(),
        };
        // The first message confirms the watch ("created").
        watch.next_message().await?;
        Ok(watch)
    }

    /// Waits for the next batch of events. Cancel-safe.
    pub async fn changed(&mut self) -> Result<(), KvError> {
        loop {
            let msg = self.next_message().await?;
            let result = msg.get("result").unwrap_or(&msg);
            if result.get("canceled").and_then(Value::as_bool) == Some(true) {
                return Err(KvError::Server {
                    command: "/v3/watch".into(),
                    message: format!("watch canceled: {result}"),
                });
            }
            if result
                .get("events")
                .and_then(Value::as_array)
                .is_some_and(|e| !e.is_empty())
            {
                return Ok(());
            }
        }
    }

    async fn next_message(&mut self) -> Result<Value, KvError> {
        loop {
            let mut stream = serde_json::Deserializer::from_slice(&self.buf).into_iter::<Value>();
            match stream.next() {
                Some(Ok(v)) => {
                    let used = stream.byte_offset();
                    self.buf.drain(..used);
                    if let Some(e) = v.get("error") {
                        return Err(KvError::Server {
                            command: "/v3/watch".into(),
                            message: e.to_string(),
                        });
                    }
                    return Ok(v);
                }
                Some(Err(e)) if !e.is_eof() => {
                    return Err(KvError::Protocol(format!("watch stream: {e}")))
                }
                _ => {}
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Err(KvError::Protocol(format!("watch stream: {e}"))),
                None => return Err(KvError::Closed),
            }
        }
    }
}

impl EtcdConn {
    pub fn token(&self) -> Option<String> {
        self.token.clone()
    }
}

async fn handshake(cfg: &KvProvider) -> Result<(SendRequest<Full<Bytes>>, String), KvError> {
    let stream: Stream = connect_any(&cfg.endpoints, cfg.tls.as_ref()).await?;
    let host = cfg.endpoints.first().cloned().unwrap_or_default();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| KvError::Protocol(format!("HTTP handshake: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "etcd connection ended");
        }
    });
    Ok((sender, host))
}

/// The end of a prefix range: the prefix with its last byte incremented.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

pub(crate) fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

pub(crate) fn b64_bytes(b: &[u8]) -> String {
    B64.encode(b)
}

fn decode_field(kv: &Value, field: &str) -> Result<String, KvError> {
    let Some(text) = kv.get(field).and_then(Value::as_str) else {
        return Ok(String::new()); // proto3 JSON omits empty values
    };
    let bytes = B64
        .decode(text)
        .map_err(|e| KvError::Protocol(format!("{field} is not base64: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// An int64 that proto3 JSON writes as a string.
pub(crate) fn int_field(v: &Value, field: &str) -> Option<i64> {
    match v.get(field)? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ranges() {
        assert_eq!(prefix_end("traefik/"), b"traefik0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
        assert_eq!(int_field(&json!({"r": "42"}), "r"), Some(42));
    }
}

//! HTTP/1.1 reverse proxying of one downstream connection: read a head, route it, forward it
//! over a pooled upstream connection, stream the body both ways, repeat while kept alive.

mod body;
mod internal;
mod io;
mod ping;
mod prefixed;
mod redirect;
pub(crate) mod splice;
mod tunnel;

use crate::accesslog::{self, Observed};
use crate::http::request::{parse_request, Framing, HeaderRef, Limits, ParseStatus, RequestHead};
use crate::http::response::{parse_response, ResponseHead};
use crate::http::rewrite::{
    error_response, write_request_head, write_response_head, write_response_head_with,
    ForwardContext, ResponseConnection,
};
use crate::snapshot::Pick;
use crate::worker::{ActiveGuard, WorkerCtx, REPLY_BUF};
use body::{pump, BodyState, PumpError};
pub(crate) use io::with_timeout;
pub(crate) use io::IdleClock;
use io::{read_append, read_append_at_most, write_from, write_range};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Split};
use monoio::net::TcpStream;
pub use prefixed::Prefixed;
use ringway_shared::config::static_config::EntryPoint;
use ringway_shared::rule::{HeaderSource, RequestView};
use ringway_shared::stats;
use ringway_shared::table::{
    AcmeHttp, CompiledService, MiddlewareSpec, RedirectSpec, RetrySpec, ServerSpec, TcpTls,
};
use ringway_shared::tcp_rule::TcpRequest;
pub use splice::PipePool;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
pub(crate) use tunnel::relay as tunnel_relay;

/// Initial capacity of a connection's read buffer (what an idle keep-alive connection holds).
const READ_BUF: usize = 8 * 1024;
/// Smallest read we issue.
const MIN_READ: usize = 4 * 1024;

/// What the client's request says about its connection.
#[derive(Debug, Clone, Copy)]
struct ClientConn {
    http10: bool,
    keep_alive: bool,
}

/// Where a failed exchange went wrong, to choose the status and whether to retry.
#[derive(Debug)]
enum Failure {
    /// The upstream could not be reached, broke, or answered garbage: 502.
    Upstream,
    /// The upstream did not answer in time: 504.
    Timeout,
    /// A pooled connection turned out to be closed before any response byte: retry on a
    /// fresh connection if the request can be replayed.
    Stale,
    /// The client broke or sent an invalid body: answer `status` if nothing was sent yet.
    Client(u16),
}

/// A downstream connection: a plain TCP stream, or TLS over one.
pub trait Downstream: AsyncReadRent + AsyncWriteRent + Split {
    /// The plain socket, when body bytes can be spliced to and from it directly.
    fn plain(&self) -> Option<&TcpStream>;
    fn is_tls(&self) -> bool;
}

impl Downstream for TcpStream {
    fn plain(&self) -> Option<&TcpStream> {
        Some(self)
    }

    fn is_tls(&self) -> bool {
        false
    }
}

impl Downstream for monoio_rustls::ServerTlsStream<Prefixed> {
    fn plain(&self) -> Option<&TcpStream> {
        None
    }

    fn is_tls(&self) -> bool {
        true
    }
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Serves one accepted connection until it closes, as Traefik dispatches an entry point:
/// TCP routers first (a lone plain `HostSNI(`*`)` router takes the connection before the
/// client speaks; TLS routers match the ClientHello), then HTTP — over TLS when the
/// connection starts with a ClientHello, plain otherwise.
pub async fn serve_connection(
    mut client: TcpStream,
    peer: SocketAddr,
    ep: Rc<EntryPoint>,
    w: Rc<WorkerCtx>,
    _guard: ActiveGuard,
) {
    let snap = w.table.get();
    let table = snap.table();
    let tcp = table.tcp_entry_point(&ep.name);
    tracing::trace!(entry_point = %ep.name, tcp_routes = tcp.is_some(), generation = table.generation, "connection");
    let anyone = TcpRequest {
        sni: None,
        alpn: &[],
        client_ip: peer.ip(),
    };
    // Server-first protocols (SMTP, MySQL) need the connection forwarded before any byte.
    if let Some(route) = tcp.and_then(|t| t.immediate()) {
        if !table.has_http_routes(&ep.name) && route.rule.matches(&anyone) {
            let server = snap.pick_tcp_server(route.service);
            drop(snap);
            if let Some(addr) = server {
                Box::pin(crate::tcp::forward_plain(client, Vec::new(), addr, &ep, &w)).await;
            }
            return;
        }
    }
    drop(snap);

    let buf = Vec::with_capacity(READ_BUF);
    let Some((Ok(n), mut rbuf)) =
        with_timeout(ep.read_timeout, read_append(&mut client, buf, READ_BUF)).await
    else {
        return;
    };
    if n == 0 {
        return;
    }
    let snap = w.table.get();
    let tcp = snap.table().tcp_entry_point(&ep.name);
    if rbuf.first() == Some(&TLS_HANDSHAKE) {
        let tcp_tls = tcp.filter(|t| t.has_tls_routes());
        // The ClientHello is read whole when TCP routers match on it or routers chose TLS
        // options for their hosts.
        let hello = if tcp_tls.is_some() || snap.tls().by_sni() {
            let Some((hello, b)) = read_client_hello(&mut client, rbuf, &ep).await else {
                return;
            };
            rbuf = b;
            hello
        } else {
            None
        };
        let sni = hello.as_ref().and_then(|h| h.sni.as_deref());
        // An ACME tls-alpn-01 validation is answered here, never routed to a TCP server.
        let acme = hello.as_ref().is_some_and(|h| {
            h.alpn
                .iter()
                .any(|p| p.as_str() == crate::tls::ACME_TLS_ALPN)
        });
        if let (Some(tcp), Some(hello), false) = (tcp_tls, &hello, acme) {
            let alpn: Vec<&str> = hello.alpn.iter().map(String::as_str).collect();
            let req = TcpRequest {
                sni,
                alpn: &alpn,
                client_ip: peer.ip(),
            };
            if let Some(route) = tcp.find_tls(&req) {
                let (mode, server) = (route.tls, snap.pick_tcp_server(route.service));
                let acceptor = snap.tls().for_sni(sni).clone();
                drop(snap);
                let Some(addr) = server else { return };
                if mode == TcpTls::Passthrough {
                    Box::pin(crate::tcp::forward_plain(client, rbuf, addr, &ep, &w)).await;
                } else if let Some(Ok(tls)) = Box::pin(with_timeout(
                    ep.read_timeout,
                    acceptor.accept(Prefixed::new(rbuf, client)),
                ))
                .await
                {
                    Box::pin(crate::tcp::forward_stream(tls, addr, &ep, &w)).await;
                }
                return;
            }
        }
        let acceptor = snap.tls().for_sni(sni).clone();
        drop(snap);
        let io = Prefixed::new(rbuf, client);
        match Box::pin(with_timeout(ep.read_timeout, acceptor.accept(io))).await {
            Some(Ok(tls)) => {
                Box::pin(serve_http(tls, peer, ep, w, Vec::with_capacity(READ_BUF))).await
            }
            Some(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            None => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    } else {
        if let Some(route) = tcp.and_then(|t| t.find_plain(&anyone)) {
            let server = snap.pick_tcp_server(route.service);
            drop(snap);
            if let Some(addr) = server {
                Box::pin(crate::tcp::forward_plain(client, rbuf, addr, &ep, &w)).await;
            }
            return;
        }
        drop(snap);
        serve_http(client, peer, ep, w, rbuf).await;
    }
}

/// Reads until `rbuf` holds the whole ClientHello. `None`: the client closed or timed out;
/// a hello that does not parse (or is too long) gives `Some((None, bytes))` and is left to
/// rustls to refuse.
async fn read_client_hello(
    client: &mut TcpStream,
    mut rbuf: Vec<u8>,
    ep: &EntryPoint,
) -> Option<(Option<crate::tcp::client_hello::Hello>, Vec<u8>)> {
    use crate::tcp::client_hello::{parse, MAX_HELLO};
    loop {
        match parse(&rbuf) {
            Ok(Some(h)) => return Some((Some(h), rbuf)),
            Err(_) => return Some((None, rbuf)),
            Ok(None) if rbuf.len() > MAX_HELLO + 1024 => return Some((None, rbuf)),
            Ok(None) => {
                let (n, b) =
                    with_timeout(ep.read_timeout, read_append(client, rbuf, READ_BUF)).await?;
                rbuf = b;
                if n.ok()? == 0 {
                    return None;
                }
            }
        }
    }
}

/// Serves HTTP/1.1 requests on a connection; `rbuf` holds bytes already read.
async fn serve_http<C: Downstream>(
    mut client: C,
    peer: SocketAddr,
    ep: Rc<EntryPoint>,
    w: Rc<WorkerCtx>,
    mut rbuf: Vec<u8>,
) {
    let limits = Limits::default();
    let mut head = RequestHead::new();
    let mut first = true;
    loop {
        match read_head(&mut client, &mut rbuf, &mut head, &limits, &ep, &w, first).await {
            HeadRead::Ready => {}
            HeadRead::Closed => return,
            HeadRead::Bad(status) => {
                let (_, _) = client.write_all(error_response(status, true)).await;
                return;
            }
        }
        first = false;
        // Boxed: an idle keep-alive connection's task holds only what awaits its next
        // request, not the state of forwarding one (a Box per request instead).
        let keep = Box::pin(handle_request(&mut client, peer, &mut rbuf, &head, &ep, &w)).await;
        if !keep || w.shutdown.is_fired() {
            return;
        }
    }
}

enum HeadRead {
    Ready,
    Closed,
    Bad(u16),
}

/// Reads until `rbuf` starts with a complete request head. The wait for the first byte is
/// bounded by the idle timeout (the read timeout for a new connection) and interrupted by a
/// drain; the rest of the head by the read timeout.
async fn read_head<C: Downstream>(
    client: &mut C,
    rbuf: &mut Vec<u8>,
    head: &mut RequestHead,
    limits: &Limits,
    ep: &EntryPoint,
    w: &WorkerCtx,
    first: bool,
) -> HeadRead {
    let mut deadline: Option<Instant> = None;
    loop {
        if !rbuf.is_empty() {
            match parse_request(rbuf, limits, head) {
                Ok(ParseStatus::Complete) => return HeadRead::Ready,
                Ok(ParseStatus::Partial) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "bad request");
                    return HeadRead::Bad(e.status());
                }
            }
        }
        let idle = rbuf.is_empty();
        if idle && w.shutdown.is_fired() {
            return HeadRead::Closed;
        }
        let limit = if idle {
            if first {
                ep.read_timeout
            } else {
                ep.idle_timeout
            }
        } else {
            let d = *deadline.get_or_insert_with(|| Instant::now() + ep.read_timeout);
            if ep.read_timeout.is_zero() {
                Duration::ZERO
            } else {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return HeadRead::Closed;
                }
                left
            }
        };
        let buf = std::mem::take(rbuf);
        let spare = (limits.max_head + 1)
            .saturating_sub(buf.len())
            .clamp(1, MIN_READ.max(READ_BUF));
        let read = with_timeout(limit, read_append(client, buf, spare));
        let outcome = if idle {
            let mut stop = std::pin::pin!(w.shutdown.wait());
            let mut read = std::pin::pin!(read);
            monoio::select! {
                _ = &mut stop => None,
                r = &mut read => Some(r),
            }
        } else {
            Some(read.await)
        };
        let Some(Some((res, buf))) = outcome else {
            // Drain, or timeout: a slow client is disconnected.
            return HeadRead::Closed;
        };
        *rbuf = buf;
        match res {
            Ok(0) | Err(_) => return HeadRead::Closed,
            Ok(_) => {}
        }
    }
}

/// Header lookup over a parsed head in its buffer, for rule matching.
struct HeadHeaders<'a> {
    buf: &'a [u8],
    headers: &'a [HeaderRef],
}

impl HeaderSource for HeadHeaders<'_> {
    fn any_value(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.headers.iter().any(|h| {
            self.buf
                .get(h.name.clone())
                .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()))
                && self.buf.get(h.value.clone()).is_some_and(&mut *f)
        })
    }
}

fn slice_str(buf: &[u8], r: Option<std::ops::Range<usize>>) -> &str {
    r.and_then(|r| buf.get(r))
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("")
}

/// Handles the request at the start of `rbuf`; returns whether the connection stays open.
/// With the access log on, what the request was and what became of it is logged.
async fn handle_request<C: Downstream>(
    client: &mut C,
    peer: SocketAddr,
    rbuf: &mut Vec<u8>,
    head: &RequestHead,
    ep: &EntryPoint,
    w: &Rc<WorkerCtx>,
) -> bool {
    let log = w.access_log.as_ref();
    if log.is_none() && w.metrics.is_none() {
        let mut obs = Observed::default();
        return route_request(client, peer, rbuf, head, ep, w, &mut obs).await;
    }
    let start = std::time::SystemTime::now();
    let t0 = Instant::now();
    let req = log.map(|log| accesslog::Request::capture(head, rbuf, log.config().logs_headers()));
    let method = stats::method_name(head.method(rbuf));
    let request_bytes = head.head_len as u64
        + match head.framing {
            Framing::Length(n) => n,
            _ => 0,
        };
    let mut obs = Observed {
        enabled: true,
        ..Observed::default()
    };
    let keep = route_request(client, peer, rbuf, head, ep, w, &mut obs).await;
    if obs.internal {
        return keep;
    }
    let duration = t0.elapsed();
    if let (Some(m), true) = (&w.metrics, obs.status != 0) {
        m.borrow_mut().record(&stats::Observation {
            entry_point: &ep.name,
            router: obs.router(),
            service: obs.service(),
            method,
            websocket: obs.status == 101,
            code: obs.status,
            duration,
            request_bytes,
            response_bytes: obs.size,
            retries: obs.retries,
        });
    }
    if let (Some(log), Some(req)) = (log, req) {
        log.log(&req.entry(start, duration, peer, client.is_tls(), ep, &obs));
    }
    keep
}

/// The first line's status of a complete response.
fn status_of(bytes: &[u8]) -> u16 {
    bytes
        .get(9..12)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[allow(clippy::too_many_arguments)]
async fn route_request<C: Downstream>(
    client: &mut C,
    peer: SocketAddr,
    rbuf: &mut Vec<u8>,
    head: &RequestHead,
    ep: &EntryPoint,
    w: &Rc<WorkerCtx>,
    obs: &mut Observed,
) -> bool {
    let has_body = !matches!(head.framing, Framing::None | Framing::Length(0));
    if let Some(ping) = &ep.ping {
        if slice_str(rbuf, Some(head.path.clone())) == "/ping" {
            let terminating = crate::shutdown::terminating() || w.shutdown.is_fired();
            let close = has_body || !head.keep_alive || terminating;
            let bytes = ping::response(
                head.method(rbuf),
                terminating,
                ping.terminating_status,
                close,
            );
            obs.internal = true;
            return respond_bytes(client, rbuf, head, bytes, has_body || close).await;
        }
    }
    let snap = w.table.get();
    // ACME http-01 comes first, before the entry point's redirection (Traefik's rule).
    if let Some(acme) = snap.table().acme_http().filter(|a| a.serves(&ep.name)) {
        let path = slice_str(rbuf, Some(head.path.clone()));
        if let Some(token) = path.strip_prefix(AcmeHttp::PREFIX) {
            obs.internal = true;
            let Some(key_authorization) = acme.answer(token) else {
                return respond_local(client, rbuf, head, 404, has_body).await;
            };
            let close = if has_body || !head.keep_alive {
                "Connection: close\r\n"
            } else {
                ""
            };
            let mut bytes = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{close}\r\n",
                key_authorization.len()
            )
            .into_bytes();
            if !head.is_head(rbuf) {
                bytes.extend_from_slice(key_authorization.as_bytes());
            }
            return respond_bytes(client, rbuf, head, bytes, has_body).await;
        }
    }
    if let Some(r) = &ep.redirect {
        let spec = RedirectSpec {
            scheme: r.scheme.clone(),
            port: Some(r.port),
            permanent: r.permanent,
        };
        if let Some(bytes) = redirect::response(rbuf, head, &spec, client.is_tls()) {
            obs.status = status_of(&bytes);
            return respond_bytes(client, rbuf, head, bytes, has_body).await;
        }
    }
    let (route, method_is_head) = {
        let buf = &rbuf[..];
        let headers = HeadHeaders {
            buf,
            headers: &head.headers,
        };
        let view = RequestView {
            method: slice_str(buf, Some(head.method.clone())),
            host: slice_str(buf, head.host.clone()),
            path: slice_str(buf, Some(head.path.clone())),
            query: slice_str(buf, head.query.clone()),
            headers: &headers,
            client_ip: peer.ip(),
        };
        let route = snap
            .table()
            .entry_point(&ep.name)
            .and_then(|e| e.find(&view, client.is_tls()))
            .and_then(|i| Some((i, snap.table().router(i)?)));
        (route, head.is_head(buf))
    };
    let Some((index, router)) = route else {
        obs.status = 404;
        return respond_local(client, rbuf, head, 404, has_body).await;
    };
    if obs.enabled {
        // The names are read from the table when logged: no copy per request.
        obs.route = Some((snap.clone(), index));
    }
    let mut retry = None;
    for m in router.middlewares.iter() {
        match m {
            MiddlewareSpec::RedirectScheme(spec) => {
                if let Some(bytes) = redirect::response(rbuf, head, spec, client.is_tls()) {
                    obs.status = status_of(&bytes);
                    return respond_bytes(client, rbuf, head, bytes, has_body).await;
                }
            }
            MiddlewareSpec::Retry(spec) => retry = Some(*spec),
        }
    }
    if let Some(CompiledService::Internal { kind, .. }) = snap.table().service(router.service) {
        // Not counted in metrics nor logged (Traefik's `addInternals` is off by default).
        obs.internal = true;
        let terminating = crate::shutdown::terminating() || w.shutdown.is_fired();
        let close = has_body || !head.keep_alive;
        let answer = internal::response(
            *kind,
            rbuf,
            head,
            w.api_socket.as_deref(),
            terminating,
            close,
        )
        .await;
        return match answer {
            Ok(bytes) => respond_bytes(client, rbuf, head, bytes, close).await,
            Err(status) => respond_local(client, rbuf, head, status, has_body).await,
        };
    }
    let service = router.service;
    let target = Target {
        snap: &snap,
        service,
        retry,
    };
    let Some(first) = target.pick() else {
        obs.status = 503;
        return respond_local(client, rbuf, head, 503, has_body).await;
    };
    // `snap` lives until the response is relayed: the request finishes on the table it
    // started with, whatever is published meanwhile.
    forward(
        client,
        peer,
        rbuf,
        head,
        ep,
        w,
        target,
        first,
        method_is_head,
        obs,
    )
    .await
}

/// Where a request goes: the service (servers are picked from it, again on a retry) and the
/// router's retry middleware, if any.
struct Target<'a> {
    snap: &'a crate::snapshot::Snapshot,
    service: ringway_shared::table::ServiceId,
    retry: Option<RetrySpec>,
}

impl<'a> Target<'a> {
    fn pick(&self) -> Option<(&'a ServerSpec, bool)> {
        self.pick_except(&[])
    }

    /// A server for a retry: one that has not failed this request, if any is up.
    fn pick_except(&self, tried: &[SocketAddr]) -> Option<(&'a ServerSpec, bool)> {
        match self.snap.pick_server_except(self.service, tried) {
            Pick::Server(s, p) => Some((s, p)),
            Pick::NoServer => None,
        }
    }
}

/// Methods whose repetition has no other effect than the first (RFC 9110, 9.2.2).
fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE"
    )
}

/// Answers a request with `bytes` (a complete response). A request with a body closes the
/// connection, since its body is not read.
async fn respond_bytes<C: Downstream, B: monoio::buf::IoBuf>(
    client: &mut C,
    rbuf: &mut Vec<u8>,
    head: &RequestHead,
    bytes: B,
    has_body: bool,
) -> bool {
    let close = has_body || !head.keep_alive;
    let (res, _) = client.write_all(bytes).await;
    if close || res.is_err() {
        return false;
    }
    rbuf.drain(..head.head_len);
    true
}

/// Answers a request locally (404, 503). A request with a body closes the connection, since
/// its body is not read.
async fn respond_local<C: Downstream>(
    client: &mut C,
    rbuf: &mut Vec<u8>,
    head: &RequestHead,
    status: u16,
    has_body: bool,
) -> bool {
    let mut response = error_response(status, has_body || !head.keep_alive);
    if head.is_head(rbuf) {
        // The same head, without the body.
        if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            response = &response[..end + 4];
        }
    }
    respond_bytes(client, rbuf, head, response, has_body).await
}

/// Forwards one request to `server` and its response back. Returns whether the client
/// connection stays usable.
#[allow(clippy::too_many_arguments)]
async fn forward<'a, C: Downstream>(
    client: &mut C,
    peer: SocketAddr,
    rbuf: &mut Vec<u8>,
    head: &RequestHead,
    ep: &EntryPoint,
    w: &Rc<WorkerCtx>,
    target: Target<'a>,
    (mut server, pass_host): (&'a ServerSpec, bool),
    method_is_head: bool,
    obs: &mut Observed,
) -> bool {
    let base = ForwardContext {
        client_addr: peer,
        trusted: ep.trusts(peer.ip()),
        tls: client.is_tls(),
        entry_port: ep.address.port(),
        server_name: &w.server_name,
        upstream_host: None,
    };
    fn for_server<'a>(
        base: &ForwardContext<'a>,
        pass_host: bool,
        server: &'a ServerSpec,
    ) -> ForwardContext<'a> {
        ForwardContext {
            upstream_host: (!pass_host).then_some(server.authority.as_str()),
            ..*base
        }
    }
    let ctx = |server| for_server(&base, pass_host, server);
    // The rewritten head, followed by the body bytes that arrived with it.
    let mut out = w.heads.take();
    write_request_head(&mut out, rbuf, head, &ctx(server));
    // A retry to another server rewrites the head when it names the server (Host).
    let original_head =
        (target.retry.is_some() && !pass_host).then(|| rbuf[..head.head_len].to_vec());
    let idempotent = idempotent(head.method(rbuf));
    let mut req_body = BodyState::new(&head.framing);
    let inline = match req_body.feed(&rbuf[head.head_len..]) {
        Ok(n) => n,
        Err(_) => {
            w.heads.give(out);
            let (_, _) = client.write_all(error_response(400, true)).await;
            return false;
        }
    };
    out.extend_from_slice(&rbuf[head.head_len..head.head_len + inline]);
    let inline_body = match &original_head {
        Some(_) => rbuf[head.head_len..head.head_len + inline].to_vec(),
        None => Vec::new(),
    };
    let upgrade = head.upgrade;
    let client_conn = ClientConn {
        http10: head.minor_version == 0,
        keep_alive: head.keep_alive,
    };
    let expect_continue = head.expect_continue && !req_body.is_done();
    let client_keep_alive = head.keep_alive;
    rbuf.drain(..head.head_len + inline);
    // A request whose whole body is in `out` can be sent again on a fresh connection.
    let replayable = req_body.is_done();

    let mut stale = 0;
    let mut tries = 1;
    // Servers that failed this request (a retry prefers the others).
    let mut tried: Vec<SocketAddr> = Vec::new();
    // Whether the retry middleware may send the request to the next server, and after what
    // wait: `sent` says some of it may have reached the last one.
    let retry_after = |tries: u32, sent: bool| {
        let spec = target.retry?;
        let allowed = tries < spec.attempts && (!sent || (idempotent && replayable));
        allowed.then(|| {
            let factor = 1.5f64.powi(i32::try_from(tries).unwrap_or(i32::MAX) - 1);
            spec.initial_interval.mul_f64(factor.min(1e6))
        })
    };
    let outcome = loop {
        // A failure, and whether a byte of the request may have reached the server.
        let (failure, sent) = match checkout(w, server, !idempotent).await {
            Err(f) => (f, false),
            Ok((upstream, reused)) => {
                let (res, o) = exchange(
                    client,
                    upstream,
                    out,
                    rbuf,
                    &mut req_body,
                    ep,
                    w,
                    server,
                    method_is_head,
                    upgrade,
                    client_conn,
                    expect_continue,
                    reused,
                    obs,
                )
                .await;
                out = o;
                match res {
                    // A pooled connection the server had closed: the same server, a new
                    // connection. Only for idempotent requests: the server may have read it
                    // before closing.
                    Err(Failure::Stale) if replayable && idempotent && stale < 2 => {
                        stale += 1;
                        continue;
                    }
                    Err(Failure::Stale) => (Failure::Upstream, true),
                    Err(f @ (Failure::Upstream | Failure::Timeout)) => (f, true),
                    other => break other,
                }
            }
        };
        let Some(wait) = retry_after(tries, sent) else {
            break Err(failure);
        };
        tracing::debug!(server = %server.url, tries, "retrying on another server");
        tries += 1;
        monoio::time::sleep(wait).await;
        tried.push(server.addr);
        let Some((next, _)) = target.pick_except(&tried) else {
            break Err(failure);
        };
        server = next;
        if let Some(orig) = &original_head {
            out.clear();
            write_request_head(&mut out, orig, head, &ctx(server));
            out.extend_from_slice(&inline_body);
        }
    };
    w.heads.give(out);
    if obs.enabled {
        obs.retries = tries - 1;
        obs.service_addr = Some(server.addr);
        if w.access_log.is_some() {
            obs.service_url = Some(server.url.clone());
        }
    }
    match outcome {
        Ok(keep) => keep && client_keep_alive,
        Err(f) => {
            let status = match f {
                Failure::Timeout => 504,
                Failure::Client(s) => s,
                Failure::Upstream | Failure::Stale => 502,
            };
            obs.status = status;
            tracing::debug!(server = %server.url, status, "upstream exchange failed");
            let (_, _) = client.write_all(error_response(status, true)).await;
            false
        }
    }
}

/// An idle pooled connection to `server`, or a new one.
async fn checkout(
    w: &WorkerCtx,
    server: &ServerSpec,
    verify: bool,
) -> Result<(TcpStream, bool), Failure> {
    if let Some(s) = w
        .pool
        .borrow_mut()
        .take(server.addr, Instant::now(), verify)
    {
        return Ok((s, true));
    }
    match with_timeout(w.upstream.dial, TcpStream::connect_addr(server.addr)).await {
        Some(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok((s, false))
        }
        Some(Err(e)) => {
            tracing::debug!(server = %server.url, error = %e, "connect failed");
            Err(Failure::Upstream)
        }
        None => Err(Failure::Timeout),
    }
}

/// One request/response exchange over `upstream`. `out` holds the request head and inline
/// body; it is returned for a retry. `Ok(keep)` means the response was relayed completely
/// and says whether the client connection may carry another request.
#[allow(clippy::too_many_arguments)]
async fn exchange<C: Downstream>(
    client: &mut C,
    mut upstream: TcpStream,
    out: Vec<u8>,
    rbuf: &mut Vec<u8>,
    req_body: &mut BodyState,
    ep: &EntryPoint,
    w: &WorkerCtx,
    server: &ServerSpec,
    method_is_head: bool,
    upgrade: bool,
    client_conn: ClientConn,
    expect_continue: bool,
    reused: bool,
    obs: &mut Observed,
) -> (Result<bool, Failure>, Vec<u8>) {
    let sent_at = Instant::now();
    let (res, out) = write_from(&mut upstream, out, 0).await;
    if res.is_err() {
        return (
            Err(if reused {
                Failure::Stale
            } else {
                Failure::Upstream
            }),
            out,
        );
    }
    // Without Expect, send the whole body before reading the answer.
    if !expect_continue {
        if let Err(f) = send_body(client, &mut upstream, rbuf, req_body, ep, w).await {
            return (Err(f), out);
        }
    }
    let mut ubuf = w.replies.take();
    let mut rh = ResponseHead::new();
    let mut got_any = false;
    let result = loop {
        match read_response_head(&mut upstream, ubuf, &mut rh, method_is_head, w).await {
            (Ok(()), b) => ubuf = b,
            (Err(f), b) => {
                ubuf = b;
                got_any |= !ubuf.is_empty();
                let f = match f {
                    Failure::Stale if !reused || got_any => Failure::Upstream,
                    f => f,
                };
                break Err(f);
            }
        }
        got_any = true;
        if (100..200).contains(&rh.status) && rh.status != 101 {
            // Interim response (100 Continue, 103 Early Hints): relay it, then the body.
            let mut interim = Vec::with_capacity(256);
            write_response_head(&mut interim, &ubuf, &rh, false);
            ubuf.drain(..rh.head_len);
            let (r, _) = client.write_all(interim).await;
            if r.is_err() {
                break Err(Failure::Client(400));
            }
            if rh.status == 100 && !req_body.is_done() {
                if let Err(f) = send_body(client, &mut upstream, rbuf, req_body, ep, w).await {
                    break Err(f);
                }
            }
            continue;
        }
        break Ok(());
    };
    if let Err(f) = result {
        w.replies.give(ubuf);
        return (Err(f), out);
    }
    // A final answer without reading the body we held back: the client may still send it.
    let body_unsent = !req_body.is_done();
    obs.status = rh.status;
    obs.origin_status = rh.status;
    obs.origin_duration = sent_at.elapsed();
    obs.size = match rh.framing {
        Framing::Length(n) if !method_is_head => n,
        _ => 0,
    };

    if rh.status == 101 && upgrade {
        let mut resp = Vec::with_capacity(256);
        write_response_head(&mut resp, &ubuf, &rh, false);
        resp.extend_from_slice(&ubuf[rh.head_len..]);
        w.replies.give(ubuf);
        let (r, _) = client.write_all(resp).await;
        if r.is_ok() {
            let pending = std::mem::take(rbuf);
            tunnel::relay(client, upstream, pending, ep.idle_timeout).await;
        }
        return (Ok(false), out);
    }

    let mut resp_body = BodyState::new(&rh.framing);
    let close_client = matches!(rh.framing, Framing::UntilClose)
        || body_unsent
        || !client_conn.keep_alive
        || w.shutdown.is_fired();
    let mut resp = w.heads.take();
    let connection = if close_client {
        ResponseConnection::Close
    } else if client_conn.http10 {
        ResponseConnection::KeepAlive
    } else {
        ResponseConnection::Default
    };
    write_response_head_with(&mut resp, &ubuf, &rh, connection);
    let upstream_keep_alive = rh.keep_alive;
    let inline = match resp_body.feed(&ubuf[rh.head_len..]) {
        Ok(n) => n,
        Err(_) => {
            w.heads.give(resp);
            w.replies.give(ubuf);
            return (Err(Failure::Upstream), out);
        }
    };
    let leftover = ubuf.len() - rh.head_len - inline;
    let mut clean = leftover == 0;
    // Spliced when both sides are plain sockets (the `if let` below).
    let splice_len = match resp_body {
        BodyState::Length(rem) if rem >= splice::SPLICE_MIN => Some(Some(rem)),
        BodyState::UntilClose => Some(None),
        _ => None,
    };
    let body_read = &ubuf[rh.head_len..rh.head_len + inline];
    if let (Some(len), Some(plain)) = (splice_len, client.plain()) {
        // The head and the body bytes read with it go through the pipe, ahead of the rest.
        let idle = IdleClock::new(w.upstream.idle_conn);
        let prefix = [&resp[..], body_read];
        let relayed = splice::relay(&upstream, plain, len, prefix, &w.pipes, &idle).await;
        w.heads.give(resp);
        w.replies.give(ubuf);
        if let Err(e) = relayed {
            tracing::debug!(server = %server.url, error = %e, "response body relay failed");
            return (Ok(false), out);
        }
    } else {
        // A small body goes out with the head in one send; a large one is sent from `ubuf`
        // rather than copied.
        let copy_inline = inline <= crate::worker::HEAD_BUF;
        if copy_inline {
            resp.extend_from_slice(body_read);
        }
        let (mut r, resp) = write_from(client, resp, 0).await;
        w.heads.give(resp);
        if r.is_ok() && !copy_inline {
            let (r2, b) = write_range(client, ubuf, rh.head_len, rh.head_len + inline).await;
            ubuf = b;
            r = r2;
        }
        w.replies.give(ubuf);
        if r.is_err() {
            return (Ok(false), out);
        }
        if !resp_body.is_done() {
            // The rest of the body streams through a body buffer.
            let (r, b) = pump(
                &mut upstream,
                client,
                &mut resp_body,
                w.bodies.take(),
                w.upstream.idle_conn,
            )
            .await;
            let clean_end = r.as_ref().is_ok_and(|&extra_from| extra_from == b.len());
            w.bodies.give(b);
            if let Err(e) = r {
                tracing::debug!(server = %server.url, error = %e, "response body relay failed");
                // The head is out: all we can do is close.
                return (Ok(false), out);
            }
            clean &= clean_end || matches!(rh.framing, Framing::UntilClose);
        }
    }
    if clean && upstream_keep_alive && !body_unsent && !matches!(rh.framing, Framing::UntilClose) {
        w.pool
            .borrow_mut()
            .put(server.addr, upstream, Instant::now());
    }
    (Ok(!close_client), out)
}

/// Streams the rest of the request body from the client to the upstream. Bytes that arrive
/// past the body (a pipelined request) are kept in `rbuf`.
async fn send_body<C: Downstream>(
    client: &mut C,
    upstream: &mut TcpStream,
    rbuf: &mut Vec<u8>,
    req_body: &mut BodyState,
    ep: &EntryPoint,
    w: &WorkerCtx,
) -> Result<(), Failure> {
    if req_body.is_done() {
        return Ok(());
    }
    if let (BodyState::Length(rem), Some(plain)) = (&*req_body, client.plain()) {
        let rem = *rem;
        if rem >= splice::SPLICE_MIN {
            *req_body = BodyState::Done;
            let idle = IdleClock::new(ep.read_timeout);
            return splice::relay(plain, upstream, Some(rem), [&[], &[]], &w.pipes, &idle)
                .await
                .map_err(|e| match e {
                    PumpError::Write(_) => Failure::Upstream,
                    PumpError::ReadTimeout => Failure::Client(408),
                    _ => Failure::Client(400),
                });
        }
    }
    let buf = w.bodies.take();
    let (res, buf) = pump(client, upstream, req_body, buf, ep.read_timeout).await;
    let out = match res {
        Ok(extra_from) => {
            rbuf.extend_from_slice(&buf[extra_from..]);
            Ok(())
        }
        Err(PumpError::Framing(e)) => {
            tracing::debug!(error = %e, "bad request body");
            Err(Failure::Client(400))
        }
        Err(PumpError::ReadTimeout) => Err(Failure::Client(408)),
        Err(PumpError::Truncated) | Err(PumpError::Read(_)) => Err(Failure::Client(400)),
        Err(PumpError::Write(_)) => Err(Failure::Upstream),
    };
    w.bodies.give(buf);
    out
}

/// Reads until `ubuf` starts with a complete response head. Bounded by
/// `forwardingTimeouts.responseHeaderTimeout` when set.
async fn read_response_head(
    upstream: &mut TcpStream,
    mut ubuf: Vec<u8>,
    rh: &mut ResponseHead,
    method_is_head: bool,
    w: &WorkerCtx,
) -> (Result<(), Failure>, Vec<u8>) {
    let limits = Limits::default();
    let deadline = Instant::now() + w.upstream.response_header;
    loop {
        if !ubuf.is_empty() {
            match parse_response(&ubuf, &limits, method_is_head, rh) {
                Ok(ParseStatus::Complete) => return (Ok(()), ubuf),
                Ok(ParseStatus::Partial) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "invalid response from upstream");
                    return (Err(Failure::Upstream), ubuf);
                }
            }
        }
        let limit = if w.upstream.response_header.is_zero() {
            Duration::ZERO
        } else {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (Err(Failure::Timeout), ubuf);
            }
            left
        };
        let was_empty = ubuf.is_empty();
        let Some((res, b)) = with_timeout(
            limit,
            read_append_at_most(upstream, ubuf, MIN_READ, REPLY_BUF),
        )
        .await
        else {
            return (Err(Failure::Timeout), Vec::new());
        };
        ubuf = b;
        match res {
            Ok(0) | Err(_) if was_empty => return (Err(Failure::Stale), ubuf),
            Ok(0) | Err(_) => return (Err(Failure::Upstream), ubuf),
            Ok(_) => {}
        }
    }
}

//! Scheme redirections: the `redirectScheme` middleware and
//! `entryPoints.<ep>.http.redirections.entryPoint` (the seeds' redirect-to-https).

use crate::http::request::{RequestHead, TargetForm};
use ringway_shared::table::RedirectSpec;

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" {
        443
    } else {
        80
    }
}

/// Splits a Host value into its name and port (`[::1]:8443` → `[::1]`, 8443).
fn split_host(host: &str) -> (&str, Option<u16>) {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => (
                &host[..=end],
                host[end + 1..]
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok()),
            ),
            None => (host, None),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) => (name, port.parse().ok()),
        None => (host, None),
    }
}

/// The redirect response for this request, or `None` when it already uses the target scheme
/// and port (Traefik then passes it on).
pub fn response(buf: &[u8], head: &RequestHead, spec: &RedirectSpec, tls: bool) -> Option<Vec<u8>> {
    let current_scheme = if tls { "https" } else { "http" };
    let host = head.host(buf).unwrap_or("");
    let (name, host_port) = split_host(host);
    let current_port = host_port.unwrap_or(default_port(current_scheme));
    let target_port = spec.port.unwrap_or(default_port(&spec.scheme));
    if spec.scheme == current_scheme && target_port == current_port {
        return None;
    }
    let idempotent = matches!(head.method(buf), "GET" | "HEAD");
    let status = match (spec.permanent, idempotent) {
        (true, true) => "301 Moved Permanently",
        (true, false) => "308 Permanent Redirect",
        (false, true) => "302 Found",
        (false, false) => "307 Temporary Redirect",
    };
    let mut out = Vec::with_capacity(160 + head.head_len.min(8192));
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_bytes());
    out.extend_from_slice(b"\r\nLocation: ");
    out.extend_from_slice(spec.scheme.as_bytes());
    out.extend_from_slice(b"://");
    out.extend_from_slice(name.as_bytes());
    if target_port != default_port(&spec.scheme) {
        out.extend_from_slice(format!(":{target_port}").as_bytes());
    }
    match head.target_form {
        TargetForm::Absolute => {
            let path = head.path(buf);
            out.extend_from_slice(if path.is_empty() {
                b"/"
            } else {
                path.as_bytes()
            });
            if let Some(q) = head.query(buf) {
                out.push(b'?');
                out.extend_from_slice(q.as_bytes());
            }
        }
        TargetForm::Origin => out.extend_from_slice(head.target(buf).as_bytes()),
        TargetForm::Asterisk => out.push(b'/'),
    }
    out.extend_from_slice(b"\r\nContent-Length: 0\r\n");
    if !head.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::{parse_request, Limits, ParseStatus};

    fn redirect(req: &str, spec: &RedirectSpec, tls: bool) -> Option<String> {
        let mut head = RequestHead::new();
        let st = parse_request(req.as_bytes(), &Limits::default(), &mut head).expect("parses");
        assert!(matches!(st, ParseStatus::Complete));
        response(req.as_bytes(), &head, spec, tls).map(|b| String::from_utf8(b).expect("utf8"))
    }

    fn spec(scheme: &str, port: Option<u16>, permanent: bool) -> RedirectSpec {
        RedirectSpec {
            scheme: scheme.into(),
            port,
            permanent,
        }
    }

    #[test]
    fn http_to_https_keeps_path_and_query_and_drops_the_default_port() {
        let r = redirect(
            "GET /a/b?c=d HTTP/1.1\r\nHost: example.com:80\r\n\r\n",
            &spec("https", None, true),
            false,
        )
        .expect("redirects");
        assert!(r.starts_with("HTTP/1.1 301 Moved Permanently\r\n"), "{r}");
        assert!(
            r.contains("\r\nLocation: https://example.com/a/b?c=d\r\n"),
            "{r}"
        );
    }

    #[test]
    fn status_follows_permanence_and_method() {
        let post = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
        assert!(redirect(post, &spec("https", None, true), false)
            .expect("r")
            .starts_with("HTTP/1.1 308 "));
        assert!(redirect(post, &spec("https", None, false), false)
            .expect("r")
            .starts_with("HTTP/1.1 307 "));
        let get = "GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(redirect(get, &spec("https", None, false), false)
            .expect("r")
            .starts_with("HTTP/1.1 302 "));
    }

    #[test]
    fn explicit_port_and_ipv6_hosts() {
        let r = redirect(
            "GET / HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n",
            &spec("https", Some(8443), true),
            false,
        )
        .expect("redirects");
        assert!(r.contains("Location: https://[::1]:8443/\r\n"), "{r}");
    }

    #[test]
    fn no_redirect_when_already_on_the_target() {
        let req = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
        assert!(redirect(req, &spec("https", None, true), true).is_none());
        assert!(redirect(req, &spec("https", Some(8443), true), true).is_some());
    }
}

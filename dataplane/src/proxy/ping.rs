//! `ping`: `GET`/`HEAD /ping` on the ping entry point answers `OK` from the data plane itself,
//! and the terminating status (503 by default) once shutdown has begun, so that a load balancer
//! or `ringway healthcheck` stops sending before the listeners close. Other methods: 405.

/// The whole response to a `/ping` request.
pub fn response(method: &str, terminating: bool, terminating_status: u16, close: bool) -> Vec<u8> {
    let head_only = method == "HEAD";
    let (status, extra) = match method {
        "GET" | "HEAD" if terminating => (terminating_status, ""),
        "GET" | "HEAD" => (200, ""),
        _ => (405, "Allow: GET, HEAD\r\n"),
    };
    let text = reason(status);
    let connection = if close { "Connection: close\r\n" } else { "" };
    let mut out = format!(
        "HTTP/1.1 {status} {text}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n{extra}{connection}\r\n",
        text.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(text.as_bytes());
    }
    out
}

/// Go's `http.StatusText` for the statuses ping can answer (Traefik writes it as the body).
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        204 => "No Content",
        404 => "Not Found",
        410 => "Gone",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::response;

    #[test]
    fn answers() {
        let ok = String::from_utf8(response("GET", false, 503, false)).expect("utf8");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\nOK"), "{ok}");
        assert!(ok.contains("Content-Length: 2\r\n"));
        let head = String::from_utf8(response("HEAD", false, 503, false)).expect("utf8");
        assert!(head.ends_with("\r\n\r\n") && head.contains("Content-Length: 2"));
        let down = String::from_utf8(response("GET", true, 503, true)).expect("utf8");
        assert!(
            down.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{down}"
        );
        assert!(down.contains("Connection: close\r\n"));
        assert!(down.ends_with("Service Unavailable"));
        let post = String::from_utf8(response("POST", false, 503, false)).expect("utf8");
        assert!(post.starts_with("HTTP/1.1 405 ") && post.contains("Allow: GET, HEAD\r\n"));
    }
}

//! End to end: HTTPS redirection as the seeds configure it — the entry-point shortcut
//! `entryPoints.web.http.redirections.entryPoint` and the `redirectScheme` middleware —
//! answering 301/308 or 302/307 with a Location that keeps path and query.

mod support;

use support::{free_port, lb_service, raw_request, router, Origin, Proxy};

/// Waits until ringway listens and answers `probe` with a response starting with `expect`.
fn wait_answer(p: &Proxy, probe: &[u8], expect: &str) {
    let ok = support::wait_until(support::READY_TIMEOUT, || {
        std::net::TcpStream::connect(p.addr).is_ok()
            && raw_request(p.addr, probe).starts_with(expect)
    });
    assert!(
        ok,
        "ringway never answered {expect:?}\n{}",
        p.ringway.logs()
    );
}

fn location(response: &str) -> Option<&str> {
    response.lines().find_map(|l| {
        l.strip_prefix("Location: ")
            .or_else(|| l.strip_prefix("location: "))
    })
}

#[test]
fn entry_point_redirection_sends_everything_to_the_https_entry_point() {
    let origin = Origin::start("o");
    let secure_port = free_port();
    let cfg = [
        router("app", "Host(`app.test`)", "s"),
        lb_service("s", &[&origin]),
    ]
    .concat();
    let p = Proxy::start(
        "ep-redirect",
        &cfg,
        &[
            &format!("--entrypoints.websecure.address=127.0.0.1:{secure_port}"),
            "--entrypoints.web.http.redirections.entryPoint.to=websecure",
            "--entrypoints.web.http.redirections.entryPoint.scheme=https",
        ],
    );
    wait_answer(
        &p,
        b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 301",
    );
    let r = raw_request(
        p.addr,
        format!(
            "GET /a/b?c=d&e HTTP/1.1\r\nHost: app.test:{}\r\nConnection: close\r\n\r\n",
            p.port
        )
        .as_bytes(),
    );
    assert!(
        r.starts_with("HTTP/1.1 301 Moved Permanently\r\n"),
        "{r}\n{}",
        p.ringway.logs()
    );
    assert_eq!(
        location(&r),
        Some(format!("https://app.test:{secure_port}/a/b?c=d&e").as_str()),
        "{r}"
    );
    // Non-idempotent methods keep their method and body: 308.
    let r = raw_request(
        p.addr,
        b"POST /form HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    );
    assert!(r.starts_with("HTTP/1.1 308 "), "{r}");
    // Every host is redirected, and nothing reaches the origin.
    let r = raw_request(
        p.addr,
        b"GET / HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 301 "), "{r}");
    assert!(
        origin.requests().is_empty(),
        "the origin must not see redirected requests"
    );
}

#[test]
fn redirect_scheme_middleware_on_a_router() {
    let origin = Origin::start("o");
    let cfg = format!(
        "{}middlewares = [\"to-https\"]\n{}{}{}\
         [http.middlewares.to-https.redirectScheme]\nscheme = \"https\"\npermanent = true\n\
         [http.middlewares.to-https-temp.redirectScheme]\nscheme = \"https\"\nport = \"8443\"\n",
        router("secured", "Host(`secure.test`)", "s"),
        router("temp", "Host(`temp.test`)", "s"),
        "middlewares = [\"to-https-temp@file\"]\n",
        lb_service("s", &[&origin]),
    );
    let p = Proxy::start("mw-redirect", &cfg, &[]);
    wait_answer(
        &p,
        b"GET / HTTP/1.1\r\nHost: secure.test\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 301",
    );
    let r = raw_request(
        p.addr,
        b"GET /p?q=1 HTTP/1.1\r\nHost: secure.test\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 301 "), "{r}\n{}", p.ringway.logs());
    assert_eq!(location(&r), Some("https://secure.test/p?q=1"), "{r}");
    let r = raw_request(
        p.addr,
        b"GET /t HTTP/1.1\r\nHost: temp.test\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 302 Found\r\n"), "{r}");
    assert_eq!(location(&r), Some("https://temp.test:8443/t"), "{r}");
    assert!(origin.requests().is_empty());
}

//! End to end: the access log (`--accesslog.*`) in Traefik's common format to a file and to
//! standard output, JSON with field and header modes, the status/minDuration filters; and
//! `--log.format=json` with one line per configuration change carrying its generation.

mod support;

use std::time::Duration;
use support::{lb_service, raw_request, router, wait_for, Origin, Proxy, TestDir};

fn app(origin: &Origin) -> String {
    format!(
        "{}{}",
        router("app", "Host(`app.test`)", "app"),
        lb_service("app", &[origin])
    )
}

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn common_format_lines_name_the_router_and_service_and_go_to_the_file() {
    let origin = Origin::start("o");
    let dir = TestDir::new("accesslog-file");
    let file = dir.join("logs/access.log");
    let process_log = dir.join("logs/ringway.log");
    std::fs::create_dir_all(dir.join("logs")).expect("logs dir");
    let p = Proxy::start(
        "accesslog-common",
        &app(&origin),
        &[
            &format!("--accesslog.filepath={}", file.display()),
            &format!("--log.filepath={}", process_log.display()),
        ],
    );
    p.wait_routed("app.test", "/", "o");
    let reply = raw_request(
        p.addr,
        b"GET /hello?x=1 HTTP/1.1\r\nHost: app.test\r\nUser-Agent: ringway-test/1\r\n\
          Referer: http://from.test/\r\nConnection: close\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let missing = raw_request(
        p.addr,
        b"GET /nowhere HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n",
    );
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let got = wait_for(Duration::from_secs(5), || {
        let l = lines(&file);
        let hello = l.iter().find(|l| l.contains("/hello"))?.clone();
        let nowhere = l.iter().find(|l| l.contains("/nowhere"))?.clone();
        Some((hello, nowhere))
    });
    let (hello, nowhere) = got.unwrap_or_else(|| panic!("no access log lines\n{:?}", lines(&file)));
    // 127.0.0.1 - - [22/Nov/2026:15:04:05 +0000] "GET /hello?x=1 HTTP/1.1" 200 N
    //   "http://from.test/" "ringway-test/1" N "app@file" "http://127.0.0.1:P" Nms
    assert!(hello.starts_with("127.0.0.1 - - ["), "{hello}");
    assert!(
        hello.contains(" +0000] \"GET /hello?x=1 HTTP/1.1\" 200 "),
        "{hello}"
    );
    assert!(
        hello.contains("\"http://from.test/\" \"ringway-test/1\" "),
        "{hello}"
    );
    assert!(
        hello.contains(&format!("\"app@file\" \"{}\" ", origin.url())),
        "{hello}"
    );
    assert!(hello.ends_with("ms"), "{hello}");
    let size: u64 = hello
        .split("\" 200 ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("size");
    assert!(size > 0, "{hello}");
    // No router: 404 with "-" for router and service, and "-" for the missing headers.
    assert!(
        nowhere.contains("\"GET /nowhere HTTP/1.1\" 404 0 \"-\" \"-\" "),
        "{nowhere}"
    );
    assert!(
        nowhere.contains(" - - ") && nowhere.ends_with("ms"),
        "{nowhere}"
    );

    // logrotate: the file is moved away, SIGUSR1 reopens it, new lines go to a new file.
    let rotated = dir.join("logs/access.log.1");
    std::fs::rename(&file, &rotated).expect("rotate");
    p.ringway.signal(libc::SIGUSR1);
    let after = wait_for(Duration::from_secs(5), || {
        let reply = raw_request(
            p.addr,
            b"GET /rotated HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
        );
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        std::thread::sleep(Duration::from_millis(150));
        lines(&file)
            .iter()
            .any(|l| l.contains("/rotated"))
            .then_some(())
    });
    assert!(
        after.is_some(),
        "no new file after SIGUSR1: {:?}",
        lines(&rotated)
    );
    assert!(lines(&rotated).iter().any(|l| l.contains("/hello")));

    // The process log (both processes write it) is reopened by the same signal: a change
    // made after the rotation is logged by the control plane and the data plane in the new
    // file.
    let rotated_log = dir.join("logs/ringway.log.1");
    std::fs::rename(&process_log, &rotated_log).expect("rotate the process log");
    p.ringway.signal(libc::SIGUSR1);
    std::thread::sleep(Duration::from_millis(300));
    p.reconfigure(&format!(
        "{}{}",
        app(&origin),
        router("more", "Host(`more.test`)", "app")
    ));
    let reopened = wait_for(Duration::from_secs(10), || {
        let new = lines(&process_log);
        let cp = new.iter().any(|l| l.contains("pushing configuration"));
        let dp = new.iter().any(|l| l.contains("configuration applied"));
        (cp && dp).then_some(())
    });
    assert!(
        reopened.is_some(),
        "new log file: {:?}\nold one ends with: {:?}",
        lines(&process_log),
        lines(&rotated_log).iter().rev().take(5).collect::<Vec<_>>()
    );
    assert!(lines(&rotated_log)
        .iter()
        .any(|l| l.contains("configuration applied")));

    // A request just before SIGTERM is written before the process exits.
    let last = raw_request(
        p.addr,
        b"GET /last HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
    );
    assert!(last.starts_with("HTTP/1.1 200"), "{last}");
    p.ringway.signal(libc::SIGTERM);
    let status = p.ringway.wait_exit(Duration::from_secs(15)).expect("exits");
    assert!(status.success(), "{status:?}");
    assert!(
        lines(&file)
            .iter()
            .any(|l| l.contains("\"GET /last HTTP/1.1\" 200")),
        "the last line was lost: {:?}",
        lines(&file)
    );
}

#[test]
fn json_lines_filters_and_header_modes() {
    let origin = Origin::start("o");
    let dir = TestDir::new("accesslog-json");
    let file = dir.join("access.json");
    let p = Proxy::start(
        "accesslog-json",
        &app(&origin),
        &[
            &format!("--accesslog.filepath={}", file.display()),
            "--accesslog.format=json",
            "--accesslog.filters.statuscodes=404,500-599",
            "--accesslog.filters.minduration=150ms",
            "--accesslog.fields.names.ClientHost=drop",
            "--accesslog.fields.headers.names.X-Trace=keep",
            "--accesslog.fields.headers.names.Authorization=redact",
        ],
    );
    p.wait_routed("app.test", "/", "o");
    let ok = raw_request(
        p.addr,
        b"GET /fast HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
    );
    assert!(ok.starts_with("HTTP/1.1 200"));
    let slow = raw_request(
        p.addr,
        b"GET /delay/300 HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
    );
    assert!(slow.starts_with("HTTP/1.1 200"), "{slow}");
    let err = raw_request(
        p.addr,
        b"GET /status/503 HTTP/1.1\r\nHost: app.test\r\nX-Trace: t-42\r\n\
          Authorization: Bearer secret\r\nX-Other: no\r\nConnection: close\r\n\r\n",
    );
    assert!(err.starts_with("HTTP/1.1 503"), "{err}");
    // (404s of the readiness probe on `/` before the router was live are kept too.)
    let ours = || -> Vec<serde_json::Value> {
        lines(&file)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .filter(|e: &serde_json::Value| e["RequestPath"] != "/")
            .collect()
    };
    wait_for(Duration::from_secs(5), || (ours().len() >= 2).then_some(()))
        .unwrap_or_else(|| panic!("expected 2 lines: {:?}", lines(&file)));
    std::thread::sleep(Duration::from_millis(300));
    let entries = ours();
    assert_eq!(
        entries.len(),
        2,
        "only the slow and the 503 request: {entries:?}"
    );
    let slow = entries
        .iter()
        .find(|e| e["RequestPath"] == "/delay/300")
        .expect("slow request kept by minDuration");
    assert!(
        slow["Duration"].as_u64().expect("ns") >= 300_000_000,
        "{slow}"
    );
    assert_eq!(slow["DownstreamStatus"], 200);
    let e = entries
        .iter()
        .find(|e| e["RequestPath"] == "/status/503")
        .expect("503 kept by statusCodes");
    assert_eq!(e["DownstreamStatus"], 503);
    assert_eq!(e["OriginStatus"], 503);
    assert_eq!(e["RouterName"], "app@file");
    assert_eq!(e["ServiceName"], "app@file");
    assert_eq!(e["ServiceURL"], origin.url());
    assert_eq!(e["RequestHost"], "app.test");
    assert_eq!(e["RequestMethod"], "GET");
    assert_eq!(e["RequestProtocol"], "HTTP/1.1");
    assert_eq!(e["RequestScheme"], "http");
    assert_eq!(e["entryPointName"], "web");
    assert_eq!(e["RetryAttempts"], 0);
    assert!(e.get("ClientHost").is_none(), "dropped: {e}");
    assert!(e["ClientAddr"]
        .as_str()
        .is_some_and(|a| a.starts_with("127.0.0.1:")));
    assert_eq!(e["request_X-Trace"], "t-42");
    assert_eq!(e["request_Authorization"], "REDACTED");
    assert!(
        e.get("request_X-Other").is_none(),
        "headers drop by default: {e}"
    );
}

#[test]
fn access_log_to_stdout_and_json_process_logs_with_reload_lines() {
    let origin = Origin::start("o");
    let p = Proxy::start(
        "accesslog-stdout",
        &app(&origin),
        &["--accesslog=true", "--log.format=json"],
    );
    p.wait_routed("app.test", "/", "o");
    let logged = wait_for(Duration::from_secs(5), || {
        p.ringway
            .stdout()
            .lines()
            .find(|l| l.contains("\"GET / HTTP/1.1\" 200") && l.contains("\"app@file\""))
            .map(str::to_string)
    });
    assert!(
        logged.is_some(),
        "no access log on stdout\n{}",
        p.ringway.logs()
    );
    // A configuration change: one JSON line with its generation and what changed.
    p.reconfigure(&format!(
        "{}{}",
        app(&origin),
        router("more", "Host(`more.test`)", "app")
    ));
    p.wait_routed("more.test", "/", "o");
    let reload = wait_for(Duration::from_secs(5), || {
        p.ringway
            .stderr()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| {
                v["fields"]["generation"].as_u64() == Some(2)
                    && v["fields"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("pushing configuration"))
            })
    })
    .unwrap_or_else(|| panic!("no JSON reload line\n{}", p.ringway.stderr()));
    assert_eq!(reload["fields"]["routers_added"], 1, "{reload}");
    assert_eq!(reload["fields"]["routers_removed"], 0, "{reload}");
    assert_eq!(reload["level"], "INFO");
    for l in p.ringway.stderr().lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(l)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
    }
}

//! The `ringway` executable: parses the command line and dispatches to the data plane (the
//! default), the control plane (`ringway controlplane`, spawned by the data plane) or a tool.

mod logging;

use mimalloc::MiMalloc;
use ringway_shared::config::static_config::StaticConfig;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

const USAGE: &str = "\
ringway — an edge router that reads Traefik's configuration

USAGE:
    ringway [--flags]          run (data plane; spawns the control plane)
    ringway check [--flags]    validate static and dynamic configuration, exit 1 on errors
    ringway healthcheck [--flags]
                               GET /ping on the ping entry point; exit 0 only on 200
                               (for Docker's HEALTHCHECK; needs --ping)
    ringway kv sync|export ... write a dynamic file into Redis/etcd, or read it back
                               (`ringway kv help`)
    ringway version            print the version

Flags are Traefik's static configuration, e.g.
    --entrypoints.web.address=:8000 --providers.file.filename=dynamic.toml
    --configfile=traefik.toml
";

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let command = match args.first().map(String::as_str) {
        Some(c @ ("controlplane" | "check" | "healthcheck" | "kv" | "version" | "help")) => {
            let c = c.to_string();
            args.remove(0);
            c
        }
        Some("--help" | "-h") => "help".to_string(),
        Some("--version" | "-V") => "version".to_string(),
        _ => "run".to_string(),
    };
    let code = match command.as_str() {
        "help" => {
            print!("{USAGE}");
            0
        }
        "version" => {
            println!("ringway {}", env!("CARGO_PKG_VERSION"));
            0
        }
        "check" => ringway_controlplane::check::run(&args),
        "healthcheck" => healthcheck(&args),
        "kv" => ringway_controlplane::kv::cli::run(&args),
        role => {
            let cfg = match StaticConfig::from_args(&args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("ringway: invalid static configuration:\n{e}");
                    std::process::exit(2);
                }
            };
            logging::init(&cfg.log);
            if role == "controlplane" {
                ringway_controlplane::run(cfg)
            } else {
                ringway_dataplane::run(cfg, args)
            }
        }
    };
    std::process::exit(code);
}

/// `ringway healthcheck`: asks the running instance's ping (Traefik's `healthcheck --ping`).
fn healthcheck(args: &[String]) -> i32 {
    use std::io::{Read, Write};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
    use std::time::Duration;
    let cfg = match StaticConfig::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ringway healthcheck: invalid static configuration:\n{e}");
            return 2;
        }
    };
    let Some(ep) = cfg.entry_points.values().find(|ep| ep.ping.is_some()) else {
        eprintln!("ringway healthcheck: ping is not enabled (--ping)");
        return 2;
    };
    let mut addr = ep.address;
    if addr.ip().is_unspecified() {
        addr = SocketAddr::new(
            match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            },
            addr.port(),
        );
    }
    let url = format!("http://{addr}/ping");
    let timeout = Duration::from_secs(5);
    let answer = (|| -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        write!(
            s,
            "GET /ping HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut got = Vec::new();
        s.take(4096).read_to_end(&mut got)?;
        Ok(String::from_utf8_lossy(&got).into_owned())
    })();
    match answer {
        Ok(text) => {
            let status = text.split(' ').nth(1).unwrap_or("");
            if status == "200" {
                println!("OK: {url}");
                0
            } else {
                eprintln!("Bad healthcheck status: {status} ({url})");
                1
            }
        }
        Err(e) => {
            eprintln!("Error calling healthcheck: {url}: {e}");
            1
        }
    }
}

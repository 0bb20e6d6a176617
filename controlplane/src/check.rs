//! `ringway check`: validates the static and dynamic configuration and prints every error with
//! its location, without starting anything.

use crate::aggregator::{resolve, ProviderConfig};
use crate::providers::file::{load_file_provider, PROVIDER};
use ringway_shared::config::StaticConfig;
use std::net::{SocketAddr, ToSocketAddrs};

/// Runs the check; returns the exit code (1 when any error was found).
pub fn run(args: &[String]) -> i32 {
    let cfg = match StaticConfig::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("static configuration: {} error(s)", e.len());
            return 1;
        }
    };
    let mut errors = 0usize;
    for key in &cfg.unsupported {
        eprintln!("warning: {key}: not supported yet, ignored");
    }
    let mut providers = Vec::new();
    if let Some(file) = &cfg.providers.file {
        match load_file_provider(file) {
            Ok(config) => providers.push(ProviderConfig {
                provider: PROVIDER.to_string(),
                config,
            }),
            Err(e) => {
                eprintln!("{e}");
                errors += e.len();
            }
        }
    }
    for kv in [&cfg.providers.redis, &cfg.providers.etcd]
        .into_iter()
        .flatten()
    {
        let name = kv.kind.name();
        match crate::providers::kv::load_once(kv) {
            Ok((config, key_errors)) => {
                for e in &key_errors {
                    eprintln!("{e}");
                }
                errors += key_errors.len();
                providers.push(ProviderConfig {
                    provider: name.to_string(),
                    config,
                });
            }
            Err(e) => {
                eprintln!("{name}: {}: {e}", kv.endpoints.join(","));
                errors += 1;
            }
        }
    }
    let resolution = resolve(&providers, &cfg, &resolve_std);
    for w in &resolution.warnings {
        eprintln!("warning: {w}");
    }
    for e in &resolution.errors {
        eprintln!("{e}");
    }
    errors += resolution.errors.len();
    let enabled = resolution.routers.iter().filter(|r| r.enabled).count();
    println!(
        "{} entry points, {} routers ({} enabled), {} services, {} errors, {} warnings",
        cfg.entry_points.len(),
        resolution.routers.len(),
        enabled,
        resolution.services.len(),
        errors,
        cfg.unsupported.len() + resolution.warnings.len()
    );
    i32::from(errors > 0)
}

/// Resolves a server host with the system resolver (IP literals need no lookup).
pub(crate) fn resolve_std(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    (host, port)
        .to_socket_addrs()
        .map(|it| it.collect())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(dynamic: &str) -> i32 {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dynamic.toml");
        std::fs::write(&path, dynamic).expect("write");
        run(&[
            "--entrypoints.web.address=127.0.0.1:0".to_string(),
            format!("--providers.file.filename={}", path.display()),
        ])
    }

    #[test]
    fn exit_code_says_whether_anything_is_wrong() {
        let service =
            "[http.services.s.loadBalancer]\nservers = [{ url = \"http://127.0.0.1:9\" }]\n";
        let good = format!("{service}[http.routers.r]\nrule = \"Path(`/`)\"\nservice = \"s\"\n");
        assert_eq!(check(&good), 0);
        // Warnings alone do not fail the check.
        assert_eq!(
            check(&format!("{good}[udp.routers.u]\nservice = \"dns\"\n")),
            0
        );
        let bad = format!("{service}[http.routers.r]\nrule = \"Path(`/`\"\nservice = \"s\"\n");
        assert_eq!(check(&bad), 1);
        assert_eq!(check("[http\n"), 1);
        assert_eq!(run(&["--entrypoints.web.adress=:1".to_string()]), 1);
    }
}

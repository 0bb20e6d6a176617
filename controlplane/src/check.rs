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
        println!("warning: static option not supported yet, ignored: {key}");
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
    let resolution = resolve(&providers, &cfg, &resolve_std);
    for e in &resolution.errors {
        eprintln!("{e}");
    }
    errors += resolution.errors.len();
    let enabled = resolution.routers.iter().filter(|r| r.enabled).count();
    println!(
        "{} entry points, {} routers ({} enabled), {} services, {} errors",
        cfg.entry_points.len(),
        resolution.routers.len(),
        enabled,
        resolution.services.len(),
        errors
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

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
        Some(c @ ("controlplane" | "check" | "kv" | "version" | "help")) => {
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

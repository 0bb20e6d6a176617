//! `ringway kv sync` and `ringway kv export`: a dynamic configuration file to and from a
//! store, in Traefik's key layout.

use super::layout::{lists_restored, pairs_from_tree, parse_key_value_lines, tree_from_pairs};
use super::{provider_from_url, KvClient, KvError};
use crate::providers::kv::decode;
use notify::{RecursiveMode, Watcher};
use ringway_shared::config::static_config::{KvProvider, KvTls};
use ringway_shared::config::{DynamicConfig, Format, Node};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod lock_command;

const USAGE: &str = "\
USAGE:
    ringway kv sync --endpoint URL [--root-key traefik] [--dry-run] [--watch] FILE
    ringway kv export --endpoint URL [--root-key traefik] [--format yaml|toml] [--output FILE]
    ringway kv lock --endpoint URL [--ttl 10s] [--wait 0s] NAME [-- COMMAND ARGS...]

URL is redis://[user:password@]host:port[/db] or etcd://[user:password@]host:port; TLS with
--tls.ca FILE [--tls.cert FILE --tls.key FILE] or --tls.insecureSkipVerify.
FILE is a Traefik dynamic configuration (.toml, .yml, .yaml) or `key,value` lines (any other
extension). sync writes it under the root key and deletes the keys there that FILE does not
have, in one transaction; --dry-run prints the changes only; --watch syncs again on every
change of FILE. export prints the keys under the root key as a dynamic configuration file.
lock takes the distributed lock NAME (waiting up to --wait), prints its fencing token, and
runs COMMAND while renewing the lease (exit status: COMMAND's), or holds it until
SIGINT/SIGTERM; exit 3 when the lock is held elsewhere, 4 when the lease was lost.
";

/// How long a burst of file events is coalesced in `--watch`.
const SETTLE: Duration = Duration::from_millis(50);
/// How soon `--watch` tries again after a failed sync.
const RETRY: Duration = Duration::from_secs(2);

struct Options {
    endpoint: Option<String>,
    root_key: Option<String>,
    dry_run: bool,
    watch: bool,
    format: Option<String>,
    output: Option<PathBuf>,
    file: Option<PathBuf>,
    tls: Option<KvTls>,
    ttl: Option<Duration>,
    wait: Option<Duration>,
    /// After `--`.
    command: Vec<String>,
}

/// Runs `ringway kv ...`; returns the exit code (0 ok, 1 failure, 2 usage).
pub fn run(args: &[String]) -> i32 {
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return 2;
    };
    let opts = match parse_options(rest) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ringway kv: {e}\n{USAGE}");
            return 2;
        }
    };
    let Some(endpoint) = opts.endpoint.as_deref() else {
        eprintln!("ringway kv: --endpoint is required\n{USAGE}");
        return 2;
    };
    let store = match provider_from_url(endpoint, opts.root_key.as_deref()) {
        Ok(s) => KvProvider {
            tls: opts.tls.clone(),
            ..s
        },
        Err(e) => {
            eprintln!("ringway kv: {e}");
            return 2;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ringway kv: cannot start the runtime: {e}");
            return 1;
        }
    };
    match command.as_str() {
        "sync" => {
            let Some(file) = opts.file.clone() else {
                eprintln!("ringway kv sync: FILE is required\n{USAGE}");
                return 2;
            };
            if opts.watch {
                rt.block_on(sync_watch(&store, endpoint, &file, opts.dry_run))
            } else {
                rt.block_on(sync_once(&store, endpoint, &file, opts.dry_run))
            }
        }
        "export" => rt.block_on(export(&store, &opts)),
        "lock" => {
            let Some(name) = opts.file.as_deref().and_then(Path::to_str) else {
                eprintln!("ringway kv lock: NAME is required\n{USAGE}");
                return 2;
            };
            let ttl = opts.ttl.unwrap_or(Duration::from_secs(10));
            let wait = opts.wait.unwrap_or(Duration::ZERO);
            rt.block_on(lock_command::run(&store, name, ttl, wait, &opts.command))
        }
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            0
        }
        other => {
            eprintln!("ringway kv: unknown command {other:?}\n{USAGE}");
            2
        }
    }
}

fn duration(flag: &str, v: &str) -> Result<Duration, String> {
    ringway_shared::config::duration::parse_duration(v).map_err(|e| format!("{flag}: {e}"))
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        endpoint: None,
        root_key: None,
        dry_run: false,
        watch: false,
        format: None,
        output: None,
        file: None,
        tls: None,
        ttl: None,
        wait: None,
        command: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--" {
            o.command = it.by_ref().cloned().collect();
            break;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag {
            "--endpoint" | "--endpoints" => o.endpoint = Some(value(flag)?),
            "--root-key" | "--rootKey" | "--rootkey" => o.root_key = Some(value(flag)?),
            "--format" => o.format = Some(value(flag)?),
            "--output" | "-o" => o.output = Some(PathBuf::from(value(flag)?)),
            "--tls.ca" => o.tls.get_or_insert_with(KvTls::default).ca = Some(value(flag)?.into()),
            "--tls.cert" => {
                o.tls.get_or_insert_with(KvTls::default).cert = Some(value(flag)?.into())
            }
            "--tls.key" => o.tls.get_or_insert_with(KvTls::default).key = Some(value(flag)?.into()),
            "--tls.insecureSkipVerify" | "--tls.insecureskipverify" => {
                o.tls
                    .get_or_insert_with(KvTls::default)
                    .insecure_skip_verify = true
            }
            "--ttl" => o.ttl = Some(duration(flag, &value(flag)?)?),
            "--wait" => o.wait = Some(duration(flag, &value(flag)?)?),
            "--dry-run" => o.dry_run = true,
            "--watch" => o.watch = true,
            f if f.starts_with('-') && f.len() > 1 => return Err(format!("unknown flag {f:?}")),
            _ if o.file.is_none() => o.file = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    Ok(o)
}

/// The pairs a file stands for, under `root`; errors name the file and key or line.
pub fn desired_pairs(file: &Path, root: &str) -> Result<Vec<(String, String)>, Vec<String>> {
    let source = file.display().to_string();
    let text =
        std::fs::read_to_string(file).map_err(|e| vec![format!("{source}: cannot read: {e}")])?;
    match Format::from_path(file) {
        Some(format) => {
            let tree = format
                .parse_tree(&text)
                .map_err(|e| vec![format!("{source}: {e}")])?;
            DynamicConfig::from_node(&source, &tree)
                .map_err(|errs| errs.iter().map(ToString::to_string).collect::<Vec<_>>())?;
            Ok(pairs_from_tree(root, &tree))
        }
        None => {
            let pairs = parse_key_value_lines(&source, root, &text)
                .map_err(|errs| errs.iter().map(ToString::to_string).collect::<Vec<_>>())?;
            let (_, errors) = decode(&source, root, &pairs);
            if !errors.is_empty() {
                return Err(errors.iter().map(ToString::to_string).collect());
            }
            Ok(pairs)
        }
    }
}

/// What a sync changes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub add: Vec<(String, String)>,
    /// key, old value, new value
    pub change: Vec<(String, String, String)>,
    pub delete: Vec<String>,
}

impl Diff {
    pub fn between(current: &[(String, String)], desired: &[(String, String)]) -> Diff {
        let current: BTreeMap<&str, &str> = current
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let desired: BTreeMap<&str, &str> = desired
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut diff = Diff::default();
        for (k, v) in &desired {
            match current.get(k) {
                None => diff.add.push((k.to_string(), v.to_string())),
                Some(old) if old != v => {
                    diff.change
                        .push((k.to_string(), old.to_string(), v.to_string()))
                }
                Some(_) => {}
            }
        }
        diff.delete = current
            .keys()
            .filter(|k| !desired.contains_key(*k))
            .map(|k| k.to_string())
            .collect();
        diff
    }

    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.change.is_empty() && self.delete.is_empty()
    }

    /// `+ key = value`, `~ key: old -> new`, `- key`, one per line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.add {
            out.push_str(&format!("+ {k} = {v}\n"));
        }
        for (k, old, new) in &self.change {
            out.push_str(&format!("~ {k}: {old} -> {new}\n"));
        }
        for k in &self.delete {
            out.push_str(&format!("- {k}\n"));
        }
        out
    }

    fn done_summary(&self) -> String {
        format!(
            "{} added, {} changed, {} deleted",
            self.add.len(),
            self.change.len(),
            self.delete.len()
        )
    }

    fn summary(&self) -> String {
        format!(
            "{} to add, {} to change, {} to delete",
            self.add.len(),
            self.change.len(),
            self.delete.len()
        )
    }
}

async fn sync_once(store: &KvProvider, endpoint: &str, file: &Path, dry_run: bool) -> i32 {
    match sync(store, file, dry_run).await {
        Ok(diff) => {
            print!("{}", diff.render());
            if dry_run {
                println!(
                    "dry run: {} ({endpoint}, root key {})",
                    diff.summary(),
                    store.root_key
                );
            } else {
                println!(
                    "synced {} to {endpoint} under {}/: {}",
                    file.display(),
                    store.root_key,
                    diff.done_summary()
                );
            }
            0
        }
        Err(errors) => {
            for e in errors {
                eprintln!("ringway kv sync: {e}");
            }
            1
        }
    }
}

/// Reads the file and the store, and (unless `dry_run`) writes the difference in one
/// transaction.
pub async fn sync(store: &KvProvider, file: &Path, dry_run: bool) -> Result<Diff, Vec<String>> {
    let desired = desired_pairs(file, &store.root_key)?;
    let fail = |e: KvError| vec![format!("{}: {e}", store.endpoints.join(","))];
    let mut client = KvClient::connect(store).await.map_err(fail)?;
    let current = client
        .list(&format!("{}/", store.root_key))
        .await
        .map_err(fail)?;
    let mut diff = Diff::between(&current, &desired);
    // Keys under the root that hold no string (a Redis hash) are not configuration: removed.
    diff.delete
        .extend(client.unreadable().into_iter().map(|(k, _)| k));
    diff.delete.sort();
    if !dry_run && !diff.is_empty() {
        let puts: Vec<(String, String)> = diff
            .add
            .iter()
            .cloned()
            .chain(diff.change.iter().map(|(k, _, v)| (k.clone(), v.clone())))
            .collect();
        client.apply(&puts, &diff.delete).await.map_err(fail)?;
    }
    Ok(diff)
}

async fn sync_watch(store: &KvProvider, endpoint: &str, file: &Path, dry_run: bool) -> i32 {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let watched_name = file.file_name().map(|n| n.to_os_string());
    let mut watcher =
        match notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                let ours = ev
                    .paths
                    .iter()
                    .any(|p| p.file_name().map(|n| n.to_os_string()) == watched_name);
                if ours && !matches!(ev.kind, notify::EventKind::Access(_)) {
                    let _ = tx.send(());
                }
            }
        }) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("ringway kv sync: cannot watch {}: {e}", file.display());
                return 1;
            }
        };
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
        eprintln!("ringway kv sync: cannot watch {}: {e}", dir.display());
        return 1;
    }
    loop {
        let ok = sync_once(store, endpoint, file, dry_run).await == 0;
        let next = if ok {
            rx.recv().await
        } else {
            // The store may come back (or the file be fixed): try again.
            tokio::select! {
                ev = rx.recv() => ev,
                _ = tokio::time::sleep(RETRY) => Some(()),
            }
        };
        if next.is_none() {
            return 1;
        }
        tokio::time::sleep(SETTLE).await;
        while rx.try_recv().is_ok() {}
    }
}

async fn export(store: &KvProvider, opts: &Options) -> i32 {
    let format = match opts
        .format
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("toml") => Format::Toml,
        Some("yaml" | "yml") => Format::Yaml,
        Some(other) => {
            eprintln!("ringway kv export: unknown format {other:?} (yaml or toml)");
            return 2;
        }
        None => opts
            .output
            .as_deref()
            .and_then(Format::from_path)
            .unwrap_or(Format::Yaml),
    };
    let pairs = match async {
        let mut client = KvClient::connect(store).await?;
        client.list(&format!("{}/", store.root_key)).await
    }
    .await
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ringway kv export: {}: {e}", store.endpoints.join(","));
            return 1;
        }
    };
    let (tree, errors) = tree_from_pairs(store.kind.name(), &store.root_key, &pairs);
    for e in &errors {
        eprintln!("ringway kv export: warning: {e}; left out");
    }
    let text = match render_file(&lists_restored(&tree), format) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ringway kv export: {e}");
            return 1;
        }
    };
    match &opts.output {
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("ringway kv export: {}: {e}", path.display());
                1
            }
        },
        None => {
            print!("{text}");
            0
        }
    }
}

/// Writes a tree as a dynamic configuration file (values as strings, which Traefik and
/// ringway both convert to the type each setting wants).
pub fn render_file(tree: &Node, format: Format) -> Result<String, String> {
    match format {
        Format::Yaml => {
            if matches!(tree, Node::Map(e) if e.is_empty()) {
                return Ok(String::new());
            }
            serde_norway::to_string(&to_yaml(tree)).map_err(|e| e.to_string())
        }
        Format::Toml => match to_toml(tree) {
            toml::Value::Table(t) => toml::to_string(&t).map_err(|e| e.to_string()),
            _ => Err("the configuration is not a section".into()),
        },
    }
}

fn to_yaml(node: &Node) -> serde_norway::Value {
    use serde_norway::Value;
    match node {
        Node::Leaf(s) => Value::String(s.clone()),
        Node::List(items) => Value::Sequence(items.iter().map(to_yaml).collect()),
        Node::Map(entries) => Value::Mapping(
            entries
                .iter()
                .map(|(k, v)| (Value::String(k.clone()), to_yaml(v)))
                .collect(),
        ),
    }
}

fn to_toml(node: &Node) -> toml::Value {
    match node {
        Node::Leaf(s) => toml::Value::String(s.clone()),
        Node::List(items) => toml::Value::Array(items.iter().map(to_toml).collect()),
        Node::Map(entries) => toml::Value::Table(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), to_toml(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kv::test_pairs as pairs;

    #[test]
    fn diff_adds_changes_and_deletes() {
        let current = pairs(&[("t/a", "1"), ("t/b", "2"), ("t/c", "3")]);
        let desired = pairs(&[("t/a", "1"), ("t/b", "20"), ("t/d", "4")]);
        let diff = Diff::between(&current, &desired);
        assert_eq!(diff.render(), "+ t/d = 4\n~ t/b: 2 -> 20\n- t/c\n");
        assert!(Diff::between(&current, &current).is_empty());
    }

    #[test]
    fn files_render_and_parse_back() {
        let tree = Format::Yaml
            .parse_tree("http:\n  routers:\n    r:\n      rule: Host(`a`)\n      entryPoints: [web, websecure]\n      priority: 10\n")
            .expect("yaml");
        for format in [Format::Yaml, Format::Toml] {
            let (back, errors) =
                tree_from_pairs("t", "traefik", &pairs_from_tree("traefik", &tree));
            assert!(errors.is_empty());
            let text = render_file(&lists_restored(&back), format).expect("render");
            let reparsed = format.parse_tree(&text).expect("parse back");
            let a = DynamicConfig::from_node("a", &tree).expect("valid");
            let b = DynamicConfig::from_node("b", &reparsed).expect("valid");
            assert_eq!(a.http.routers, b.http.routers, "{text}");
        }
    }
}

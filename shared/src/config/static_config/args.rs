//! Static configuration sources: command-line flags and the configuration file.

use crate::config::{ConfigError, ConfigErrors, Node};
use std::path::{Path, PathBuf};

/// One `--key=value` flag.
#[derive(Debug, Clone)]
pub(super) struct Flag {
    /// The key without dashes: `entrypoints.web.address`.
    pub key: String,
    pub value: String,
}

impl Flag {
    pub fn location(&self) -> String {
        format!("flag --{}", self.key)
    }
}

/// Splits arguments into flags and the `--configfile` value. Accepted forms: `--key=value`,
/// `--key value` (when the next argument does not start with `-`), `--key` alone (`true`),
/// with one or two dashes.
pub(super) fn parse_args(args: &[String]) -> Result<(Vec<Flag>, Option<PathBuf>), ConfigErrors> {
    let mut flags = Vec::new();
    let mut config_file = None;
    let mut errors = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            errors.push(ConfigError::new(
                format!("argument {arg:?}"),
                "unexpected argument (flags look like --entrypoints.web.address=:80)",
            ));
            continue;
        };
        let (key, value) = match body.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match args.get(i) {
                Some(next) if !next.starts_with('-') => {
                    i += 1;
                    (body.to_string(), next.clone())
                }
                _ => (body.to_string(), "true".to_string()),
            },
        };
        if key.is_empty() {
            errors.push(ConfigError::new(
                format!("argument {arg:?}"),
                "empty flag name",
            ));
            continue;
        }
        if key.eq_ignore_ascii_case("configfile") {
            config_file = Some(PathBuf::from(value));
            continue;
        }
        flags.push(Flag { key, value });
    }
    if errors.is_empty() {
        Ok((flags, config_file))
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Reads a static configuration file into a tree; TOML or YAML by extension.
pub(super) fn load_file(path: &Path) -> Result<Node, ConfigError> {
    let location = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(&location, format!("cannot read: {e}")))?;
    let format = crate::config::Format::from_path(path).ok_or_else(|| {
        ConfigError::new(
            &location,
            "unsupported file extension (use .toml, .yml or .yaml)",
        )
    })?;
    format
        .parse_tree(&text)
        .map_err(|message| ConfigError::new(&location, message))
}

/// Whether an error at `path` concerns the flag `key` (one is the other or an ancestor of it).
pub(super) fn related_keys(key: &str, path: &str) -> bool {
    let key = normalize(key);
    let path = normalize(path);
    key == path
        || key.strip_prefix(&path).is_some_and(|r| r.starts_with('.'))
        || path.strip_prefix(&key).is_some_and(|r| r.starts_with('.'))
}

/// Lowercase, with `[n]` written as `.n`.
fn normalize(path: &str) -> String {
    path.to_ascii_lowercase().replace('[', ".").replace(']', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flag_forms() {
        let (flags, file) = parse_args(&args(&[
            "--entrypoints.web.address=:80",
            "--log.level",
            "debug",
            "--providers.file",
            "-api.insecure",
            "--configFile=/etc/x.toml",
            "--x=",
        ]))
        .expect("valid");
        let kv: Vec<(&str, &str)> = flags
            .iter()
            .map(|f| (f.key.as_str(), f.value.as_str()))
            .collect();
        assert_eq!(
            kv,
            [
                ("entrypoints.web.address", ":80"),
                ("log.level", "debug"),
                ("providers.file", "true"),
                ("api.insecure", "true"),
                ("x", ""),
            ]
        );
        assert_eq!(file, Some(PathBuf::from("/etc/x.toml")));
    }

    #[test]
    fn positional_arguments_are_errors() {
        let err = parse_args(&args(&["serve"])).expect_err("positional");
        assert!(err.to_string().contains("unexpected argument"), "{err}");
    }

    #[test]
    fn related() {
        assert!(related_keys(
            "entrypoints.web.address",
            "entryPoints.web.address"
        ));
        assert!(related_keys("entrypoints.web.address", "entryPoints.web"));
        assert!(related_keys("a.b[0]", "a.b.0.c"));
        assert!(!related_keys("entrypoints.web2.address", "entryPoints.web"));
    }
}

//! `accessLog.*`: Traefik's access log settings, validated.

use super::Origins;
use crate::config::node::from_node_at;
use crate::config::{ConfigError, Node, TraefikDuration};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessLogFormat {
    /// Traefik's Common Log Format line (CLF plus request count, router, service URL and
    /// duration).
    #[default]
    Common,
    Json,
}

/// What happens to a field or header in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldMode {
    Keep,
    Drop,
    /// Logged as `REDACTED`.
    Redact,
}

impl std::str::FromStr for FieldMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "keep" => Ok(FieldMode::Keep),
            "drop" => Ok(FieldMode::Drop),
            "redact" => Ok(FieldMode::Redact),
            _ => Err(format!(
                "invalid mode {s:?} (expected keep, drop or redact)"
            )),
        }
    }
}

/// `accessLog` with Traefik's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessLog {
    /// Standard output when `None`.
    pub file_path: Option<PathBuf>,
    pub format: AccessLogFormat,
    /// `bufferingSize`: lines a worker holds before handing them to the writer (0: flushed
    /// within 100 ms).
    pub buffering_size: usize,
    /// `filters.statusCodes`: inclusive ranges.
    pub status_codes: Vec<(u16, u16)>,
    /// `filters.retryAttempts`: keep requests that were retried.
    pub retry_attempts: bool,
    /// `filters.minDuration`: keep requests slower than this (zero: no such filter).
    pub min_duration: Duration,
    /// `fields.defaultMode` (keep) and `fields.names.<Field>`.
    pub fields_default: FieldMode,
    pub fields: BTreeMap<String, FieldMode>,
    /// `fields.headers.defaultMode` (drop) and `fields.headers.names.<Header>`, by lowercase
    /// header name.
    pub headers_default: FieldMode,
    pub headers: BTreeMap<String, FieldMode>,
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog {
            file_path: None,
            format: AccessLogFormat::Common,
            buffering_size: 0,
            status_codes: Vec::new(),
            retry_attempts: false,
            min_duration: Duration::ZERO,
            fields_default: FieldMode::Keep,
            fields: BTreeMap::new(),
            headers_default: FieldMode::Drop,
            headers: BTreeMap::new(),
        }
    }
}

impl AccessLog {
    /// Traefik's filter: with no filter every request is logged; otherwise one that matches a
    /// status range, was retried (`retryAttempts`) or took longer than `minDuration`.
    pub fn keep(&self, status: u16, retries: u32, duration: Duration) -> bool {
        let filtered =
            !self.status_codes.is_empty() || self.retry_attempts || !self.min_duration.is_zero();
        !filtered
            || self
                .status_codes
                .iter()
                .any(|&(lo, hi)| (lo..=hi).contains(&status))
            || (self.retry_attempts && retries > 0)
            || (!self.min_duration.is_zero() && duration > self.min_duration)
    }

    /// The mode of a field (`ClientHost`, `RouterName`, …).
    pub fn field(&self, name: &str) -> FieldMode {
        *self.fields.get(name).unwrap_or(&self.fields_default)
    }

    /// The mode of a request or response header (any case).
    pub fn header(&self, name: &str) -> FieldMode {
        *self
            .headers
            .get(&name.to_ascii_lowercase())
            .unwrap_or(&self.headers_default)
    }

    /// Whether any header is logged (so requests' headers must be kept).
    pub fn logs_headers(&self) -> bool {
        self.headers_default != FieldMode::Drop
            || self.headers.values().any(|m| *m != FieldMode::Drop)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct AccessLogRaw {
    file_path: Option<String>,
    format: Option<String>,
    buffering_size: Option<i64>,
    filters: Option<FiltersRaw>,
    fields: Option<FieldsRaw>,
    add_internals: Option<Node>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct FiltersRaw {
    status_codes: Vec<String>,
    retry_attempts: Option<bool>,
    min_duration: Option<TraefikDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct FieldsRaw {
    default_mode: Option<String>,
    names: BTreeMap<String, String>,
    headers: Option<HeadersRaw>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct HeadersRaw {
    default_mode: Option<String>,
    names: BTreeMap<String, String>,
}

/// `200` or `300-302`.
fn status_range(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("invalid status code range {s:?} (expected 404 or 500-504)");
    let num = |x: &str| {
        x.trim()
            .parse::<u16>()
            .ok()
            .filter(|c| (100..=599).contains(c))
    };
    match s.split_once('-') {
        None => num(s).map(|c| (c, c)).ok_or_else(bad),
        Some((a, b)) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a <= b => Ok((a, b)),
            _ => Err(bad()),
        },
    }
}

/// Validates `accessLog` (`true` alone enables it with the defaults).
pub(super) fn access_log(
    node: &Node,
    origins: &Origins<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<AccessLog> {
    if let Node::Leaf(v) = node {
        return match v.trim().to_ascii_lowercase().as_str() {
            "" | "true" => Some(AccessLog::default()),
            "false" => None,
            _ => {
                errors.push(origins.error("accessLog", format!("invalid boolean {v:?}")));
                None
            }
        };
    }
    let raw: AccessLogRaw = match from_node_at(node, "accessLog") {
        Ok(r) => r,
        Err(e) => {
            errors.push(origins.error(&e.path, e.kind.to_string()));
            return None;
        }
    };
    let mut out = AccessLog {
        file_path: raw.file_path.filter(|p| !p.is_empty()).map(PathBuf::from),
        ..AccessLog::default()
    };
    let _ = raw.add_internals;
    match raw
        .format
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("") | Some("common") => {}
        Some("json") => out.format = AccessLogFormat::Json,
        Some(other) => errors.push(origins.error(
            "accessLog.format",
            format!("invalid format {other:?} (expected common or json)"),
        )),
    }
    match raw.buffering_size {
        None => {}
        Some(n) if n >= 0 => out.buffering_size = usize::try_from(n).unwrap_or(usize::MAX),
        Some(_) => errors.push(origins.error("accessLog.bufferingSize", "must not be negative")),
    }
    if let Some(f) = raw.filters {
        for (i, s) in f.status_codes.iter().enumerate() {
            match status_range(s) {
                Ok(r) => out.status_codes.push(r),
                Err(e) => {
                    errors.push(origins.error(&format!("accessLog.filters.statusCodes[{i}]"), e))
                }
            }
        }
        out.retry_attempts = f.retry_attempts.unwrap_or(false);
        out.min_duration = f.min_duration.map_or(Duration::ZERO, |d| d.0);
    }
    if let Some(f) = raw.fields {
        let mode = |path: String, v: &str, errors: &mut Vec<ConfigError>| match v.parse() {
            Ok(m) => Some(m),
            Err(e) => {
                errors.push(origins.error(&path, e));
                None
            }
        };
        if let Some(m) = f.default_mode.as_deref() {
            if let Some(m) = mode("accessLog.fields.defaultMode".into(), m, errors) {
                out.fields_default = m;
            }
        }
        for (name, v) in &f.names {
            if let Some(m) = mode(format!("accessLog.fields.names.{name}"), v, errors) {
                out.fields.insert(name.clone(), m);
            }
        }
        if let Some(h) = f.headers {
            if let Some(m) = h.default_mode.as_deref() {
                if let Some(m) = mode("accessLog.fields.headers.defaultMode".into(), m, errors) {
                    out.headers_default = m;
                }
            }
            for (name, v) in &h.names {
                let path = format!("accessLog.fields.headers.names.{name}");
                if let Some(m) = mode(path, v, errors) {
                    out.headers.insert(name.to_ascii_lowercase(), m);
                }
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_follow_traefik() {
        let mut a = AccessLog::default();
        assert!(a.keep(200, 0, Duration::ZERO), "no filter: everything");
        a.status_codes = vec![(500, 599), (404, 404)];
        assert!(a.keep(404, 0, Duration::ZERO));
        assert!(a.keep(503, 0, Duration::ZERO));
        assert!(!a.keep(200, 0, Duration::ZERO));
        a.retry_attempts = true;
        assert!(a.keep(200, 1, Duration::ZERO));
        a.min_duration = Duration::from_millis(10);
        assert!(a.keep(200, 0, Duration::from_millis(11)));
        assert!(!a.keep(200, 0, Duration::from_millis(10)));
        assert_eq!(status_range("300-302"), Ok((300, 302)));
        assert!(status_range("302-300").is_err());
        assert!(status_range("abc").is_err());
        assert!(status_range("700").is_err());
    }
}

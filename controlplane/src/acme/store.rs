//! `acme.json`, in Traefik's exact format: one object per resolver with its `Account`
//! (`Email`, `Registration{body,uri}`, `PrivateKey`, `KeyType`) and `Certificates`
//! (`domain{main,sans}`, `certificate` and `key` as base64 of PEM, `Store`). Written
//! atomically (a temporary file in the same folder, fsync, rename) with mode 0600; a file
//! readable by others is refused, as Traefik does.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What one resolver keeps (Traefik's `StoredData`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResolverData {
    #[serde(rename = "Account", default)]
    pub account: Option<Account>,
    #[serde(rename = "Certificates", default)]
    pub certificates: Option<Vec<StoredCertificate>>,
}

impl ResolverData {
    pub fn certificates(&self) -> &[StoredCertificate] {
        self.certificates.as_deref().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    #[serde(rename = "Email", default)]
    pub email: String,
    #[serde(rename = "Registration", default)]
    pub registration: Option<Registration>,
    /// DER, base64 in the file: PKCS#1 RSA from Traefik, PKCS#8 P-256 from ringway.
    #[serde(rename = "PrivateKey", default, with = "b64")]
    pub private_key: Vec<u8>,
    #[serde(rename = "KeyType", default)]
    pub key_type: String,
}

/// lego's `registration.Resource`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    #[serde(default)]
    pub body: serde_json::Value,
    #[serde(default)]
    pub uri: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub main: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sans: Vec<String>,
}

impl Domain {
    /// Every name: main first.
    pub fn names(&self) -> Vec<String> {
        std::iter::once(&self.main)
            .chain(&self.sans)
            .filter(|n| !n.is_empty())
            .map(|n| n.to_ascii_lowercase())
            .collect()
    }
}

/// Traefik's `CertAndStore`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredCertificate {
    #[serde(default)]
    pub domain: Domain,
    /// PEM chain (base64 in the file).
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub certificate: Vec<u8>,
    /// PEM private key (base64 in the file).
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<u8>,
    #[serde(rename = "Store", default)]
    pub store: String,
}

/// Go's `[]byte` in JSON: standard base64, `null` for none.
mod b64 {
    use super::{Engine, B64};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(Vec::new()),
            Some(s) => B64.decode(s.trim()).map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: permissions {mode:o} are too open, please use 600")]
    TooOpen { path: String, mode: u32 },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a Traefik acme.json: {source}")]
    Format {
        path: String,
        source: serde_json::Error,
    },
}

/// The file of one or more resolvers (they may share it, each under its name).
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Every resolver's data; a missing or empty file is an empty store.
    pub fn load(&self) -> Result<BTreeMap<String, ResolverData>, StoreError> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(self.io(e)),
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(StoreError::TooOpen {
                path: self.path.display().to_string(),
                mode,
            });
        }
        let bytes = std::fs::read(&self.path).map_err(|e| self.io(e))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(BTreeMap::new());
        }
        serde_json::from_slice::<BTreeMap<String, Option<ResolverData>>>(&bytes)
            .map(|m| {
                m.into_iter()
                    .map(|(k, v)| (k, v.unwrap_or_default()))
                    .collect()
            })
            .map_err(|source| StoreError::Format {
                path: self.path.display().to_string(),
                source,
            })
    }

    /// Replaces one resolver's data, keeping the others', atomically.
    pub fn save(&self, resolver: &str, data: &ResolverData) -> Result<(), StoreError> {
        let mut all = self.load()?;
        all.insert(resolver.to_string(), data.clone());
        let mut json = serde_json::to_vec_pretty(&all).map_err(|source| StoreError::Format {
            path: self.path.display().to_string(),
            source,
        })?;
        json.push(b'\n');
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| self.io(e))?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "acme.json".into());
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            // The rename itself survives a crash once the folder is synced.
            std::fs::File::open(&dir)?.sync_all()
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(|e| self.io(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape Traefik writes (abridged keys, real structure).
    const TRAEFIK: &str = r#"{
  "le": {
    "Account": {
      "Email": "ops@example.com",
      "Registration": {
        "body": {
          "status": "valid",
          "contact": ["mailto:ops@example.com"]
        },
        "uri": "https://acme.example/acct/1"
      },
      "PrivateKey": "AQID",
      "KeyType": "4096"
    },
    "Certificates": [
      {
        "domain": { "main": "a.example.com", "sans": ["b.example.com"] },
        "certificate": "Q0VSVA==",
        "key": "S0VZ",
        "Store": "default"
      }
    ]
  },
  "other": {
    "Account": null,
    "Certificates": null
  }
}"#;

    #[test]
    fn reads_and_writes_traefiks_format_keeping_other_resolvers() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("acme.json");
        std::fs::write(&path, TRAEFIK).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let store = FileStore::new(&path);
        let all = store.load().expect("load");
        let le = &all["le"];
        let account = le.account.as_ref().expect("account");
        assert_eq!(account.email, "ops@example.com");
        assert_eq!(account.private_key, [1, 2, 3]);
        assert_eq!(
            account.registration.as_ref().expect("registration").uri,
            "https://acme.example/acct/1"
        );
        let cert = &le.certificates()[0];
        assert_eq!(cert.domain.names(), ["a.example.com", "b.example.com"]);
        assert_eq!(cert.certificate, b"CERT");
        assert_eq!(cert.key, b"KEY");
        assert_eq!(cert.store, "default");
        assert!(all["other"].certificates().is_empty());

        let mut updated = le.clone();
        updated.certificates = Some(vec![]);
        store.save("le", &updated).expect("save");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = store.load().expect("reload");
        assert!(again["le"].certificates().is_empty());
        assert!(again.contains_key("other"), "the other resolver is kept");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("\"PrivateKey\": \"AQID\""), "{text}");
        assert!(text.contains("\"Registration\""), "{text}");
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn refuses_a_file_others_can_read_and_reports_bad_json() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("acme.json");
        std::fs::write(&path, "{}").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = FileStore::new(&path).load().expect_err("too open");
        assert!(
            e.to_string().contains("permissions 644") && e.to_string().contains("use 600"),
            "{e}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::write(&path, "{\"le\": [1]}").expect("write");
        let e = FileStore::new(&path).load().expect_err("bad json");
        assert!(e.to_string().contains("not a Traefik acme.json"), "{e}");
        std::fs::write(&path, "").expect("write");
        assert!(FileStore::new(&path).load().expect("empty").is_empty());
        assert!(FileStore::new(dir.path().join("missing.json"))
            .load()
            .expect("missing")
            .is_empty());
    }
}

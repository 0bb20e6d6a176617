//! ACME: certificates ordered, stored and renewed for the routers that ask for them with
//! `tls.certResolver`, as Traefik's `certificatesResolvers.<name>.acme` do.
//!
//! One task per resolver runs on the control plane's runtime. It keeps the resolver's
//! `acme.json` (Traefik's format, see [`store`]), orders a certificate when a router needs
//! names that no stored certificate covers, renews those with less than a third of their
//! lifetime left, and retries failures with backoff. Challenges are answered by the data
//! plane: the task publishes the http-01 key authorization or the tls-alpn-01 certificate,
//! the runtime pushes a table carrying it, and the task tells the CA to validate only once
//! the data plane acknowledged that table. Certificates go out in the table's TLS section, so
//! a new one is served without dropping a connection; a failure never removes a certificate
//! that still works, and nothing here blocks start-up or other routers.

pub mod kv;
pub mod store;

use instant_acme::{
    Account, AccountBuilder, AuthorizationStatus, ChallengeType, ExternalAccountKey, Identifier,
    Key, NewAccount, NewOrder, Order, OrderStatus, RetryPolicy,
};
use kv::{KvAcme, RemoteChallenges};
use ringway_shared::config::static_config::{AcmeKeyType, AcmeResolver};
use ringway_shared::config::StaticConfig;
use ringway_shared::table::{AcmeChallengesSpec, AcmeHttpChallenge, CertificateSpec, TableSpec};
use rustls::pki_types::PrivatePkcs8KeyDer;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use store::{Domain, FileStore, Registration, ResolverData, StoredCertificate};
use tokio::sync::{mpsc, watch};

/// How often stored certificates are checked for renewal (Traefik: daily), besides start-up
/// and every configuration change.
const RENEW_CHECK: Duration = Duration::from_secs(6 * 3600);
/// First retry of a failed order; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);
/// How long a published challenge may take to be live on the data plane.
const LIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The names a router needs a certificate for, main first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CertRequest {
    pub resolver: String,
    pub domains: Vec<String>,
}

/// A certificate a resolver holds.
#[derive(Debug, Clone)]
struct Issued {
    /// The names it was ordered for (`domain.main` and `domain.sans`).
    domains: Vec<String>,
    spec: CertificateSpec,
    /// Seconds since the epoch.
    not_after: i64,
}

impl Issued {
    /// Whether it serves `name` (exactly or by a `*.` wildcard one label deep).
    fn covers(&self, name: &str) -> bool {
        self.spec.names.iter().any(|n| {
            n == name
                || n.strip_prefix("*.").is_some_and(|parent| {
                    name.split_once('.').is_some_and(|(_, rest)| rest == parent)
                })
        })
    }
}

/// What the tasks share with the runtime: the certificates to serve and the challenges to
/// answer, with a revision that counts changes.
#[derive(Default)]
struct Shared {
    revision: u64,
    certificates: BTreeMap<String, Vec<Issued>>,
    http: BTreeMap<String, String>,
    tls_alpn: BTreeMap<String, CertificateSpec>,
    /// Challenges other instances published in a shared store (KV storage).
    remote_http: BTreeMap<String, String>,
    remote_tls_alpn: BTreeMap<String, CertificateSpec>,
}

/// Where a resolver keeps its account and certificates.
enum Storage {
    File(FileStore),
    /// Shared with other instances; taken out while an order runs.
    Kv(Option<Box<KvAcme>>),
}

/// Parses the resolver's certificates; broken ones are logged and left out.
fn issued_all(data: &ResolverData, resolver: &str) -> Vec<Issued> {
    data.certificates()
        .iter()
        .filter_map(|c| match issued_from_store(c, resolver) {
            Ok(i) => Some(i),
            Err(e) => {
                tracing::error!(resolver = %resolver, domain = %c.domain.main, "stored certificate skipped: {e}");
                None
            }
        })
        .collect()
}

/// The resolvers of the static configuration, running.
pub struct Acme {
    shared: Arc<Mutex<Shared>>,
    wanted: BTreeMap<String, watch::Sender<Vec<Vec<String>>>>,
    live: watch::Sender<u64>,
    http_entry_points: Vec<String>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl Acme {
    /// Loads every resolver's storage (its certificates are served from the first table on)
    /// and starts its task. `changed` is signalled whenever certificates or challenges change.
    pub fn start(cfg: &StaticConfig, changed: mpsc::UnboundedSender<()>) -> Acme {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (live, live_rx) = watch::channel(0);
        let mut wanted = BTreeMap::new();
        let mut http_entry_points = Vec::new();
        for (name, r) in &cfg.certificates_resolvers {
            if let Some(ep) = &r.http_challenge_entry_point {
                if !http_entry_points.contains(ep) {
                    http_entry_points.push(ep.clone());
                }
            }
            let storage_text = r.storage.to_string_lossy().into_owned();
            let (storage, data) = match KvAcme::from_storage(&storage_text) {
                Some(Ok(kv)) => {
                    // Loaded by the task; the challenges of every instance are followed.
                    let (follow_tx, follow_rx) = watch::channel(0u64);
                    tokio::spawn(follow_store(
                        kv.fork(),
                        name.clone(),
                        shared.clone(),
                        changed.clone(),
                        follow_tx,
                    ));
                    (
                        Storage::Kv(Some(Box::new(kv))),
                        Some((ResolverData::default(), Some(follow_rx))),
                    )
                }
                Some(Err(e)) => {
                    tracing::error!(resolver = %name, "ACME storage {storage_text:?}: {e}; this resolver serves and orders nothing");
                    continue;
                }
                None => {
                    let store = FileStore::new(&r.storage);
                    match store.load() {
                        Ok(mut all) => {
                            let data = all.remove(name).unwrap_or_default();
                            (Storage::File(store), Some((data, None)))
                        }
                        Err(e) => {
                            tracing::error!(resolver = %name, "ACME storage unusable: {e}; this resolver serves and orders nothing");
                            (Storage::File(store), None)
                        }
                    }
                }
            };
            let Some((data, store_changed)) = data else {
                continue;
            };
            let issued = issued_all(&data, name);
            tracing::info!(resolver = %name, storage = %storage_text, certificates = issued.len(), "ACME resolver ready");
            lock(&shared).certificates.insert(name.clone(), issued);
            let (tx, rx) = watch::channel(Vec::new());
            wanted.insert(name.clone(), tx);
            let task = Task {
                name: name.clone(),
                cfg: r.clone(),
                storage,
                data,
                shared: shared.clone(),
                changed: changed.clone(),
                live: live_rx.clone(),
                wanted: rx,
                store_changed,
                account: None,
                failures: HashMap::new(),
            };
            tokio::spawn(task.run());
        }
        Acme {
            shared,
            wanted,
            live,
            http_entry_points,
        }
    }

    /// Whether any resolver runs.
    pub fn has_resolvers(&self) -> bool {
        !self.wanted.is_empty()
    }

    /// The certificates the routers need now (from the latest configuration).
    pub fn want(&self, requests: &[CertRequest]) {
        let mut by_resolver: BTreeMap<&str, BTreeSet<Vec<String>>> = BTreeMap::new();
        for r in requests {
            by_resolver
                .entry(r.resolver.as_str())
                .or_default()
                .insert(r.domains.clone());
        }
        for (name, tx) in &self.wanted {
            let now: Vec<Vec<String>> = by_resolver
                .remove(name.as_str())
                .map(|s| s.into_iter().collect())
                .unwrap_or_default();
            tx.send_if_modified(|w| {
                let changed = *w != now;
                *w = now;
                changed
            });
        }
    }

    /// Adds the resolvers' certificates and the pending challenges to a table; returns the
    /// revision it carries (see [`Acme::live`]).
    pub fn overlay(&self, table: &mut TableSpec) -> u64 {
        let shared = lock(&self.shared);
        for issued in shared.certificates.values().flatten() {
            table.tls.certificates.push(issued.spec.clone());
        }
        table.acme = AcmeChallengesSpec {
            http_entry_points: self.http_entry_points.clone(),
            http: shared
                .http
                .iter()
                .chain(&shared.remote_http)
                .map(|(token, key_authorization)| AcmeHttpChallenge {
                    token: token.clone(),
                    key_authorization: key_authorization.clone(),
                })
                .collect(),
            tls_alpn: shared
                .tls_alpn
                .values()
                .chain(shared.remote_tls_alpn.values())
                .cloned()
                .collect(),
        };
        shared.revision
    }

    /// The data plane serves a table that carried `revision`.
    pub fn live(&self, revision: u64) {
        self.live.send_if_modified(|r| {
            let newer = revision > *r;
            if newer {
                *r = revision;
            }
            newer
        });
    }

    /// Expiry of every certificate held, for metrics: (resolver, main name, not after).
    pub fn not_after(&self) -> Vec<(String, String, i64)> {
        lock(&self.shared)
            .certificates
            .iter()
            .flat_map(|(r, certs)| {
                certs.iter().map(move |c| {
                    let main = c.domains.first().cloned().unwrap_or_default();
                    (r.clone(), main, c.not_after)
                })
            })
            .collect()
    }
}

/// A stored certificate, parsed and checked.
fn issued_from_store(c: &StoredCertificate, resolver: &str) -> Result<Issued, String> {
    let spec = crate::tls::from_pem(
        &c.certificate,
        &c.key,
        format!("acme resolver {resolver}: {}", c.domain.main),
        "its key",
    )?;
    let not_after = not_after(&spec.chain[0])?;
    let domains = c.domain.names();
    Ok(Issued {
        domains: if domains.is_empty() {
            spec.names.clone()
        } else {
            domains
        },
        spec,
        not_after,
    })
}

fn not_after(der: &[u8]) -> Result<i64, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("invalid certificate: {e}"))?;
    Ok(cert.validity().not_after.timestamp())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// An error with its causes (`HTTP request failure: client error (Connect): Connection
/// refused`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// lego's spelling of a key type, as Traefik stores it in `Account.KeyType`.
fn lego_key_type(k: AcmeKeyType) -> &'static str {
    match k {
        AcmeKeyType::Ec256 => "P256",
        AcmeKeyType::Ec384 => "P384",
        AcmeKeyType::Rsa2048 => "2048",
        AcmeKeyType::Rsa4096 => "4096",
        AcmeKeyType::Rsa8192 => "8192",
    }
}

/// A new private key for a certificate, of the resolver's `keyType`.
fn certificate_key(kind: AcmeKeyType) -> Result<rcgen::KeyPair, String> {
    let bits = match kind {
        AcmeKeyType::Ec256 => {
            return rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(|e| e.to_string())
        }
        AcmeKeyType::Ec384 => {
            return rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
                .map_err(|e| e.to_string())
        }
        AcmeKeyType::Rsa2048 => 2048,
        AcmeKeyType::Rsa4096 => 4096,
        AcmeKeyType::Rsa8192 => 8192,
    };
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
        .map_err(|e| format!("RSA key generation: {e}"))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| format!("RSA key encoding: {e}"))?;
    rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(der.as_bytes().to_vec()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .map_err(|e| e.to_string())
}

/// The self-signed certificate that answers a tls-alpn-01 challenge (RFC 8737).
fn tls_alpn_certificate(domain: &str, digest: &[u8]) -> Result<CertificateSpec, String> {
    let mut params =
        rcgen::CertificateParams::new(vec![domain.to_string()]).map_err(|e| e.to_string())?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok(CertificateSpec {
        source: format!("ACME tls-alpn-01 challenge for {domain}"),
        names: vec![domain.to_ascii_lowercase()],
        chain: vec![cert.der().to_vec()],
        key: key.serialize_der(),
    })
}

/// A challenge answer published on the data plane, removed when the order ends.
enum Published {
    Http(String),
    TlsAlpn(String),
}

/// One resolver's loop.
struct Task {
    name: String,
    cfg: AcmeResolver,
    storage: Storage,
    data: ResolverData,
    shared: Arc<Mutex<Shared>>,
    changed: mpsc::UnboundedSender<()>,
    live: watch::Receiver<u64>,
    wanted: watch::Receiver<Vec<Vec<String>>>,
    /// Bumped when the shared store changed (KV storage): reload the data.
    store_changed: Option<watch::Receiver<u64>>,
    account: Option<Account>,
    /// Domain sets whose last order failed: when to try again, and the delay used.
    failures: HashMap<Vec<String>, (Instant, Duration)>,
}

impl Task {
    async fn run(mut self) {
        self.reload().await;
        loop {
            let wanted = self.wanted.borrow_and_update().clone();
            let mut next = Instant::now() + RENEW_CHECK;
            for domains in self.due(&wanted) {
                if let Some(&(at, _)) = self.failures.get(&domains) {
                    if at > Instant::now() {
                        next = next.min(at);
                        continue;
                    }
                }
                match self.obtain(&domains).await {
                    Ok(()) => {
                        self.failures.remove(&domains);
                    }
                    Err(e) => {
                        let delay = self
                            .failures
                            .get(&domains)
                            .map_or(FIRST_BACKOFF, |&(_, d)| (d * 2).min(MAX_BACKOFF));
                        let held = lock(&self.shared).certificates[&self.name]
                            .iter()
                            .any(|c| domains.iter().all(|d| c.covers(d)));
                        tracing::error!(
                            resolver = %self.name,
                            domains = %domains.join(","),
                            ca = %self.cfg.ca_server,
                            retry_in_secs = delay.as_secs(),
                            "cannot obtain a certificate: {e}; {}",
                            if held {
                                "the current certificate keeps serving"
                            } else {
                                "the default certificate serves meanwhile"
                            }
                        );
                        let at = Instant::now() + delay;
                        self.failures.insert(domains, (at, delay));
                        next = next.min(at);
                    }
                }
            }
            let store_changed = async {
                match &mut self.store_changed {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.wanted.changed() => if r.is_err() { return },
                ok = store_changed => if ok { self.reload().await } else { self.store_changed = None },
                _ = tokio::time::sleep_until(next.into()) => {}
            }
        }
    }

    /// Reads the shared store again (KV storage): certificates another instance obtained or
    /// renewed are served from now on.
    async fn reload(&mut self) {
        let Storage::Kv(Some(kv)) = &mut self.storage else {
            return;
        };
        match kv.load(&self.name).await {
            Ok(data) => self.adopt(data),
            Err(e) => {
                tracing::warn!(resolver = %self.name, "cannot read the shared ACME data: {e}")
            }
        }
    }

    fn adopt(&mut self, data: ResolverData) {
        if data == self.data {
            return;
        }
        self.data = data;
        // The account may have been registered by another instance.
        self.account = None;
        let issued = issued_all(&self.data, &self.name);
        let mut shared = lock(&self.shared);
        shared.certificates.insert(self.name.clone(), issued);
        self.notify(&mut shared);
    }

    /// Domain sets to order now: wanted ones no held certificate covers, and held ones with
    /// less than a third of `certificatesDuration` left.
    fn due(&self, wanted: &[Vec<String>]) -> Vec<Vec<String>> {
        let shared = lock(&self.shared);
        let held = shared
            .certificates
            .get(&self.name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let renew_before = unix_now() + (self.cfg.certificates_duration_hours as i64 * 3600) / 3;
        let mut out: Vec<Vec<String>> = Vec::new();
        for c in held {
            if c.not_after < renew_before && !out.contains(&c.domains) {
                tracing::info!(resolver = %self.name, domains = %c.domains.join(","), "certificate due for renewal");
                out.push(c.domains.clone());
            }
        }
        for w in wanted {
            let covered = w.iter().all(|d| held.iter().any(|c| c.covers(d)));
            if !covered && !out.contains(w) {
                out.push(w.clone());
            }
        }
        out
    }

    fn notify(&self, shared: &mut Shared) -> u64 {
        shared.revision += 1;
        let _ = self.changed.send(());
        shared.revision
    }

    async fn obtain(&mut self, domains: &[String]) -> Result<(), String> {
        if !self.cfg.tls_challenge && self.cfg.http_challenge_entry_point.is_none() {
            return Err("the resolver has neither httpChallenge nor tlsChallenge \
                        (dnsChallenge is not supported)"
                .into());
        }
        let mut kv = match &mut self.storage {
            Storage::File(_) => None,
            Storage::Kv(slot) => Some(slot.take().ok_or("the shared store is busy")?),
        };
        let result = match kv.as_mut() {
            None => self.order(domains, None).await,
            Some(kv) => self.obtain_shared(domains, kv).await,
        };
        if let (Storage::Kv(slot), Some(kv)) = (&mut self.storage, kv) {
            *slot = Some(kv);
        }
        result
    }

    /// With a shared store: under the resolver's lock, load what other instances stored, and
    /// order only if the certificate is still missing or due; store it while the lock holds.
    async fn obtain_shared(&mut self, domains: &[String], kv: &mut KvAcme) -> Result<(), String> {
        let lease = kv.lock(&self.name).await?.ok_or_else(|| {
            format!(
                "another instance held the ACME lock for {} s",
                kv::LOCK_WAIT.as_secs()
            )
        })?;
        tracing::info!(resolver = %self.name, token = lease.token, "holding the ACME lock");
        let provider = kv.provider().clone();
        let ordered = async {
            let data = kv.load(&self.name).await?;
            self.adopt(data);
            if !self.due(&[domains.to_vec()]).iter().any(|d| d == domains) {
                return Ok(false);
            }
            tokio::select! {
                r = self.order(domains, Some(&mut *kv)) => r.map(|()| true),
                lost = kv::keep_renewing(provider, lease.clone()) => Err(lost),
            }
        }
        .await;
        let out = match ordered {
            Ok(true) => match kv.save(&self.name, &self.data, &lease).await {
                Ok(true) => Ok(()),
                Ok(false) => Err("the ACME lock was lost before the certificate was stored: \
                                  it is served here but not shared"
                    .into()),
                Err(e) => Err(format!("storing the certificate: {e}")),
            },
            Ok(false) => {
                tracing::info!(resolver = %self.name, domains = %domains.join(","), "another instance obtained the certificate; loaded from the store");
                Ok(())
            }
            Err(e) => Err(e),
        };
        kv.release(lease).await;
        out
    }

    /// Orders, validates and stores (file storage) one certificate.
    async fn order(
        &mut self,
        domains: &[String],
        mut kv: Option<&mut KvAcme>,
    ) -> Result<(), String> {
        let account = self.account().await?;
        let identifiers: Vec<Identifier> =
            domains.iter().map(|d| Identifier::Dns(d.clone())).collect();
        tracing::info!(resolver = %self.name, domains = %domains.join(","), "ordering a certificate");
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| format!("new order: {}", chain(&e)))?;
        let mut published = Vec::new();
        let result = self
            .validate(domains, &mut order, &mut published, kv.as_deref_mut())
            .await;
        let mut keys = Vec::new();
        {
            let mut shared = lock(&self.shared);
            for p in published {
                match p {
                    Published::Http(token) => {
                        shared.http.remove(&token);
                        keys.push(format!("http/{token}"));
                    }
                    Published::TlsAlpn(domain) => {
                        shared.tls_alpn.remove(&domain);
                        keys.push(format!("alpn/{domain}"));
                    }
                }
            }
            self.notify(&mut shared);
        }
        if let Some(kv) = kv {
            if let Err(e) = kv.unpublish(&keys).await {
                tracing::warn!(resolver = %self.name, "cannot remove the published challenges: {e}");
            }
        }
        let (chain_pem, key_pem) = match result {
            Ok(r) => r,
            Err(e) => return Err(e),
        };
        let stored = StoredCertificate {
            domain: Domain {
                main: domains[0].clone(),
                sans: domains[1..].to_vec(),
            },
            certificate: chain_pem,
            key: key_pem,
            store: "default".into(),
        };
        let issued = issued_from_store(&stored, &self.name)?;
        tracing::info!(
            resolver = %self.name,
            domains = %domains.join(","),
            not_after = issued.not_after,
            "certificate obtained"
        );
        let certs = self.data.certificates.get_or_insert_with(Vec::new);
        certs.retain(|c| c.domain.names() != domains);
        certs.push(stored);
        self.save();
        let mut shared = lock(&self.shared);
        let held = shared.certificates.entry(self.name.clone()).or_default();
        held.retain(|c| c.domains != domains);
        held.push(issued);
        self.notify(&mut shared);
        Ok(())
    }

    /// Writes the file storage (a shared store is written under the lock instead).
    fn save(&self) {
        let Storage::File(store) = &self.storage else {
            return;
        };
        if let Err(e) = store.save(&self.name, &self.data) {
            tracing::error!(resolver = %self.name, "cannot write the ACME storage: {e}; the certificate is served but not kept across restarts");
        }
    }

    /// Answers every pending authorization, then finalizes. Returns the PEM chain and key.
    async fn validate(
        &mut self,
        domains: &[String],
        order: &mut Order,
        published: &mut Vec<Published>,
        mut kv: Option<&mut KvAcme>,
    ) -> Result<(Vec<u8>, Vec<u8>), String> {
        let mut authorizations = order.authorizations();
        while let Some(a) = authorizations.next().await {
            let mut a = a.map_err(|e| format!("authorization: {}", chain(&e)))?;
            match a.status {
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                other => return Err(format!("authorization for {} is {other:?}", a.identifier())),
            }
            let domain = a.identifier().to_string();
            let offered: Vec<ChallengeType> =
                a.challenges.iter().map(|c| c.r#type.clone()).collect();
            let kind = if self.cfg.tls_challenge && offered.contains(&ChallengeType::TlsAlpn01) {
                ChallengeType::TlsAlpn01
            } else if self.cfg.http_challenge_entry_point.is_some()
                && offered.contains(&ChallengeType::Http01)
            {
                ChallengeType::Http01
            } else {
                return Err(format!(
                    "{domain}: the CA offers no challenge this resolver can answer ({offered:?})"
                ));
            };
            let mut challenge = a
                .challenge(kind.clone())
                .ok_or_else(|| format!("{domain}: challenge vanished"))?;
            let key_authorization = challenge.key_authorization();
            let revision = {
                let mut shared = lock(&self.shared);
                if kind == ChallengeType::Http01 {
                    shared.http.insert(
                        challenge.token.clone(),
                        key_authorization.as_str().to_string(),
                    );
                    published.push(Published::Http(challenge.token.clone()));
                } else {
                    let cert = tls_alpn_certificate(&domain, key_authorization.digest().as_ref())?;
                    shared.tls_alpn.insert(domain.to_ascii_lowercase(), cert);
                    published.push(Published::TlsAlpn(domain.to_ascii_lowercase()));
                }
                self.notify(&mut shared)
            };
            if let Some(kv) = kv.as_deref_mut() {
                // Every instance serves it: the CA may reach any of them.
                let shared_answer = if kind == ChallengeType::Http01 {
                    kv.publish_http(&challenge.token, key_authorization.as_str())
                        .await
                } else {
                    use base64::Engine;
                    let digest = base64::engine::general_purpose::STANDARD
                        .encode(key_authorization.digest());
                    kv.publish_tls_alpn(&domain.to_ascii_lowercase(), &digest)
                        .await
                };
                shared_answer.map_err(|e| format!("{domain}: publishing the challenge: {e}"))?;
            }
            self.wait_live(revision).await?;
            if kv.is_some() {
                tokio::time::sleep(kv::FOLLOW_GRACE).await;
            }
            tracing::debug!(resolver = %self.name, %domain, challenge = ?kind, "challenge live on the data plane");
            challenge
                .set_ready()
                .await
                .map_err(|e| format!("{domain}: {}", chain(&e)))?;
        }
        let retries = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .backoff(1.5)
            .timeout(Duration::from_secs(120));
        let status = order
            .poll_ready(&retries)
            .await
            .map_err(|e| format!("waiting for validation: {}", chain(&e)))?;
        if status != OrderStatus::Ready {
            return Err(failure_reason(order)
                .await
                .unwrap_or_else(|| format!("order {status:?}")));
        }
        let kind = self.cfg.key_type;
        let key = tokio::task::spawn_blocking(move || certificate_key(kind))
            .await
            .map_err(|e| e.to_string())??;
        let mut params =
            rcgen::CertificateParams::new(domains.to_vec()).map_err(|e| e.to_string())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params
            .serialize_request(&key)
            .map_err(|e| format!("CSR: {e}"))?;
        order
            .finalize_csr(csr.der())
            .await
            .map_err(|e| format!("finalize: {}", chain(&e)))?;
        let chain_pem = order
            .poll_certificate(&retries)
            .await
            .map_err(|e| format!("certificate download: {}", chain(&e)))?;
        Ok((chain_pem.into_bytes(), key.serialize_pem().into_bytes()))
    }

    /// Waits until the data plane serves a table carrying `revision`.
    async fn wait_live(&mut self, revision: u64) -> Result<(), String> {
        let wait = self.live.wait_for(|&r| r >= revision);
        match tokio::time::timeout(LIVE_TIMEOUT, wait).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err("the runtime stopped".into()),
            Err(_) => Err("the data plane did not apply the challenge in time".into()),
        }
    }

    /// The account: the stored one when its key is usable here, else a new registration
    /// (stored at once).
    async fn account(&mut self) -> Result<Account, String> {
        if let Some(a) = &self.account {
            return Ok(a.clone());
        }
        let stored = self.data.account.as_ref().and_then(|a| {
            let uri = a.registration.as_ref()?.uri.clone();
            let key = PrivatePkcs8KeyDer::from(a.private_key.clone());
            // Traefik's accounts have RSA keys (PKCS#1), which the ACME client cannot sign with.
            match Key::from_pkcs8_der(key.clone_key()) {
                Ok(_) if !uri.is_empty() => Some((uri, key)),
                _ => {
                    tracing::info!(resolver = %self.name, "the stored account key is not an ECDSA P-256 key (Traefik uses RSA): registering a new account; the stored certificates are kept");
                    None
                }
            }
        });
        if let Some((uri, key)) = stored {
            let account = self
                .builder()?
                .from_parts(uri, key, self.cfg.ca_server.clone())
                .await
                .map_err(|e| format!("ACME server {}: {}", self.cfg.ca_server, chain(&e)))?;
            self.account = Some(account.clone());
            return Ok(account);
        }
        let contact = self.cfg.email.as_ref().map(|e| format!("mailto:{e}"));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let eab = match &self.cfg.eab {
            Some(e) => {
                use base64::Engine;
                let hmac = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(e.hmac_encoded.trim_end_matches('='))
                    .map_err(|err| format!("eab.hmacEncoded is not base64url: {err}"))?;
                Some(ExternalAccountKey::new(e.kid.clone(), &hmac))
            }
            None => None,
        };
        let (account, credentials) = self
            .builder()?
            .create(
                &NewAccount {
                    contact: &contacts,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.cfg.ca_server.clone(),
                eab.as_ref(),
            )
            .await
            .map_err(|e| format!("ACME server {}: account: {}", self.cfg.ca_server, chain(&e)))?;
        tracing::info!(resolver = %self.name, account = %account.id(), "ACME account registered");
        self.data.account = Some(store::Account {
            email: self.cfg.email.clone().unwrap_or_default(),
            registration: Some(Registration {
                body: serde_json::json!({ "status": "valid", "contact": contacts }),
                uri: account.id().to_string(),
            }),
            private_key: credentials.private_key().secret_pkcs8_der().to_vec(),
            key_type: lego_key_type(self.cfg.key_type).to_string(),
        });
        self.save();
        self.account = Some(account.clone());
        Ok(account)
    }

    /// An account builder whose HTTP client trusts `caCertificates` when given (e.g. a
    /// private CA or Pebble), else the system's roots.
    fn builder(&self) -> Result<AccountBuilder, String> {
        if self.cfg.ca_certificates.is_empty() {
            return Account::builder().map_err(|e| chain(&e));
        }
        let mut roots = rustls::RootCertStore::empty();
        for path in &self.cfg.ca_certificates {
            let pem = std::fs::read(path)
                .map_err(|e| format!("caCertificates {}: {e}", path.display()))?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| format!("caCertificates {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("caCertificates {}: {e}", path.display()))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector);
        Ok(Account::builder_with_http(Box::new(client)))
    }
}

/// Follows a shared store: the challenges any instance publishes are served here too, and
/// every change tells the resolver's task to reload its data.
async fn follow_store(
    mut kv: KvAcme,
    resolver: String,
    shared: Arc<Mutex<Shared>>,
    changed: mpsc::UnboundedSender<()>,
    store_changed: watch::Sender<u64>,
) {
    let mut last = RemoteChallenges::default();
    loop {
        let mut feed = match kv.watch().await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(resolver = %resolver, "cannot watch the shared ACME store: {e}; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        loop {
            match kv.challenges().await {
                Ok(now) if now != last => {
                    let mut s = lock(&shared);
                    s.remote_http = now.http.clone();
                    s.remote_tls_alpn = now
                        .tls_alpn
                        .iter()
                        .filter_map(|(name, digest)| {
                            use base64::Engine;
                            let digest = base64::engine::general_purpose::STANDARD
                                .decode(digest)
                                .ok()?;
                            tls_alpn_certificate(name, &digest)
                                .ok()
                                .map(|c| (name.clone(), c))
                        })
                        .collect();
                    s.revision += 1;
                    let _ = changed.send(());
                    last = now;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(resolver = %resolver, "cannot read the shared ACME challenges: {e}");
                    break;
                }
            }
            store_changed.send_modify(|n| *n += 1);
            match feed.changed().await {
                Ok(()) => {
                    let _ = feed.drain().await;
                }
                Err(e) => {
                    tracing::warn!(resolver = %resolver, "the shared ACME store's change feed stopped: {e}");
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Why an order became invalid: the first challenge error the CA reports.
async fn failure_reason(order: &mut Order) -> Option<String> {
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut a)) = authorizations.next().await {
        let domain = a.identifier().to_string();
        let Ok(state) = a.refresh().await else {
            continue;
        };
        for c in &state.challenges {
            if let Some(problem) = &c.error {
                return Some(format!(
                    "{domain}: {:?} challenge failed: {problem}",
                    c.r#type
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(names: &[&str]) -> Issued {
        Issued {
            domains: names.iter().map(|s| s.to_string()).collect(),
            spec: CertificateSpec {
                source: String::new(),
                names: names.iter().map(|s| s.to_string()).collect(),
                chain: Vec::new(),
                key: Vec::new(),
            },
            not_after: 0,
        }
    }

    #[test]
    fn coverage_is_exact_or_one_wildcard_label() {
        let c = issued(&["a.example.com", "*.b.example.com"]);
        assert!(c.covers("a.example.com"));
        assert!(c.covers("x.b.example.com"));
        assert!(!c.covers("b.example.com"));
        assert!(!c.covers("y.x.b.example.com"));
        assert!(!c.covers("c.example.com"));
    }

    #[test]
    fn keys_of_every_type_make_a_csr() {
        for kind in [AcmeKeyType::Ec256, AcmeKeyType::Ec384, AcmeKeyType::Rsa2048] {
            let key = certificate_key(kind).expect("key");
            let params =
                rcgen::CertificateParams::new(vec!["a.example.com".to_string()]).expect("params");
            params.serialize_request(&key).expect("csr");
        }
    }

    #[test]
    fn the_tls_alpn_certificate_carries_the_acme_identifier() {
        let cert = tls_alpn_certificate("a.example.com", &[7u8; 32]).expect("cert");
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert.chain[0]).expect("parse");
        let oid = x509_parser::oid_registry::Oid::from(&[1, 3, 6, 1, 5, 5, 7, 1, 31]).expect("oid");
        let ext = parsed
            .extensions()
            .iter()
            .find(|e| e.oid == oid)
            .expect("acmeIdentifier extension");
        assert!(ext.critical);
        assert!(ext.value.ends_with(&[7u8; 32]));
    }
}

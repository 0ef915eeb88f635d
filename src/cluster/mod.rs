//! Cluster mode: one steering state for a fleet, kept in etcd.
//!
//! With a `[cluster]` section the state owner ([`crate::state::StateStore`]) commits
//! drains and endpoint disables to etcd instead of `state.json`, and every node follows
//! the prefix with a watch. What etcd holds under the prefix:
//!
//! - `state/drain/<zone>`: the zone's drains (JSON object, `{}` once undrained);
//! - `state/disabled/<ip>`: the endpoint's disable (`null` once enabled);
//! - `audit/<time>-<node>-<n>`: one audit record per committed change, written in the
//!   same transaction as the change;
//! - `nodes/<node>`: each live node's record, attached to its lease (membership);
//! - `zones`: the fleet's zones directory, when `zones = "etcd"` (see [`zones`]).
//!
//! State keys are overwritten, never deleted, so the newest `mod_revision` among them is
//! the revision of the state a node has applied, the same number on every node once they
//! converge. This module owns the etcd session, the watch, membership and the local disk
//! cache; the request path never calls it: it reads the same arc-swap snapshot of
//! overrides as in single-node mode, which the watch task replaces.

mod cache;
mod endpoints;
mod membership;
mod session;
pub mod zones;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use etcd_client::{Client, Compare, CompareOp, ConnectOptions, Txn, TxnOp, TxnOpResponse};
use serde::Deserialize;
use serde_json::{Value, json};
use thiserror::Error;
use tokio_util::sync::CancellationToken;

use crate::epoch::Epoch;
use crate::state::{AuditRecord, Change, Disable, Drain, Overrides};

/// How long one etcd call may take before the control plane counts as unavailable.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Membership lease: a node that stops renewing disappears within this.
pub const LEASE_TTL_SECS: i64 = 10;
/// Attempts of a read-modify-write before giving up under heavy contention.
const MAX_COMMIT_ATTEMPTS: usize = 32;

/// The `[cluster]` section of the server config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// etcd endpoints, e.g. `["http://127.0.0.1:2379"]`.
    pub etcd: Vec<String>,
    /// Every key lives under it.
    pub prefix: String,
    /// This node's name; the hostname when absent.
    pub node: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Where zones come from: `files` (default) or `etcd`.
    #[serde(default)]
    pub zones: ZonesSource,
}

/// Where a node takes its zones from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZonesSource {
    #[default]
    Files,
    Etcd,
}

impl ClusterConfig {
    /// Checks what can be checked without etcd; `Err` names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.etcd.is_empty() {
            return Err(("cluster.etcd", "needs at least one endpoint".into()));
        }
        if let Some(bad) = self
            .etcd
            .iter()
            .find(|e| !(e.starts_with("http://") || e.starts_with("https://")))
        {
            return Err((
                "cluster.etcd",
                format!("{bad:?} must start with http:// or https://"),
            ));
        }
        if !self.prefix.starts_with('/') || self.prefix.trim_end_matches('/').is_empty() {
            return Err((
                "cluster.prefix",
                format!(
                    "{:?} must be an absolute key such as \"/httpdns/prod\"",
                    self.prefix
                ),
            ));
        }
        if self
            .node
            .as_deref()
            .is_some_and(|n| n.is_empty() || n.contains('/'))
        {
            return Err(("cluster.node", "must be non-empty and without '/'".into()));
        }
        if self.username.is_some() != self.password_file.is_some() {
            return Err((
                "cluster.username",
                "username and password_file go together".into(),
            ));
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err((
                "cluster.cert_file",
                "cert_file and key_file go together".into(),
            ));
        }
        Ok(())
    }

    /// Resolves relative file paths against the config file's directory.
    pub fn anchor(&mut self, base: &Path) {
        for path in [
            &mut self.password_file,
            &mut self.ca_file,
            &mut self.cert_file,
            &mut self.key_file,
        ]
        .into_iter()
        .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    fn node_name(&self) -> String {
        self.node.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_else(|| "httpdns".into())
        })
    }
}

/// Failures of the control plane, as the state owner reports them.
#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("etcd is unreachable: {0}")]
    Unavailable(String),
    #[error("changed since the given revision; now at revision {revision}")]
    Conflict { revision: i64 },
    #[error("cluster config: {0}")]
    Config(String),
}

fn unavailable(e: etcd_client::Error) -> ClusterError {
    ClusterError::Unavailable(e.to_string())
}

/// Key layout under the configured prefix.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }
    fn state(&self) -> String {
        format!("{}/state/", self.prefix)
    }
    fn drain(&self, zone: &str) -> String {
        format!("{}/state/drain/{zone}", self.prefix)
    }
    fn disabled(&self, ip: IpAddr) -> String {
        format!("{}/state/disabled/{ip}", self.prefix)
    }
    fn nodes(&self) -> String {
        format!("{}/nodes/", self.prefix)
    }
    fn node(&self, node: &str) -> String {
        format!("{}/nodes/{node}", self.prefix)
    }
    fn zones(&self) -> String {
        format!("{}/zones", self.prefix)
    }
    fn audit(&self, node: &str, now_ms: u64, seq: u64) -> String {
        format!("{}/audit/{now_ms:013}-{node}-{seq}", self.prefix)
    }
}

/// The state keys as etcd holds them: key → (value, mod_revision).
type StateKeys = BTreeMap<String, (Vec<u8>, i64)>;

/// Turns the state keys into the overrides the request path reads; a value that does
/// not parse is skipped with a warning rather than stopping the node.
fn overrides_from(keys: &Keys, state: &StateKeys) -> Overrides {
    let drain_prefix = keys.drain("");
    let disabled_prefix = format!("{}/state/disabled/", keys.prefix);
    let mut overrides = Overrides::default();
    for (key, (value, _)) in state {
        if let Some(zone) = key.strip_prefix(&drain_prefix) {
            match serde_json::from_slice::<BTreeMap<String, Drain>>(value) {
                Ok(drains) if drains.is_empty() => {}
                Ok(drains) => {
                    overrides.drains.insert(zone.to_string(), drains);
                }
                Err(e) => tracing::warn!(key, error = %e, "ignoring unreadable drain in etcd"),
            }
        } else if let Some(ip) = key.strip_prefix(&disabled_prefix) {
            let parsed = ip
                .parse::<IpAddr>()
                .map_err(|e| e.to_string())
                .and_then(|ip| {
                    serde_json::from_slice::<Option<Disable>>(value)
                        .map(|d| (ip, d))
                        .map_err(|e| e.to_string())
                });
            match parsed {
                Ok((ip, Some(disable))) => {
                    overrides.disabled.insert(ip, disable);
                }
                Ok((_, None)) => {}
                Err(error) => tracing::warn!(key, error, "ignoring unreadable disable in etcd"),
            }
        }
    }
    overrides
}

/// The etcd key and value a change leaves behind, read from the overrides after it.
fn entry_of(keys: &Keys, change: &Change, after: &Overrides) -> (String, Vec<u8>) {
    match change {
        Change::Drain { zone, .. } | Change::Undrain { zone, .. } => (
            keys.drain(zone),
            serde_json::to_vec(&after.drains.get(zone).cloned().unwrap_or_default())
                .unwrap_or_default(),
        ),
        Change::Disable { ip, .. } | Change::Enable { ip, .. } => (
            keys.disabled(*ip),
            serde_json::to_vec(&after.disabled.get(ip)).unwrap_or_default(),
        ),
    }
}

/// What a committed change returns to the state owner.
pub struct Committed {
    pub record: AuditRecord,
    /// The etcd revision of the change.
    pub revision: i64,
}

/// Connection state, shared by the session and membership tasks and the admin views.
struct Status {
    connected: AtomicBool,
    since_ms: AtomicU64,
    /// Revision of the state applied here (newest mod_revision of a state key).
    revision: AtomicI64,
}

impl Status {
    fn set_connected(&self, connected: bool) {
        if self.connected.swap(connected, Ordering::AcqRel) != connected {
            self.since_ms
                .store(crate::epoch::now_ms(), Ordering::Release);
            metrics::gauge!("httpdns_cluster_connected").set(if connected { 1.0 } else { 0.0 });
            if connected {
                tracing::info!("etcd connected");
            } else {
                tracing::warn!("etcd disconnected: serving the last applied state");
            }
        }
    }
}

/// A node's view of the fleet: its etcd session and what it applied.
pub struct Cluster {
    node: String,
    keys: Keys,
    client: ArcSwapOption<Client>,
    /// The configured members, probed one by one; the client routes around failing ones.
    endpoints: endpoints::Endpoints,
    status: Status,
    overrides: Arc<ArcSwap<Overrides>>,
    epoch: Arc<Epoch>,
    cache_path: PathBuf,
    /// Wakes writers waiting for the watch to apply their revision, and membership.
    applied: tokio::sync::watch::Sender<i64>,
    audit_seq: AtomicU64,
    /// Last membership listing seen, shown while etcd is unreachable.
    last_nodes: ArcSwap<Vec<Value>>,
    /// Zones from etcd: where they come from, what was applied, the last rejection.
    zones_source: ZonesSource,
    zones_revision: AtomicI64,
    zones_error: ArcSwapOption<String>,
    /// Set once the server has its reloader; pushed zones wait for it.
    zones_sink: tokio::sync::watch::Sender<Option<ZonesSink>>,
}

/// What a pushed zones set needs on this node: its config (IP databases, zones_dir)
/// for validation and the reloader that swaps the new model in.
#[derive(Clone)]
pub struct ZonesSink {
    pub config: crate::config::ServerConfig,
    pub reloader: Arc<crate::reload::Reloader>,
}

impl Cluster {
    /// Starts following etcd. `overrides` is the state owner's snapshot, already holding
    /// what this node should serve before etcd answers (its disk cache, or the local
    /// `state.json` it will import); `import` is that single-node state to migrate.
    pub(crate) fn start(
        config: &ClusterConfig,
        state_dir: &Path,
        overrides: Arc<ArcSwap<Overrides>>,
        epoch: Arc<Epoch>,
        import: Option<(PathBuf, Overrides)>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, ClusterError> {
        config
            .validate()
            .map_err(|(field, message)| ClusterError::Config(format!("{field}: {message}")))?;
        let cache_path = state_dir.join(cache::CACHE_FILE);
        let cached = cache::load(&cache_path);
        if let Some(cached) = &cached {
            overrides.store(Arc::new(cached.overrides.clone()));
        }
        let revision = cached.as_ref().map_or(0, |c| c.revision);
        let options = connect_options(config)?;
        let cluster = Arc::new(Self {
            node: config.node_name(),
            keys: Keys::new(&config.prefix),
            client: ArcSwapOption::empty(),
            endpoints: endpoints::Endpoints::new(&config.etcd),
            status: Status {
                connected: AtomicBool::new(false),
                since_ms: AtomicU64::new(crate::epoch::now_ms()),
                revision: AtomicI64::new(revision),
            },
            overrides,
            epoch,
            cache_path,
            applied: tokio::sync::watch::channel(revision).0,
            audit_seq: AtomicU64::new(0),
            last_nodes: ArcSwap::from_pointee(Vec::new()),
            zones_source: config.zones,
            zones_revision: AtomicI64::new(cached.as_ref().map_or(0, |c| c.zones_revision)),
            zones_error: ArcSwapOption::empty(),
            zones_sink: tokio::sync::watch::channel(None).0,
        });
        metrics::gauge!("httpdns_cluster_connected").set(0.0);
        tokio::spawn(endpoints::run(
            Arc::clone(&cluster),
            options.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(session::run(
            Arc::clone(&cluster),
            config.etcd.clone(),
            options,
            import,
            shutdown.clone(),
        ));
        tokio::spawn(membership::run(Arc::clone(&cluster), shutdown));
        Ok(cluster)
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Revision of the state this node has applied.
    pub fn revision(&self) -> i64 {
        self.status.revision.load(Ordering::Acquire)
    }

    /// Revision of the zones set this node serves (0: its own files).
    pub fn zones_revision(&self) -> i64 {
        self.zones_revision.load(Ordering::Acquire)
    }

    /// Hands the cluster what applying pushed zones needs (zones = "etcd").
    pub fn attach_zones(&self, sink: ZonesSink) {
        self.zones_sink.send_replace(Some(sink));
    }

    /// Validates and applies a pushed zones set; a rejected one leaves the node on its
    /// last good zones and says so.
    async fn apply_zones(&self, set: zones::ZonesSet, revision: i64) {
        if revision <= self.zones_revision() {
            return;
        }
        let mut sinks = self.zones_sink.subscribe();
        let Ok(sink) = sinks.wait_for(Option::is_some).await.map(|s| s.clone()) else {
            return;
        };
        let Some(sink) = sink else { return };
        let config = sink.config.clone();
        let installed = tokio::task::spawn_blocking(move || set.install(&config))
            .await
            .unwrap_or_else(|e| Err(vec![e.to_string()]));
        let outcome = match installed {
            Ok(()) => sink
                .reloader
                .reload("zones pushed to etcd")
                .await
                .map(|_| ()),
            Err(errors) => Err(errors),
        };
        match outcome {
            Ok(()) => {
                self.zones_revision.store(revision, Ordering::Release);
                self.zones_error.store(None);
                tracing::info!(zones_revision = revision, "zones from etcd applied");
                if let Err(e) = cache::store(
                    &self.cache_path,
                    self.revision(),
                    revision,
                    &self.overrides.load(),
                ) {
                    tracing::error!(error = %e, "cannot write the cluster state cache");
                }
                self.applied.send_modify(|_| {});
            }
            Err(errors) => {
                let message = errors.join("; ");
                tracing::error!(zones_revision = revision, errors = %message, "zones from etcd rejected; serving the last good zones");
                metrics::counter!("httpdns_cluster_zones_rejected_total").increment(1);
                self.zones_error
                    .store(Some(Arc::new(format!("revision {revision}: {message}"))));
            }
        }
    }

    pub fn connected(&self) -> bool {
        self.status.connected.load(Ordering::Acquire)
    }

    /// Seconds since the node last heard from etcd (0 while connected).
    pub fn stale_seconds(&self) -> f64 {
        if self.connected() {
            0.0
        } else {
            let since = self.status.since_ms.load(Ordering::Acquire);
            crate::epoch::now_ms().saturating_sub(since) as f64 / 1000.0
        }
    }

    /// Sets the cluster gauges; called when metrics are scraped.
    pub fn export_metrics(&self) {
        metrics::gauge!("httpdns_cluster_connected").set(if self.connected() { 1.0 } else { 0.0 });
        metrics::gauge!("httpdns_cluster_stale_seconds").set(self.stale_seconds());
        metrics::gauge!("httpdns_cluster_revision").set(self.revision() as f64);
        self.endpoints.export_metrics();
    }

    /// This node's own membership record.
    fn own_record(&self) -> Value {
        json!({
            "node": self.node,
            "revision": self.revision(),
            "zones_revision": self.zones_revision(),
            "last_seen_ms": crate::epoch::now_ms(),
        })
    }

    /// The `/admin/cluster` view: connection, applied revision, every live node and
    /// every configured etcd member.
    pub async fn view(&self) -> Value {
        let nodes = match self.list_nodes().await {
            Ok(nodes) => {
                self.last_nodes.store(Arc::new(nodes.clone()));
                nodes
            }
            Err(_) => (**self.last_nodes.load()).clone(),
        };
        let mut view = self.summary();
        view["zones_revision"] = json!(self.zones_revision());
        view["zones_error"] = json!(self.zones_error.load_full().map(|e| (*e).clone()));
        view["nodes"] = json!(nodes);
        view["endpoints"] = self.endpoints.view();
        view
    }

    /// A short summary for `/admin/zones`.
    pub fn summary(&self) -> Value {
        json!({
            "node": self.node,
            "etcd": if self.connected() { "connected" } else { "disconnected" },
            "since_ms": self.status.since_ms.load(Ordering::Acquire),
            "stale_seconds": self.stale_seconds(),
            "revision": self.revision(),
        })
    }

    async fn list_nodes(&self) -> Result<Vec<Value>, ClusterError> {
        let mut client = self.client()?;
        let response = tokio::time::timeout(
            CALL_TIMEOUT,
            client.get(
                self.keys.nodes(),
                Some(etcd_client::GetOptions::new().with_prefix()),
            ),
        )
        .await
        .map_err(|_| ClusterError::Unavailable("timed out listing nodes".into()))?
        .map_err(unavailable)?;
        Ok(response
            .kvs()
            .iter()
            .filter_map(|kv| serde_json::from_slice(kv.value()).ok())
            .collect())
    }

    fn client(&self) -> Result<Client, ClusterError> {
        self.client
            .load_full()
            .map(|c| (*c).clone())
            .ok_or_else(|| ClusterError::Unavailable("not connected yet".into()))
    }

    /// Commits `change` (made by `by`) to etcd together with its audit record, then
    /// waits until this node's watch applied it, so the caller reads its own write.
    /// `if_revision`: fail with a conflict when the key changed after that revision.
    pub async fn commit(
        &self,
        change: &Change,
        by: &str,
        if_revision: Option<i64>,
    ) -> Result<Committed, ClusterError> {
        let client = self.client()?;
        let now = crate::epoch::now_ms();
        let probe = entry_of(&self.keys, change, &Overrides::default()).0;
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let got = retried(|| {
                let mut client = client.clone();
                let key = probe.clone();
                async move { client.get(key, None).await }
            })
            .await?;
            let (value, mod_revision) = got.kvs().first().map_or((None, 0), |kv| {
                (Some(kv.value().to_vec()), kv.mod_revision())
            });
            if let Some(n) = if_revision
                && mod_revision > n
            {
                return Err(ClusterError::Conflict {
                    revision: mod_revision,
                });
            }
            // Compute from this node's view with the key replaced by what etcd holds now,
            // so the audit record shows the whole state and the entry is exact.
            let mut view = StateKeys::new();
            if let Some(value) = value {
                view.insert(probe.clone(), (value, mod_revision));
            }
            let mut before = (**self.overrides.load()).clone();
            let fresh = overrides_from(&self.keys, &view);
            match change {
                Change::Drain { zone, .. } | Change::Undrain { zone, .. } => {
                    match fresh.drains.get(zone) {
                        Some(d) => before.drains.insert(zone.clone(), d.clone()),
                        None => before.drains.remove(zone),
                    };
                }
                Change::Disable { ip, .. } | Change::Enable { ip, .. } => {
                    match fresh.disabled.get(ip) {
                        Some(d) => before.disabled.insert(*ip, d.clone()),
                        None => before.disabled.remove(ip),
                    };
                }
            }
            let after = change.apply(&before, by, now);
            let record = AuditRecord::new(change, by, &before, &after);
            let (key, value) = entry_of(&self.keys, change, &after);
            let seq = self.audit_seq.fetch_add(1, Ordering::Relaxed);
            let audit_key = self.keys.audit(&self.node, now, seq);
            let audit = serde_json::to_vec(&record).unwrap_or_default();
            let txn = Txn::new()
                .when([Compare::mod_revision(
                    key.clone(),
                    CompareOp::Equal,
                    mod_revision,
                )])
                .and_then([
                    TxnOp::put(key.clone(), value, None),
                    TxnOp::put(audit_key.clone(), audit, None),
                ])
                .or_else([TxnOp::get(key.clone(), None), TxnOp::get(audit_key, None)]);
            // A retried transaction is the same transaction: if an earlier try did commit
            // (its answer was lost), its audit key exists and that is our success.
            let response = retried(|| {
                let mut client = client.clone();
                let txn = txn.clone();
                async move { client.txn(txn).await }
            })
            .await?;
            let revision = response.header().map_or(0, |h| h.revision());
            let gets: Vec<Option<i64>> = response
                .op_responses()
                .into_iter()
                .map(|op| match op {
                    TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.mod_revision()),
                    _ => None,
                })
                .collect();
            let committed_at = if response.succeeded() {
                Some(revision)
            } else {
                gets.get(1).copied().flatten()
            };
            if let Some(revision) = committed_at {
                self.wait_applied(revision).await;
                return Ok(Committed { record, revision });
            }
            if if_revision.is_some() {
                let now_at = gets.first().copied().flatten().unwrap_or(revision);
                return Err(ClusterError::Conflict { revision: now_at });
            }
            // Another node wrote the key between our read and our write: recompute from
            // its value so neither change is lost.
        }
        Err(ClusterError::Unavailable(format!(
            "{probe}: still contended after {MAX_COMMIT_ATTEMPTS} attempts"
        )))
    }

    /// Waits (bounded) until the watch applied `revision`; a commit is durable in etcd
    /// either way, so a slow watch only delays what this node shows.
    async fn wait_applied(&self, revision: i64) {
        let mut applied = self.applied.subscribe();
        let _ = tokio::time::timeout(CALL_TIMEOUT, applied.wait_for(|r| *r >= revision)).await;
    }

    /// Publishes a new full view of the state keys: swap the overrides, bump the epoch
    /// when they changed, persist the disk cache, wake writers and membership.
    fn publish(&self, state: &StateKeys, revision: i64) {
        let overrides = overrides_from(&self.keys, state);
        let changed = **self.overrides.load() != overrides;
        if changed {
            self.overrides.store(Arc::new(overrides.clone()));
            let epoch = self.epoch.bump();
            tracing::info!(revision, epoch, "cluster state applied");
        }
        let previous = self.status.revision.swap(revision, Ordering::AcqRel);
        if changed || previous != revision {
            if let Err(e) = cache::store(
                &self.cache_path,
                revision,
                self.zones_revision(),
                &overrides,
            ) {
                tracing::error!(error = %e, "cannot write the cluster state cache");
            }
        }
        self.applied.send_replace(revision);
    }
}

async fn timed<T>(
    call: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, ClusterError> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .map_err(|_| ClusterError::Unavailable("etcd call timed out".into()))?
        .map_err(unavailable)
}

/// One etcd call, retried briefly on failure: with several endpoints, a request can
/// land on a member that just died before the client stops choosing it. Only calls
/// that are safe to repeat go through here.
async fn retried<T, F, Fut>(mut call: F) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    let deadline = tokio::time::Instant::now() + CALL_TIMEOUT;
    let mut pause = Duration::from_millis(50);
    loop {
        match timed(call()).await {
            Ok(value) => return Ok(value),
            Err(e) if tokio::time::Instant::now() + pause >= deadline => return Err(e),
            Err(e) => {
                tracing::debug!(error = %e, "etcd call failed; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
    }
}

pub(crate) fn connect_options(config: &ClusterConfig) -> Result<ConnectOptions, ClusterError> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(CALL_TIMEOUT)
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
        .with_keep_alive_while_idle(true)
        .with_require_leader(true);
    if let (Some(user), Some(file)) = (&config.username, &config.password_file) {
        let password = std::fs::read_to_string(file)
            .map_err(|e| ClusterError::Config(format!("password_file {}: {e}", file.display())))?;
        options = options.with_user(user.clone(), password.trim_end().to_string());
    }
    if config.ca_file.is_some() || config.cert_file.is_some() {
        let read = |path: &PathBuf| {
            std::fs::read(path)
                .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))
        };
        let mut tls = etcd_client::TlsOptions::new();
        if let Some(ca) = &config.ca_file {
            tls = tls.ca_certificate(etcd_client::Certificate::from_pem(read(ca)?));
        }
        if let (Some(cert), Some(key)) = (&config.cert_file, &config.key_file) {
            tls = tls.identity(etcd_client::Identity::from_pem(read(cert)?, read(key)?));
        }
        options = options.with_tls(tls);
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> ClusterConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn state_keys_become_overrides_and_tombstones_vanish() {
        let keys = Keys::new("/httpdns/prod/");
        let drain = Drain {
            from_weight: 100.0,
            to_weight: 0.0,
            start_ms: 1,
            end_ms: 1,
            reason: "cut".into(),
            by: "sre".into(),
        };
        let mut state = StateKeys::new();
        let drains = BTreeMap::from([("*".to_string(), drain)]);
        state.insert(keys.drain("gz"), (serde_json::to_vec(&drains).unwrap(), 5));
        state.insert(keys.drain("sh"), (b"{}".to_vec(), 6));
        state.insert(
            keys.disabled("192.0.2.1".parse().unwrap()),
            (b"null".to_vec(), 7),
        );
        state.insert(keys.drain("bad"), (b"{not json".to_vec(), 8));
        let overrides = overrides_from(&keys, &state);
        assert_eq!(overrides.drains.keys().collect::<Vec<_>>(), ["gz"]);
        assert!(overrides.disabled.is_empty());
        assert_eq!(overrides.keep_share("gz", "a", 10), 0.0);
    }

    #[test]
    fn config_errors_name_the_field() {
        let ok = config("etcd = [\"http://127.0.0.1:2379\"]\nprefix = \"/httpdns/prod\"\n");
        assert!(ok.validate().is_ok());
        let no_scheme = config("etcd = [\"127.0.0.1:2379\"]\nprefix = \"/p\"\n");
        assert_eq!(no_scheme.validate().unwrap_err().0, "cluster.etcd");
        let relative = config("etcd = [\"http://127.0.0.1:2379\"]\nprefix = \"p\"\n");
        assert_eq!(relative.validate().unwrap_err().0, "cluster.prefix");
        let half_auth =
            config("etcd = [\"http://127.0.0.1:2379\"]\nprefix = \"/p\"\nusername = \"u\"\n");
        assert_eq!(half_auth.validate().unwrap_err().0, "cluster.username");
        assert!(toml::from_str::<ClusterConfig>("etcd = []\nprefix = \"/p\"\nzone = 1\n").is_err());
    }
}

//! SRE overrides: zone drains and endpoint disables, persisted and audited.
//!
//! [`StateStore`] is the only writer and owns the rules of a commit: a change is computed
//! from the current overrides, made durable, published through `arc-swap`, and the
//! steering epoch is bumped, before the caller hears "done". Single node: the audit
//! record is appended (fsynced) to `audit.log` first, then `state.json` is replaced
//! atomically (temp file, fsync, rename, fsync directory); a failed state write takes
//! the audit record back, and on open a last audit record whose change never reached
//! `state.json` (a crash between the two) is removed. So after any crash the disk holds
//! the old state, or the new state with its audit record, and an error answer never
//! leaves a change behind. In cluster mode (`[cluster]`) the change is committed to etcd
//! with its audit record in one transaction instead (see [`crate::cluster`]). A state
//! file that cannot be read or parsed stops the server from starting, because serving
//! traffic into a zone an SRE drained is worse than not serving at all.

mod persist;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::cluster::{Cluster, ClusterConfig, ClusterError};
use crate::epoch::Epoch;

pub(crate) use persist::write_atomically;

/// The domain key of a drain that covers every domain of its zone.
pub const ALL_DOMAINS: &str = "*";

/// Errors of the state store.
#[derive(Debug, Error)]
pub enum StateError {
    #[error(
        "state file {path} is unreadable or corrupt: {message}; fix or remove it, or start with --reset-state to discard every drain"
    )]
    Corrupt { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Cluster mode: etcd could not commit the change; nothing changed.
    #[error("control plane unavailable: {0}")]
    ControlPlaneUnavailable(String),
    /// Cluster mode: `if_revision` was older than the key's last change.
    #[error("changed since the given revision; now at revision {revision}")]
    Conflict { revision: i64 },
    /// `if_revision` given to a single node, which has no revisions.
    #[error("if_revision needs cluster mode ([cluster] in the server config)")]
    NoRevisions,
    #[error("{0}")]
    Cluster(String),
}

impl From<ClusterError> for StateError {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::Unavailable(message) => Self::ControlPlaneUnavailable(message),
            ClusterError::Conflict { revision } => Self::Conflict { revision },
            ClusterError::Config(message) => Self::Cluster(message),
        }
    }
}

/// A drain of one zone for one domain (or all of them), possibly ramping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drain {
    /// Percent of normal traffic kept when the ramp started.
    pub from_weight: f64,
    /// Percent kept once the ramp ends.
    pub to_weight: f64,
    pub start_ms: u64,
    pub end_ms: u64,
    pub reason: String,
    pub by: String,
}

impl Drain {
    /// Share (0..=1) kept at `now_ms`, moving linearly along the ramp.
    pub fn keep_share(&self, now_ms: u64) -> f64 {
        let weight = if now_ms >= self.end_ms || self.end_ms <= self.start_ms {
            self.to_weight
        } else if now_ms <= self.start_ms {
            self.from_weight
        } else {
            let progress = (now_ms - self.start_ms) as f64 / (self.end_ms - self.start_ms) as f64;
            self.from_weight + (self.to_weight - self.from_weight) * progress
        };
        (weight / 100.0).clamp(0.0, 1.0)
    }

    /// Fully restored and done ramping: the entry can be forgotten.
    fn is_finished(&self, now_ms: u64) -> bool {
        self.to_weight >= 100.0 && now_ms >= self.end_ms
    }
}

/// A disabled endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disable {
    pub reason: String,
    pub by: String,
    pub at_ms: u64,
}

/// Every override in force. Zones are named, not indexed, so they survive reloads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// zone → domain (or `*`) → drain.
    #[serde(default)]
    pub drains: BTreeMap<String, BTreeMap<String, Drain>>,
    #[serde(default)]
    pub disabled: BTreeMap<IpAddr, Disable>,
}

impl Overrides {
    /// Share of its traffic `zone` keeps for `domain` at `now_ms` (1.0 = not drained).
    pub fn keep_share(&self, zone: &str, domain: &str, now_ms: u64) -> f64 {
        self.drains.get(zone).map_or(1.0, |by_domain| {
            by_domain
                .get(domain)
                .or_else(|| by_domain.get(ALL_DOMAINS))
                .map_or(1.0, |d| d.keep_share(now_ms))
        })
    }

    /// Overrides that no longer match anything in `model`: drains of zones and disables
    /// of endpoints a reload removed or renamed. They stay stored (a rename back revives
    /// them) but steer nothing, which an operator must hear about.
    pub fn orphans(&self, model: &crate::model::Model) -> Vec<Orphan> {
        let drains = self
            .drains
            .keys()
            .filter(|zone| model.zone_id(zone).is_none())
            .map(|zone| Orphan::Drain { zone: zone.clone() });
        let disables = self
            .disabled
            .keys()
            .filter(|ip| {
                !model
                    .zones
                    .iter()
                    .any(|z| z.endpoints.iter().any(|e| e.ip == **ip))
            })
            .map(|ip| Orphan::Disable { endpoint: *ip });
        drains.chain(disables).collect()
    }

    pub fn is_disabled(&self, ip: IpAddr) -> bool {
        self.disabled.contains_key(&ip)
    }
}

/// An override the current model has nothing for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Orphan {
    /// A drain of a zone the zones files no longer define.
    Drain { zone: String },
    /// A disable of an IP that is no longer an endpoint of any zone.
    Disable { endpoint: IpAddr },
}

impl std::fmt::Display for Orphan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Drain { zone } => write!(f, "drain of zone {zone:?}"),
            Self::Disable { endpoint } => write!(f, "disable of endpoint {endpoint}"),
        }
    }
}

/// One admin change.
#[derive(Debug, Clone)]
pub enum Change {
    Drain {
        zone: String,
        /// Percent kept (0 = full drain).
        weight: f64,
        /// Empty: every domain of the zone.
        domains: Vec<String>,
        over_ms: u64,
        reason: String,
    },
    Undrain {
        zone: String,
        over_ms: u64,
        reason: String,
    },
    Disable {
        ip: IpAddr,
        reason: String,
    },
    Enable {
        ip: IpAddr,
        reason: String,
    },
}

impl Change {
    fn action(&self) -> &'static str {
        match self {
            Self::Drain { .. } => "zone.drain",
            Self::Undrain { .. } => "zone.undrain",
            Self::Disable { .. } => "endpoint.disable",
            Self::Enable { .. } => "endpoint.enable",
        }
    }

    fn target(&self) -> String {
        match self {
            Self::Drain { zone, .. } | Self::Undrain { zone, .. } => zone.clone(),
            Self::Disable { ip, .. } | Self::Enable { ip, .. } => ip.to_string(),
        }
    }

    fn reason(&self) -> &str {
        match self {
            Self::Drain { reason, .. }
            | Self::Undrain { reason, .. }
            | Self::Disable { reason, .. }
            | Self::Enable { reason, .. } => reason,
        }
    }

    /// The overrides after this change, made by `by` at `now_ms`.
    pub fn apply(&self, current: &Overrides, by: &str, now_ms: u64) -> Overrides {
        let mut next = current.clone();
        for by_domain in next.drains.values_mut() {
            by_domain.retain(|_, d| !d.is_finished(now_ms));
        }
        next.drains.retain(|_, by_domain| !by_domain.is_empty());
        let ramp = |from: f64, to: f64, over_ms: u64, reason: &str| Drain {
            from_weight: from,
            to_weight: to,
            start_ms: now_ms,
            end_ms: now_ms + over_ms,
            reason: reason.to_string(),
            by: by.to_string(),
        };
        match self {
            Self::Drain {
                zone,
                weight,
                domains,
                over_ms,
                reason,
            } => {
                let by_domain = next.drains.entry(zone.clone()).or_default();
                if domains.is_empty() {
                    // A whole-zone drain ramps from the zone-wide share and replaces
                    // narrower drains: one number describes the zone afterwards.
                    let from = current.keep_share(zone, ALL_DOMAINS, now_ms) * 100.0;
                    by_domain.clear();
                    by_domain.insert(ALL_DOMAINS.into(), ramp(from, *weight, *over_ms, reason));
                } else {
                    for domain in domains {
                        let from = current.keep_share(zone, domain, now_ms) * 100.0;
                        by_domain.insert(domain.clone(), ramp(from, *weight, *over_ms, reason));
                    }
                }
            }
            Self::Undrain {
                zone,
                over_ms,
                reason,
            } => {
                if let Some(by_domain) = next.drains.get_mut(zone) {
                    if *over_ms == 0 {
                        next.drains.remove(zone);
                    } else {
                        for drain in by_domain.values_mut() {
                            *drain =
                                ramp(drain.keep_share(now_ms) * 100.0, 100.0, *over_ms, reason);
                        }
                    }
                }
            }
            Self::Disable { ip, reason } => {
                next.disabled.insert(
                    *ip,
                    Disable {
                        reason: reason.clone(),
                        by: by.to_string(),
                        at_ms: now_ms,
                    },
                );
            }
            Self::Enable { ip, .. } => {
                next.disabled.remove(ip);
            }
        }
        next
    }
}

/// What one change did, as written to the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub time: String,
    pub token: String,
    pub action: &'static str,
    pub target: String,
    pub reason: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

impl AuditRecord {
    /// The record of `change` by `by`, taking the overrides from `before` to `after`.
    pub fn new(change: &Change, by: &str, before: &Overrides, after: &Overrides) -> Self {
        Self {
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            token: by.to_string(),
            action: change.action(),
            target: change.target(),
            reason: change.reason().to_string(),
            before: serde_json::to_value(before).unwrap_or_default(),
            after: serde_json::to_value(after).unwrap_or_default(),
        }
    }
}

/// An admin request refused for its token (401) or its token's scope (403), as written
/// to the audit log: who tried what, so a leaked or probing token shows up.
#[derive(Debug, Clone, Serialize)]
pub struct RejectedAttempt {
    pub time: String,
    /// `admin.rejected`, so readers of the log tell these from changes.
    pub action: &'static str,
    /// 401 (no valid token) or 403 (valid token, too narrow a scope).
    pub status: u16,
    /// The token's name when it was valid (403), else `None`.
    pub token: Option<String>,
    pub method: String,
    pub path: String,
    pub peer: Option<std::net::IpAddr>,
}

impl RejectedAttempt {
    pub fn new(
        status: u16,
        token: Option<String>,
        method: String,
        path: String,
        peer: Option<std::net::IpAddr>,
    ) -> Self {
        Self {
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            action: "admin.rejected",
            status,
            token,
            method,
            path,
            peer,
        }
    }
}

/// A change the store committed.
#[derive(Debug)]
pub struct Committed {
    pub record: AuditRecord,
    /// The steering epoch once the change is in force.
    pub epoch: u64,
    /// Cluster mode: the etcd revision of the change.
    pub revision: Option<i64>,
}

/// Owns the overrides: load at start, change, persist, audit, bump the epoch.
pub struct StateStore {
    dir: PathBuf,
    current: Arc<ArcSwap<Overrides>>,
    writer: tokio::sync::Mutex<()>,
    epoch: Arc<Epoch>,
    cluster: Option<Arc<Cluster>>,
}

impl StateStore {
    pub const STATE_FILE: &'static str = "state.json";
    pub const AUDIT_FILE: &'static str = "audit.log";

    /// Opens `dir` (created if missing) and loads its state file. With `reset`, a state
    /// file is set aside (renamed with a timestamp) and the server starts with none.
    pub fn open(dir: &Path, reset: bool, epoch: Arc<Epoch>) -> Result<Self, StateError> {
        let overrides = Self::load_local(dir, reset)?;
        persist::settle_audit(&dir.join(Self::AUDIT_FILE), &overrides)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            current: Arc::new(ArcSwap::from_pointee(overrides)),
            writer: tokio::sync::Mutex::new(()),
            epoch,
            cluster: None,
        })
    }

    /// Cluster mode: serves the node's disk cache of the fleet state (or, on the first
    /// start, its single-node `state.json`, which is then imported into etcd) until etcd
    /// answers, and follows etcd from then on. Needs a tokio runtime.
    pub fn open_cluster(
        dir: &Path,
        reset: bool,
        epoch: Arc<Epoch>,
        config: &ClusterConfig,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<Self, StateError> {
        let local = Self::load_local(dir, reset)?;
        let state_file = dir.join(Self::STATE_FILE);
        let import = state_file.exists().then(|| (state_file, local.clone()));
        let current = Arc::new(ArcSwap::from_pointee(local));
        let cluster = Cluster::start(
            config,
            dir,
            Arc::clone(&current),
            Arc::clone(&epoch),
            import,
            shutdown,
        )?;
        Ok(Self {
            dir: dir.to_path_buf(),
            current,
            writer: tokio::sync::Mutex::new(()),
            epoch,
            cluster: Some(cluster),
        })
    }

    /// The node's cluster session, in cluster mode.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
    }

    /// Reads `dir/state.json` (see [`StateStore::open`]). Only a single node settles its
    /// audit log against it: in cluster mode the local log records fleet changes, which
    /// `state.json` (imported once, then set aside) never holds.
    fn load_local(dir: &Path, reset: bool) -> Result<Overrides, StateError> {
        std::fs::create_dir_all(dir).map_err(|source| StateError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(Self::STATE_FILE);
        if reset && path.exists() {
            let aside = dir.join(format!("state.json.reset-{}", crate::epoch::now_ms()));
            std::fs::rename(&path, &aside).map_err(|source| StateError::Write {
                path: aside,
                source,
            })?;
            tracing::warn!(state = %path.display(), "--reset-state: starting without drains");
        }
        let overrides = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Overrides::default(),
            Err(e) => {
                return Err(StateError::Corrupt {
                    path,
                    message: e.to_string(),
                });
            }
        };
        Ok(overrides)
    }

    /// The overrides in force (lock-free).
    pub fn current(&self) -> Guard<Arc<Overrides>> {
        self.current.load()
    }

    /// Applies `change` on behalf of token `by`: durable, audited, published and the
    /// epoch bumped before this returns. Changes are serialised; the last one wins (in
    /// cluster mode etcd transactions order them and none is lost). `if_revision`
    /// (cluster mode only) makes it a compare-and-set on the changed key.
    pub async fn apply(
        &self,
        change: Change,
        by: &str,
        if_revision: Option<i64>,
    ) -> Result<Committed, StateError> {
        let _write = self.writer.lock().await;
        if let Some(cluster) = &self.cluster {
            let committed = cluster.commit(&change, by, if_revision).await?;
            // etcd holds the change and its record; this node's log is a local copy.
            let audit = self.dir.join(Self::AUDIT_FILE);
            let line = serde_json::to_string(&committed.record).unwrap_or_default();
            let written =
                tokio::task::spawn_blocking(move || persist::append_synced(&audit, &line)).await;
            if let Err(e) = written
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
            {
                tracing::error!(error = %e, "change committed to etcd but not to the local audit log");
            }
            return Ok(Committed {
                record: committed.record,
                epoch: self.epoch.current(),
                revision: Some(committed.revision),
            });
        }
        if if_revision.is_some() {
            return Err(StateError::NoRevisions);
        }
        let before = self.current.load_full();
        let after = change.apply(&before, by, crate::epoch::now_ms());
        let record = AuditRecord::new(&change, by, &before, &after);
        let dir = self.dir.clone();
        let state_bytes = serde_json::to_vec_pretty(&after).unwrap_or_default();
        let audit_line = serde_json::to_string(&record).unwrap_or_default();
        tokio::task::spawn_blocking(move || {
            persist::commit(
                &dir.join(Self::AUDIT_FILE),
                &audit_line,
                &dir.join(Self::STATE_FILE),
                &state_bytes,
            )
        })
        .await
        .map_err(|e| StateError::Write {
            path: self.dir.clone(),
            source: std::io::Error::other(e),
        })??;
        self.current.store(Arc::new(after));
        let epoch = self.epoch.bump();
        Ok(Committed {
            record,
            epoch,
            revision: None,
        })
    }

    /// Appends a refused admin request to the audit log (synced). It changes no state,
    /// but on a single node it still waits for the writer lock: a change's record must
    /// stay the log's last line until its state is written, because a failed state
    /// write cuts the log back to before the record, and the next open drops a last
    /// record whose state never landed; a line slipped in between would be cut with it,
    /// or hide the record from that check. (In cluster mode etcd holds the records and
    /// the local log is a copy that is never cut, so a refusal does not wait behind an
    /// etcd commit.)
    pub async fn audit_rejected(&self, attempt: &RejectedAttempt) -> Result<(), StateError> {
        let _write = match self.cluster {
            None => Some(self.writer.lock().await),
            Some(_) => None,
        };
        let path = self.dir.join(Self::AUDIT_FILE);
        let line = serde_json::to_string(attempt).unwrap_or_default();
        let on_error = path.clone();
        tokio::task::spawn_blocking(move || persist::append_synced(&path, &line).map(|_| ()))
            .await
            .map_err(|e| StateError::Write {
                path: on_error,
                source: std::io::Error::other(e),
            })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(zone: &str, weight: f64, domains: &[&str], over_ms: u64) -> Change {
        Change::Drain {
            zone: zone.into(),
            weight,
            domains: domains.iter().map(|d| d.to_string()).collect(),
            over_ms,
            reason: "test".into(),
        }
    }

    #[test]
    fn full_drain_and_undrain() {
        let o = drain("gz", 0.0, &[], 0).apply(&Overrides::default(), "sre", 1000);
        assert_eq!(o.keep_share("gz", "api.example.com", 1000), 0.0);
        assert_eq!(o.keep_share("sh", "api.example.com", 1000), 1.0);
        let restored = Change::Undrain {
            zone: "gz".into(),
            over_ms: 0,
            reason: "ok".into(),
        }
        .apply(&o, "sre", 2000);
        assert_eq!(restored, Overrides::default());
    }

    #[test]
    fn ramps_move_linearly_from_the_current_share() {
        let o = drain("gz", 50.0, &[], 0).apply(&Overrides::default(), "sre", 0);
        let o = drain("gz", 0.0, &[], 10_000).apply(&o, "sre", 1_000);
        assert_eq!(o.keep_share("gz", "a", 1_000), 0.5);
        assert_eq!(o.keep_share("gz", "a", 6_000), 0.25);
        assert_eq!(o.keep_share("gz", "a", 11_000), 0.0);
        let back = Change::Undrain {
            zone: "gz".into(),
            over_ms: 4_000,
            reason: "r".into(),
        }
        .apply(&o, "sre", 11_000);
        assert_eq!(back.keep_share("gz", "a", 13_000), 0.5);
        assert_eq!(back.keep_share("gz", "a", 15_000), 1.0);
        // Finished undrains are forgotten by the next change.
        let later = drain("sh", 10.0, &[], 0).apply(&back, "sre", 20_000);
        assert!(!later.drains.contains_key("gz"));
    }

    #[test]
    fn domain_drains_are_scoped() {
        let o = drain("gz", 0.0, &["api.example.com"], 0).apply(&Overrides::default(), "sre", 0);
        assert_eq!(o.keep_share("gz", "api.example.com", 0), 0.0);
        assert_eq!(o.keep_share("gz", "img.example.com", 0), 1.0);
    }

    #[test]
    fn disable_and_enable_endpoints() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let o = Change::Disable {
            ip,
            reason: "disk".into(),
        }
        .apply(&Overrides::default(), "sre", 5);
        assert!(o.is_disabled(ip));
        let o = Change::Enable {
            ip,
            reason: "fixed".into(),
        }
        .apply(&o, "sre", 6);
        assert!(!o.is_disabled(ip));
    }

    #[tokio::test]
    async fn changes_persist_and_are_audited() {
        let dir = tempfile::tempdir().unwrap();
        let epoch = Arc::new(Epoch::default());
        let store = StateStore::open(dir.path(), false, Arc::clone(&epoch)).unwrap();
        let before = epoch.current();
        let committed = store
            .apply(drain("gz", 0.0, &[], 0), "alice", None)
            .await
            .unwrap();
        assert_eq!(committed.record.action, "zone.drain");
        // The owner bumps the epoch; callers no longer have to remember to.
        assert!(committed.epoch > before);
        assert_eq!(epoch.current(), committed.epoch);
        assert_eq!(
            store
                .current()
                .keep_share("gz", "x", crate::epoch::now_ms()),
            0.0
        );
        let reopened = StateStore::open(dir.path(), false, Default::default()).unwrap();
        assert_eq!(**reopened.current(), **store.current());
        let audit = std::fs::read_to_string(dir.path().join(StateStore::AUDIT_FILE)).unwrap();
        let line: serde_json::Value = serde_json::from_str(audit.lines().next().unwrap()).unwrap();
        assert_eq!(line["token"], "alice");
        assert_eq!(line["target"], "gz");
        assert_eq!(line["before"]["drains"], serde_json::json!({}));
        assert_eq!(line["after"]["drains"]["gz"]["*"]["to_weight"], 0.0);
    }

    #[tokio::test]
    async fn rejected_attempts_are_audited_without_changing_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path(), false, Default::default()).unwrap();
        let attempt = RejectedAttempt::new(
            403,
            Some("viewer".into()),
            "POST".into(),
            "/admin/reload".into(),
            Some("127.0.0.1".parse().unwrap()),
        );
        store.audit_rejected(&attempt).await.unwrap();
        let audit = std::fs::read_to_string(dir.path().join(StateStore::AUDIT_FILE)).unwrap();
        let line: serde_json::Value = serde_json::from_str(audit.trim()).unwrap();
        assert_eq!(line["action"], "admin.rejected");
        assert_eq!(line["status"], 403);
        assert_eq!(line["token"], "viewer");
        assert_eq!(line["path"], "/admin/reload");
        assert!(!dir.path().join(StateStore::STATE_FILE).exists());
    }

    #[tokio::test]
    async fn a_rejected_attempt_waits_for_a_change_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            std::sync::Arc::new(StateStore::open(dir.path(), false, Default::default()).unwrap());
        let audit = dir.path().join(StateStore::AUDIT_FILE);
        let rejected_lines = || {
            std::fs::read_to_string(&audit)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("admin.rejected"))
                .count()
        };
        // A change in flight holds the writer lock between its record and its state.
        let in_flight = store.writer.lock().await;
        let refusal = tokio::spawn({
            let store = std::sync::Arc::clone(&store);
            async move {
                let attempt = RejectedAttempt::new(
                    401,
                    None,
                    "POST".into(),
                    "/admin/zones/gz/drain".into(),
                    None,
                );
                store.audit_rejected(&attempt).await
            }
        });
        // Without the lock the line lands within a few milliseconds; give it 300.
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(300);
        while std::time::Instant::now() < deadline {
            assert_eq!(rejected_lines(), 0, "a refusal was logged inside a change");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        drop(in_flight);
        refusal.await.unwrap().unwrap();
        assert_eq!(rejected_lines(), 1);
    }

    #[test]
    fn corrupt_state_refuses_to_open_unless_reset() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(StateStore::STATE_FILE), b"{not json").unwrap();
        let err = StateStore::open(dir.path(), false, Default::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("corrupt") && err.contains("--reset-state"),
            "{err}"
        );
        let store = StateStore::open(dir.path(), true, Default::default()).unwrap();
        assert_eq!(**store.current(), Overrides::default());
    }

    async fn store_with_sh_drained() -> (tempfile::TempDir, StateStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path(), false, Default::default()).unwrap();
        store
            .apply(drain("sh", 0.0, &[], 0), "alice", None)
            .await
            .unwrap();
        (dir, store)
    }

    fn audit_lines(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join(StateStore::AUDIT_FILE))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[tokio::test]
    async fn a_failing_audit_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path(), false, Default::default()).unwrap();
        // A directory where the log should be: every append fails.
        std::fs::create_dir(dir.path().join(StateStore::AUDIT_FILE)).unwrap();
        let err = store
            .apply(drain("gz", 0.0, &[], 0), "alice", None)
            .await
            .unwrap_err();
        assert!(matches!(err, StateError::Write { .. }), "{err}");
        assert_eq!(**store.current(), Overrides::default());
        assert!(!dir.path().join(StateStore::STATE_FILE).exists());
        std::fs::remove_dir(dir.path().join(StateStore::AUDIT_FILE)).unwrap();
        let reopened = StateStore::open(dir.path(), false, Default::default()).unwrap();
        assert_eq!(**reopened.current(), Overrides::default());
    }

    #[tokio::test]
    async fn a_failing_state_write_takes_its_audit_record_back() {
        let (dir, store) = store_with_sh_drained().await;
        // The temp file cannot be created: the rename never happens.
        std::fs::create_dir(dir.path().join("state.json.tmp")).unwrap();
        assert!(
            store
                .apply(drain("gz", 0.0, &[], 0), "bob", None)
                .await
                .is_err()
        );
        let lines = audit_lines(dir.path());
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(!store.current().drains.contains_key("gz"));
        let reopened = StateStore::open(dir.path(), false, Default::default()).unwrap();
        assert!(reopened.current().drains.contains_key("sh"));
        assert!(!reopened.current().drains.contains_key("gz"));
    }

    #[tokio::test]
    async fn open_drops_an_audit_record_whose_state_never_landed() {
        let (dir, store) = store_with_sh_drained().await;
        let state_before = std::fs::read(dir.path().join(StateStore::STATE_FILE)).unwrap();
        store
            .apply(drain("gz", 0.0, &[], 0), "bob", None)
            .await
            .unwrap();
        // Simulate a crash after the audit append, before the rename: old state file,
        // new record, plus a torn half line.
        std::fs::write(dir.path().join(StateStore::STATE_FILE), &state_before).unwrap();
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(StateStore::AUDIT_FILE))
            .unwrap();
        std::io::Write::write_all(&mut log, b"{\"time\":\"torn").unwrap();
        let reopened = StateStore::open(dir.path(), false, Default::default()).unwrap();
        assert!(!reopened.current().drains.contains_key("gz"));
        let lines = audit_lines(dir.path());
        assert_eq!(lines.len(), 1, "{lines:?}");
        let last: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(
            last["after"],
            serde_json::to_value(&**reopened.current()).unwrap()
        );
    }

    #[tokio::test]
    async fn if_revision_needs_cluster_mode() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path(), false, Default::default()).unwrap();
        let err = store
            .apply(drain("gz", 0.0, &[], 0), "alice", Some(3))
            .await
            .unwrap_err();
        assert!(matches!(err, StateError::NoRevisions));
        assert!(audit_lines(dir.path()).is_empty());
    }
}

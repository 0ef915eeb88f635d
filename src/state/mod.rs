//! SRE overrides: zone drains and endpoint disables, persisted and audited.
//!
//! [`StateStore`] is the only writer. A change is computed from the current overrides,
//! written to `state.json` atomically (temp file, fsync, rename, fsync directory),
//! published through `arc-swap` and appended to `audit.log` (JSON lines, fsynced)
//! before the caller hears "done": a drain that was acknowledged is never lost. A state
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

    pub fn is_disabled(&self, ip: IpAddr) -> bool {
        self.disabled.contains_key(&ip)
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

/// Owns the overrides: load at start, change, persist, audit.
pub struct StateStore {
    dir: PathBuf,
    current: ArcSwap<Overrides>,
    writer: tokio::sync::Mutex<()>,
}

impl StateStore {
    pub const STATE_FILE: &'static str = "state.json";
    pub const AUDIT_FILE: &'static str = "audit.log";

    /// Opens `dir` (created if missing) and loads its state file. With `reset`, a state
    /// file is set aside (renamed with a timestamp) and the server starts with none.
    pub fn open(dir: &Path, reset: bool) -> Result<Self, StateError> {
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
        Ok(Self {
            dir: dir.to_path_buf(),
            current: ArcSwap::from_pointee(overrides),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// The overrides in force (lock-free).
    pub fn current(&self) -> Guard<Arc<Overrides>> {
        self.current.load()
    }

    /// Applies `change` on behalf of token `by`: persisted, published and audited
    /// before this returns. Changes are serialised; the last one wins.
    pub async fn apply(&self, change: Change, by: &str) -> Result<AuditRecord, StateError> {
        let _write = self.writer.lock().await;
        let now = crate::epoch::now_ms();
        let before = self.current.load_full();
        let after = change.apply(&before, by, now);
        let record = AuditRecord {
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            token: by.to_string(),
            action: change.action(),
            target: change.target(),
            reason: change.reason().to_string(),
            before: serde_json::to_value(&*before).unwrap_or_default(),
            after: serde_json::to_value(&after).unwrap_or_default(),
        };
        let dir = self.dir.clone();
        let state_bytes = serde_json::to_vec_pretty(&after).unwrap_or_default();
        let audit_line = serde_json::to_string(&record).unwrap_or_default();
        tokio::task::spawn_blocking(move || {
            persist::write_atomically(&dir.join(Self::STATE_FILE), &state_bytes)?;
            persist::append_synced(&dir.join(Self::AUDIT_FILE), &audit_line)
        })
        .await
        .map_err(|e| StateError::Write {
            path: self.dir.clone(),
            source: std::io::Error::other(e),
        })??;
        self.current.store(Arc::new(after));
        Ok(record)
    }

    /// Appends a refused admin request to the audit log (synced). It changes no state,
    /// so it needs neither the writer lock nor the state file; `O_APPEND` keeps lines
    /// whole when it races a change's record.
    pub async fn audit_rejected(&self, attempt: &RejectedAttempt) -> Result<(), StateError> {
        let path = self.dir.join(Self::AUDIT_FILE);
        let line = serde_json::to_string(attempt).unwrap_or_default();
        let on_error = path.clone();
        tokio::task::spawn_blocking(move || persist::append_synced(&path, &line))
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
        let store = StateStore::open(dir.path(), false).unwrap();
        let record = store
            .apply(drain("gz", 0.0, &[], 0), "alice")
            .await
            .unwrap();
        assert_eq!(record.action, "zone.drain");
        assert_eq!(
            store
                .current()
                .keep_share("gz", "x", crate::epoch::now_ms()),
            0.0
        );
        let reopened = StateStore::open(dir.path(), false).unwrap();
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
        let store = StateStore::open(dir.path(), false).unwrap();
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

    #[test]
    fn corrupt_state_refuses_to_open_unless_reset() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(StateStore::STATE_FILE), b"{not json").unwrap();
        let err = StateStore::open(dir.path(), false)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("corrupt") && err.contains("--reset-state"),
            "{err}"
        );
        let store = StateStore::open(dir.path(), true).unwrap();
        assert_eq!(**store.current(), Overrides::default());
    }
}

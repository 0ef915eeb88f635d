//! Zones from etcd (`zones = "etcd"`): one key holds the fleet's whole zones directory.
//!
//! `httpdns admin push-zones DIR` validates the directory with the same load a reload
//! does, then writes every `*.toml` of it as one value (one revision). Each node
//! validates a pushed set against its own config (its IP databases) in a scratch
//! directory before anything is swapped; a good set is written into the node's
//! `zones_dir` (file by file, atomically, so the directory is also the disk cache a node
//! restarted during an outage serves) and reloaded. A rejected set leaves the node on
//! its last good zones, with the error in its log, in `/admin/cluster` and counted in
//! `httpdns_cluster_zones_rejected_total`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ClusterError, Keys};
use crate::config::ServerConfig;

/// A zones directory as stored in etcd: file name → contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZonesSet {
    pub files: BTreeMap<String, String>,
}

impl ZonesSet {
    /// Reads every `*.toml` of `dir`.
    pub fn read_dir(dir: &Path) -> Result<Self, String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut files = BTreeMap::new();
        for entry in entries {
            let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(".toml") && path.is_file() {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                files.insert(name.to_string(), text);
            }
        }
        if files.is_empty() {
            return Err(format!("{}: no *.toml zones files", dir.display()));
        }
        Ok(Self { files })
    }

    /// Writes the set into `dir` (created if missing), each file atomically, and removes
    /// zones files the set no longer has.
    fn write_into(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (name, text) in &self.files {
            if name.contains('/') || name.starts_with('.') {
                return Err(format!("refusing zones file name {name:?}"));
            }
            crate::state::write_atomically(&dir.join(name), text.as_bytes())
                .map_err(|e| e.to_string())?;
        }
        let stale = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in stale.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".toml") && !self.files.contains_key(&name) {
                std::fs::remove_file(entry.path())
                    .map_err(|e| format!("{}: {e}", entry.path().display()))?;
            }
        }
        Ok(())
    }

    /// Checks the set as a reload would, against `config`'s IP databases and policy;
    /// every problem is returned.
    pub fn validate(&self, config: &ServerConfig) -> Result<(), Vec<String>> {
        let scratch = tempfile::tempdir().map_err(|e| vec![format!("scratch directory: {e}")])?;
        self.write_into(scratch.path()).map_err(|e| vec![e])?;
        let mut candidate = config.clone();
        candidate.zones_dir = scratch.path().to_path_buf();
        crate::snapshot::load(&candidate)
            .map(|_| ())
            .map_err(|e| e.messages())
    }

    /// Validates, then installs the set into `config.zones_dir`.
    pub fn install(&self, config: &ServerConfig) -> Result<(), Vec<String>> {
        self.validate(config)?;
        self.write_into(&config.zones_dir).map_err(|e| vec![e])
    }
}

/// `httpdns admin push-zones DIR`: validate locally, then write the set as one revision.
/// Returns that revision.
pub async fn push(config: &ServerConfig, dir: &Path) -> Result<i64, PushError> {
    let cluster = config.cluster.as_ref().ok_or(PushError::NotClustered)?;
    let set = ZonesSet::read_dir(dir).map_err(|e| PushError::Invalid(vec![e]))?;
    set.validate(config).map_err(PushError::Invalid)?;
    let options = super::connect_options(cluster)?;
    let mut client =
        super::timed(etcd_client::Client::connect(&cluster.etcd, Some(options))).await?;
    let key = Keys::new(&cluster.prefix).zones();
    let value = serde_json::to_vec(&set).unwrap_or_default();
    let response = super::timed(client.put(key, value, None)).await?;
    Ok(response.header().map_or(0, |h| h.revision()))
}

/// Why a push did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("the config has no [cluster] section")]
    NotClustered,
    #[error("zones rejected, nothing pushed:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    #[error("{0}")]
    Cluster(#[from] ClusterError),
}

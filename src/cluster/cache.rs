//! The local disk cache of the last cluster state a node applied.
//!
//! Written atomically after every applied revision, read at start before etcd answers,
//! so a node restarted while etcd is down still serves every drain it knew.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::state::{Overrides, StateError};

pub(super) const CACHE_FILE: &str = "cluster-state.json";

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Cached {
    pub revision: i64,
    /// Revision of the zones set in `zones_dir` (zones = "etcd").
    #[serde(default)]
    pub zones_revision: i64,
    pub overrides: Overrides,
}

/// The cache, if present and readable; an unreadable one is reported and ignored, since
/// etcd holds the truth and will replace it on connect.
pub(super) fn load(path: &Path) -> Option<Cached> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::error!(cache = %path.display(), error = %e, "cannot read the cluster state cache");
            return None;
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(cached) => Some(cached),
        Err(e) => {
            tracing::error!(cache = %path.display(), error = %e, "ignoring a corrupt cluster state cache");
            None
        }
    }
}

pub(super) fn store(
    path: &Path,
    revision: i64,
    zones_revision: i64,
    overrides: &Overrides,
) -> Result<(), StateError> {
    let bytes = serde_json::to_vec_pretty(&Cached {
        revision,
        zones_revision,
        overrides: overrides.clone(),
    })
    .unwrap_or_default();
    crate::state::write_atomically(path, &bytes)
}

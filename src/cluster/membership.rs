//! Membership and migration: this node's leased record under `nodes/`, and the one-time
//! import of a single node's `state.json` into etcd.
//!
//! The record carries the revision the node applied, so `/admin/cluster` on any node
//! shows who lags. It is attached to a lease of [`LEASE_TTL_SECS`]: a node that stops
//! renewing (killed, partitioned) disappears from the listing within that time.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};
use tokio_util::sync::CancellationToken;

use super::{Cluster, ClusterError, LEASE_TTL_SECS, timed, unavailable};
use crate::state::{AuditRecord, Overrides};

pub(super) async fn run(cluster: Arc<Cluster>, shutdown: CancellationToken) {
    loop {
        let round = keep_registered(&cluster);
        tokio::select! {
            outcome = round => {
                if let Err(e) = outcome {
                    tracing::debug!(error = %e, "membership lease lost; registering again");
                }
            }
            () = shutdown.cancelled() => break,
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = shutdown.cancelled() => break,
        }
    }
    // Leave at once on a clean shutdown rather than when the lease runs out.
    if let Ok(mut client) = cluster.client() {
        let key = cluster.keys.node(&cluster.node);
        let _ = tokio::time::timeout(Duration::from_millis(500), client.delete(key, None)).await;
    }
}

/// Grants a lease, writes the record on it, renews it every third of its TTL and
/// rewrites the record whenever the applied revision moves.
async fn keep_registered(cluster: &Cluster) -> Result<(), ClusterError> {
    let mut client = cluster.client()?;
    let lease = timed(client.lease_grant(LEASE_TTL_SECS, None)).await?.id();
    let (mut keeper, mut acks) = timed(client.lease_keep_alive(lease)).await?;
    let key = cluster.keys.node(&cluster.node);
    let put = |client: &mut Client| {
        let record = serde_json::to_vec(&cluster.own_record()).unwrap_or_default();
        let mut client = client.clone();
        let key = key.clone();
        async move { timed(client.put(key, record, Some(PutOptions::new().with_lease(lease)))).await }
    };
    put(&mut client).await?;
    let mut applied = cluster.applied.subscribe();
    let mut renew = tokio::time::interval(Duration::from_secs((LEASE_TTL_SECS / 3).max(1) as u64));
    loop {
        tokio::select! {
            _ = renew.tick() => {
                keeper.keep_alive().await.map_err(unavailable)?;
                let ack = tokio::time::timeout(super::CALL_TIMEOUT, acks.message())
                    .await
                    .map_err(|_| ClusterError::Unavailable("lease renewal timed out".into()))?
                    .map_err(unavailable)?;
                if ack.is_none_or(|a| a.ttl() <= 0) {
                    return Err(ClusterError::Unavailable("lease expired".into()));
                }
                put(&mut client).await?;
            }
            changed = applied.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                put(&mut client).await?;
            }
        }
    }
}

/// Moves a single node's drains and disables into etcd, once. An entry etcd already
/// holds is kept (the fleet's word wins) and each one skipped is logged by name, so no
/// drain is dropped silently; the file is then renamed `state.json.imported-<ms>`.
pub(super) async fn import(
    cluster: &Cluster,
    client: &mut Client,
    path: &Path,
    local: &Overrides,
) -> Result<(), ClusterError> {
    let mut changes = Vec::new();
    for (zone, drains) in &local.drains {
        let mut only = Overrides::default();
        only.drains.insert(zone.clone(), drains.clone());
        changes.push((zone.clone(), cluster.keys.drain(zone), only));
    }
    for (ip, disable) in &local.disabled {
        let mut only = Overrides::default();
        only.disabled.insert(*ip, disable.clone());
        changes.push((ip.to_string(), cluster.keys.disabled(*ip), only));
    }
    let now = crate::epoch::now_ms();
    for (target, key, only) in changes {
        let value = match only.drains.values().next() {
            Some(drains) => serde_json::to_vec(drains),
            None => serde_json::to_vec(&only.disabled.values().next()),
        }
        .unwrap_or_default();
        let record = AuditRecord {
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            token: "state.json import".into(),
            action: "state.import",
            target: target.clone(),
            reason: format!("imported from {}", path.display()),
            before: serde_json::json!({}),
            after: serde_json::to_value(&only).unwrap_or_default(),
        };
        let seq = cluster
            .audit_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let txn = Txn::new()
            .when([Compare::version(key.clone(), CompareOp::Equal, 0)])
            .and_then([
                TxnOp::put(key.clone(), value, None),
                TxnOp::put(
                    cluster.keys.audit(&cluster.node, now, seq),
                    serde_json::to_vec(&record).unwrap_or_default(),
                    None,
                ),
            ]);
        if timed(client.txn(txn)).await?.succeeded() {
            tracing::info!(target, "imported from state.json into etcd");
        } else {
            tracing::warn!(
                target,
                local = %serde_json::to_string(&only).unwrap_or_default(),
                "state.json entry NOT imported: etcd already holds a value for it; the fleet's value stays"
            );
        }
    }
    let aside = path.with_file_name(format!("state.json.imported-{now}"));
    std::fs::rename(path, &aside).map_err(|e| {
        ClusterError::Unavailable(format!(
            "imported, but cannot rename {}: {e}",
            path.display()
        ))
    })?;
    tracing::info!(file = %aside.display(), "single-node state imported; file kept aside");
    Ok(())
}

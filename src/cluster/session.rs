//! The etcd session: connect, load the whole state at one revision, then follow it.
//!
//! Every (re)connection starts with a full read of the state keys at the current
//! revision and watches from the revision after it, so a node that was cut off resyncs
//! to exactly what etcd holds: nothing lost, nothing applied twice, nothing out of order.
//! A watch that etcd cancels (compacted revision, lost leader) or a broken stream ends
//! the round and the next one reloads in full; failures never stop the node, which keeps
//! serving the last state it applied.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, EventType, GetOptions, WatchOptions};
use tokio_util::sync::CancellationToken;

use super::{Cluster, ClusterError, StateKeys, ZonesSource, timed, unavailable};
use crate::state::Overrides;

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

pub(super) async fn run(
    cluster: Arc<Cluster>,
    endpoints: Vec<String>,
    options: ConnectOptions,
    mut import: Option<(std::path::PathBuf, Overrides)>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let round = follow(&cluster, &endpoints, &options, &mut import, &shutdown);
        let outcome = tokio::select! {
            outcome = round => outcome,
            () = shutdown.cancelled() => return,
        };
        match outcome {
            // The watch ended after a good start: reconnect at once.
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                cluster.status.set_connected(false);
                cluster.endpoints.probe_soon();
                tracing::warn!(error = %e, "etcd session failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// One round: (re)connect, full load, watch until the stream ends.
async fn follow(
    cluster: &Cluster,
    endpoints: &[String],
    options: &ConnectOptions,
    import: &mut Option<(std::path::PathBuf, Overrides)>,
    shutdown: &CancellationToken,
) -> Result<(), ClusterError> {
    let mut client = match cluster.client.load_full() {
        Some(client) => (*client).clone(),
        None => {
            let client = timed(Client::connect(endpoints, Some(options.clone()))).await?;
            cluster.client.store(Some(Arc::new(client.clone())));
            client
        }
    };
    if let Some((path, local)) = import.as_ref() {
        super::membership::import(cluster, &mut client, path, local).await?;
        *import = None;
    }
    let prefix = cluster.keys.state();
    let loaded = timed(client.get(prefix.clone(), Some(GetOptions::new().with_prefix()))).await?;
    let header_revision = loaded.header().map_or(0, |h| h.revision());
    let mut state: StateKeys = loaded
        .kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                (kv.value().to_vec(), kv.mod_revision()),
            )
        })
        .collect();
    let revision = state.values().map(|(_, r)| *r).max().unwrap_or(0);
    cluster.publish(&state, revision);
    let mut stream = timed(
        client.watch(
            prefix,
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(header_revision + 1),
            ),
        ),
    )
    .await?;
    let mut zones = match cluster.zones_source {
        ZonesSource::Files => None,
        ZonesSource::Etcd => Some(follow_zones(cluster, &mut client).await?),
    };
    cluster.status.set_connected(true);
    loop {
        let message = tokio::select! {
            message = stream.message() => message.map_err(unavailable)?,
            pushed = next_zones(zones.as_mut()) => {
                let response = pushed.map_err(unavailable)?
                    .ok_or_else(|| ClusterError::Unavailable("zones watch ended".into()))?;
                if response.canceled() {
                    return Ok(());
                }
                for event in response.events() {
                    if let Some(kv) = event.kv() {
                        apply_zones_value(cluster, kv.value(), kv.mod_revision()).await;
                    }
                }
                continue;
            }
            () = shutdown.cancelled() => return Ok(()),
        };
        let Some(response) = message else {
            return Err(ClusterError::Unavailable("watch stream ended".into()));
        };
        if response.canceled() || response.compact_revision() > 0 {
            // Our start revision was compacted away or etcd dropped the watch: only a
            // full reload is exact now.
            tracing::warn!(
                compact_revision = response.compact_revision(),
                reason = response.cancel_reason(),
                "etcd watch cancelled; reloading the whole state"
            );
            return Ok(());
        }
        if response.events().is_empty() {
            continue;
        }
        let mut newest = cluster.revision();
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            newest = newest.max(kv.mod_revision());
            match event.event_type() {
                EventType::Put => {
                    state.insert(key, (kv.value().to_vec(), kv.mod_revision()));
                }
                EventType::Delete => {
                    state.remove(&key);
                }
            }
        }
        cluster.publish(&state, newest);
    }
}

/// Loads the zones set etcd holds now (applying it when newer than ours) and watches the
/// key from the next revision.
async fn follow_zones(
    cluster: &Cluster,
    client: &mut Client,
) -> Result<etcd_client::WatchStream, ClusterError> {
    let key = cluster.keys.zones();
    let current = timed(client.get(key.clone(), None)).await?;
    let header_revision = current.header().map_or(0, |h| h.revision());
    if let Some(kv) = current.kvs().first() {
        apply_zones_value(cluster, kv.value(), kv.mod_revision()).await;
    }
    timed(client.watch(
        key,
        Some(WatchOptions::new().with_start_revision(header_revision + 1)),
    ))
    .await
}

async fn next_zones(
    stream: Option<&mut etcd_client::WatchStream>,
) -> Result<Option<etcd_client::WatchResponse>, etcd_client::Error> {
    match stream {
        Some(stream) => stream.message().await,
        None => std::future::pending().await,
    }
}

async fn apply_zones_value(cluster: &Cluster, value: &[u8], revision: i64) {
    match serde_json::from_slice::<super::zones::ZonesSet>(value) {
        Ok(set) => cluster.apply_zones(set, revision).await,
        Err(e) => {
            tracing::error!(zones_revision = revision, error = %e, "unreadable zones set in etcd; keeping the last good zones");
            metrics::counter!("httpdns_cluster_zones_rejected_total").increment(1);
        }
    }
}

//! Which etcd members the shared client routes to.
//!
//! The etcd client balances calls over every configured member, and its balancer keeps
//! choosing a member that died (tonic's reconnecting service reports itself ready; see
//! etcdv3/etcd-client#39): with one of three members down, about a third of all calls
//! fail, so the session's reconnect rounds fail again and again and the node reports
//! "disconnected" while two members serve. This module probes every member on its own
//! connection (the `Status` call, which also says whether the member sees a leader),
//! takes a failing member out of the balanced client and puts it back once it answers.
//! It never takes the last member out: with none left, calls would wait instead of
//! failing, and a member that recovers must still be reachable.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Cluster;

/// Time between two probes of every member while nothing fails.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How long one member may take to answer its probe.
const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

/// What the last probe of one member said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Health {
    Unknown = 0,
    Healthy = 1,
    Unhealthy = 2,
}

impl Health {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Healthy,
            2 => Self::Unhealthy,
            _ => Self::Unknown,
        }
    }
}

/// The configured members and their last probe results.
pub(super) struct Endpoints {
    urls: Vec<String>,
    health: Vec<AtomicU8>,
    /// Wakes the prober early: a session round just failed.
    probe_now: Notify,
}

impl Endpoints {
    pub(super) fn new(urls: &[String]) -> Self {
        Self {
            urls: urls.to_vec(),
            health: urls.iter().map(|_| AtomicU8::new(0)).collect(),
            probe_now: Notify::new(),
        }
    }

    /// Asks for a probe of every member now rather than at the next tick.
    pub(super) fn probe_soon(&self) {
        self.probe_now.notify_one();
    }

    fn health(&self, i: usize) -> Health {
        Health::from_u8(self.health[i].load(Ordering::Acquire))
    }

    /// Every member with its last probe result, for `/admin/cluster`.
    pub(super) fn view(&self) -> Value {
        self.urls
            .iter()
            .enumerate()
            .map(|(i, url)| {
                let healthy = match self.health(i) {
                    Health::Unknown => Value::Null,
                    health => json!(health == Health::Healthy),
                };
                json!({"endpoint": url, "healthy": healthy})
            })
            .collect()
    }

    /// Sets the per-member gauges; called when metrics are scraped.
    pub(super) fn export_metrics(&self) {
        for (i, url) in self.urls.iter().enumerate() {
            let up = match self.health(i) {
                Health::Healthy => 1.0,
                Health::Unhealthy => 0.0,
                Health::Unknown => continue,
            };
            metrics::gauge!("httpdns_cluster_etcd_endpoint_up", "endpoint" => url.clone()).set(up);
        }
    }
}

/// Which members the balanced client should route to, given each member's health:
/// every member not known to be failing, or all of them when every one fails.
pub(super) fn routed(health: &[Health]) -> Vec<bool> {
    let routed: Vec<bool> = health.iter().map(|h| *h != Health::Unhealthy).collect();
    if routed.contains(&true) {
        routed
    } else {
        vec![true; health.len()]
    }
}

/// Probes every member each [`PROBE_INTERVAL`] (sooner after a failed session round)
/// and keeps the shared client's member set in line with the results.
pub(super) async fn run(
    cluster: Arc<Cluster>,
    options: ConnectOptions,
    shutdown: CancellationToken,
) {
    let endpoints = &cluster.endpoints;
    let mut probes: Vec<Option<Client>> = endpoints.urls.iter().map(|_| None).collect();
    // The client the routing below was applied to, and what it routes to now.
    let mut applied: Option<(Arc<Client>, Vec<bool>)> = None;
    loop {
        // All members at once, so one that hangs delays no other's verdict.
        let mut round = tokio::task::JoinSet::new();
        for (i, probe) in probes.iter_mut().enumerate() {
            let (probe, url, options) = (probe.take(), endpoints.urls[i].clone(), options.clone());
            round.spawn(async move {
                let mut probe = probe;
                let healthy = probe_member(&mut probe, &url, &options).await;
                (i, probe, healthy)
            });
        }
        while let Some(joined) = round.join_next().await {
            let Ok((i, probe, healthy)) = joined else {
                continue;
            };
            probes[i] = probe;
            let url = &endpoints.urls[i];
            let health = if healthy {
                Health::Healthy
            } else {
                Health::Unhealthy
            };
            let before = Health::from_u8(endpoints.health[i].swap(health as u8, Ordering::AcqRel));
            if before != health {
                if healthy {
                    tracing::info!(endpoint = %url, "etcd member answers");
                } else {
                    tracing::warn!(endpoint = %url, "etcd member does not answer; routing around it");
                }
            }
        }
        if let Some(client) = cluster.client.load_full() {
            if applied
                .as_ref()
                .is_none_or(|(c, _)| !Arc::ptr_eq(c, &client))
            {
                // A new client starts out routing to every member.
                applied = Some((Arc::clone(&client), vec![true; endpoints.urls.len()]));
            }
            if let Some((client, current)) = applied.as_mut() {
                let health: Vec<Health> = (0..endpoints.urls.len())
                    .map(|i| endpoints.health(i))
                    .collect();
                reroute(client, &endpoints.urls, current, &routed(&health)).await;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(PROBE_INTERVAL) => {}
            () = endpoints.probe_now.notified() => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// One member answers `Status` on its own connection and sees a leader.
async fn probe_member(probe: &mut Option<Client>, url: &str, options: &ConnectOptions) -> bool {
    let outcome = tokio::time::timeout(PROBE_TIMEOUT, async {
        let client = match probe {
            Some(client) => client,
            None => probe.insert(Client::connect([url], Some(options.clone())).await?),
        };
        client.status().await
    })
    .await;
    match outcome {
        Ok(Ok(status)) => status.leader() != 0,
        Ok(Err(e)) => {
            tracing::debug!(endpoint = %url, error = %e, "etcd member probe failed");
            // A fresh connection next time, in case this one is wedged.
            *probe = None;
            false
        }
        Err(_) => {
            *probe = None;
            false
        }
    }
}

/// Adds and removes members of `client` so that it routes to `wanted`.
async fn reroute(client: &Client, urls: &[String], current: &mut [bool], wanted: &[bool]) {
    // Additions first, so the client never holds fewer members than either set.
    for (i, url) in urls.iter().enumerate() {
        if wanted[i] && !current[i] {
            match client.add_endpoint(url).await {
                Ok(()) => current[i] = true,
                Err(e) => {
                    tracing::warn!(endpoint = %url, error = %e, "cannot route to the etcd member again")
                }
            }
        }
    }
    for (i, url) in urls.iter().enumerate() {
        if !wanted[i] && current[i] {
            match client.remove_endpoint(url).await {
                Ok(()) => current[i] = false,
                Err(e) => {
                    tracing::warn!(endpoint = %url, error = %e, "cannot stop routing to the etcd member")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Health::{Healthy, Unhealthy, Unknown};

    #[test]
    fn failing_members_are_routed_around_but_never_all_of_them() {
        assert_eq!(routed(&[Healthy, Healthy, Healthy]), [true, true, true]);
        assert_eq!(routed(&[Unhealthy, Healthy, Healthy]), [false, true, true]);
        assert_eq!(
            routed(&[Unhealthy, Unknown, Unhealthy]),
            [false, true, false]
        );
        assert_eq!(
            routed(&[Unhealthy, Unhealthy, Unhealthy]),
            [true, true, true]
        );
        assert_eq!(routed(&[Unhealthy]), [true]);
        assert_eq!(routed(&[Unknown, Unknown]), [true, true]);
    }

    #[test]
    fn the_view_says_unknown_until_probed() {
        let endpoints = Endpoints::new(&["http://127.0.0.1:1".into(), "http://127.0.0.1:2".into()]);
        endpoints.health[1].store(Unhealthy as u8, Ordering::Release);
        assert_eq!(
            endpoints.view(),
            json!([
                {"endpoint": "http://127.0.0.1:1", "healthy": null},
                {"endpoint": "http://127.0.0.1:2", "healthy": false},
            ])
        );
    }
}

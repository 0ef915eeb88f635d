//! Gauges computed when `/metrics` is scraped, for the alert rules and the Grafana
//! dashboard (`deploy/prometheus/alerts.yml`, `deploy/grafana/httpdns.json`).
//!
//! Endpoint health, disables and drain ages change on their own clocks; reading them from
//! the live snapshots at scrape time costs the request path nothing and can never drift
//! from what `/admin/zones` shows. This module only reads; it changes no state.

use super::AdminState;
use crate::health::HealthMap;
use crate::model::Zone;
use crate::state::Overrides;

/// One zone's endpoint counts as the scheduler sees them.
#[derive(Debug, Default, PartialEq)]
pub struct ZoneEndpoints {
    pub total: usize,
    /// Health-checked and failing (disabled ones included: the check still runs).
    pub down: usize,
    pub disabled: usize,
    /// Up (or unchecked) and not disabled: what the zone can answer with.
    pub healthy: usize,
}

pub fn zone_endpoints(zone: &Zone, health: &HealthMap, overrides: &Overrides) -> ZoneEndpoints {
    let mut counts = ZoneEndpoints {
        total: zone.endpoints.len(),
        ..ZoneEndpoints::default()
    };
    for endpoint in &zone.endpoints {
        let up = health.get(&endpoint.ip).is_none_or(|h| h.is_up());
        let disabled = overrides.is_disabled(endpoint.ip);
        counts.down += usize::from(!up);
        counts.disabled += usize::from(disabled);
        counts.healthy += usize::from(up && !disabled);
    }
    counts
}

/// Seconds since the oldest drain of `zone` still in force began; 0 when not drained.
pub fn drain_age_seconds(overrides: &Overrides, zone: &str, now_ms: u64) -> f64 {
    overrides
        .drains
        .get(zone)
        .and_then(|by_domain| {
            by_domain
                .values()
                .filter(|d| d.to_weight < 100.0 || d.keep_share(now_ms) < 1.0)
                .map(|d| d.start_ms)
                .min()
        })
        .map_or(0.0, |since| now_ms.saturating_sub(since) as f64 / 1000.0)
}

/// Sets every scrape-time gauge.
pub fn record(state: &AdminState, now_ms: u64) {
    let snapshot = state.resolver.snapshot();
    let live = state.resolver.live();
    let health = live.health();
    let overrides = live.overrides();
    for zone in &snapshot.model.zones {
        let name = zone.name.to_string();
        let counts = zone_endpoints(zone, &health, &overrides);
        metrics::gauge!("httpdns_zone_endpoints", "zone" => name.clone()).set(counts.total as f64);
        metrics::gauge!("httpdns_zone_endpoints_down", "zone" => name.clone())
            .set(counts.down as f64);
        metrics::gauge!("httpdns_zone_endpoints_disabled", "zone" => name.clone())
            .set(counts.disabled as f64);
        metrics::gauge!("httpdns_zone_endpoints_healthy", "zone" => name.clone())
            .set(counts.healthy as f64);
        metrics::gauge!("httpdns_zone_drain_age_seconds", "zone" => name)
            .set(drain_age_seconds(&overrides, &zone.name, now_ms));
    }
    metrics::gauge!("httpdns_orphaned_overrides")
        .set(overrides.orphans(&snapshot.model).len() as f64);
    // A failed reload leaves the old config serving: the gauge stays 0 until one succeeds.
    let last_ok = state.reloader.last().is_none_or(|last| last.ok);
    metrics::gauge!("httpdns_reload_last_success").set(if last_ok { 1.0 } else { 0.0 });
    // Counters exist from the first scrape, so `increase()` sees the first failure.
    for result in ["ok", "failed"] {
        metrics::counter!("httpdns_reloads_total", "result" => result).increment(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Drain;

    fn drain(start_ms: u64, end_ms: u64, from: f64, to: f64) -> Drain {
        Drain {
            from_weight: from,
            to_weight: to,
            start_ms,
            end_ms,
            reason: "test".into(),
            by: "tester".into(),
        }
    }

    fn with_drains(zone: &str, drains: &[(&str, Drain)]) -> Overrides {
        let mut overrides = Overrides::default();
        overrides.drains.insert(
            zone.to_string(),
            drains
                .iter()
                .map(|(domain, d)| (domain.to_string(), d.clone()))
                .collect(),
        );
        overrides
    }

    #[test]
    fn drain_age_counts_from_the_oldest_drain_in_force() {
        let overrides = with_drains(
            "gz",
            &[
                ("*", drain(10_000, 10_000, 100.0, 0.0)),
                ("api.example.com", drain(4_000, 4_000, 100.0, 50.0)),
            ],
        );
        assert_eq!(drain_age_seconds(&overrides, "gz", 64_000), 60.0);
        assert_eq!(drain_age_seconds(&overrides, "sh", 64_000), 0.0);
    }

    #[test]
    fn a_zone_ramping_back_is_drained_until_the_ramp_ends() {
        let overrides = with_drains("gz", &[("*", drain(1_000, 11_000, 0.0, 100.0))]);
        assert_eq!(drain_age_seconds(&overrides, "gz", 6_000), 5.0);
        assert_eq!(drain_age_seconds(&overrides, "gz", 11_000), 0.0);
    }
}

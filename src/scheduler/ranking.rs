//! Endpoint ranking inside one zone: best first, load spread among near-equals.
//!
//! Each endpoint has a [`Cost`] (lower is better) from live measurements. Endpoints are
//! taken in bands: the cheapest remaining endpoint and every endpoint within the
//! tolerance of it form a band, which is ordered by weighted random choice so traffic
//! spreads by weight instead of piling onto whichever IP measured a hair faster.

use std::net::IpAddr;

use super::{LiveView, Query, Tier};
use crate::model::{Endpoint, Model, ZoneId};

/// Endpoints whose cost is within this fraction of the band's best share the band.
pub const RELATIVE_TOLERANCE: f64 = 0.2;
/// ... or within this many cost units (milliseconds) of it, so tiny RTTs do not split.
pub const ABSOLUTE_TOLERANCE: f64 = 5.0;

/// How expensive an endpoint is for a client, in RTT-like milliseconds, with the terms
/// that made it (shown by explain).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    pub total: f64,
}

/// Ranks one zone's endpoints for the query, `per_family` of each requested family.
/// `only_up` filters endpoints failing health checks (not when failing open).
pub fn rank_zone(
    model: &Model,
    live: &impl LiveView,
    zone: ZoneId,
    query: &Query<'_>,
    per_family: usize,
    only_up: bool,
    rng: &mut fastrand::Rng,
) -> Tier {
    let candidates = || {
        model
            .zone(zone)
            .endpoints
            .iter()
            .filter(move |e| !only_up || live.endpoint_up(zone, e))
    };
    let mut family = |v4: bool| -> Vec<IpAddr> {
        let costed: Vec<(&Endpoint, f64)> = candidates()
            .filter(|e| e.ip.is_ipv4() == v4)
            .map(|e| (e, live.endpoint_cost(e, query.geo).total))
            .collect();
        order(costed, per_family, rng)
    };
    Tier {
        zone,
        v4: if query.families.v4() {
            family(true)
        } else {
            Vec::new()
        },
        v6: if query.families.v6() {
            family(false)
        } else {
            Vec::new()
        },
    }
}

/// Orders endpoints band by band and keeps the first `limit`.
fn order(mut costed: Vec<(&Endpoint, f64)>, limit: usize, rng: &mut fastrand::Rng) -> Vec<IpAddr> {
    costed.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut ordered = Vec::with_capacity(limit.min(costed.len()));
    let mut rest = costed.as_mut_slice();
    while !rest.is_empty() && ordered.len() < limit {
        let best = rest[0].1;
        let cutoff = best + (best.abs() * RELATIVE_TOLERANCE).max(ABSOLUTE_TOLERANCE);
        let band_len = rest.iter().take_while(|(_, cost)| *cost <= cutoff).count();
        let (band, after) = rest.split_at_mut(band_len);
        weighted_shuffle(band, rng);
        ordered.extend(band.iter().map(|(e, _)| e.ip).take(limit - ordered.len()));
        rest = after;
    }
    ordered
}

/// Weighted random order (Efraimidis–Spirakis): an endpoint with twice the weight is
/// twice as likely to come first.
fn weighted_shuffle(band: &mut [(&Endpoint, f64)], rng: &mut fastrand::Rng) {
    if band.len() < 2 {
        return;
    }
    let mut keyed: Vec<(f64, usize)> = band
        .iter()
        .enumerate()
        .map(|(i, (e, _))| {
            // ln(u)/w is the log of u^(1/w); larger keys come first.
            let u = rng.f64().max(f64::MIN_POSITIVE);
            (u.ln() / f64::from(e.weight), i)
        })
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    let shuffled: Vec<(&Endpoint, f64)> = keyed.iter().map(|(_, i)| band[*i]).collect();
    band.copy_from_slice(&shuffled);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(ip: &str, weight: u32) -> Endpoint {
        Endpoint {
            ip: ip.parse().unwrap(),
            weight,
            health_check: None,
        }
    }

    #[test]
    fn cheaper_bands_come_first() {
        let (a, b, c) = (
            endpoint("192.0.2.1", 100),
            endpoint("192.0.2.2", 100),
            endpoint("192.0.2.3", 100),
        );
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..50 {
            let ordered = order(vec![(&c, 200.0), (&a, 10.0), (&b, 80.0)], 3, &mut rng);
            assert_eq!(ordered, vec![a.ip, b.ip, c.ip]);
        }
    }

    #[test]
    fn near_equal_endpoints_share_first_place_by_weight() {
        let heavy = endpoint("192.0.2.1", 300);
        let light = endpoint("192.0.2.2", 100);
        let mut rng = fastrand::Rng::with_seed(42);
        let heavy_first = (0..4000)
            .filter(|_| order(vec![(&heavy, 20.0), (&light, 22.0)], 1, &mut rng)[0] == heavy.ip)
            .count();
        // Expected share 3/4 = 3000 of 4000.
        assert!((2800..3200).contains(&heavy_first), "{heavy_first}");
    }

    #[test]
    fn limit_caps_the_answer() {
        let eps: Vec<Endpoint> = (1..=6)
            .map(|i| endpoint(&format!("192.0.2.{i}"), 100))
            .collect();
        let costed = eps.iter().map(|e| (e, 0.0)).collect();
        assert_eq!(order(costed, 4, &mut fastrand::Rng::with_seed(1)).len(), 4);
    }
}

//! The steering decision: (model, live state, client, domain) → [`Decision`].
//!
//! Pure: no I/O, no clock, no locks. Live state (health, drains, speed) comes in through
//! the [`LiveView`] trait so this module can be tested with plain values and the fronts
//! (JSON, DoH, DNS) all share one decision. It picks the home zone by the first matching
//! rule, walks the failover chain when the home zone cannot serve (unhealthy or drained
//! for this client), ranks endpoints, and lists the next zones as fallback tiers.

pub mod ranking;

use std::net::IpAddr;
use std::sync::Arc;

use smallvec::SmallVec;

pub use ranking::TierPlan;

use crate::geoip::Geo;
use crate::model::{Domain, Endpoint, Model, ZoneId};

/// Which address families the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Families {
    V4,
    V6,
    Both,
}

impl Families {
    pub fn v4(self) -> bool {
        matches!(self, Self::V4 | Self::Both)
    }
    pub fn v6(self) -> bool {
        matches!(self, Self::V6 | Self::Both)
    }
}

/// Live state the decision depends on. Every method has the "nothing known" default:
/// healthy, not drained, no measurements.
pub trait LiveView {
    /// Whether the endpoint passes its health checks and is not disabled.
    fn endpoint_up(&self, _zone: ZoneId, _endpoint: &Endpoint) -> bool {
        true
    }

    /// Share of its normal traffic (0.0 ..= 1.0) the zone keeps for this domain.
    fn zone_keep_share(&self, _zone: ZoneId, _domain: &Domain) -> f64 {
        1.0
    }

    /// When the endpoint was last known good (unix ms): `u64::MAX` while it is up, the
    /// time it went down otherwise, 0 when never or when an SRE disabled it.
    fn last_good_ms(&self, zone: ZoneId, endpoint: &Endpoint) -> u64 {
        if self.endpoint_up(zone, endpoint) {
            u64::MAX
        } else {
            0
        }
    }

    /// Ranking cost of the endpoint for this client (lower is better).
    fn endpoint_cost(&self, _endpoint: &Endpoint, _geo: &Geo) -> ranking::Cost {
        ranking::Cost::default()
    }
}

/// Live state with nothing in it: everything healthy, nothing drained.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLiveState;

impl LiveView for NoLiveState {}

/// Caps from the server config.
#[derive(Debug, Clone, Copy)]
pub struct AnswerLimits {
    pub max_answer_ips: usize,
    pub fallback_zones: usize,
    pub fallback_ips: usize,
}

/// What a client asks.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub domain: &'a Domain,
    pub geo: &'a Geo,
    pub client_ip: IpAddr,
    pub families: Families,
    /// Randomness for spreading load among near-equal endpoints.
    pub seed: u64,
}

/// Why a zone on the way was passed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// No endpoint passes health checks.
    Unhealthy,
    /// Drained (fully, or for this client's share).
    Drained,
}

/// A tier's addresses of one family, best first: inline up to the default
/// `limits.max_answer_ips`, so drawing an answer from a plan, which every request does,
/// allocates nothing with the defaults.
pub type Addresses = SmallVec<[IpAddr; 4]>;

/// A fallback tier: the next zone to try and its best endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub zone: ZoneId,
    pub v4: Addresses,
    pub v6: Addresses,
}

/// The answer for one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The zone the rules chose.
    pub home: ZoneId,
    /// Index of the rule that chose it; `None` for the default zone.
    pub rule: Option<usize>,
    /// The answer: its zone and endpoints, best first.
    pub answer: Tier,
    /// The answer is not from the home zone.
    pub failover: bool,
    /// Every zone in the chain was down; the answer is the home zone's endpoints anyway.
    pub fail_open: bool,
    pub ttl: u32,
    /// Inline for the default `limits.fallback_zones` (one).
    pub fallback: SmallVec<[Tier; 1]>,
    /// Zones passed over on the way, with the reason.
    pub skipped: Vec<(ZoneId, SkipReason)>,
}

/// A decision before its random draws: the zones chosen and skipped, and each tier's
/// bands of near-equal endpoints. The same for every client of a cache bucket while the
/// live state holds, so it can be kept and drawn from per request ([`Plan::draw`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub home: ZoneId,
    pub rule: Option<usize>,
    pub failover: bool,
    pub fail_open: bool,
    pub ttl: u32,
    pub skipped: Vec<(ZoneId, SkipReason)>,
    /// Shared: a zone's tier is the same for every domain it serves to one client (the
    /// answer cache hands every equal tier out once, [`Plan::share_tiers`]), so plans
    /// of many domains read the same few tiers.
    answer: Arc<ranking::TierPlan>,
    /// Inline for the default of one fallback zone.
    fallback: SmallVec<[Arc<ranking::TierPlan>; 1]>,
}

impl Plan {
    /// The zone the answer comes from.
    pub fn answer_zone(&self) -> ZoneId {
        self.answer.zone
    }

    /// This request's decision: the weighted draws inside each band. The plan holds
    /// the addresses and weights it draws from, so it needs no model.
    pub fn draw(&self, rng: &mut fastrand::Rng) -> Decision {
        Decision {
            home: self.home,
            rule: self.rule,
            answer: self.answer.draw(rng),
            failover: self.failover,
            fail_open: self.fail_open,
            ttl: self.ttl,
            fallback: self.fallback.iter().map(|tier| tier.draw(rng)).collect(),
            skipped: self.skipped.clone(),
        }
    }

    /// The answer's tier, then each fallback tier.
    #[cfg(test)]
    pub(crate) fn tiers(&self) -> Vec<Arc<TierPlan>> {
        std::iter::once(&self.answer)
            .chain(&self.fallback)
            .cloned()
            .collect()
    }

    /// Replaces every tier by `share(tier)`, which must return an equal tier (the one
    /// kept for all plans, say).
    pub fn share_tiers(&mut self, mut share: impl FnMut(Arc<TierPlan>) -> Arc<TierPlan>) {
        let tiers = std::iter::once(&mut self.answer).chain(self.fallback.iter_mut());
        for tier in tiers {
            let own = Arc::clone(tier);
            let shared = share(own);
            debug_assert!(*shared == **tier, "a shared tier must equal the plan's own");
            *tier = shared;
        }
    }
}

/// Decides the answer for one host.
pub fn decide(
    model: &Model,
    live: &impl LiveView,
    query: &Query<'_>,
    limits: &AnswerLimits,
) -> Decision {
    plan(model, live, query, limits).draw(&mut fastrand::Rng::with_seed(query.seed))
}

/// Everything of the decision for one host but the draws (`query.seed` is not used).
pub fn plan(model: &Model, live: &impl LiveView, query: &Query<'_>, limits: &AnswerLimits) -> Plan {
    let domain = query.domain;
    let (home, rule) = domain.home_zone(query.geo, query.client_ip);
    let chain = std::iter::once(home).chain(
        model
            .zone(home)
            .failover
            .iter()
            .copied()
            .filter(|zone| domain.is_served_by(*zone)),
    );
    let client_slot = drain_slot(query.client_ip, query.geo);

    let mut skipped = Vec::new();
    let mut serving = Vec::with_capacity(limits.fallback_zones + 1);
    for zone in chain {
        if !zone_has_up_endpoint(model, live, zone) {
            skipped.push((zone, SkipReason::Unhealthy));
        } else if client_slot >= live.zone_keep_share(zone, domain) {
            skipped.push((zone, SkipReason::Drained));
        } else {
            serving.push(zone);
        }
        if serving.len() > limits.fallback_zones {
            break;
        }
    }

    // One scratch list for every tier's costs; the plan keeps only what draws need.
    let mut scratch = Vec::new();
    let mut tier = |zone: ZoneId, per_family: usize, only_up: bool| {
        Arc::new(ranking::plan_zone(
            model,
            live,
            zone,
            query,
            per_family,
            only_up,
            &mut scratch,
        ))
    };
    let (answer, failover, fail_open) = match serving.first() {
        Some(&zone) => (tier(zone, limits.max_answer_ips, true), zone != home, false),
        // Every zone is down or drained: answering nothing would turn a monitoring
        // failure into an outage, so answer the zone that was good most recently
        // (the home zone on a tie, e.g. when everything is drained but healthy).
        None => {
            let last_good = |zone: ZoneId| {
                let endpoints = &model.zone(zone).endpoints;
                endpoints
                    .iter()
                    .map(|e| live.last_good_ms(zone, e))
                    .max()
                    .unwrap_or(0)
            };
            let mut best = home;
            for &(zone, _) in &skipped {
                if last_good(zone) > last_good(best) {
                    best = zone;
                }
            }
            (tier(best, limits.max_answer_ips, false), best != home, true)
        }
    };
    let fallback = serving
        .iter()
        .skip(1)
        .take(limits.fallback_zones)
        .map(|&zone| tier(zone, limits.fallback_ips, true))
        .collect();
    Plan {
        home,
        rule,
        answer,
        failover,
        fail_open,
        ttl: domain.ttl,
        fallback,
        skipped,
    }
}

fn zone_has_up_endpoint(model: &Model, live: &impl LiveView, zone: ZoneId) -> bool {
    model
        .zone(zone)
        .endpoints
        .iter()
        .any(|e| live.endpoint_up(zone, e))
}

/// Where a client falls in [0, 1) for partial drains. Derived from its /24 (/48 for
/// IPv6) and carrier so a client keeps its zone from one query to the next and a ramp
/// moves clients over gradually instead of flapping them.
///
/// A fixed mix, the same on every node of a fleet, of the network and an FxHash of the
/// carrier: the slot is compared with a share, never used to index a table a client
/// could flood, so SipHash (std's `DefaultHasher`, three times the cost of a whole band
/// draw here) buys nothing.
pub fn drain_slot(ip: IpAddr, geo: &Geo) -> f64 {
    use std::hash::BuildHasher;
    let network = match ip.to_canonical() {
        IpAddr::V4(v4) => u64::from(u32::from(v4) >> 8),
        // 48 bits, tagged so no IPv6 network shares an IPv4 network's slot by construction.
        IpAddr::V6(v6) => (u128::from(v6) >> 80) as u64 | 1 << 63,
    };
    let carrier = rustc_hash::FxBuildHasher.hash_one(geo.carrier.as_deref());
    let mixed = splitmix64(network ^ carrier.rotate_left(32));
    // 53 bits fill an f64 mantissa exactly.
    (mixed >> 11) as f64 / (1u64 << 53) as f64
}

/// The SplitMix64 finaliser: every input bit moves every output bit, so neighbouring
/// networks land in unrelated slots.
fn splitmix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::zones::parse;
    use std::collections::HashSet;
    use std::path::Path;

    const ZONES: &str = r#"
        [[zone]]
        name = "south"
        endpoints = ["192.0.2.1", "192.0.2.2", "2001:db8:1::1"]
        failover = ["east", "west", "north"]
        [[zone]]
        name = "east"
        endpoints = ["198.51.100.1", "198.51.100.2", "198.51.100.3", "2001:db8:2::1"]
        failover = ["south"]
        [[zone]]
        name = "west"
        endpoints = ["203.0.113.1"]
        [[zone]]
        name = "north"
        endpoints = ["203.0.113.50"]
        [[domain]]
        name = "api.example.com"
        ttl = 60
        zones = ["south", "east", "north"]
        default_zone = "east"
        [[domain.rule]]
        carrier = ["telecom"]
        zone = "south"
    "#;

    const LIMITS: AnswerLimits = AnswerLimits {
        max_answer_ips: 2,
        fallback_zones: 1,
        fallback_ips: 1,
    };

    fn model() -> Model {
        Model::compile(&[parse(ZONES, Path::new("z.toml")).unwrap()]).unwrap()
    }

    fn telecom() -> Geo {
        Geo {
            carrier: Some("telecom".into()),
            ..Geo::default()
        }
    }

    struct Down(HashSet<IpAddr>);
    impl LiveView for Down {
        fn endpoint_up(&self, _: ZoneId, e: &Endpoint) -> bool {
            !self.0.contains(&e.ip)
        }
    }

    struct Drained(ZoneId, f64);
    impl LiveView for Drained {
        fn zone_keep_share(&self, zone: ZoneId, _: &Domain) -> f64 {
            if zone == self.0 { self.1 } else { 1.0 }
        }
    }

    fn decide_for(model: &Model, live: &impl LiveView, geo: &Geo, seed: u64) -> Decision {
        let query = Query {
            domain: model.domain("api.example.com").unwrap(),
            geo,
            client_ip: "192.0.2.77".parse().unwrap(),
            families: Families::Both,
            seed,
        };
        decide(model, live, &query, &LIMITS)
    }

    fn down(ips: &[&str]) -> Down {
        Down(ips.iter().map(|ip| ip.parse().unwrap()).collect())
    }

    #[test]
    fn home_zone_answers_with_fallback_tier_from_the_chain() {
        let m = model();
        let d = decide_for(&m, &NoLiveState, &telecom(), 1);
        assert_eq!(d.answer.zone, m.zone_id("south").unwrap());
        assert!(!d.failover && !d.fail_open);
        assert_eq!(d.answer.v4.len(), 2);
        assert_eq!(
            d.answer.v6[..],
            ["2001:db8:1::1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(d.ttl, 60);
        assert_eq!(d.fallback.len(), 1);
        assert_eq!(d.fallback[0].zone, m.zone_id("east").unwrap());
        assert_eq!(d.fallback[0].v4.len(), 1, "fallback_ips caps each family");
    }

    #[test]
    fn unhealthy_home_zone_answers_from_failover() {
        let m = model();
        let d = decide_for(
            &m,
            &down(&["192.0.2.1", "192.0.2.2", "2001:db8:1::1"]),
            &telecom(),
            1,
        );
        assert_eq!(d.answer.zone, m.zone_id("east").unwrap());
        assert!(d.failover);
        assert_eq!(
            d.skipped,
            vec![(m.zone_id("south").unwrap(), SkipReason::Unhealthy)]
        );
        // "west" does not serve the domain, so the next tier is "north".
        assert_eq!(d.fallback[0].zone, m.zone_id("north").unwrap());
    }

    #[test]
    fn down_endpoints_leave_the_answer_but_the_zone_stays() {
        let m = model();
        let d = decide_for(&m, &down(&["192.0.2.1"]), &telecom(), 1);
        assert_eq!(d.answer.zone, m.zone_id("south").unwrap());
        assert_eq!(d.answer.v4[..], ["192.0.2.2".parse::<IpAddr>().unwrap()]);
    }

    /// Every endpoint of every zone down.
    fn all_down(m: &Model) -> Down {
        Down(
            m.zones
                .iter()
                .flat_map(|z| z.endpoints.iter().map(|e| e.ip))
                .collect(),
        )
    }

    #[test]
    fn everything_down_fails_open_to_the_home_zone() {
        let m = model();
        let d = decide_for(&m, &all_down(&m), &telecom(), 1);
        assert!(d.fail_open);
        assert_eq!(d.answer.zone, m.zone_id("south").unwrap());
        assert_eq!(d.answer.v4.len(), 2);
        assert!(d.fallback.is_empty());
    }

    /// Everything is down; `east` went down last.
    struct DownSince(Down, IpAddr);
    impl LiveView for DownSince {
        fn endpoint_up(&self, zone: ZoneId, e: &Endpoint) -> bool {
            self.0.endpoint_up(zone, e)
        }
        fn last_good_ms(&self, _: ZoneId, e: &Endpoint) -> u64 {
            if e.ip == self.1 { 2_000 } else { 1_000 }
        }
    }

    #[test]
    fn failing_open_prefers_the_zone_that_was_good_last() {
        let m = model();
        let live = DownSince(all_down(&m), "198.51.100.2".parse().unwrap());
        let d = decide_for(&m, &live, &telecom(), 1);
        assert!(d.fail_open && d.failover);
        assert_eq!(d.answer.zone, m.zone_id("east").unwrap());
    }

    #[test]
    fn drained_home_zone_answers_from_failover() {
        let m = model();
        let south = m.zone_id("south").unwrap();
        let d = decide_for(&m, &Drained(south, 0.0), &telecom(), 1);
        assert!(d.failover);
        assert_eq!(d.answer.zone, m.zone_id("east").unwrap());
        assert_eq!(d.skipped, vec![(south, SkipReason::Drained)]);
    }

    #[test]
    fn default_zone_when_no_rule_matches() {
        let m = model();
        let d = decide_for(&m, &NoLiveState, &Geo::default(), 1);
        assert_eq!(d.answer.zone, m.zone_id("east").unwrap());
        assert_eq!(d.rule, None);
        assert!(!d.failover);
    }

    #[test]
    fn only_requested_families_are_answered() {
        let m = model();
        let geo = telecom();
        let query = Query {
            domain: m.domain("api.example.com").unwrap(),
            geo: &geo,
            client_ip: "192.0.2.77".parse().unwrap(),
            families: Families::V6,
            seed: 3,
        };
        let d = decide(&m, &NoLiveState, &query, &LIMITS);
        assert!(d.answer.v4.is_empty());
        assert_eq!(d.answer.v6.len(), 1);
    }

    #[test]
    fn drain_slot_is_sticky_per_slash_24_and_spread_across_them() {
        let geo = telecom();
        let a = drain_slot("192.0.2.1".parse().unwrap(), &geo);
        assert_eq!(a, drain_slot("192.0.2.254".parse().unwrap(), &geo));
        let slots: Vec<f64> = (0..1000u32)
            .map(|i| drain_slot(IpAddr::from((0x0a00_0000 + (i << 8)).to_be_bytes()), &geo))
            .collect();
        let below_half = slots.iter().filter(|s| **s < 0.5).count();
        assert!((400..600).contains(&below_half), "{below_half}");
        assert!(slots.iter().all(|s| (0.0..1.0).contains(s)));
        // Every tenth of [0, 1) gets its share: a ramp moves clients over evenly.
        for tenth in 0..10 {
            let range = f64::from(tenth) / 10.0..f64::from(tenth + 1) / 10.0;
            let n = slots.iter().filter(|s| range.contains(s)).count();
            assert!((60..140).contains(&n), "{range:?}: {n}");
        }
        // The carrier and the family are part of the slot; the rest of a /48 is not.
        let unicom = Geo {
            carrier: Some("unicom".into()),
            ..Geo::default()
        };
        assert_ne!(a, drain_slot("192.0.2.1".parse().unwrap(), &unicom));
        let v6 = drain_slot("2001:db8:1::1".parse().unwrap(), &geo);
        assert_eq!(v6, drain_slot("2001:db8:1:ffff::9".parse().unwrap(), &geo));
        assert_ne!(v6, drain_slot("2001:db8:2::1".parse().unwrap(), &geo));
    }
}

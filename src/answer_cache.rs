//! The answer cache: what was decided for a client network, kept until anything it
//! depends on moves.
//!
//! A decision depends on the client only through its geo record, the rule and override
//! CIDRs near it and its /24 (/48) drain slot, so every client of one *client network*
//! gets the same one: the client's address cut to the longest of its ECS scope
//! ([`crate::model::ScopeMap`], never shorter than /24 or /48) and the IP database
//! record holding it ([`crate::geoip::GeoDb::precision`]). Per client network the cache
//! keeps the geo record, and per (client network, domain, families) the [`Plan`]: zones
//! chosen and skipped and each tier's bands of near-equal endpoints. A request that
//! hits does no geo decode, no rule walk and no ranking; it only draws the weighted
//! order inside each band, so load still spreads by weight exactly as without the cache.
//!
//! An entry is good while the snapshot (model, IP database, limits), the epoch (drains,
//! disables, health transitions, reloads) and the speed table's revision (every
//! accepted report) are the ones it was made under, and for at most
//! [`PLAN_MAX_AGE_MS`]: probe RTTs, partial-drain ramps and the recency of successes
//! move with the clock and bump nothing. Both maps are bounded; an evicted entry is
//! simply decided again.

use std::net::IpAddr;
use std::sync::Arc;

use moka::sync::Cache;

use crate::geoip::Geo;
use crate::model::network_of;
use crate::scheduler::{Families, Plan};

/// How long a plan may be served without being decided again (ms): answers follow probe
/// RTTs, drain ramps and success recency at least this often.
pub const PLAN_MAX_AGE_MS: u64 = 1_000;
/// (client network, domain, families) plans kept by default (`limits.answer_cache_entries`);
/// half as many client networks' geo records.
pub const MAX_PLANS: u64 = 200_000;

/// The clients that share every decision: a network and its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientNetwork {
    network: IpAddr,
    prefix: u8,
}

impl ClientNetwork {
    /// `ip` (IPv4-mapped addresses as IPv4) cut to `prefix` bits.
    pub fn of(ip: IpAddr, prefix: u8) -> Self {
        let ip = ip.to_canonical();
        Self {
            network: network_of(ip, prefix, prefix),
            prefix,
        }
    }
}

/// What an entry was made under; it is good only while all of it still holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Generation {
    /// [`crate::snapshot::Snapshot::generation`].
    pub snapshot: u64,
    pub epoch: u64,
    /// [`crate::speed::SpeedTable::revision`].
    pub speed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PlanKey {
    client: ClientNetwork,
    domain: usize,
    families: u8,
}

struct GeoEntry {
    snapshot: u64,
    geo: Arc<Geo>,
}

/// A plan with the counter every answer drawn from it counts on: the answer zone and
/// failover flag are fixed by the plan, so its `httpdns_answers_total` series is too.
///
/// The cache keeps it as it is, with what it was made under beside it: one allocation
/// behind the map's entry, not a stamped entry pointing at the plan (with many domains
/// each extra hop is a cache miss per request).
pub struct Planned {
    pub plan: Plan,
    pub answered: metrics::Counter,
    /// Set by the cache when it keeps the plan.
    generation: Generation,
    made_ms: u64,
}

impl Planned {
    pub fn new(plan: Plan, answered: metrics::Counter) -> Self {
        Self {
            plan,
            answered,
            generation: Generation::default(),
            made_ms: 0,
        }
    }
}

/// The keys are a few integers: FxHash is several times cheaper than SipHash, and
/// SipHash's flood resistance buys nothing here (a client choosing keys only chooses
/// which entries miss; both maps are bounded either way).
type KeyHasher = rustc_hash::FxBuildHasher;

/// The cache itself; owned by the resolver, which alone knows the generation.
pub struct AnswerCache {
    geos: Cache<ClientNetwork, Arc<GeoEntry>, KeyHasher>,
    plans: Cache<PlanKey, Arc<Planned>, KeyHasher>,
}

impl Default for AnswerCache {
    fn default() -> Self {
        Self::with_plans(MAX_PLANS)
    }
}

impl AnswerCache {
    /// A cache of `max_plans` plans and half as many client networks' geo records.
    pub fn with_plans(max_plans: u64) -> Self {
        Self::new(max_plans.div_ceil(2), max_plans)
    }

    pub fn new(max_client_networks: u64, max_plans: u64) -> Self {
        Self {
            geos: Cache::builder()
                .max_capacity(max_client_networks)
                .build_with_hasher(KeyHasher::default()),
            plans: Cache::builder()
                .max_capacity(max_plans)
                .build_with_hasher(KeyHasher::default()),
        }
    }

    /// The geo record of `client` under snapshot `snapshot`, looked up by `lookup` on a
    /// miss.
    pub fn geo(
        &self,
        client: ClientNetwork,
        snapshot: u64,
        lookup: impl FnOnce() -> Geo,
    ) -> Arc<Geo> {
        if let Some(entry) = self.geos.get(&client) {
            if entry.snapshot == snapshot {
                return Arc::clone(&entry.geo);
            }
        }
        let geo = Arc::new(lookup());
        self.geos.insert(
            client,
            Arc::new(GeoEntry {
                snapshot,
                geo: Arc::clone(&geo),
            }),
        );
        geo
    }

    /// The client network of `ip` and its geo record under snapshot `snapshot`, given
    /// its ECS `scope` (never shorter than /24 or /48). The network is `ip` cut to the
    /// longer of `scope` and the database record holding it (`precision`), so finding
    /// it walks the database; on the common path that walk is skipped: an entry stored
    /// at the scope network itself means the walk for an address in it ended no deeper
    /// than the scope, and in a trie that means no record splits the scope network, so
    /// every address in it reads the same. Only where the database does split it (records
    /// longer than /24) are `precision` and a second lookup paid.
    pub fn client_geo(
        &self,
        ip: IpAddr,
        scope: u8,
        snapshot: u64,
        precision: impl FnOnce() -> u8,
        lookup: impl FnOnce() -> Geo,
    ) -> (ClientNetwork, Arc<Geo>) {
        let coarse = ClientNetwork::of(ip, scope);
        if let Some(entry) = self.geos.get(&coarse) {
            if entry.snapshot == snapshot {
                return (coarse, Arc::clone(&entry.geo));
            }
        }
        let client = ClientNetwork::of(ip, scope.max(precision()));
        (client, self.geo(client, snapshot, lookup))
    }

    /// The plan for `domain` and `families` of `client`, made by `decide` when there is
    /// none still good at `now_ms` under `generation` (`None` when `decide` makes none).
    pub fn plan(
        &self,
        client: ClientNetwork,
        domain: usize,
        families: Families,
        generation: Generation,
        now_ms: u64,
        decide: impl FnOnce() -> Option<Planned>,
    ) -> Option<Arc<Planned>> {
        let key = PlanKey {
            client,
            domain,
            families: families as u8,
        };
        if let Some(planned) = self.plans.get(&key) {
            if planned.generation == generation
                && now_ms.saturating_sub(planned.made_ms) < PLAN_MAX_AGE_MS
                && now_ms >= planned.made_ms
            {
                return Some(planned);
            }
        }
        let planned = Arc::new(Planned {
            generation,
            made_ms: now_ms,
            ..decide()?
        });
        self.plans.insert(key, Arc::clone(&planned));
        Some(planned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn client_networks_cut_to_their_prefix_and_mapped_addresses_count_as_ipv4() {
        assert_eq!(
            ClientNetwork::of(ip("202.96.128.86"), 24),
            ClientNetwork::of(ip("202.96.128.1"), 24)
        );
        assert_ne!(
            ClientNetwork::of(ip("202.96.128.86"), 26),
            ClientNetwork::of(ip("202.96.128.1"), 26)
        );
        assert_eq!(
            ClientNetwork::of(ip("::ffff:202.96.128.86"), 24),
            ClientNetwork::of(ip("202.96.128.9"), 24)
        );
    }

    #[test]
    fn geo_is_looked_up_once_per_network_and_again_for_a_new_snapshot() {
        let cache = AnswerCache::new(10, 10);
        let lookups = Cell::new(0);
        let lookup = || {
            lookups.set(lookups.get() + 1);
            Geo {
                country: Some("CN".into()),
                ..Geo::default()
            }
        };
        let net = ClientNetwork::of(ip("202.96.128.86"), 24);
        assert_eq!(cache.geo(net, 1, lookup).country.as_deref(), Some("CN"));
        cache.geo(net, 1, lookup);
        assert_eq!(lookups.get(), 1);
        cache.geo(net, 2, lookup);
        assert_eq!(lookups.get(), 2, "a new snapshot may carry a new database");
        cache.geo(ClientNetwork::of(ip("202.96.129.86"), 24), 2, lookup);
        assert_eq!(lookups.get(), 3);
    }

    #[test]
    fn the_database_is_walked_only_where_it_splits_a_scope_network() {
        let cache = AnswerCache::new(10, 10);
        let (walks, lookups) = (Cell::new(0), Cell::new(0));
        // A database of /16 records but for 10.1.2.0/24, split into two /25s (in a
        // trie, every address of a split /24 ends deeper than /24).
        let ask = |text: &str, snapshot: u64| {
            let addr = ip(text);
            let record = if text.starts_with("10.1.2.") { 25 } else { 16 };
            cache.client_geo(
                addr,
                24,
                snapshot,
                || {
                    walks.set(walks.get() + 1);
                    record
                },
                || {
                    lookups.set(lookups.get() + 1);
                    Geo::default()
                },
            )
        };
        let (net, _) = ask("10.9.9.1", 1);
        assert_eq!(net, ClientNetwork::of(ip("10.9.9.0"), 24));
        assert_eq!((walks.get(), lookups.get()), (1, 1));
        let (again, _) = ask("10.9.9.200", 1);
        assert_eq!(again, net, "same /24, record no longer than it: shared");
        assert_eq!((walks.get(), lookups.get()), (1, 1), "no walk, no lookup");
        // Where the database splits the /24, each half is its own client network.
        let (low, _) = ask("10.1.2.1", 1);
        let (high, _) = ask("10.1.2.200", 1);
        assert_eq!(low, ClientNetwork::of(ip("10.1.2.0"), 25));
        assert_eq!(high, ClientNetwork::of(ip("10.1.2.128"), 25));
        assert_eq!(lookups.get(), 3, "one lookup per half");
        let (high_again, _) = ask("10.1.2.129", 1);
        assert_eq!(high_again, high);
        assert_eq!(lookups.get(), 3, "the half is cached");
        assert_eq!(walks.get(), 4, "but a split /24 is walked every time");
        // A new snapshot (maybe a new database) walks again.
        ask("10.9.9.1", 2);
        assert_eq!(walks.get(), 5);
    }

    fn plan_of(model: &crate::model::Model, east_down: bool) -> Plan {
        struct Live(bool);
        impl crate::scheduler::LiveView for Live {
            fn endpoint_up(&self, _: crate::model::ZoneId, e: &crate::model::Endpoint) -> bool {
                !(self.0 && e.ip.to_string().starts_with("198.51.100."))
            }
        }
        let geo = Geo::default();
        let query = crate::scheduler::Query {
            domain: model.domain("api.example.com").unwrap(),
            geo: &geo,
            client_ip: ip("192.0.2.200"),
            families: Families::Both,
            seed: 0,
        };
        let limits = crate::scheduler::AnswerLimits {
            max_answer_ips: 2,
            fallback_zones: 1,
            fallback_ips: 1,
        };
        crate::scheduler::plan(model, &Live(east_down), &query, &limits)
    }

    #[test]
    fn a_plan_is_kept_while_its_generation_holds_and_for_at_most_its_age() {
        let zones = r#"
            [[zone]]
            name = "east"
            endpoints = ["198.51.100.1", "198.51.100.2"]
            failover = ["west"]
            [[zone]]
            name = "west"
            endpoints = ["203.0.113.1"]
            [[domain]]
            name = "api.example.com"
            ttl = 60
            zones = ["east", "west"]
            default_zone = "east"
        "#;
        let file = crate::config::zones::parse(zones, std::path::Path::new("z.toml")).unwrap();
        let model = crate::model::Model::compile(&[file]).unwrap();
        let cache = AnswerCache::new(10, 10);
        let net = ClientNetwork::of(ip("192.0.2.200"), 24);
        let made = Cell::new(0);
        let now = 1_000_000;
        let at = |generation: Generation, now_ms: u64, east_down: bool| {
            cache
                .plan(net, 0, Families::Both, generation, now_ms, || {
                    made.set(made.get() + 1);
                    Some(Planned::new(
                        plan_of(&model, east_down),
                        metrics::Counter::noop(),
                    ))
                })
                .unwrap()
        };
        let first = Generation {
            snapshot: 1,
            epoch: 10,
            speed: 0,
        };
        assert_eq!(at(first, now, false).plan.answer_zone(), 0);
        at(first, now + PLAN_MAX_AGE_MS - 1, true);
        assert_eq!(made.get(), 1, "same generation, young plan: kept");
        // A health transition bumps the epoch: the next request sees it.
        let drained = Generation { epoch: 11, ..first };
        assert_eq!(at(drained, now + 1, true).plan.answer_zone(), 1);
        assert_eq!(made.get(), 2);
        for changed in [
            Generation {
                speed: 1,
                ..drained
            },
            Generation {
                snapshot: 2,
                ..drained
            },
        ] {
            at(changed, now + 2, false);
            at(changed, now + 3, false);
        }
        assert_eq!(made.get(), 4, "one new plan per new generation");
        let last = Generation {
            snapshot: 2,
            ..drained
        };
        at(last, now + 2 + PLAN_MAX_AGE_MS, false);
        assert_eq!(made.get(), 5, "too old: decided again");
        at(last, now, false);
        assert_eq!(
            made.get(),
            6,
            "a clock that went back does not keep a plan forever"
        );
        // No plan made: nothing kept, the next request decides again.
        let none = cache.plan(net, 1, Families::Both, last, now, || None);
        assert!(none.is_none());
        at(last, now + 1, false);
        assert_eq!(
            made.get(),
            6,
            "a decision that made no plan left the others alone"
        );
    }
}

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
//! Two things keep the cached path's memory small when many domains are asked for in
//! turn (1,000 rotating hosts over 100,000 domains in the scale bench, where every line
//! a request touches competes with the kernel's socket buffers for the core's cache):
//! plans hold their zone tiers by reference and the cache keeps one copy of each
//! distinct tier ([`Plan::share_tiers`]: every domain a zone serves to one client ranks
//! its endpoints the same), and each thread keeps the plans it answered from lately by
//! the host's name (`RecentPlans`), so a repeated question reads neither the domain
//! table nor moka.
//!
//! An entry is good while the snapshot (model, IP database, limits), the epoch (drains,
//! disables, health transitions, reloads) and the speed table's revision (every
//! accepted report) are the ones it was made under, and for at most
//! [`PLAN_MAX_AGE_MS`]: probe RTTs, partial-drain ramps and the recency of successes
//! move with the clock and bump nothing. Both maps are bounded; an evicted entry is
//! simply decided again.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use moka::sync::Cache;

use crate::geoip::Geo;
use crate::model::network_of;
use crate::scheduler::{Families, Plan, TierPlan};

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
    /// Tells this cache's plans from another's in [`RecentPlans`] (tests and benches
    /// make several caches on one thread).
    id: u64,
    geos: Cache<ClientNetwork, Arc<GeoEntry>, KeyHasher>,
    plans: Cache<PlanKey, Arc<Planned>, KeyHasher>,
    /// One of each distinct tier the plans hold ([`Plan::share_tiers`]).
    tiers: Cache<SharedTier, Arc<TierPlan>, KeyHasher>,
}

/// A tier as the key of its shared copy: equal by content.
#[derive(PartialEq, Eq, Hash)]
struct SharedTier(Arc<TierPlan>);

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
        static IDS: AtomicU64 = AtomicU64::new(1);
        Self {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            geos: Cache::builder()
                .max_capacity(max_client_networks)
                .build_with_hasher(KeyHasher::default()),
            plans: Cache::builder()
                .max_capacity(max_plans)
                .build_with_hasher(KeyHasher::default()),
            tiers: Cache::builder()
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

    /// The plan for `host` and `families` of `client`, made by `decide` when there is
    /// none still good at `now_ms` under `generation`. `domain_id` finds the host's
    /// domain (`None`: no such domain, no plan) and is asked only when this thread's
    /// `RecentPlans` has no good plan for the host; `decide` gets the id and may make
    /// no plan either.
    #[allow(clippy::too_many_arguments)]
    pub fn plan(
        &self,
        client: ClientNetwork,
        host: &str,
        families: Families,
        generation: Generation,
        now_ms: u64,
        domain_id: impl FnOnce() -> Option<usize>,
        decide: impl FnOnce(usize) -> Option<Planned>,
    ) -> Option<Arc<Planned>> {
        let recent = RecentKey::new(self.id, client, families, host);
        if let Some(planned) = recent.as_ref().and_then(RecentKey::find) {
            if planned.is_good(generation, now_ms) {
                return Some(planned);
            }
        }
        let domain = domain_id()?;
        let key = PlanKey {
            client,
            domain,
            families: families as u8,
        };
        if let Some(planned) = self.plans.get(&key) {
            if planned.is_good(generation, now_ms) {
                if let Some(recent) = &recent {
                    recent.keep(&planned);
                }
                return Some(planned);
            }
        }
        let mut planned = decide(domain)?;
        planned.plan.share_tiers(|tier| {
            self.tiers
                .get_with(SharedTier(Arc::clone(&tier)), move || tier)
        });
        let planned = Arc::new(Planned {
            generation,
            made_ms: now_ms,
            ..planned
        });
        self.plans.insert(key, Arc::clone(&planned));
        if let Some(recent) = &recent {
            recent.keep(&planned);
        }
        Some(planned)
    }
}

impl Planned {
    /// Made under `generation` and young enough at `now_ms` (a clock that went back
    /// counts as too old, so no plan is kept forever).
    fn is_good(&self, generation: Generation, now_ms: u64) -> bool {
        self.generation == generation
            && now_ms >= self.made_ms
            && now_ms - self.made_ms < PLAN_MAX_AGE_MS
    }
}

/// Sets of [`RecentPlans`] per thread, [`RECENT_WAYS`] plans each: 8,192 plans, 1 MiB.
const RECENT_SETS: usize = 2048;
/// Plans per set: with two, 1,000 hosts asked in turn found 9.5% of theirs pushed out by
/// a third sharing the set (a simulation of the scale bench's rotation); with four,
/// under 0.1%.
const RECENT_WAYS: usize = 4;
/// Longer host names are not kept in [`RecentPlans`] (they take the shared cache's path).
const RECENT_HOST_BYTES: usize = 92;

/// Plans this thread answered from lately, found by the host's name as the request
/// spells it.
///
/// In front of the shared map, not instead of it: a hit here reads a line of tags and
/// one 128-byte slot (its first line alone for a host of up to 28 bytes) and the plan,
/// where the shared path hashes the name into the 100,000-domain table, follows its key
/// to compare it, then looks the plan up in moka, whose every read also touches its
/// entry's access stamp, a read buffer and, on housekeeping, its frequency sketch: with
/// 1,000 hosts in rotation those are a dozen cold lines per request (perf, BENCH.md).
/// Per thread, so it takes no lock and no atomic beyond the plan's reference count. A
/// slot is used only for the cache that filled it (`cache`), its client network,
/// families and exact host bytes, and its plan only while [`Planned::is_good`]:
/// everything the shared map would check. Bounded: a plan pushed out or gone stale is
/// simply found in the shared map again, and a stale one is replaced in its own slot.
struct RecentPlans {
    /// Each set's slot tags (a few bits of the key's hash, never 0; 0 is an empty
    /// slot), apart from the slots: four sets share a line, so a lookup compares tags
    /// in a line it has likely read lately and touches only a slot whose tag matches.
    tags: Vec<[u16; RECENT_WAYS]>,
    slots: Vec<[RecentSlot; RECENT_WAYS]>,
    /// The way a plan replaces in a full set: the thread's inserts taken in turn, which
    /// is as good as random for a set's four ways and never hands a rotation of five
    /// hosts the worst case of least-recently-used (every lookup a miss).
    next_victim: usize,
}

/// What a plan was kept for, laid out so that the fields compared first and a host of
/// up to 28 bytes share the first line.
#[derive(Clone)]
#[repr(C, align(64))]
struct RecentSlot {
    /// [`AnswerCache::id`]; 0 for an empty slot (ids start at 1).
    cache: u64,
    planned: Option<Arc<Planned>>,
    families: u8,
    len: u8,
    client: Option<ClientNetwork>,
    host: [u8; RECENT_HOST_BYTES],
}

impl Default for RecentSlot {
    fn default() -> Self {
        Self {
            cache: 0,
            planned: None,
            families: 0,
            len: 0,
            client: None,
            host: [0; RECENT_HOST_BYTES],
        }
    }
}

const _: () = assert!(std::mem::size_of::<RecentSlot>() == 128);
const _: () = assert!(std::mem::offset_of!(RecentSlot, host) == 64 - 28);

thread_local! {
    static RECENT: std::cell::RefCell<RecentPlans> = const {
        std::cell::RefCell::new(RecentPlans {
            tags: Vec::new(),
            slots: Vec::new(),
            next_victim: 0,
        })
    };
}

/// What a [`RecentSlot`] must hold to answer a request, and where it goes.
struct RecentKey<'h> {
    cache: u64,
    client: ClientNetwork,
    families: u8,
    host: &'h [u8],
    /// `host.len()`, which fits a slot.
    len: u8,
    set: usize,
    /// Never 0.
    tag: u16,
}

impl<'h> RecentKey<'h> {
    /// The key of `host` for `client` and `families` in cache `cache`; `None` for a
    /// host longer than a slot holds.
    fn new(cache: u64, client: ClientNetwork, families: Families, host: &'h str) -> Option<Self> {
        use std::hash::{BuildHasher, Hash, Hasher};
        let host = host.as_bytes();
        if host.len() > RECENT_HOST_BYTES {
            return None;
        }
        let len = u8::try_from(host.len()).ok()?;
        let families = families as u8;
        let mut hasher = KeyHasher::default().build_hasher();
        hasher.write(host);
        client.hash(&mut hasher);
        hasher.write_u8(families);
        // The top bits: FxHash's low bits mix poorly.
        let mixed = hasher.finish().wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let set = (mixed >> 32) as usize % RECENT_SETS;
        let tag = ((mixed >> 48) as u16).max(1);
        Some(Self {
            cache,
            client,
            families,
            host,
            len,
            set,
            tag,
        })
    }

    fn is_held_by(&self, slot: &RecentSlot) -> bool {
        slot.cache == self.cache
            && slot.families == self.families
            && slot.len == self.len
            && slot.client == Some(self.client)
            && slot.host[..self.host.len()] == *self.host
    }

    /// The way of the key's set that holds it.
    fn way_in(&self, recent: &RecentPlans) -> Option<usize> {
        let tags = recent.tags.get(self.set)?;
        let slots = recent.slots.get(self.set)?;
        (0..RECENT_WAYS).find(|&way| tags[way] == self.tag && self.is_held_by(&slots[way]))
    }

    /// The plan this thread kept for the key, good or not.
    fn find(&self) -> Option<Arc<Planned>> {
        RECENT.with_borrow(|recent| {
            let way = self.way_in(recent)?;
            recent.slots[self.set][way].planned.clone()
        })
    }

    /// Keeps `planned` for the key: in its own slot if it has one (a stale plan is
    /// replaced in place), else in an empty way of its set, else in place of the way
    /// whose turn it is.
    fn keep(&self, planned: &Arc<Planned>) {
        RECENT.with_borrow_mut(|recent| {
            if recent.slots.is_empty() {
                recent.tags = vec![[0; RECENT_WAYS]; RECENT_SETS];
                recent.slots = vec![Default::default(); RECENT_SETS];
            }
            let way = match self.way_in(recent) {
                Some(way) => way,
                None => match recent.tags[self.set].iter().position(|&tag| tag == 0) {
                    Some(empty) => empty,
                    None => {
                        recent.next_victim = recent.next_victim.wrapping_add(1);
                        recent.next_victim % RECENT_WAYS
                    }
                },
            };
            recent.tags[self.set][way] = self.tag;
            let slot = &mut recent.slots[self.set][way];
            slot.planned = Some(Arc::clone(planned));
            slot.cache = self.cache;
            slot.client = Some(self.client);
            slot.families = self.families;
            slot.len = self.len;
            slot.host[..self.host.len()].copy_from_slice(self.host);
        });
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

    fn plan_of(model: &crate::model::Model, host: &str, east_down: bool) -> Plan {
        struct Live(bool);
        impl crate::scheduler::LiveView for Live {
            fn endpoint_up(&self, _: crate::model::ZoneId, e: &crate::model::Endpoint) -> bool {
                !(self.0 && e.ip.to_string().starts_with("198.51.100."))
            }
        }
        let geo = Geo::default();
        let query = crate::scheduler::Query {
            domain: model.domain(host).unwrap(),
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

    /// What `decide` makes in these tests: `host`'s plan, counted nowhere.
    fn planned(model: &crate::model::Model, host: &str, east_down: bool) -> Option<Planned> {
        Some(Planned::new(
            plan_of(model, host, east_down),
            metrics::Counter::noop(),
        ))
    }

    /// api and img are served by east failing over to west; solo by west alone.
    fn model() -> crate::model::Model {
        let zones = r#"
            [[zone]]
            name = "east"
            endpoints = ["198.51.100.1", "198.51.100.2"]
            failover = ["west"]
            [[zone]]
            name = "west"
            endpoints = ["203.0.113.1", "203.0.113.2"]
            [[domain]]
            name = "api.example.com"
            ttl = 60
            zones = ["east", "west"]
            default_zone = "east"
            [[domain]]
            name = "img.example.com"
            ttl = 300
            zones = ["east", "west"]
            default_zone = "east"
            [[domain]]
            name = "solo.example.com"
            ttl = 60
            zones = ["west"]
            default_zone = "west"
        "#;
        let file = crate::config::zones::parse(zones, std::path::Path::new("z.toml")).unwrap();
        crate::model::Model::compile(&[file]).unwrap()
    }

    const GENERATION: Generation = Generation {
        snapshot: 1,
        epoch: 10,
        speed: 0,
    };
    const NOW: u64 = 1_000_000;

    #[test]
    fn a_plan_is_kept_while_its_generation_holds_and_for_at_most_its_age() {
        let model = model();
        let cache = AnswerCache::new(10, 10);
        let net = ClientNetwork::of(ip("192.0.2.200"), 24);
        let made = Cell::new(0);
        let now = NOW;
        let host = "api.example.com";
        let at = |generation: Generation, now_ms: u64, east_down: bool| {
            cache
                .plan(
                    net,
                    host,
                    Families::Both,
                    generation,
                    now_ms,
                    || model.domain_id(host),
                    |_| {
                        made.set(made.get() + 1);
                        planned(&model, host, east_down)
                    },
                )
                .unwrap()
        };
        let first = GENERATION;
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
        // No such domain, or no plan made: nothing kept, the next request decides again.
        let unknown = cache.plan(
            net,
            "nope.example.com",
            Families::Both,
            last,
            now,
            || None,
            |_| unreachable!("no domain, nothing to decide"),
        );
        assert!(unknown.is_none());
        let none = cache.plan(
            net,
            "img.example.com",
            Families::Both,
            last,
            now,
            || model.domain_id("img.example.com"),
            |_| None,
        );
        assert!(none.is_none());
        at(last, now + 1, false);
        assert_eq!(
            made.get(),
            6,
            "a decision that made no plan left the others alone"
        );
    }

    #[test]
    fn a_thread_finds_its_recent_plans_by_name_without_the_domain_table() {
        let model = model();
        let (lookups, made) = (AtomicU64::new(0), AtomicU64::new(0));
        let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let ask = |cache: &AnswerCache, net: ClientNetwork, host: &str, families: Families| {
            cache
                .plan(
                    net,
                    host,
                    families,
                    GENERATION,
                    NOW,
                    || {
                        lookups.fetch_add(1, Ordering::Relaxed);
                        model.domain_id(host)
                    },
                    |_| {
                        made.fetch_add(1, Ordering::Relaxed);
                        planned(&model, host, false)
                    },
                )
                .unwrap()
        };
        let (cache, other_cache) = (AnswerCache::new(10, 100), AnswerCache::new(10, 100));
        let net = ClientNetwork::of(ip("192.0.2.200"), 24);
        let first = ask(&cache, net, "api.example.com", Families::Both);
        let again = ask(&cache, net, "api.example.com", Families::Both);
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(
            (count(&lookups), count(&made)),
            (1, 1),
            "found by name alone"
        );
        // Each part of the key is its own plan: families, client network, host, cache.
        let others = [
            ask(&cache, net, "api.example.com", Families::V4),
            ask(
                &cache,
                ClientNetwork::of(ip("192.0.3.200"), 24),
                "api.example.com",
                Families::Both,
            ),
            ask(&cache, net, "img.example.com", Families::Both),
            ask(&other_cache, net, "api.example.com", Families::Both),
        ];
        assert_eq!(count(&made), 5);
        for other in &others {
            assert!(!Arc::ptr_eq(&first, other));
        }
        assert!(Arc::ptr_eq(
            &first,
            &ask(&cache, net, "api.example.com", Families::Both)
        ));
        assert_eq!(count(&lookups), 5, "each found by name once made");
        // Another thread has its own recent plans: it finds the shared plan by the
        // domain table.
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let elsewhere = ask(&cache, net, "api.example.com", Families::Both);
                assert!(Arc::ptr_eq(&first, &elsewhere));
            });
        });
        assert_eq!((count(&lookups), count(&made)), (6, 5));
    }

    #[test]
    fn recent_plans_never_answer_for_another_host_however_many_collide() {
        let model = model();
        let cache = AnswerCache::new(10, 100_000);
        let net = ClientNetwork::of(ip("192.0.2.200"), 24);
        // Twice as many hosts as the thread keeps, names that are prefixes of each
        // other, and names as long as a slot holds and one byte longer.
        let mut hosts: Vec<String> = (0..2 * RECENT_SETS * RECENT_WAYS)
            .map(|i| format!("h{i}.example.com"))
            .collect();
        hosts.extend(["h1.example.co".to_string(), "h1.example.comm".to_string()]);
        hosts.push(format!(
            "{}.example.com",
            "a".repeat(RECENT_HOST_BYTES - 12)
        ));
        hosts.push(format!(
            "{}.example.com",
            "a".repeat(RECENT_HOST_BYTES - 11)
        ));
        assert_eq!(hosts[hosts.len() - 2].len(), RECENT_HOST_BYTES);
        let made = Cell::new(0);
        let ask = |id: usize| {
            cache
                .plan(
                    net,
                    &hosts[id],
                    Families::Both,
                    GENERATION,
                    NOW,
                    || Some(id),
                    |_| {
                        made.set(made.get() + 1);
                        planned(&model, "api.example.com", false)
                    },
                )
                .unwrap()
        };
        let plans: Vec<_> = (0..hosts.len()).map(ask).collect();
        assert_eq!(made.get(), hosts.len());
        // Backwards, then every third: plans pushed out of the thread's sets come from
        // the shared map, the others from the sets; each host gets its own.
        let order = (0..hosts.len()).rev().chain((0..hosts.len()).step_by(3));
        for id in order {
            assert!(Arc::ptr_eq(&plans[id], &ask(id)), "{}", hosts[id]);
        }
        assert_eq!(made.get(), hosts.len(), "nothing decided again");
    }

    #[test]
    fn a_thread_keeps_a_thousand_hosts_in_rotation() {
        let model = model();
        let cache = AnswerCache::new(10, 100_000);
        let net = ClientNetwork::of(ip("192.0.2.200"), 24);
        // The scale bench's names and rotation: each host in turn, again and again.
        let hosts: Vec<String> = (0..1_000)
            .map(|i| format!("svc{}.app{}.example.net", 7 * i + 3, i % 997))
            .collect();
        let lookups = Cell::new(0);
        for _ in 0..4 {
            for (id, host) in hosts.iter().enumerate() {
                cache
                    .plan(
                        net,
                        host,
                        Families::Both,
                        GENERATION,
                        NOW,
                        || {
                            lookups.set(lookups.get() + 1);
                            Some(id)
                        },
                        |_| planned(&model, "api.example.com", false),
                    )
                    .unwrap();
            }
        }
        // Two ways per set looked up 9.5% again on every turn (by simulation); four,
        // under 0.1%.
        let again = lookups.get() - hosts.len();
        assert!(again <= 3 * 10, "{again} lookups after the first turn");
    }

    #[test]
    fn plans_of_domains_served_by_the_same_zones_share_their_tiers() {
        let model = model();
        let cache = AnswerCache::new(10, 100);
        let net = ClientNetwork::of(ip("192.0.2.200"), 24);
        let ask = |host: &str, generation: Generation| {
            cache
                .plan(
                    net,
                    host,
                    Families::Both,
                    generation,
                    NOW,
                    || model.domain_id(host),
                    |_| planned(&model, host, false),
                )
                .unwrap()
        };
        let api = ask("api.example.com", GENERATION);
        let img = ask("img.example.com", GENERATION);
        let solo = ask("solo.example.com", GENERATION);
        let (api_tiers, img_tiers) = (api.plan.tiers(), img.plan.tiers());
        assert_eq!(api_tiers.len(), 2, "east, then west as fallback");
        assert_ne!(
            api.plan.ttl, img.plan.ttl,
            "the plans differ, their tiers do not"
        );
        for (a, i) in api_tiers.iter().zip(&img_tiers) {
            assert!(Arc::ptr_eq(a, i));
        }
        // West answering solo takes two addresses, as west's fallback tier one: equal
        // only by content, never by zone alone.
        assert_eq!(solo.plan.tiers()[0].zone, api_tiers[1].zone);
        assert!(!Arc::ptr_eq(&solo.plan.tiers()[0], &api_tiers[1]));
        // A plan made again under a new generation reads the same tiers.
        let newer = ask(
            "api.example.com",
            Generation {
                epoch: 11,
                ..GENERATION
            },
        );
        assert!(!Arc::ptr_eq(&api, &newer));
        assert!(Arc::ptr_eq(&api_tiers[0], &newer.plan.tiers()[0]));
    }
}

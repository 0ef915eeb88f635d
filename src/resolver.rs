//! The one entry point every front (JSON `/resolve`, DoH, classic DNS) asks for answers.
//!
//! [`Resolver`] holds the published snapshot, the live state (health, speed reports,
//! SRE overrides) and the epoch. A front asks it once per request for a [`Request`]
//! (the snapshot, loaded once), applies the shared policy (signing, client IP) and
//! then asks for the [`RequestContext`] of its client: geo looked up once, live state
//! read once, and every decision, explanation or speed report of the request made
//! through it. Fronts parse their wire format, call this, and render; none of them
//! reaches into the scheduler or the live tables, so every door steers the same way.

use std::cell::OnceCell;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::Guard;
use serde::Serialize;

use crate::answer_cache::{AnswerCache, ClientNetwork, Generation, Planned};
use crate::epoch::Epoch;
use crate::geoip::Geo;
use crate::health::{HealthChecks, HealthMap};
use crate::model::{Domain, Endpoint, Model, ZoneId};
use crate::scheduler::ranking::Cost;
use crate::scheduler::{self, Decision, Families, LiveView, Plan, Query, SkipReason};
use crate::snapshot::{SharedSnapshot, Snapshot};
use crate::speed::{Bucket, BucketView, ReportError, Sample, SpeedTable};
use crate::state::{Overrides, StateStore};

/// The live state the scheduler reads: health (written by `health`), client speed
/// reports (`speed`), SRE overrides (`state`) and the failover log. Its tables are
/// private: a front asks for the operation it needs, so the owners' rules (validation,
/// persistence, epoch bumps) cannot be skipped.
pub struct Live {
    health: HealthChecks,
    speed: SpeedTable,
    state: StateStore,
    failovers: FailoverLog,
}

impl Live {
    /// Live state with nothing measured yet and the overrides of `state`; health checks
    /// start when the caller reconciles them with a model.
    pub fn new(
        epoch: Arc<Epoch>,
        state: StateStore,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        Self::with_speed(
            HealthChecks::new(epoch, shutdown),
            SpeedTable::new(crate::speed::SpeedLimits::default()),
            state,
        )
    }

    /// Live state from its parts (benches and tests that shape the speed table).
    pub fn with_speed(health: HealthChecks, speed: SpeedTable, state: StateStore) -> Self {
        Self {
            health,
            speed,
            state,
            failovers: FailoverLog::default(),
        }
    }

    /// Starts, keeps or stops health checks so they match `model`'s endpoints.
    pub fn reconcile_health(&self, model: &Model) {
        self.health.reconcile(model);
    }

    /// Every endpoint's health as of now (lock-free).
    pub fn health(&self) -> Guard<Arc<HealthMap>> {
        self.health.snapshot()
    }

    /// The SRE overrides in force (lock-free).
    pub fn overrides(&self) -> Guard<Arc<Overrides>> {
        self.state.current()
    }

    /// The owner of drains and disables: commits, persists and audits changes.
    pub fn state(&self) -> &StateStore {
        &self.state
    }

    /// Answers that left each home zone.
    pub fn failovers(&self) -> &FailoverLog {
        &self.failovers
    }
}

/// Answers that left each home zone, for the admin view: a count and the last time.
pub struct FailoverLog {
    by_home_zone: moka::sync::Cache<String, Arc<FailoverCount>>,
}

#[derive(Default)]
struct FailoverCount {
    total: AtomicU64,
    last_ms: AtomicU64,
}

impl Default for FailoverLog {
    fn default() -> Self {
        Self {
            by_home_zone: moka::sync::Cache::new(10_000),
        }
    }
}

impl FailoverLog {
    fn record(&self, home_zone: &str, now_ms: u64) {
        let count = self.by_home_zone.get_with_by_ref(home_zone, Arc::default);
        count.total.fetch_add(1, Ordering::Relaxed);
        count.last_ms.store(now_ms, Ordering::Relaxed);
    }

    /// `{"total": n, "last_ms": t}` for a zone, or null if no answer ever left it.
    pub fn snapshot(&self, home_zone: &str) -> serde_json::Value {
        self.by_home_zone
            .get(home_zone)
            .map_or(serde_json::Value::Null, |c| {
                serde_json::json!({
                    "total": c.total.load(Ordering::Relaxed),
                    "last_ms": c.last_ms.load(Ordering::Relaxed),
                })
            })
    }
}

/// Shared by all fronts; cheap to clone.
#[derive(Clone)]
pub struct Resolver {
    snapshot: SharedSnapshot,
    epoch: Arc<Epoch>,
    live: Arc<Live>,
    /// `None`: every request decides afresh (`limits.answer_cache_entries = 0`).
    answers: Option<Arc<AnswerCache>>,
}

/// One request's snapshot: everything a front checks before it knows the client
/// (signing, limits, trusted proxies, DNS policy). Hold it for the whole request so
/// every host in a batch sees the same model.
pub struct Request<'r> {
    resolver: &'r Resolver,
    snapshot: Guard<Arc<Snapshot>>,
}

impl<'r> Request<'r> {
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The context for answering `client_ip`: its geo (from the answer cache, or looked
    /// up once), the generation cached answers must match, and the live state, read
    /// once if a decision has to be made afresh. Every decision of the request goes
    /// through it.
    pub fn for_client(&self, client_ip: IpAddr) -> RequestContext<'_> {
        let snapshot: &Snapshot = &self.snapshot;
        let resolver = self.resolver;
        // Read before any live state: writers publish their state, then bump these, so
        // a decision tagged with them can only be older than the state it read.
        let generation = Generation {
            snapshot: snapshot.generation,
            epoch: resolver.epoch.current(),
            speed: resolver.live.speed.revision(),
        };
        let scope = snapshot.ecs_scopes.scope(client_ip);
        let lookup = || snapshot.geo.lookup(client_ip);
        let (client, geo) = match &resolver.answers {
            Some(answers) => answers.client_geo(
                client_ip,
                scope,
                snapshot.generation,
                || snapshot.geo.precision(client_ip),
                lookup,
            ),
            // Without the cache nothing is keyed by the client network: no walk for it.
            None => (ClientNetwork::of(client_ip, scope), Arc::new(lookup())),
        };
        RequestContext {
            resolver,
            snapshot,
            client_ip,
            client,
            generation,
            now_ms: crate::epoch::now_ms(),
            geo,
            live: OnceCell::new(),
        }
    }
}

/// One request for one client: snapshot, client IP, geo and live view, built once and
/// shared by every decision the request makes.
pub struct RequestContext<'a> {
    resolver: &'a Resolver,
    snapshot: &'a Snapshot,
    client_ip: IpAddr,
    /// The clients that share this one's decisions (the answer cache's key).
    client: ClientNetwork,
    generation: Generation,
    now_ms: u64,
    geo: Arc<Geo>,
    /// Read on the first decision the cache cannot answer.
    live: OnceCell<LiveSnapshot<'a>>,
}

impl RequestContext<'_> {
    pub fn client_ip(&self) -> IpAddr {
        self.client_ip
    }

    pub fn geo(&self) -> &Geo {
        &self.geo
    }

    pub fn snapshot(&self) -> &Snapshot {
        self.snapshot
    }

    /// Decides the answer for `host` (normalised: lower case, no trailing dot), or
    /// `None` when no configured domain has that name.
    pub fn decide(&self, host: &str, families: Families) -> Option<Decision> {
        let snapshot = self.snapshot;
        let model = &snapshot.model;
        let decide = |domain: &Domain| {
            let plan = plan_with(
                snapshot,
                self.live(),
                domain,
                &self.geo,
                self.client_ip,
                families,
            );
            let answered =
                snapshot
                    .answer_counters
                    .handle(model, domain, plan.answer_zone(), plan.failover);
            Planned::new(plan, answered)
        };
        let planned = match &self.resolver.answers {
            // The cache finds the domain only when it has no plan for the name: the
            // domain is read only to decide one.
            Some(answers) => answers.plan(
                self.client,
                host,
                families,
                self.generation,
                self.now_ms,
                || model.domain_id(host),
                |id| model.domain_by_id(id).map(decide),
            )?,
            None => Arc::new(decide(model.domain(host)?)),
        };
        let decision = planned
            .plan
            .draw(&mut fastrand::Rng::with_seed(fastrand::u64(..)));
        planned.answered.increment(1);
        if decision.failover || decision.fail_open {
            self.resolver
                .live
                .failovers
                .record(&model.zone(decision.home).name, self.now_ms);
        }
        if decision.fail_open {
            // The domain's name: domains are found by their exact normalised name.
            metrics::counter!("httpdns_fail_open_answers_total", "domain" => host.to_string())
                .increment(1);
            tracing::warn!(domain = %host, "every zone in the chain is down: failing open");
        }
        Some(decision)
    }

    /// The live state as of this request, read on first use.
    fn live(&self) -> &LiveSnapshot<'_> {
        self.live.get_or_init(|| {
            let live = &self.resolver.live;
            LiveSnapshot {
                model: &self.snapshot.model,
                health: live.health.snapshot(),
                overrides: live.state.current(),
                speed: live
                    .speed
                    .bucket(&Bucket::of(&self.geo))
                    .map(|bucket| bucket.view()),
                now_ms: self.now_ms,
            }
        })
    }

    /// Records what this client measured connecting to `host`'s endpoints, for its
    /// (carrier, province) bucket. All or nothing.
    pub fn record_speed(&self, host: &str, samples: &[Sample]) -> Result<usize, ReportError> {
        let model = &self.snapshot.model;
        let domain = model
            .domain(host)
            .ok_or_else(|| ReportError::Invalid(format!("unknown host {host:?}")))?;
        let is_endpoint = |candidate| {
            domain
                .zones
                .iter()
                .any(|&zone| model.zone(zone).endpoints.iter().any(|e| e.ip == candidate))
        };
        self.resolver.live.speed.record(
            self.client_ip,
            &self.geo,
            samples,
            is_endpoint,
            self.now_ms,
        )
    }

    /// Explains the decision for `host`: geo, rule, zones skipped and why, every
    /// endpoint's cost terms, and the answer.
    pub fn explain(&self, host: &str) -> Option<Explanation> {
        let snapshot = self.snapshot;
        let model = &snapshot.model;
        let domain = model.domain(host)?;
        let live = self.live();
        let geo = &*self.geo;
        let d = plan_with(snapshot, live, domain, geo, self.client_ip, Families::Both)
            .draw(&mut fastrand::Rng::with_seed(fastrand::u64(..)));
        let name = |zone: ZoneId| model.zone(zone).name.to_string();
        let mut zones = vec![d.home];
        zones.extend(
            model
                .zone(d.home)
                .failover
                .iter()
                .copied()
                .filter(|z| domain.is_served_by(*z)),
        );
        let endpoints = zones
            .iter()
            .flat_map(|&zone| model.zone(zone).endpoints.iter().map(move |e| (zone, e)))
            .map(|(zone, e)| EndpointScore {
                zone: name(zone),
                ip: e.ip,
                weight: e.weight,
                up: live.endpoint_up(zone, e),
                cost: live.endpoint_cost(e, geo),
            })
            .collect();
        Some(Explanation {
            host: domain.name.to_string(),
            client_ip: self.client_ip,
            rule: d.rule.map(|i| domain.rules[i].name.to_string()),
            home_zone: name(d.home),
            skipped: d
                .skipped
                .iter()
                .map(|(zone, reason)| SkippedZone {
                    zone: name(*zone),
                    reason: match reason {
                        SkipReason::Unhealthy => "unhealthy: no endpoint passes health checks",
                        SkipReason::Drained => "drained for this client",
                    },
                    keep_weight: live.zone_keep_share(*zone, domain) * 100.0,
                })
                .collect(),
            endpoints,
            answer_zone: name(d.answer.zone),
            failover: d.failover,
            fail_open: d.fail_open,
            ttl: d.ttl,
            ips: d.answer.v4.into_vec(),
            ipsv6: d.answer.v6.into_vec(),
            fallback: d
                .fallback
                .into_iter()
                .map(|t| FallbackTier {
                    zone: name(t.zone),
                    ips: t.v4.into_vec(),
                    ipsv6: t.v6.into_vec(),
                })
                .collect(),
            geo: geo.clone(),
        })
    }
}

/// The live state as one request sees it: lock-free snapshots plus the clock.
struct LiveSnapshot<'a> {
    model: &'a Model,
    health: Guard<Arc<HealthMap>>,
    overrides: Guard<Arc<Overrides>>,
    /// The client bucket's speed statistics, looked up once per request.
    speed: Option<BucketView>,
    now_ms: u64,
}

impl LiveView for LiveSnapshot<'_> {
    fn endpoint_up(&self, _zone: ZoneId, endpoint: &Endpoint) -> bool {
        !self.overrides.is_disabled(endpoint.ip)
            && self.health.get(&endpoint.ip).is_none_or(|h| h.is_up())
    }

    fn last_good_ms(&self, zone: ZoneId, endpoint: &Endpoint) -> u64 {
        if self.overrides.is_disabled(endpoint.ip) {
            0
        } else if self.endpoint_up(zone, endpoint) {
            u64::MAX
        } else {
            self.health
                .get(&endpoint.ip)
                .map_or(0, |h| h.last_down_ms())
        }
    }

    fn zone_keep_share(&self, zone: ZoneId, domain: &Domain) -> f64 {
        self.overrides
            .keep_share(&self.model.zone(zone).name, &domain.name, self.now_ms)
    }

    fn endpoint_cost(&self, endpoint: &Endpoint, _geo: &Geo) -> Cost {
        let probe_rtt_ms = self.health.get(&endpoint.ip).and_then(|h| h.probe_rtt_ms());
        self.speed
            .as_ref()
            .and_then(|bucket| bucket.terms(endpoint.ip, self.now_ms))
            .unwrap_or_default()
            .cost(probe_rtt_ms)
    }
}

/// Everything explain shows about one decision.
#[derive(Debug, Serialize)]
pub struct Explanation {
    pub host: String,
    pub client_ip: IpAddr,
    pub geo: Geo,
    /// The rule that chose the home zone (`None`: the default zone).
    pub rule: Option<String>,
    pub home_zone: String,
    pub skipped: Vec<SkippedZone>,
    pub endpoints: Vec<EndpointScore>,
    pub answer_zone: String,
    pub failover: bool,
    pub fail_open: bool,
    pub ttl: u32,
    pub ips: Vec<IpAddr>,
    pub ipsv6: Vec<IpAddr>,
    pub fallback: Vec<FallbackTier>,
}

#[derive(Debug, Serialize)]
pub struct FallbackTier {
    pub zone: String,
    pub ips: Vec<IpAddr>,
    pub ipsv6: Vec<IpAddr>,
}

#[derive(Debug, Serialize)]
pub struct SkippedZone {
    pub zone: String,
    pub reason: &'static str,
    /// Share of traffic the zone keeps for this domain now (percent).
    pub keep_weight: f64,
}

#[derive(Debug, Serialize)]
pub struct EndpointScore {
    pub zone: String,
    pub ip: IpAddr,
    pub weight: u32,
    pub up: bool,
    pub cost: Cost,
}

impl Resolver {
    pub fn new(snapshot: SharedSnapshot, epoch: Arc<Epoch>, live: Arc<Live>) -> Self {
        Self {
            snapshot,
            epoch,
            live,
            answers: Some(Arc::default()),
        }
    }

    /// A resolver over `snapshot` with nothing measured, no health checks running and
    /// the overrides kept in `state_dir` (for tools, tests and benchmarks).
    pub fn standalone(
        snapshot: Snapshot,
        state_dir: &std::path::Path,
    ) -> Result<Self, crate::state::StateError> {
        let epoch = Arc::new(Epoch::default());
        let state = StateStore::open(state_dir, false, Arc::clone(&epoch))?;
        let live = Live::new(Arc::clone(&epoch), state, Default::default());
        Ok(Self::new(
            Arc::new(arc_swap::ArcSwap::from_pointee(snapshot)),
            epoch,
            Arc::new(live),
        ))
    }

    /// This resolver with an answer cache of `max_plans` plans, or none for 0.
    pub fn with_answer_cache(mut self, max_plans: u64) -> Self {
        self.answers = (max_plans > 0).then(|| Arc::new(AnswerCache::with_plans(max_plans)));
        self
    }

    /// Starts a request: the snapshot it is served from, loaded once.
    pub fn request(&self) -> Request<'_> {
        Request {
            resolver: self,
            snapshot: self.snapshot.load(),
        }
    }

    /// The snapshot now published, for admin views and tools; a front starts a
    /// [`Request`] instead.
    pub fn snapshot(&self) -> Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    /// The published snapshot, for the reloader (the one writer).
    pub fn shared_snapshot(&self) -> &SharedSnapshot {
        &self.snapshot
    }

    pub fn epoch(&self) -> &Epoch {
        &self.epoch
    }

    pub fn live(&self) -> &Live {
        &self.live
    }
}

fn plan_with(
    snapshot: &Snapshot,
    live: &LiveSnapshot<'_>,
    domain: &Domain,
    geo: &Geo,
    client_ip: IpAddr,
    families: Families,
) -> Plan {
    let query = Query {
        domain,
        geo,
        client_ip,
        families,
        seed: 0,
    };
    scheduler::plan(&snapshot.model, live, &query, &snapshot.answer_limits())
}

//! The steering snapshot: everything the request path reads, built whole and swapped.
//!
//! A [`Snapshot`] bundles the compiled model, the opened IP databases and the request
//! limits. It is built (and fully validated) off the request path, then published with
//! `arc-swap`; requests in flight keep the snapshot they started with. Nothing here is
//! mutated after it is built.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use ipnetwork::IpNetwork;

use crate::config::{ConfigError, Limits, ServerConfig, zones};
use crate::geoip::{GeoDb, GeoIpError};
use crate::model::{CidrSet, Domain, Model, ModelError, ScopeMap, ZoneId};
use crate::policy::{ApexError, DnsPolicy, Signing};
use crate::scheduler::AnswerLimits;
use metrics::Counter;

/// What a request needs, frozen.
#[derive(Debug)]
pub struct Snapshot {
    pub model: Model,
    pub geo: GeoDb,
    pub limits: Limits,
    pub trusted_proxies: CidrSet,
    /// When set, `/resolve` requests must be signed.
    pub signing: Option<Signing>,
    /// Apexes, ECS trust and UDP size for the DNS fronts.
    pub dns: DnsPolicy,
    /// Where rules and geo overrides draw lines finer than /24 (/48): the narrowest ECS
    /// scope a steered DNS answer may carry for a client.
    pub ecs_scopes: ScopeMap,
    /// `httpdns_answers_total` handles for this model's domains.
    pub answer_counters: AnswerCounters,
    /// Unique to this snapshot in the process: what cached answers made from it are
    /// tagged with ([`crate::answer_cache`]).
    pub generation: u64,
}

/// The generation of the next snapshot built.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

impl Snapshot {
    /// A snapshot without request signing and with the default DNS policy (no apexes).
    pub fn new(model: Model, geo: GeoDb, limits: Limits, trusted_proxies: CidrSet) -> Self {
        let mut ecs_scopes = model.cidr_scopes().clone();
        for network in geo.override_networks() {
            ecs_scopes.add_network(network);
        }
        Self {
            ecs_scopes,
            answer_counters: AnswerCounters::new(model.domain_count()),
            model,
            geo,
            limits,
            trusted_proxies,
            signing: None,
            dns: DnsPolicy::default(),
            generation: NEXT_GENERATION.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub fn answer_limits(&self) -> AnswerLimits {
        self.limits.answer_limits()
    }
}

/// The published snapshot, shared by every front.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

/// Every reason a snapshot could not be built; each line names its file.
#[derive(Debug)]
pub enum LoadError {
    Config(Vec<ConfigError>),
    Model(Vec<ModelError>),
    GeoIp(GeoIpError),
    Dns(ApexError),
}

impl LoadError {
    /// One message per problem, for logs and the reload API.
    pub fn messages(&self) -> Vec<String> {
        match self {
            Self::Config(errors) => errors.iter().map(ToString::to_string).collect(),
            Self::Model(errors) => errors.iter().map(ToString::to_string).collect(),
            Self::GeoIp(error) => vec![error.to_string()],
            Self::Dns(error) => vec![error.to_string()],
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.messages().join("\n"))
    }
}

impl std::error::Error for LoadError {}

/// Reads the zones directory and IP databases named by `config` and builds a snapshot.
pub fn load(config: &ServerConfig) -> Result<Snapshot, LoadError> {
    let files = zones::load_dir(&config.zones_dir).map_err(LoadError::Config)?;
    let model = Model::compile(&files).map_err(LoadError::Model)?;
    let geo = GeoDb::open(
        &config.geoip.database,
        config.geoip.asn_database.as_deref(),
        config.geoip.asn_carriers.as_deref(),
    )
    .and_then(|geo| geo.with_overrides(config.geoip.overrides.as_deref()))
    .map_err(LoadError::GeoIp)?;
    let signing = config
        .signing
        .as_ref()
        .map(Signing::load)
        .transpose()
        .map_err(|e| LoadError::Config(vec![e]))?;
    let dns = DnsPolicy::compile(&config.dns).map_err(LoadError::Dns)?;
    Ok(Snapshot {
        signing,
        dns,
        ..Snapshot::new(
            model,
            geo,
            config.limits.clone(),
            CidrSet::new(&config.trusted_proxies as &[IpNetwork]),
        )
    })
}

/// `httpdns_answers_total{domain,zone,failover}` handles, registered on a series' first
/// answer and kept for the snapshot's life. Looking a labelled counter up in the
/// registry on every answer cost two label allocations and a registry search
/// (BENCH.md); a handle is one atomic add.
pub struct AnswerCounters {
    /// By domain id, then by (position of the zone in the domain's zones) × 2 + failover.
    by_domain: Vec<OnceLock<Box<[OnceLock<Counter>]>>>,
}

impl fmt::Debug for AnswerCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnswerCounters")
            .field("domains", &self.by_domain.len())
            .finish()
    }
}

impl AnswerCounters {
    fn new(domains: usize) -> Self {
        Self {
            by_domain: (0..domains).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The counter of answers for `domain` from `zone`. The answer cache keeps it with
    /// each plan ([`crate::answer_cache::Planned`]): with many domains the handle's
    /// slot is a chain of cache misses (domain zones, slot table, handle), paid once
    /// per plan instead of once per answer.
    pub fn handle(&self, model: &Model, domain: &Domain, zone: ZoneId, failover: bool) -> Counter {
        let register = || {
            metrics::counter!("httpdns_answers_total",
                "domain" => domain.name.to_string(),
                "zone" => model.zone(zone).name.to_string(),
                "failover" => if failover { "true" } else { "false" })
        };
        let slot = domain.zones.iter().position(|z| *z == zone);
        match (self.by_domain.get(domain.id), slot) {
            (Some(series), Some(slot)) => series.get_or_init(|| {
                (0..domain.zones.len() * 2)
                    .map(|_| OnceLock::new())
                    .collect()
            })[slot * 2 + usize::from(failover)]
            .get_or_init(register)
            .clone(),
            // Not a zone of the domain (cannot happen: answers come from serving zones).
            _ => register(),
        }
    }
}

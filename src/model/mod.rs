//! The steering model: zones, endpoints, domains and rules, compiled and immutable.
//!
//! Built from parsed zones files by [`Model::compile`], which checks everything a file
//! can get wrong (unknown zones, failover cycles, duplicates, bad IPs and CIDRs, TTLs)
//! and reports every error at once with its file, item and field. Rules are compiled
//! here (CIDR tables, folded province and carrier names) so the request path only
//! compares. A reload builds a new model; this one is never mutated.

mod cidr;
mod health_check;
mod ip_map;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ipnetwork::IpNetwork;

pub use cidr::{BASE_SCOPE_V4, BASE_SCOPE_V6, CidrSet, ScopeMap, network_of};
pub use health_check::{HealthCheck, Probe};
pub use ip_map::{IpHasher, IpMap};

use crate::config::zones::{DomainSpec, RuleSpec, ZoneSpec, ZonesFile};
use crate::geoip::{Geo, carrier, province};

/// Shortest and longest TTL a domain may have, in seconds.
pub const TTL_RANGE: std::ops::RangeInclusive<u32> = 1..=86_400;
/// Largest endpoint weight.
pub const MAX_WEIGHT: u32 = 10_000;
/// Weight of an endpoint that names none.
pub const DEFAULT_WEIGHT: u32 = 100;

/// Index of a zone in [`Model::zones`].
pub type ZoneId = usize;

/// One problem in the zones files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError {
    pub file: PathBuf,
    /// `zone NAME` or `domain NAME`.
    pub item: String,
    pub field: String,
    pub message: String,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}: {}",
            self.file.display(),
            self.item,
            self.field,
            self.message
        )
    }
}

impl std::error::Error for ModelError {}

/// An IDC.
#[derive(Debug, Clone)]
pub struct Zone {
    pub name: Box<str>,
    pub endpoints: Vec<Endpoint>,
    /// Zones to answer from when this one cannot, in order.
    pub failover: Vec<ZoneId>,
}

/// An address answers may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub weight: u32,
    /// Effective health check (the endpoint's own, else its zone's).
    pub health_check: Option<HealthCheck>,
}

/// A routing rule, compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: Arc<str>,
    /// Shared by every domain whose rule lists the same conditions: large configs
    /// repeat a handful of rule sets over thousands of domains.
    conditions: Arc<Conditions>,
    pub zone: ZoneId,
}

/// What a rule matches on, compiled (codes upper case, names folded, CIDRs merged).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Conditions {
    countries: Vec<Box<str>>,
    not_countries: Vec<Box<str>>,
    provinces: Vec<Box<str>>,
    cities: Vec<Box<str>>,
    carriers: Vec<Box<str>>,
    cidrs: CidrSet,
}

impl Rule {
    /// Every condition given must hold; an empty condition holds for anyone.
    pub fn matches(&self, geo: &Geo, ip: IpAddr) -> bool {
        self.conditions.matches(geo, ip)
    }
}

impl Conditions {
    fn matches(&self, geo: &Geo, ip: IpAddr) -> bool {
        fn any_of(wanted: &[Box<str>], value: Option<&str>) -> bool {
            wanted.is_empty()
                || value.is_some_and(|v| wanted.iter().any(|w| w.eq_ignore_ascii_case(v)))
        }
        let outside = |country: &str| {
            !self
                .not_countries
                .iter()
                .any(|c| c.eq_ignore_ascii_case(country))
        };
        any_of(&self.countries, geo.country.as_deref())
            && (self.not_countries.is_empty() || geo.country.as_deref().is_some_and(outside))
            && any_of(&self.provinces, geo.province.as_deref())
            && any_of(&self.cities, geo.city.as_deref())
            && any_of(&self.carriers, geo.carrier.as_deref())
            && (self.cidrs.is_empty() || self.cidrs.contains(ip))
    }
}

/// Compiled rules and zone lists by what the zones files wrote, so a rule set or zone
/// list repeated over many domains is compiled and stored once.
#[derive(Default)]
struct Interner<'a> {
    rules: HashMap<RuleKey<'a>, (Arc<str>, Arc<Conditions>)>,
    conditions: HashSet<Arc<Conditions>>,
    zone_lists: HashSet<Arc<[ZoneId]>>,
}

/// A rule as written, less its zone.
#[derive(PartialEq, Eq, Hash)]
struct RuleKey<'a> {
    name: Option<&'a str>,
    /// The rule's index, which names it when it has no name.
    index: usize,
    conditions: [&'a [String]; 6],
}

impl<'a> RuleKey<'a> {
    fn of(spec: &'a RuleSpec, index: usize) -> Self {
        Self {
            name: spec.name.as_deref(),
            index: if spec.name.is_some() { 0 } else { index },
            conditions: [
                &spec.country,
                &spec.not_country,
                &spec.province,
                &spec.city,
                &spec.carrier,
                &spec.cidr,
            ],
        }
    }
}

impl Interner<'_> {
    fn conditions(&mut self, conditions: Conditions) -> Arc<Conditions> {
        if let Some(shared) = self.conditions.get(&conditions) {
            return Arc::clone(shared);
        }
        let shared = Arc::new(conditions);
        self.conditions.insert(Arc::clone(&shared));
        shared
    }

    fn zone_list(&mut self, zones: Vec<ZoneId>) -> Arc<[ZoneId]> {
        if let Some(shared) = self.zone_lists.get(zones.as_slice()) {
            return Arc::clone(shared);
        }
        let shared: Arc<[ZoneId]> = zones.into();
        self.zone_lists.insert(Arc::clone(&shared));
        shared
    }
}

/// A domain we answer for.
#[derive(Debug, Clone)]
pub struct Domain {
    /// Dense index (0 .. number of domains) for per-domain tables kept outside the model.
    pub id: usize,
    pub name: Box<str>,
    pub ttl: u32,
    /// Zones that serve it, in the order the file lists them.
    pub zones: Arc<[ZoneId]>,
    pub rules: Vec<Rule>,
    pub default_zone: ZoneId,
}

impl Domain {
    pub fn is_served_by(&self, zone: ZoneId) -> bool {
        self.zones.contains(&zone)
    }

    /// The home zone for a client, and the index of the rule that chose it
    /// (`None`: the default zone).
    pub fn home_zone(&self, geo: &Geo, ip: IpAddr) -> (ZoneId, Option<usize>) {
        self.rules
            .iter()
            .position(|rule| rule.matches(geo, ip))
            .map_or((self.default_zone, None), |i| (self.rules[i].zone, Some(i)))
    }
}

/// The whole compiled steering model.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub zones: Vec<Zone>,
    zone_ids: HashMap<Box<str>, ZoneId>,
    /// Domain ids by name. FxHash: names are looked up on every request, and the table
    /// is built from the operator's files, not from client input, so SipHash's flood
    /// resistance buys nothing here. Ids, not the domains themselves: a request whose
    /// plan is cached needs only the id, and with 100,000 domains a table of small slots
    /// (a quarter of the size) misses the cache less.
    domain_ids: HashMap<Box<str>, u32, rustc_hash::FxBuildHasher>,
    /// By [`Domain::id`].
    domains: Vec<Domain>,
    /// Every proper parent name of a domain (`example.com` for `api.example.com`): such
    /// names exist in DNS even without records of their own (RFC 8020).
    parents: HashSet<Box<str>>,
    /// Where rule CIDRs draw lines inside a /24 (/48): what bounds an ECS scope.
    cidr_scopes: ScopeMap,
}

impl Model {
    /// The boundaries rule CIDRs draw inside a /24 (/48), for ECS scopes.
    pub fn cidr_scopes(&self) -> &ScopeMap {
        &self.cidr_scopes
    }

    pub fn zone_id(&self, name: &str) -> Option<ZoneId> {
        self.zone_ids.get(name).copied()
    }

    pub fn zone(&self, id: ZoneId) -> &Zone {
        &self.zones[id]
    }

    /// Looks a domain up by its normalised name (lower case, no trailing dot).
    pub fn domain(&self, name: &str) -> Option<&Domain> {
        self.domain_id(name).and_then(|id| self.domain_by_id(id))
    }

    /// The [`Domain::id`] of a normalised name, without reading the domain.
    pub fn domain_id(&self, name: &str) -> Option<usize> {
        self.domain_ids.get(name).map(|&id| id as usize)
    }

    /// The domain of an id from [`Model::domain_id`].
    pub fn domain_by_id(&self, id: usize) -> Option<&Domain> {
        self.domains.get(id)
    }

    /// Number of domains; every [`Domain::id`] is below it.
    pub fn domain_count(&self) -> usize {
        self.domains.len()
    }

    pub fn domains(&self) -> impl Iterator<Item = &Domain> {
        self.domains.iter()
    }

    /// Whether some configured domain lies below `host`.
    pub fn has_subdomains(&self, host: &str) -> bool {
        self.parents.contains(host)
    }

    /// Compiles parsed zones files, collecting every error.
    pub fn compile(files: &[ZonesFile]) -> Result<Self, Vec<ModelError>> {
        let mut errors = Vec::new();
        let mut model = Model::default();
        let mut zone_files: Vec<(&ZonesFile, &ZoneSpec)> = Vec::new();

        for file in files {
            for spec in &file.zones {
                let mut err = |field: &str, message: String| {
                    errors.push(error(file, format!("zone {}", spec.name), field, message));
                };
                if !valid_label(&spec.name) {
                    err("name", "zone names are letters, digits, '-' and '_'".into());
                    continue;
                }
                if model.zone_ids.contains_key(spec.name.as_str()) {
                    err("name", "defined twice".into());
                    continue;
                }
                model
                    .zone_ids
                    .insert(spec.name.as_str().into(), model.zones.len());
                model.zones.push(compile_zone_endpoints(spec, &mut err));
                zone_files.push((file, spec));
            }
        }
        // Failover lists refer to zones by name, possibly across files: resolve them
        // once every zone is known.
        for (id, (file, spec)) in zone_files.iter().enumerate() {
            let mut failover = Vec::new();
            for name in &spec.failover {
                let mut err = |message: String| {
                    errors.push(error(
                        file,
                        format!("zone {}", spec.name),
                        "failover",
                        message,
                    ));
                };
                match model.zone_id(name) {
                    None => err(format!("unknown zone {name:?}")),
                    Some(target) if target == id => {
                        err(format!("failover cycle: {name:?} fails over to itself"))
                    }
                    Some(target) if failover.contains(&target) => {
                        err(format!("zone {name:?} listed twice"))
                    }
                    Some(target) => failover.push(target),
                }
            }
            model.zones[id].failover = failover;
        }

        let mut interner = Interner::default();
        for file in files {
            for spec in &file.domains {
                let name = normalize_host(&spec.name);
                if let Some(domain) =
                    compile_domain(&model, file, spec, &name, &mut interner, &mut errors)
                {
                    if model.domain_ids.contains_key(name.as_str()) {
                        errors.push(error(
                            file,
                            format!("domain {name}"),
                            "name",
                            "defined twice".into(),
                        ));
                    } else if let Ok(id32) = u32::try_from(model.domains.len()) {
                        let id = model.domains.len();
                        model.domain_ids.insert(name.into(), id32);
                        model.domains.push(Domain { id, ..domain });
                    } else {
                        errors.push(error(
                            file,
                            format!("domain {name}"),
                            "name",
                            "more than 4,294,967,295 domains".into(),
                        ));
                    }
                }
            }
        }
        for conditions in &interner.conditions {
            model.cidr_scopes.add_set(&conditions.cidrs);
        }
        model.parents = model
            .domain_ids
            .keys()
            .flat_map(|name| name.match_indices('.').map(move |(i, _)| &name[i + 1..]))
            .map(Box::from)
            .collect();
        if model.domains.is_empty() && errors.is_empty() {
            let file = files.first().map(|f| f.path.clone()).unwrap_or_default();
            errors.push(ModelError {
                file,
                item: "zones".into(),
                field: "domain".into(),
                message: "no domains defined".into(),
            });
        }
        if errors.is_empty() {
            Ok(model)
        } else {
            Err(errors)
        }
    }
}

fn error(file: &ZonesFile, item: String, field: &str, message: String) -> ModelError {
    ModelError {
        file: file.path.clone(),
        item,
        field: field.to_string(),
        message,
    }
}

fn compile_zone_endpoints(spec: &ZoneSpec, err: &mut impl FnMut(&str, String)) -> Zone {
    if spec.endpoints.is_empty() {
        err("endpoints", "a zone needs at least one endpoint".into());
    }
    let zone_check = spec
        .health_check
        .as_ref()
        .and_then(|check| HealthCheck::compile(check, "health_check", err));
    let mut seen = HashSet::new();
    let mut endpoints = Vec::new();
    for (i, endpoint) in spec.endpoints.iter().enumerate() {
        let field = format!("endpoints[{i}]");
        let ip: IpAddr = match endpoint.ip().parse() {
            Ok(ip) => ip,
            Err(_) => {
                err(&field, format!("{:?} is not an IP address", endpoint.ip()));
                continue;
            }
        };
        let ip = ip.to_canonical();
        if !seen.insert(ip) {
            err(&field, format!("{ip} listed twice"));
            continue;
        }
        let weight = endpoint.weight().unwrap_or(DEFAULT_WEIGHT);
        if !(1..=MAX_WEIGHT).contains(&weight) {
            err(
                &format!("{field}.weight"),
                format!("{weight} is outside 1..={MAX_WEIGHT}"),
            );
            continue;
        }
        let health_check = match endpoint.health_check() {
            Some(check) => HealthCheck::compile(check, &format!("{field}.health_check"), err),
            None => zone_check.clone(),
        };
        endpoints.push(Endpoint {
            ip,
            weight,
            health_check,
        });
    }
    Zone {
        name: spec.name.as_str().into(),
        endpoints,
        failover: Vec::new(),
    }
}

fn compile_domain<'a>(
    model: &Model,
    file: &ZonesFile,
    spec: &'a DomainSpec,
    name: &str,
    interner: &mut Interner<'a>,
    errors: &mut Vec<ModelError>,
) -> Option<Domain> {
    let before = errors.len();
    let mut err = |field: &str, message: String| {
        errors.push(error(file, format!("domain {name}"), field, message));
    };
    if !valid_host(name) {
        err(
            "name",
            format!("{:?} is not a valid domain name", spec.name),
        );
    }
    if !TTL_RANGE.contains(&spec.ttl) {
        err(
            "ttl",
            format!(
                "{} is outside {}..={}",
                spec.ttl,
                TTL_RANGE.start(),
                TTL_RANGE.end()
            ),
        );
    }
    if spec.zones.is_empty() {
        err("zones", "a domain needs at least one zone".into());
    }
    let mut zones = Vec::new();
    for zone in &spec.zones {
        match model.zone_id(zone) {
            Some(id) if zones.contains(&id) => err("zones", format!("zone {zone:?} listed twice")),
            Some(id) => zones.push(id),
            None => err("zones", format!("unknown zone {zone:?}")),
        }
    }
    let serving_zone =
        |err: &mut dyn FnMut(&str, String), field: &str, zone: &str| match model.zone_id(zone) {
            Some(id) if zones.contains(&id) => Some(id),
            Some(_) => {
                err(
                    field,
                    format!("zone {zone:?} does not serve this domain (add it to `zones`)"),
                );
                None
            }
            None => {
                err(field, format!("unknown zone {zone:?}"));
                None
            }
        };
    let default_zone = serving_zone(&mut err, "default_zone", &spec.default_zone);
    let mut rules = Vec::new();
    for (i, rule) in spec.rule.iter().enumerate() {
        let field = format!("rule[{i}]");
        let zone = serving_zone(&mut err, &format!("{field}.zone"), &rule.zone);
        let key = RuleKey::of(rule, i);
        // Only rules that compiled cleanly are remembered, so a bad rule reports its
        // errors for every domain that repeats it.
        let compiled = match interner.rules.get(&key) {
            Some((name, conditions)) => Some((Arc::clone(name), Arc::clone(conditions))),
            None => compile_rule(rule, &field, &mut err).map(|(name, conditions)| {
                let conditions = interner.conditions(conditions);
                let name: Arc<str> = name.into();
                interner
                    .rules
                    .insert(key, (Arc::clone(&name), Arc::clone(&conditions)));
                (name, conditions)
            }),
        };
        if let (Some((name, conditions)), Some(zone)) = (compiled, zone) {
            rules.push(Rule {
                name,
                conditions,
                zone,
            });
        }
    }
    (errors.len() == before).then(|| Domain {
        id: 0,
        name: name.into(),
        ttl: spec.ttl,
        zones: interner.zone_list(zones),
        rules,
        default_zone: default_zone.unwrap_or_default(),
    })
}

/// Compiles a rule's name and conditions (its zone is resolved by the caller).
fn compile_rule(
    spec: &RuleSpec,
    field: &str,
    err: &mut impl FnMut(&str, String),
) -> Option<(String, Conditions)> {
    let conditions = spec.country.len()
        + spec.not_country.len()
        + spec.province.len()
        + spec.city.len()
        + spec.carrier.len()
        + spec.cidr.len();
    if conditions == 0 {
        err(
            field,
            "a rule without conditions matches everyone; use default_zone".into(),
        );
        return None;
    }
    let mut ok = true;
    let mut country_codes = |values: &[String], name: &str| -> Vec<Box<str>> {
        let mut codes = Vec::new();
        for country in values {
            if country.len() == 2 && country.chars().all(|c| c.is_ascii_alphabetic()) {
                codes.push(country.to_ascii_uppercase().into());
            } else {
                err(
                    &format!("{field}.{name}"),
                    format!("{country:?} is not an ISO 3166-1 alpha-2 code"),
                );
                ok = false;
            }
        }
        codes
    };
    let countries = country_codes(&spec.country, "country");
    let not_countries = country_codes(&spec.not_country, "not_country");
    let mut cidrs = Vec::new();
    for cidr in &spec.cidr {
        match cidr.parse::<IpNetwork>() {
            Ok(network) => cidrs.push(network),
            Err(_) => {
                err(&format!("{field}.cidr"), format!("{cidr:?} is not a CIDR"));
                ok = false;
            }
        }
    }
    let fold = |values: &[String], f: fn(&str) -> String| -> Vec<Box<str>> {
        values.iter().map(|v| f(v).into_boxed_str()).collect()
    };
    let carriers = fold(&spec.carrier, |c| {
        carrier::normalize(c).map_or_else(|| c.trim().to_ascii_lowercase(), str::to_string)
    });
    ok.then(|| {
        let name = spec.name.clone().unwrap_or_else(|| field.to_string());
        let conditions = Conditions {
            countries,
            not_countries,
            provinces: fold(&spec.province, province::normalize),
            cities: fold(&spec.city, |c| c.trim().to_string()),
            carriers,
            cidrs: CidrSet::new(&cidrs),
        };
        (name, conditions)
    })
}

/// Lower case, no trailing dot: the form domains are stored and looked up in.
pub fn normalize_host(host: &str) -> String {
    // One trailing dot is the root (a fully qualified name); two are an empty label.
    let host = host.trim();
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// A syntactically valid host name (RFC 1123 labels), already normalised.
///
/// One pass over the bytes: every request's host goes through here.
pub fn valid_host(host: &str) -> bool {
    let bytes = host.as_bytes();
    if bytes.is_empty() || bytes.len() > 253 {
        return false;
    }
    let mut label_len = 0usize;
    let mut previous = b'.';
    for &b in bytes {
        if b == b'.' {
            // An empty label, or one ending in '-'.
            if label_len == 0 || previous == b'-' {
                return false;
            }
            label_len = 0;
        } else {
            let allowed = b.is_ascii_alphanumeric() || b == b'_' || (b == b'-' && label_len > 0);
            label_len += 1;
            if !allowed || label_len > 63 {
                return false;
            }
        }
        previous = b;
    }
    label_len > 0 && previous != b'-'
}

fn valid_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::zones::parse;
    use std::path::Path;

    const ZONES: &str = r#"
        [[zone]]
        name = "south"
        endpoints = ["192.0.2.1", "192.0.2.2", "2001:db8:1::1"]
        failover = ["east"]
        [[zone]]
        name = "east"
        endpoints = ["198.51.100.1", { ip = "198.51.100.2", weight = 300 }]
        failover = ["south"]
    "#;

    fn compile(domains: &str) -> Result<Model, Vec<ModelError>> {
        Model::compile(&[parse(&format!("{ZONES}\n{domains}"), Path::new("z.toml")).unwrap()])
    }

    fn errors(domains: &str) -> Vec<String> {
        compile(domains)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const DOMAIN: &str = r#"
        [[domain]]
        name = "API.example.com."
        ttl = 60
        zones = ["south", "east"]
        default_zone = "east"
        [[domain.rule]]
        name = "gd-telecom"
        province = ["广东"]
        carrier = ["电信"]
        zone = "south"
        [[domain.rule]]
        cidr = ["203.0.113.0/24"]
        zone = "south"
    "#;

    fn geo(province: &str, carrier: &str) -> Geo {
        Geo {
            country: Some("CN".into()),
            province: Some(province.into()),
            carrier: Some(carrier.into()),
            ..Geo::default()
        }
    }

    #[test]
    fn first_matching_rule_picks_the_home_zone() {
        let model = compile(DOMAIN).unwrap();
        let domain = model.domain("api.example.com").expect("name is normalised");
        let ip: IpAddr = "192.0.2.200".parse().unwrap();
        let south = model.zone_id("south").unwrap();
        let east = model.zone_id("east").unwrap();
        assert_eq!(
            domain.home_zone(&geo("CN-GD", "telecom"), ip),
            (south, Some(0))
        );
        // Same province, other carrier: no rule, default zone.
        assert_eq!(domain.home_zone(&geo("CN-GD", "unicom"), ip), (east, None));
        // CIDR rule matches regardless of geo.
        assert_eq!(
            domain.home_zone(&Geo::default(), "203.0.113.9".parse().unwrap()),
            (south, Some(1))
        );
        assert_eq!(domain.home_zone(&Geo::default(), ip), (east, None));
    }

    #[test]
    fn not_country_needs_a_known_country() {
        let model = compile(
            "[[domain]]\nname = \"o.example.com\"\nttl = 5\nzones = [\"south\", \"east\"]\ndefault_zone = \"south\"\n[[domain.rule]]\nnot_country = [\"cn\"]\nzone = \"east\"\n",
        )
        .unwrap();
        let domain = model.domain("o.example.com").unwrap();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let us = Geo {
            country: Some("US".into()),
            ..Geo::default()
        };
        let east = model.zone_id("east").unwrap();
        let south = model.zone_id("south").unwrap();
        assert_eq!(domain.home_zone(&us, ip).0, east);
        assert_eq!(domain.home_zone(&geo("CN-GD", "telecom"), ip).0, south);
        assert_eq!(
            domain.home_zone(&Geo::default(), ip).0,
            south,
            "unknown country is not 'not CN'"
        );
    }

    #[test]
    fn domains_have_dense_ids_found_by_name() {
        let model = compile(&format!(
            "{DOMAIN}\n[[domain]]\nname = \"b.example.org\"\nttl = 30\nzones = [\"east\"]\ndefault_zone = \"east\"\n"
        ))
        .unwrap();
        assert_eq!(model.domain_count(), 2);
        let mut seen = Vec::new();
        for name in ["api.example.com", "b.example.org"] {
            let id = model.domain_id(name).unwrap();
            assert_eq!(model.domain(name).unwrap().id, id);
            assert_eq!(&*model.domain_by_id(id).unwrap().name, name);
            seen.push(id);
        }
        seen.sort();
        assert_eq!(seen, [0, 1]);
        assert_eq!(model.domain_id("nope.example.com"), None);
        assert!(model.domain_by_id(2).is_none());
        assert_eq!(model.domains().map(|d| d.id).collect::<Vec<_>>(), [0, 1]);
    }

    #[test]
    fn parents_of_domains_are_known() {
        let model = compile(DOMAIN).unwrap();
        assert!(model.has_subdomains("example.com"));
        assert!(model.has_subdomains("com"));
        assert!(!model.has_subdomains("api.example.com"));
        assert!(!model.has_subdomains("other.com"));
    }

    #[test]
    fn weights_and_failover_are_compiled() {
        let model = compile(DOMAIN).unwrap();
        let east = model.zone(model.zone_id("east").unwrap());
        assert_eq!(east.endpoints[0].weight, DEFAULT_WEIGHT);
        assert_eq!(east.endpoints[1].weight, 300);
        assert_eq!(east.failover, vec![model.zone_id("south").unwrap()]);
    }

    #[test]
    fn unknown_zones_are_reported_with_file_domain_and_field() {
        let errs = errors(
            r#"
            [[domain]]
            name = "a.example.com"
            ttl = 60
            zones = ["south", "west"]
            default_zone = "north"
            [[domain.rule]]
            carrier = ["unicom"]
            zone = "mars"
            "#,
        );
        assert!(
            errs.contains(
                &"z.toml: domain a.example.com: zones: unknown zone \"west\"".to_string()
            ),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("default_zone: unknown zone \"north\"")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("rule[0].zone: unknown zone \"mars\"")),
            "{errs:?}"
        );
    }

    #[test]
    fn every_class_of_bad_input_is_an_error() {
        let cases = [
            ("ttl = 0", "ttl: 0 is outside"),
            ("ttl = 100000", "ttl: 100000 is outside"),
        ];
        for (ttl, needle) in cases {
            let errs = errors(&format!(
                "[[domain]]\nname = \"a.example.com\"\n{ttl}\nzones = [\"south\"]\ndefault_zone = \"south\"\n"
            ));
            assert!(errs.iter().any(|e| e.contains(needle)), "{errs:?}");
        }
        let errs = errors(
            "[[domain]]\nname = \"bad_host..com\"\nttl = 5\nzones = [\"south\"]\ndefault_zone = \"south\"\n[[domain.rule]]\ncidr = [\"10.0.0.0/40\"]\nzone = \"south\"\n[[domain.rule]]\ncountry = [\"CHN\"]\nzone = \"south\"\n[[domain.rule]]\nzone = \"south\"\n",
        );
        for needle in [
            "name: \"bad_host..com\" is not a valid",
            "rule[0].cidr: \"10.0.0.0/40\" is not a CIDR",
            "rule[1].country",
            "rule[2]: a rule without conditions",
        ] {
            assert!(
                errs.iter().any(|e| e.contains(needle)),
                "{needle}: {errs:?}"
            );
        }
    }

    #[test]
    fn duplicate_domains_are_rejected() {
        let one = "[[domain]]\nname = \"a.example.com\"\nttl = 5\nzones = [\"south\"]\ndefault_zone = \"south\"\n";
        let errs = errors(&format!(
            "{one}{}",
            one.replace("a.example.com", "A.example.com.")
        ));
        assert_eq!(
            errs,
            vec!["z.toml: domain a.example.com: name: defined twice".to_string()]
        );
    }

    #[test]
    fn zone_errors_bad_ip_empty_endpoints_cycles() {
        let file = parse(
            r#"
            [[zone]]
            name = "a"
            endpoints = ["300.1.1.1", "192.0.2.1", "192.0.2.1", { ip = "192.0.2.9", weight = 0 }]
            failover = ["a", "nowhere"]
            [[zone]]
            name = "b"
            endpoints = []
            [[domain]]
            name = "x.example.com"
            ttl = 5
            zones = ["a"]
            default_zone = "a"
            "#,
            Path::new("zz.toml"),
        )
        .unwrap();
        let errs: Vec<String> = Model::compile(&[file])
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        for needle in [
            "zz.toml: zone a: endpoints[0]: \"300.1.1.1\" is not an IP address",
            "zone a: endpoints[2]: 192.0.2.1 listed twice",
            "zone a: endpoints[3].weight: 0 is outside",
            "zone a: failover: failover cycle",
            "zone a: failover: unknown zone \"nowhere\"",
            "zone b: endpoints: a zone needs at least one endpoint",
        ] {
            assert!(
                errs.iter().any(|e| e.contains(needle)),
                "{needle}: {errs:?}"
            );
        }
    }

    #[test]
    fn a_rule_zone_must_serve_the_domain() {
        let errs = errors(
            "[[domain]]\nname = \"a.example.com\"\nttl = 5\nzones = [\"south\"]\ndefault_zone = \"east\"\n",
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("default_zone: zone \"east\" does not serve")),
            "{errs:?}"
        );
    }

    #[test]
    fn host_syntax() {
        assert!(valid_host("api.example.com"));
        assert!(valid_host("a-b.c_d.example"));
        for bad in [
            "",
            "a..b",
            "-a.com",
            "a-.com",
            "a b.com",
            "ä.com",
            &"a".repeat(64),
        ] {
            assert!(!valid_host(bad), "{bad:?}");
        }
        assert!(valid_host(&["a".repeat(63), "b".repeat(63)].join(".")));
        assert!(!valid_host(&"a.".repeat(127)));
        assert!(valid_host("_dmarc.example.com"));
        assert!(!valid_host("a.-"));
        assert!(!valid_host("."));
    }

    /// The rule as the RFC states it, label by label: what the one-pass check must agree with.
    fn valid_host_by_labels(host: &str) -> bool {
        !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    }

    proptest::proptest! {
        #[test]
        fn the_one_pass_host_check_agrees_with_the_label_rule(
            host in "[a-c0_.\\-ä ]{0,12}|[a.\\-]{60,70}|[ab]{0,70}(\\.[ab]{0,70}){0,4}"
        ) {
            proptest::prop_assert_eq!(valid_host(&host), valid_host_by_labels(&host), "{:?}", host);
        }
    }
}

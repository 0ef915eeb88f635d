//! Client speed reports: what SDKs measured connecting to our endpoints.
//!
//! `POST /report` feeds [`SpeedTable::record`] (through the resolver's request context), which validates every item and folds it
//! into per-(carrier, province) bucket statistics for each endpoint: moving-average RTT,
//! failure rate, successes and the time of the last success, all decaying with time so
//! old news fades. Memory is bounded (moka, capacity + idle TTL) and one client IP can
//! feed at most a fixed number of items per window. The request path reads stats
//! through moka's lock-free reads; this module is the only writer.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use moka::sync::Cache;

use crate::geoip::Geo;
use crate::model::IpMap;
use crate::scheduler::ranking::{Evidence, ReportTerms};

/// Statistics halve their weight every this many milliseconds without news.
pub const HALF_LIFE_MS: f64 = 10.0 * 60.0 * 1000.0;
/// How long an endpoint's ranking terms ([`ReportTerms`]) are reused before they are
/// worked out again from its statistics and the clock (ms). The terms move with the
/// clock only through decay (half-life [`HALF_LIFE_MS`]) and the recency bonus (half-life
/// five minutes): within a second they move by well under 0.1 ms of cost, far inside a
/// band's tolerance, and cached answers are as old as that already
/// ([`crate::answer_cache::PLAN_MAX_AGE_MS`]).
pub const TERMS_MAX_AGE_MS: u64 = 1_000;
/// Largest RTT a report may claim (ms); anything above is a broken clock or a lie.
pub const MAX_RTT_MS: f64 = 60_000.0;
/// Items per report body.
pub const MAX_ITEMS: usize = 64;
/// Most weight one client network's reports carry, in observations: a /24 (IPv6 /48)
/// is one voice, however many reports it sends.
pub const VOICE_WEIGHT: f64 = 4.0;
/// Networks that must report failures before a failure rate moves the ranking for
/// everyone in the bucket: one network alone moves nothing, two move it by half, this
/// many or more in full. A single client (or a single NAT) cannot sink an endpoint.
pub const FAILURE_QUORUM: u32 = 3;
/// Successes one voice may add to an endpoint's history.
const VOICE_SUCCESSES: f64 = 10.0;
/// Voices remembered per (bucket, endpoint); the lightest is forgotten first.
const MAX_VOICES: usize = 32;

/// One measurement a client made connecting to an endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub ip: IpAddr,
    /// Connect time; required on a success.
    pub rtt_ms: Option<f64>,
    pub ok: bool,
}

/// Why a report was refused; nothing of it was recorded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReportError {
    #[error("{0}")]
    Invalid(String),
    #[error("client {0} sent more than {1} report items this window")]
    RateLimited(IpAddr, u32),
}

/// The bucket a client's measurements count for: its carrier and province.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bucket {
    pub carrier: Option<Arc<str>>,
    pub province: Option<Arc<str>>,
}

impl Bucket {
    pub fn of(geo: &Geo) -> Self {
        Self {
            carrier: geo.carrier.clone(),
            province: geo.province.clone(),
        }
    }
}

/// Aggregated measurements of one endpoint from one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeedStats {
    /// Moving-average RTT of successful connects (ms).
    pub rtt_ms: f64,
    rtt_weight: f64,
    /// Moving share of failed connects (0..=1).
    pub failure_rate: f64,
    weight: f64,
    /// Successes, decayed like the rest (a measure of history, not a counter).
    pub successes: f64,
    pub last_success_ms: Option<u64>,
    updated_ms: u64,
    /// Share (0..=1) of the failure evidence that counts: how many networks stand
    /// behind it (see [`FAILURE_QUORUM`]). 1 for one voice's own statistics.
    quorum: f64,
}

impl SpeedStats {
    fn empty(now_ms: u64) -> Self {
        Self {
            rtt_ms: 0.0,
            rtt_weight: 0.0,
            failure_rate: 0.0,
            weight: 0.0,
            successes: 0.0,
            last_success_ms: None,
            updated_ms: now_ms,
            quorum: 1.0,
        }
    }

    /// The statistics as of `now_ms`: weights decayed by the time since the last report.
    pub fn decayed(&self, now_ms: u64) -> Self {
        let factor = decay(now_ms.saturating_sub(self.updated_ms));
        Self {
            rtt_weight: self.rtt_weight * factor,
            weight: self.weight * factor,
            successes: self.successes * factor,
            updated_ms: now_ms.max(self.updated_ms),
            ..*self
        }
    }

    /// How much the failure rate is to be believed (0..1): a single failure is noise,
    /// and failures from too few networks count for little or nothing.
    pub fn confidence(&self) -> f64 {
        self.weight / (self.weight + 2.0) * self.quorum
    }

    /// How much the RTT is to be believed (0..1).
    pub fn rtt_confidence(&self) -> f64 {
        self.rtt_weight / (self.rtt_weight + 2.0)
    }

    /// One voice's statistics after one more report (weights capped at [`VOICE_WEIGHT`]).
    fn observe(&self, ok: bool, rtt_ms: Option<f64>, now_ms: u64) -> Self {
        let mut next = self.decayed(now_ms);
        let w = next.weight.min(VOICE_WEIGHT - 1.0);
        next.failure_rate = (next.failure_rate * w + if ok { 0.0 } else { 1.0 }) / (w + 1.0);
        next.weight = w + 1.0;
        if ok {
            next.successes += 1.0;
            next.last_success_ms = Some(now_ms);
            if let Some(rtt) = rtt_ms {
                let rw = next.rtt_weight.min(VOICE_WEIGHT - 1.0);
                next.rtt_ms = (next.rtt_ms * rw + rtt) / (rw + 1.0);
                next.rtt_weight = rw + 1.0;
            }
        }
        next
    }
}

/// One client network's reports about one endpoint.
#[derive(Debug, Clone, Copy)]
struct Voice {
    network: IpAddr,
    stats: SpeedStats,
}

/// The bucket's view of an endpoint: every voice, each within its weight cap, with the
/// failure evidence counted only as far as enough networks agree.
fn aggregate(voices: &[Voice], now_ms: u64) -> SpeedStats {
    let mut all = SpeedStats::empty(now_ms);
    let (mut failures, mut rtt_sum, mut failing) = (0.0, 0.0, 0u32);
    for voice in voices {
        let v = voice.stats.decayed(now_ms);
        all.weight += v.weight;
        failures += v.failure_rate * v.weight;
        all.rtt_weight += v.rtt_weight;
        rtt_sum += v.rtt_ms * v.rtt_weight;
        all.successes += v.successes.min(VOICE_SUCCESSES);
        all.last_success_ms = all.last_success_ms.max(v.last_success_ms);
        if v.weight >= 0.5 && v.failure_rate >= 0.5 {
            failing += 1;
        }
    }
    if all.weight > 0.0 {
        all.failure_rate = failures / all.weight;
    }
    if all.rtt_weight > 0.0 {
        all.rtt_ms = rtt_sum / all.rtt_weight;
    }
    all.quorum =
        (f64::from(failing.saturating_sub(1)) / f64::from(FAILURE_QUORUM - 1)).clamp(0.0, 1.0);
    all
}

/// The voice a client counts as: its IPv4 /24 or IPv6 /48.
pub fn voice_of(client: IpAddr) -> IpAddr {
    crate::model::network_of(client.to_canonical(), 24, 48)
}

/// What the bucket's reports say of an endpoint, from its statistics decayed to `now_ms`
/// (this node's probe RTT is not part of it: [`ReportTerms::cost`] adds it per request).
fn evidence(stats: &SpeedStats, now_ms: u64) -> Evidence {
    Evidence {
        probe_rtt_ms: None,
        reported_rtt_ms: (stats.rtt_confidence() > 0.0)
            .then(|| (stats.rtt_ms, stats.rtt_confidence())),
        failure_rate: Some((stats.failure_rate, stats.confidence())),
        since_last_success_ms: stats.last_success_ms.map(|t| now_ms.saturating_sub(t)),
        successes: stats.successes,
    }
}

/// What a request reads of one (bucket, endpoint): the statistics as aggregated from
/// reports, and the ranking terms worked out from them at `terms_ms`.
#[derive(Debug, Clone, Copy)]
struct Published {
    stats: SpeedStats,
    terms: ReportTerms,
    terms_ms: u64,
}

impl Published {
    fn at(stats: SpeedStats, now_ms: u64) -> Self {
        Self {
            stats,
            terms: ReportTerms::of(&evidence(&stats.decayed(now_ms), now_ms)),
            terms_ms: now_ms,
        }
    }
}

/// An endpoint's cell in a bucket: replaced whole by reports (the writers), and by a
/// request that found its terms out of date.
type Cell = Arc<ArcSwap<Published>>;

/// 0.5 per half-life of silence.
pub fn decay(elapsed_ms: u64) -> f64 {
    // ½^x as 2^-x: exp2 alone instead of powf's log + exp.
    (-(elapsed_ms as f64) / HALF_LIFE_MS).exp2()
}

/// Limits of the speed table.
#[derive(Debug, Clone, Copy)]
pub struct SpeedLimits {
    /// (bucket, endpoint) entries kept.
    pub capacity: u64,
    /// A bucket without reports for this long is dropped.
    pub idle: Duration,
    /// Report items one client IP may send per window.
    pub per_client_items: u32,
    pub window: Duration,
}

impl Default for SpeedLimits {
    fn default() -> Self {
        Self {
            capacity: 200_000,
            idle: Duration::from_secs(6 * 3600),
            per_client_items: 120,
            window: Duration::from_secs(60),
        }
    }
}

/// One bucket's statistics, by endpoint.
///
/// The request path reads it without locks: the map is an arc-swap snapshot and each
/// endpoint's statistics sit in their own arc-swap cell. Reports, the only writers,
/// take the bucket's write lock, replace cells, and copy the map only to add an
/// endpoint the bucket has not seen yet.
#[derive(Default)]
pub struct BucketStats {
    by_endpoint: ArcSwap<IpMap<Cell>>,
    /// The writers' side: every endpoint's voices, from which the published
    /// statistics are computed.
    voices: Mutex<std::collections::HashMap<IpAddr, Vec<Voice>>>,
}

/// One bucket's endpoint map as of one moment: a decision reads the statistics of
/// every endpoint of a zone or two, so it takes the map once ([`BucketStats::view`])
/// rather than once per endpoint.
pub struct BucketView(Arc<IpMap<Cell>>);

impl BucketView {
    /// Statistics of `endpoint`, decayed to `now_ms`.
    pub fn get(&self, endpoint: IpAddr, now_ms: u64) -> Option<SpeedStats> {
        self.0
            .get(&endpoint)
            .map(|cell| cell.load().stats.decayed(now_ms))
    }

    /// The reports' part of `endpoint`'s ranking cost as of `now_ms` (`None`: nobody in
    /// the bucket reported it): the cell's own terms while they are younger than
    /// [`TERMS_MAX_AGE_MS`], else worked out again and kept for the next requests. The
    /// request path asks this for every endpoint of a zone or two, and terms made fresh
    /// each time cost three `exp2` per endpoint.
    pub fn terms(&self, endpoint: IpAddr, now_ms: u64) -> Option<ReportTerms> {
        let cell = self.0.get(&endpoint)?;
        let published = cell.load();
        if published.terms_ms.abs_diff(now_ms) <= TERMS_MAX_AGE_MS {
            return Some(published.terms);
        }
        Some(refresh(cell, &published, now_ms))
    }
}

/// `published`'s terms as of `now_ms`, kept in `cell` unless a report replaced the
/// statistics since `published` was read: a report's statistics are newer, and a
/// request must never put older ones back.
fn refresh(cell: &Cell, published: &arc_swap::Guard<Arc<Published>>, now_ms: u64) -> ReportTerms {
    let fresh = Published::at(published.stats, now_ms);
    cell.compare_and_swap(published, Arc::new(fresh));
    fresh.terms
}

impl BucketStats {
    /// Statistics of `endpoint` in this bucket, decayed to `now_ms`.
    pub fn get(&self, endpoint: IpAddr, now_ms: u64) -> Option<SpeedStats> {
        self.view().get(endpoint, now_ms)
    }

    /// The endpoint map as of now, for many lookups.
    pub fn view(&self) -> BucketView {
        BucketView(self.by_endpoint.load_full())
    }

    /// Endpoints with statistics.
    pub fn len(&self) -> usize {
        self.by_endpoint.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn observe(&self, items: &[(IpAddr, bool, Option<f64>)], network: IpAddr, now_ms: u64) {
        let mut voices = self.voices.lock().unwrap_or_else(|p| p.into_inner());
        let mut map = self.by_endpoint.load_full();
        for &(ip, ok, rtt) in items {
            let heard = voices.entry(ip).or_default();
            let index = match heard.iter().position(|v| v.network == network) {
                Some(index) => index,
                None => {
                    if heard.len() >= MAX_VOICES {
                        let lightest = heard
                            .iter()
                            .enumerate()
                            .min_by(|a, b| {
                                let weight = |v: &Voice| v.stats.decayed(now_ms).weight;
                                weight(a.1).total_cmp(&weight(b.1))
                            })
                            .map_or(0, |(i, _)| i);
                        heard.swap_remove(lightest);
                    }
                    heard.push(Voice {
                        network,
                        stats: SpeedStats::empty(now_ms),
                    });
                    heard.len() - 1
                }
            };
            heard[index].stats = heard[index].stats.observe(ok, rtt, now_ms);
            let published = Arc::new(Published::at(aggregate(heard, now_ms), now_ms));
            if let Some(cell) = map.get(&ip) {
                cell.store(published);
            } else {
                Arc::make_mut(&mut map).insert(ip, Arc::new(ArcSwap::new(published)));
            }
        }
        self.by_endpoint.store(map);
    }
}

/// All buckets' statistics.
pub struct SpeedTable {
    /// Weighted by the bucket's endpoint count, so `capacity` bounds (bucket, endpoint)
    /// entries; a bucket expires `idle` after its last report.
    buckets: Cache<Bucket, Arc<BucketStats>, rustc_hash::FxBuildHasher>,
    per_client: Cache<IpAddr, Arc<AtomicU32>>,
    limits: SpeedLimits,
    /// Grows with every accepted report, so answers decided before it are known stale.
    revision: AtomicU64,
}

impl SpeedTable {
    pub fn new(limits: SpeedLimits) -> Self {
        Self {
            buckets: Cache::builder()
                .max_capacity(limits.capacity)
                .weigher(|_, stats: &Arc<BucketStats>| {
                    u32::try_from(stats.len().max(1)).unwrap_or(u32::MAX)
                })
                .time_to_live(limits.idle)
                // Every decision outside the answer cache looks its bucket up; the keys
                // are the IP database's carrier and province names, not client input,
                // so a fast hasher is safe here.
                .build_with_hasher(rustc_hash::FxBuildHasher),
            per_client: Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(limits.window)
                .build(),
            limits,
            revision: AtomicU64::new(0),
        }
    }

    /// How many reports were accepted so far: answers decided at an older revision may
    /// rank endpoints on outdated measurements.
    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::Acquire)
    }

    /// One bucket's statistics: look it up once per request, then ask it per endpoint.
    pub fn bucket(&self, bucket: &Bucket) -> Option<Arc<BucketStats>> {
        self.buckets.get(bucket)
    }

    /// Statistics of `endpoint` for `bucket`, decayed to `now_ms`.
    pub fn get(&self, bucket: &Bucket, endpoint: IpAddr, now_ms: u64) -> Option<SpeedStats> {
        self.bucket(bucket)?.get(endpoint, now_ms)
    }

    /// Validates a whole report, then records it for the client's bucket. `is_endpoint`
    /// says whether an IP is one of the host's endpoints. All or nothing.
    pub fn record(
        &self,
        client: IpAddr,
        geo: &Geo,
        items: &[Sample],
        is_endpoint: impl Fn(IpAddr) -> bool,
        now_ms: u64,
    ) -> Result<usize, ReportError> {
        let invalid = |m: String| Err(ReportError::Invalid(m));
        if items.is_empty() {
            return invalid("reports is empty".into());
        }
        if items.len() > MAX_ITEMS {
            return invalid(format!(
                "{} reports; at most {MAX_ITEMS} per body",
                items.len()
            ));
        }
        let mut parsed = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let ip = item.ip.to_canonical();
            if !is_endpoint(ip) {
                return invalid(format!(
                    "reports[{i}].ip {ip} is not an endpoint of this host"
                ));
            }
            match item.rtt_ms {
                Some(rtt) if !(0.0..=MAX_RTT_MS).contains(&rtt) => {
                    return invalid(format!(
                        "reports[{i}].rtt_ms {rtt} is outside 0..={MAX_RTT_MS}"
                    ));
                }
                None if item.ok => {
                    return invalid(format!("reports[{i}].rtt_ms is required when ok"));
                }
                _ => {}
            }
            parsed.push((ip, item.ok, item.rtt_ms));
        }
        let counter = self
            .per_client
            .get_with(client, || Arc::new(AtomicU32::new(0)));
        let n = u32::try_from(parsed.len()).unwrap_or(u32::MAX);
        let before = counter.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > self.limits.per_client_items {
            counter.fetch_sub(n, Ordering::Relaxed);
            return Err(ReportError::RateLimited(
                client,
                self.limits.per_client_items,
            ));
        }
        let bucket = Bucket::of(geo);
        let stats = self
            .buckets
            .get_with_by_ref(&bucket, || Arc::new(BucketStats::default()));
        stats.observe(&parsed, voice_of(client), now_ms);
        // Re-inserting restarts the idle clock and re-weighs the bucket by its endpoints.
        self.buckets.insert(bucket, stats);
        self.revision.fetch_add(1, Ordering::Release);
        Ok(parsed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(ip: &str, rtt: Option<f64>, ok: bool) -> Sample {
        Sample {
            ip: ip.parse().unwrap(),
            rtt_ms: rtt,
            ok,
        }
    }

    fn telecom() -> Geo {
        Geo {
            carrier: Some("telecom".into()),
            province: Some("CN-GD".into()),
            ..Geo::default()
        }
    }

    const CLIENT: &str = "202.96.128.86";

    #[test]
    fn reports_aggregate_per_bucket() {
        let table = SpeedTable::new(SpeedLimits::default());
        let ep: IpAddr = "192.0.2.1".parse().unwrap();
        let items = [
            item("192.0.2.1", Some(20.0), true),
            item("192.0.2.1", Some(40.0), true),
            item("192.0.2.1", None, false),
        ];
        assert_eq!(
            table.record(CLIENT.parse().unwrap(), &telecom(), &items, |_| true, 1000),
            Ok(3)
        );
        let stats = table.get(&Bucket::of(&telecom()), ep, 1000).unwrap();
        assert!((stats.rtt_ms - 30.0).abs() < 1e-9);
        assert!((stats.failure_rate - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(stats.last_success_ms, Some(1000));
        assert!(
            table.get(&Bucket::of(&Geo::default()), ep, 1000).is_none(),
            "other buckets see nothing"
        );
        // A view reads what the bucket holds, and keeps the endpoints it was taken with.
        let bucket = table.bucket(&Bucket::of(&telecom())).unwrap();
        let view = bucket.view();
        assert_eq!(view.get(ep, 1000), Some(stats));
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let later = [item("192.0.2.2", Some(10.0), true)];
        let client: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(
            table.record(client, &telecom(), &later, |_| true, 2000),
            Ok(1)
        );
        assert!(view.get(other, 2000).is_none());
        assert!(bucket.view().get(other, 2000).is_some());
    }

    #[test]
    fn weights_decay_with_time() {
        let s = SpeedStats::empty(0).observe(true, Some(10.0), 0);
        let later = s.decayed(HALF_LIFE_MS as u64);
        assert!((later.successes - 0.5).abs() < 1e-9);
        assert!(later.confidence() < s.confidence());
    }

    /// The terms a fresh computation gives for `ip` at `now_ms`.
    fn fresh_terms(view: &BucketView, ip: IpAddr, now_ms: u64) -> ReportTerms {
        let stats = view.get(ip, now_ms).expect("the endpoint was reported");
        ReportTerms::of(&evidence(&stats, now_ms))
    }

    #[test]
    fn terms_are_reused_for_a_while_then_worked_out_again() {
        let table = SpeedTable::new(SpeedLimits::default());
        let ep: IpAddr = "192.0.2.1".parse().unwrap();
        let items = [
            item("192.0.2.1", Some(30.0), true),
            item("192.0.2.1", None, false),
        ];
        table
            .record(CLIENT.parse().unwrap(), &telecom(), &items, |_| true, 1_000)
            .unwrap();
        let view = table.bucket(&Bucket::of(&telecom())).unwrap().view();
        let at_report = view.terms(ep, 1_000).unwrap();
        assert_eq!(at_report, fresh_terms(&view, ep, 1_000));
        assert_ne!(at_report, ReportTerms::default());
        // Within the age limit: the report's own terms, though the clock moved them.
        let soon = 1_000 + TERMS_MAX_AGE_MS;
        assert_eq!(view.terms(ep, soon).unwrap(), at_report);
        assert_ne!(fresh_terms(&view, ep, soon), at_report);
        // Past it: worked out again, and kept for the next requests.
        let later = 1_000 + 10 * 60 * 1000;
        let refreshed = view.terms(ep, later).unwrap();
        assert_eq!(refreshed, fresh_terms(&view, ep, later));
        assert_ne!(refreshed, at_report);
        assert_eq!(view.0[&ep].load().terms_ms, later);
        assert_eq!(view.terms(ep, later + 1), Some(refreshed));
        // An endpoint nobody reported has no terms.
        assert_eq!(view.terms("192.0.2.9".parse().unwrap(), later), None);
    }

    #[test]
    fn a_request_refreshing_terms_never_puts_older_statistics_back() {
        let table = SpeedTable::new(SpeedLimits::default());
        let ep: IpAddr = "192.0.2.1".parse().unwrap();
        let client: IpAddr = CLIENT.parse().unwrap();
        let report = |ok, now| {
            table
                .record(
                    client,
                    &telecom(),
                    &[item("192.0.2.1", Some(30.0), ok)],
                    |_| true,
                    now,
                )
                .unwrap()
        };
        report(true, 1_000);
        let view = table.bucket(&Bucket::of(&telecom())).unwrap().view();
        let cell = &view.0[&ep];
        // A request reads the cell; a report replaces it before the request refreshes.
        let read = cell.load();
        report(false, 2_000);
        let after_report = cell.load().stats;
        refresh(cell, &read, 900_000);
        assert_eq!(
            cell.load().stats,
            after_report,
            "the report's statistics stay"
        );
        assert!(view.get(ep, 2_000).unwrap().failure_rate > 0.0);
    }

    #[test]
    fn a_bad_item_rejects_the_whole_report() {
        let table = SpeedTable::new(SpeedLimits::default());
        let client: IpAddr = CLIENT.parse().unwrap();
        for (bad, needle) in [
            (item("192.0.2.1", Some(-1.0), true), "outside"),
            (item("192.0.2.1", Some(1e9), true), "outside"),
            (item("192.0.2.1", Some(f64::NAN), true), "outside"),
            (item("192.0.2.1", None, true), "required"),
            (item("198.51.100.1", Some(1.0), true), "not an endpoint"),
        ] {
            let items = [item("192.0.2.1", Some(10.0), true), bad];
            let err = table
                .record(
                    client,
                    &telecom(),
                    &items,
                    |ip| ip.to_string() == "192.0.2.1",
                    0,
                )
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{err}");
        }
        assert!(
            table
                .get(&Bucket::of(&telecom()), "192.0.2.1".parse().unwrap(), 0)
                .is_none()
        );
        assert!(table.record(client, &telecom(), &[], |_| true, 0).is_err());
    }

    #[test]
    fn one_client_cannot_flood_a_bucket() {
        let limits = SpeedLimits {
            per_client_items: 5,
            ..SpeedLimits::default()
        };
        let table = SpeedTable::new(limits);
        let client: IpAddr = CLIENT.parse().unwrap();
        let items: Vec<Sample> = (0..3).map(|_| item("192.0.2.1", Some(5.0), true)).collect();
        assert_eq!(table.record(client, &telecom(), &items, |_| true, 0), Ok(3));
        assert!(matches!(
            table.record(client, &telecom(), &items, |_| true, 0),
            Err(ReportError::RateLimited(..))
        ));
        let other: IpAddr = "202.96.128.87".parse().unwrap();
        assert_eq!(table.record(other, &telecom(), &items, |_| true, 0), Ok(3));
        let stats = table
            .get(&Bucket::of(&telecom()), "192.0.2.1".parse().unwrap(), 0)
            .unwrap();
        assert!(
            (stats.successes - 6.0).abs() < 1e-9,
            "the refused report left no trace"
        );
    }

    #[test]
    fn one_network_is_one_voice_and_cannot_sink_an_endpoint_alone() {
        let table = SpeedTable::new(SpeedLimits {
            per_client_items: 10_000,
            ..SpeedLimits::default()
        });
        let ep: IpAddr = "192.0.2.1".parse().unwrap();
        let failures: Vec<Sample> = (0..60).map(|_| item("192.0.2.1", None, false)).collect();
        let penalty = |table: &SpeedTable| {
            let stats = table.get(&Bucket::of(&telecom()), ep, 0).unwrap();
            stats.failure_rate * stats.confidence() * 1000.0
        };
        // 120 failures from one address, then from every address of its /24.
        for _ in 0..2 {
            table
                .record(CLIENT.parse().unwrap(), &telecom(), &failures, |_| true, 0)
                .unwrap();
        }
        for host in 1..=50u8 {
            let client = IpAddr::from([202, 96, 128, host]);
            table
                .record(client, &telecom(), &failures[..2], |_| true, 0)
                .unwrap();
        }
        assert_eq!(penalty(&table), 0.0, "one network moves nothing");
        let stats = table.get(&Bucket::of(&telecom()), ep, 0).unwrap();
        assert!(stats.confidence() == 0.0 && stats.failure_rate == 1.0);
        // A second network: half the evidence counts; a third: all of it.
        table
            .record(
                "14.16.1.1".parse().unwrap(),
                &telecom(),
                &failures,
                |_| true,
                0,
            )
            .unwrap();
        let two = penalty(&table);
        assert!(two > 0.0 && two < 500.0, "{two}");
        table
            .record(
                "14.17.2.2".parse().unwrap(),
                &telecom(),
                &failures,
                |_| true,
                0,
            )
            .unwrap();
        let three = penalty(&table);
        assert!(three > 700.0, "{three}");
    }

    #[test]
    fn voices_are_slash_24_and_slash_48() {
        assert_eq!(
            voice_of("202.96.128.86".parse().unwrap()),
            "202.96.128.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            voice_of("2001:db8:1:2::5".parse().unwrap()),
            "2001:db8:1::".parse::<IpAddr>().unwrap()
        );
    }
}

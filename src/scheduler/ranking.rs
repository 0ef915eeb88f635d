//! Endpoint ranking inside one zone: best first, load spread among near-equals.
//!
//! Each endpoint has a [`Cost`] (lower is better) from live measurements. Endpoints are
//! taken in bands: the cheapest remaining endpoint and every endpoint within the
//! tolerance of it form a band, which is ordered by weighted random choice so traffic
//! spreads by weight instead of piling onto whichever IP measured a hair faster.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smallvec::SmallVec;

use super::{Addresses, LiveView, Query, Tier};
use crate::model::{Endpoint, Model, ZoneId};

/// Endpoints whose cost is within this fraction of the band's best share the band.
pub const RELATIVE_TOLERANCE: f64 = 0.2;
/// ... or within this many cost units (milliseconds) of it, so tiny RTTs do not split.
pub const ABSOLUTE_TOLERANCE: f64 = 5.0;

/// RTT assumed for an endpoint nobody has measured (ms): worse than a good measured
/// endpoint, better than a slow one, so measurements can move it either way.
pub const UNMEASURED_RTT_MS: f64 = 100.0;
/// Cost of an endpoint every client fails to reach (ms-equivalent). A 10% failure rate
/// costs as much as 100 ms of extra RTT: a failed connect costs a timeout.
pub const FAILURE_PENALTY_MS: f64 = 1000.0;
/// Bonus for a success just now, halving every [`RECENCY_HALF_LIFE_MS`].
pub const RECENCY_BONUS_MS: f64 = 30.0;
pub const RECENCY_HALF_LIFE_MS: f64 = 5.0 * 60.0 * 1000.0;
/// Bonus for a long record of successes, saturating.
pub const HISTORY_BONUS_MS: f64 = 20.0;
/// Successes it takes to earn half the history bonus.
pub const HISTORY_HALF_SUCCESSES: f64 = 10.0;

/// How expensive an endpoint is for a client, in RTT-like milliseconds (lower is
/// better), with the terms that made it (shown by explain).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Cost {
    pub total: f64,
    /// Blend of client-reported RTT for the client's bucket and probe RTT.
    pub rtt_ms: f64,
    /// Penalty for the bucket's failure rate.
    pub failure: f64,
    /// Bonus (negative) for a recent success in the bucket.
    pub recency: f64,
    /// Bonus (negative) for a history of successes in the bucket.
    pub history: f64,
}

/// What is known of an endpoint for one client's bucket.
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence {
    /// Smoothed active-probe RTT from this node.
    pub probe_rtt_ms: Option<f64>,
    /// Clients' reported RTT for this bucket, and how much to believe it (0..1).
    pub reported_rtt_ms: Option<(f64, f64)>,
    /// Reported failure rate and how much to believe it (0..1).
    pub failure_rate: Option<(f64, f64)>,
    /// Milliseconds since the bucket last reported a success.
    pub since_last_success_ms: Option<u64>,
    /// Decayed count of reported successes.
    pub successes: f64,
}

/// The cost formula (documented in the README):
/// `rtt + failure_rate × 1000 × confidence − 30 × ½^(age/5min) − 20 × (1 − ½^(successes/10))`.
pub fn cost(evidence: &Evidence) -> Cost {
    ReportTerms::of(evidence).cost(evidence.probe_rtt_ms)
}

/// The terms of an endpoint's cost that come from one bucket's reports, as of one moment;
/// [`ReportTerms::cost`] adds this node's probe RTT.
///
/// Split from [`cost`] so the reports' part can be kept with the statistics and reused
/// (it needs three `exp2` and moves only slowly with the clock, see
/// [`crate::speed::TERMS_MAX_AGE_MS`]), while the probe RTT, which changes with every
/// health check, is read per request. `Default` is "no reports".
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReportTerms {
    /// Reported RTT × how much it is believed.
    reported_rtt_share: f64,
    /// How much the reported RTT is believed (0..1); the rest of the RTT is the probe's.
    trust: f64,
    failure: f64,
    recency: f64,
    history: f64,
}

impl ReportTerms {
    /// The reports' part of [`cost`] (`evidence.probe_rtt_ms` is not read).
    pub fn of(evidence: &Evidence) -> Self {
        let (reported_rtt_share, trust) = evidence
            .reported_rtt_ms
            .map_or((0.0, 0.0), |(reported, trust)| (reported * trust, trust));
        let failure = evidence
            .failure_rate
            .map_or(0.0, |(rate, trust)| rate * trust * FAILURE_PENALTY_MS);
        let recency = evidence.since_last_success_ms.map_or(0.0, |age| {
            -RECENCY_BONUS_MS * (-(age as f64) / RECENCY_HALF_LIFE_MS).exp2()
        });
        // ½^x is written 2^-x: exp2 alone is cheaper than powf.
        let history = if evidence.successes > 0.0 {
            -HISTORY_BONUS_MS * (1.0 - (-evidence.successes / HISTORY_HALF_SUCCESSES).exp2())
        } else {
            0.0
        };
        Self {
            reported_rtt_share,
            trust,
            failure,
            recency,
            history,
        }
    }

    /// The whole cost with this node's probe RTT, if it has one. Clients' own
    /// measurements say what users see; the probe from this node (or, without one, the
    /// unmeasured RTT) stands in for the share of the RTT they do not vouch for yet.
    pub fn cost(&self, probe_rtt_ms: Option<f64>) -> Cost {
        let stand_in = probe_rtt_ms.unwrap_or(UNMEASURED_RTT_MS);
        let rtt_ms = self.reported_rtt_share + stand_in * (1.0 - self.trust);
        Cost {
            total: rtt_ms + self.failure + self.recency + self.history,
            rtt_ms,
            failure: self.failure,
            recency: self.recency,
            history: self.history,
        }
    }
}

/// One zone's endpoints for one client, ranked but not yet drawn: the bands of
/// near-equal endpoints, best band first, and how many of each family the answer takes.
///
/// Everything here is decided by costs and health, which are the same for every client
/// of a cache bucket; only the weighted draw inside each band is per request
/// ([`TierPlan::draw`]), so a cached plan spreads load exactly as a fresh one. The bands
/// carry their addresses and weights: a draw reads the plan alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TierPlan {
    pub zone: ZoneId,
    v4: Bands<Ipv4Addr>,
    v6: Bands<Ipv6Addr>,
}

/// Bands of one address family: just enough of them to fill the answer.
///
/// Laid out for draws from cold plans: with 100,000 domains the plans a request reads
/// are rarely in cache, and every line a draw touches is a stall (profiled: 8% of the
/// server's time with 1,000 rotating hosts when each member took 32 bytes). So the band
/// shapes sit inline, the addresses are packed by family (a band of 32 IPv4 addresses
/// is two lines) and the running weights, which only bands of unequal weights read,
/// live apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Bands<A> {
    /// How many addresses the answer takes.
    limit: usize,
    /// Each band's size and weighting, best band first.
    shapes: SmallVec<[BandShape; 2]>,
    /// Every band's addresses, band after band.
    addrs: Vec<A>,
    /// For each address, the weight of its band up to and including it (a weighted
    /// draw is a binary search here instead of a walk through the band; a member's own
    /// weight is the difference to the one before). Empty when every band is uniform.
    running: Vec<u64>,
}

impl<A> Default for Bands<A> {
    fn default() -> Self {
        Self {
            limit: 0,
            shapes: SmallVec::new(),
            addrs: Vec::new(),
            running: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct BandShape {
    len: u32,
    /// Whether every member has the same (non-zero) weight: then a draw is a uniform
    /// pick of positions and reads no running weights (the common case: weights are
    /// rarely set).
    uniform: bool,
}

/// An address as a band of one family stores it.
trait BandAddress: Copy + Into<IpAddr> {
    /// `ip` if it is of this family.
    fn of(ip: IpAddr) -> Option<Self>;
}

impl BandAddress for Ipv4Addr {
    fn of(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        }
    }
}

impl BandAddress for Ipv6Addr {
    fn of(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V6(v6) => Some(v6),
            IpAddr::V4(_) => None,
        }
    }
}

/// Both families in one list, for tests that rank mixed endpoints.
#[cfg(test)]
impl BandAddress for IpAddr {
    fn of(ip: IpAddr) -> Option<Self> {
        Some(ip)
    }
}

impl TierPlan {
    /// Draws this request's order inside each band.
    pub fn draw(&self, rng: &mut fastrand::Rng) -> Tier {
        Tier {
            zone: self.zone,
            v4: self.v4.draw(rng),
            v6: self.v6.draw(rng),
        }
    }
}

impl<A: BandAddress> Bands<A> {
    fn draw(&self, rng: &mut fastrand::Rng) -> Addresses {
        let mut ordered = Addresses::with_capacity(self.limit.min(self.addrs.len()));
        let mut start = 0;
        for shape in &self.shapes {
            if ordered.len() >= self.limit {
                break;
            }
            let end = start + shape.len as usize;
            let Some(band) = self.addrs.get(start..end) else {
                break;
            };
            let count = self.limit - ordered.len();
            if shape.uniform {
                uniform_picks(band, count, rng, &mut ordered);
            } else if let Some(running) = self.running.get(start..end) {
                weighted_picks(band, running, count, rng, &mut ordered);
            }
            start = end;
        }
        ordered
    }
}

/// Ranks one zone's endpoints for the query, `per_family` of each requested family.
/// `only_up` filters endpoints failing health checks (not when failing open). `costed`
/// is scratch space, reused across calls.
pub fn plan_zone<'m>(
    model: &'m Model,
    live: &impl LiveView,
    zone: ZoneId,
    query: &Query<'_>,
    per_family: usize,
    only_up: bool,
    costed: &mut Vec<(&'m Endpoint, f64)>,
) -> TierPlan {
    let endpoints = &model.zone(zone).endpoints;
    // The filter hides the count from `extend`: without room made first, the scratch
    // list grows by doubling, a reallocation or three per plan.
    costed.reserve(endpoints.len());
    let family = Family {
        endpoints,
        live,
        zone,
        query,
        per_family,
        only_up,
    };
    TierPlan {
        zone,
        v4: if query.families.v4() {
            family.bands(costed)
        } else {
            Bands::default()
        },
        v6: if query.families.v6() {
            family.bands(costed)
        } else {
            Bands::default()
        },
    }
}

/// What ranking one family of a zone's endpoints needs.
struct Family<'m, 'q, L> {
    endpoints: &'m [Endpoint],
    live: &'q L,
    zone: ZoneId,
    query: &'q Query<'q>,
    per_family: usize,
    only_up: bool,
}

impl<'m, L: LiveView> Family<'m, '_, L> {
    /// The bands of the endpoints of address type `A`.
    fn bands<A: BandAddress>(&self, costed: &mut Vec<(&'m Endpoint, f64)>) -> Bands<A> {
        costed.clear();
        costed.extend(
            self.endpoints
                .iter()
                .filter(|e| {
                    A::of(e.ip).is_some() && (!self.only_up || self.live.endpoint_up(self.zone, e))
                })
                .map(|e| (e, self.live.endpoint_cost(e, self.query.geo).total)),
        );
        bands(costed, self.per_family)
    }
}

/// Splits endpoints into bands, best first, until the bands hold `limit` endpoints.
///
/// Each band is found with one pass (no sort of the whole zone), and bands past what
/// the answer can use are never formed.
fn bands<A: BandAddress>(costed: &mut [(&Endpoint, f64)], limit: usize) -> Bands<A> {
    let mut bands = Bands {
        limit,
        ..Bands::default()
    };
    let wanted = limit.min(costed.len());
    let mut rest = costed;
    while !rest.is_empty() && bands.addrs.len() < limit {
        let best = rest
            .iter()
            .map(|(_, cost)| *cost)
            .min_by(f64::total_cmp)
            .unwrap_or_default();
        let cutoff = best + (best.abs() * RELATIVE_TOLERANCE).max(ABSOLUTE_TOLERANCE);
        // Move the band (everyone within the tolerance of the best) to the front.
        let mut band_len = 0;
        for i in 0..rest.len() {
            if rest[i].1 <= cutoff {
                rest.swap(i, band_len);
                band_len += 1;
            }
        }
        let (band, after) = rest.split_at_mut(band_len.max(1));
        rest = after;
        if bands.addrs.capacity() == 0 {
            // Sized once for the first band or the answer, whichever is wider: grown
            // from empty, the list is reallocated band by band. Not the whole zone:
            // cached plans keep this list.
            bands.addrs = Vec::with_capacity(band.len().max(wanted));
        }
        let weight = band[0].0.weight;
        let uniform = weight > 0 && band.iter().all(|(e, _)| e.weight == weight);
        let first = bands.addrs.len();
        // Running weights exist from the first band that needs them on, with room
        // (never read) for the uniform bands before it, so positions line up.
        let weighed = !uniform || !bands.running.is_empty();
        if weighed {
            bands.running.resize(first, 0);
        }
        bands
            .addrs
            .extend(band.iter().filter_map(|(endpoint, _)| A::of(endpoint.ip)));
        if weighed {
            let mut running = 0;
            bands.running.extend(
                band.iter()
                    .filter(|(endpoint, _)| A::of(endpoint.ip).is_some())
                    .map(|(endpoint, _)| {
                        running += u64::from(endpoint.weight);
                        running
                    }),
            );
        }
        let len = bands.addrs.len() - first;
        if len > 0 {
            bands.shapes.push(BandShape {
                len: u32::try_from(len).unwrap_or(u32::MAX),
                uniform,
            });
        }
    }
    bands
}

/// Orders endpoints band by band and keeps the first `limit`.
#[cfg(test)]
fn order(
    endpoints: &[Endpoint],
    costs: &[f64],
    limit: usize,
    rng: &mut fastrand::Rng,
) -> Addresses {
    let mut costed: Vec<(&Endpoint, f64)> = endpoints.iter().zip(costs.iter().copied()).collect();
    bands::<IpAddr>(&mut costed, limit).draw(rng)
}

/// Positions of a band already drawn, one bit each: bands up to 256 need no allocation,
/// and a bit test per member is cheaper than stepping past a list.
struct Drawn {
    inline: [u64; 4],
    spilled: Vec<u64>,
    words: usize,
}

impl Drawn {
    fn new(len: usize) -> Self {
        let words = len.div_ceil(64);
        let inline = [0u64; 4];
        let spilled = if words > inline.len() {
            vec![0; words]
        } else {
            Vec::new()
        };
        Self {
            inline,
            spilled,
            words,
        }
    }

    fn bits(&self) -> &[u64] {
        if self.spilled.is_empty() {
            &self.inline[..self.words]
        } else {
            &self.spilled
        }
    }

    fn contains(&self, position: usize) -> bool {
        self.bits()[position / 64] & (1 << (position % 64)) != 0
    }

    fn insert(&mut self, position: usize) {
        let bits = if self.spilled.is_empty() {
            &mut self.inline[..self.words]
        } else {
            &mut self.spilled
        };
        bits[position / 64] |= 1 << (position % 64);
    }
}

/// [`weighted_picks`] for a band whose members all weigh the same: every member not
/// yet drawn is equally likely, so a position is drawn directly and only the drawn
/// members are read. When at most half the band is wanted, a draw that lands on a taken
/// position is drawn again (exactly a uniform draw among the rest); otherwise a draw is
/// the `k`-th free position, `k` uniform among those left.
fn uniform_picks<A: BandAddress>(
    band: &[A],
    count: usize,
    rng: &mut fastrand::Rng,
    out: &mut Addresses,
) {
    let wanted = count.min(band.len());
    let rejecting = band.len() >= 2 * wanted;
    if band.len() <= 64 {
        // Most bands: the free positions are the set bits of one word.
        let mut free = u64::MAX >> (64 - band.len());
        if rejecting {
            // At least half the band is free at every draw: under two tries each,
            // where finding the `k`-th free bit below clears `k` bits (16 on average
            // in a band of 32).
            for _ in 0..wanted {
                let position = loop {
                    let position = rng.usize(0..band.len());
                    if free & (1 << position) != 0 {
                        break position;
                    }
                };
                free &= !(1 << position);
                out.push(band[position].into());
            }
            return;
        }
        // A draw is the `k`-th free position, found by clearing the `k` lowest.
        for taken in 0..wanted {
            let mut rest = free;
            for _ in 0..rng.usize(0..band.len() - taken) {
                rest &= rest - 1;
            }
            let position = rest.trailing_zeros() as usize;
            free &= !(1 << position);
            out.push(band[position].into());
        }
        return;
    }
    let mut drawn = Drawn::new(band.len());
    for taken in 0..wanted {
        let position = if rejecting {
            loop {
                let position = rng.usize(0..band.len());
                if !drawn.contains(position) {
                    break position;
                }
            }
        } else {
            let free = rng.usize(0..band.len() - taken);
            (0..band.len())
                .filter(|&position| !drawn.contains(position))
                .nth(free)
                .unwrap_or(0)
        };
        drawn.insert(position);
        out.push(band[position].into());
    }
}

/// Draws up to `count` endpoints from `band` without replacement, each draw weighted by
/// endpoint `weight`: an endpoint with twice the weight is twice as likely to come
/// first. (The same distribution as sorting by Efraimidis–Spirakis keys, without a
/// logarithm per endpoint or a sort.) The band is read, not copied: a cached plan's
/// band may hold a whole zone, and the answer takes a handful.
///
/// When the answer takes few of a large band, each draw is a binary search of the
/// band's running weights, drawn again if it lands on an endpoint already taken; that
/// is exactly a draw among those not yet taken, weighted the same. When that keeps
/// missing (most of the weight already taken) or the band is small, a draw walks the
/// members not yet taken instead.
fn weighted_picks<A: BandAddress>(
    band: &[A],
    running: &[u64],
    count: usize,
    rng: &mut fastrand::Rng,
    out: &mut Addresses,
) {
    let band_total = running.last().copied().unwrap_or(0);
    let weight = |position: usize| {
        running[position] - position.checked_sub(1).map_or(0, |before| running[before])
    };
    let mut total = band_total;
    let mut drawn = Drawn::new(band.len());
    let wanted = count.min(band.len());
    let mut taken = 0;
    let mut misses_left = if band.len() >= 4 * wanted {
        2 * wanted
    } else {
        0
    };
    while taken < wanted {
        let position = if misses_left > 0 && total > 0 {
            let draw = rng.u64(0..band_total);
            let position = running.partition_point(|&below| below <= draw);
            if drawn.contains(position) {
                misses_left -= 1;
                continue;
            }
            position
        } else {
            let mut draw = if total > 0 { rng.u64(0..total) } else { 0 };
            let mut pick = None;
            for position in 0..band.len() {
                if drawn.contains(position) {
                    continue;
                }
                let weight = weight(position);
                // With only zero weights left, the first one not yet drawn.
                if draw < weight || total == 0 {
                    pick = Some(position);
                    break;
                }
                draw -= weight;
            }
            let Some(position) = pick else {
                return;
            };
            position
        };
        drawn.insert(position);
        total = total.saturating_sub(weight(position));
        out.push(band[position].into());
        taken += 1;
    }
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

    fn measured(rtt: f64) -> Evidence {
        Evidence {
            reported_rtt_ms: Some((rtt, 0.9)),
            ..Evidence::default()
        }
    }

    #[test]
    fn failure_rate_sinks_an_endpoint() {
        let clean = cost(&measured(30.0));
        let failing = cost(&Evidence {
            failure_rate: Some((0.3, 0.9)),
            ..measured(30.0)
        });
        assert!(
            failing.total > clean.total + 200.0,
            "{failing:?} vs {clean:?}"
        );
        assert!((failing.failure - 270.0).abs() < 1e-9);
    }

    #[test]
    fn a_recent_success_raises_an_endpoint() {
        let stale = cost(&Evidence {
            since_last_success_ms: Some(3_600_000),
            ..measured(30.0)
        });
        let fresh = cost(&Evidence {
            since_last_success_ms: Some(1_000),
            ..measured(30.0)
        });
        assert!(fresh.total < stale.total - 25.0, "{fresh:?} vs {stale:?}");
    }

    #[test]
    fn a_history_of_successes_raises_an_endpoint() {
        let new = cost(&measured(30.0));
        let proven = cost(&Evidence {
            successes: 40.0,
            ..measured(30.0)
        });
        assert!(proven.total < new.total - 15.0, "{proven:?} vs {new:?}");
    }

    #[test]
    fn reported_rtt_outweighs_the_probe_as_trust_grows() {
        let probe_only = cost(&Evidence {
            probe_rtt_ms: Some(10.0),
            ..Evidence::default()
        });
        assert_eq!(probe_only.rtt_ms, 10.0);
        let trusted = cost(&Evidence {
            probe_rtt_ms: Some(10.0),
            reported_rtt_ms: Some((200.0, 0.9)),
            ..Evidence::default()
        });
        assert!((trusted.rtt_ms - 181.0).abs() < 1e-9);
        assert_eq!(cost(&Evidence::default()).rtt_ms, UNMEASURED_RTT_MS);
    }

    #[test]
    fn report_terms_take_the_probe_per_request() {
        let reports = Evidence {
            reported_rtt_ms: Some((200.0, 0.75)),
            failure_rate: Some((0.1, 0.5)),
            since_last_success_ms: Some(60_000),
            successes: 12.0,
            ..Evidence::default()
        };
        let terms = ReportTerms::of(&reports);
        for probe in [None, Some(10.0), Some(400.0)] {
            let whole = cost(&Evidence {
                probe_rtt_ms: probe,
                ..reports
            });
            assert_eq!(terms.cost(probe), whole);
            let stand_in = probe.unwrap_or(UNMEASURED_RTT_MS);
            assert!((whole.rtt_ms - (150.0 + stand_in * 0.25)).abs() < 1e-9);
        }
        // No reports: the probe (or the unmeasured RTT) is the whole cost.
        assert_eq!(ReportTerms::default().cost(Some(12.0)).total, 12.0);
        assert_eq!(ReportTerms::default().cost(None).total, UNMEASURED_RTT_MS);
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
            let zone = [c.clone(), a.clone(), b.clone()];
            let ordered = order(&zone, &[200.0, 10.0, 80.0], 3, &mut rng);
            assert_eq!(ordered[..], [a.ip, b.ip, c.ip]);
        }
    }

    #[test]
    fn near_equal_endpoints_share_first_place_by_weight() {
        let heavy = endpoint("192.0.2.1", 300);
        let light = endpoint("192.0.2.2", 100);
        let mut rng = fastrand::Rng::with_seed(42);
        let heavy_first = (0..4000)
            .filter(|_| {
                order(&[heavy.clone(), light.clone()], &[20.0, 22.0], 1, &mut rng)[0] == heavy.ip
            })
            .count();
        // Expected share 3/4 = 3000 of 4000.
        assert!((2800..3200).contains(&heavy_first), "{heavy_first}");
    }

    #[test]
    fn limit_caps_the_answer() {
        let eps: Vec<Endpoint> = (1..=6)
            .map(|i| endpoint(&format!("192.0.2.{i}"), 100))
            .collect();
        let costs = vec![0.0; eps.len()];
        assert_eq!(
            order(&eps, &costs, 4, &mut fastrand::Rng::with_seed(1)).len(),
            4
        );
    }

    #[test]
    fn draws_from_any_band_size_are_distinct_and_favour_weight() {
        let mut rng = fastrand::Rng::with_seed(3);
        // Bands inside one word, across words, and past the inline words (spilled).
        for size in [1usize, 63, 64, 65, 256, 257, 700] {
            // The last endpoint carries most of the weight; every tenth carries none.
            let eps: Vec<Endpoint> = (0..size)
                .map(|i| {
                    let weight = match i {
                        _ if i + 1 == size => 1_000_000,
                        _ if i % 10 == 0 => 0,
                        _ => 1,
                    };
                    endpoint(&format!("10.{}.{}.1", i / 256, i % 256), weight)
                })
                .collect();
            let costs = vec![0.0; size];
            let mut last_first = 0;
            for _ in 0..20 {
                let ordered = order(&eps, &costs, size, &mut rng);
                assert_eq!(ordered.len(), size, "every endpoint, once (size {size})");
                let distinct: std::collections::HashSet<_> = ordered.iter().collect();
                assert_eq!(distinct.len(), size, "no endpoint twice (size {size})");
                last_first += usize::from(ordered[0] == eps[size - 1].ip);
            }
            if size > 1 {
                assert!(last_first >= 15, "size {size}: heavy first {last_first}/20");
            }
        }
    }

    #[test]
    fn few_of_a_large_band_are_drawn_with_the_same_weights() {
        // 40 near-equal endpoints, one of weight 100, the rest 1: the answer takes 4,
        // so draws are binary searches with redraws. P(heavy first) = 100/139; P(heavy
        // second) = 39/139 × 100/138.
        let eps: Vec<Endpoint> = (0..40)
            .map(|i| endpoint(&format!("192.0.2.{i}"), if i == 7 { 100 } else { 1 }))
            .collect();
        let costs = vec![5.0; eps.len()];
        let mut rng = fastrand::Rng::with_seed(11);
        let (mut first, mut second, rounds) = (0, 0, 20_000);
        for _ in 0..rounds {
            let ordered = order(&eps, &costs, 4, &mut rng);
            assert_eq!(ordered.len(), 4);
            let distinct: std::collections::HashSet<_> = ordered.iter().collect();
            assert_eq!(distinct.len(), 4);
            first += usize::from(ordered[0] == eps[7].ip);
            second += usize::from(ordered[1] == eps[7].ip);
        }
        let share = |n: usize| n as f64 / rounds as f64;
        assert!((share(first) - 100.0 / 139.0).abs() < 0.02, "first {first}");
        let expected_second = 39.0 / 139.0 * 100.0 / 138.0;
        assert!(
            (share(second) - expected_second).abs() < 0.02,
            "second {second}"
        );

        // Four weighted among 36 of weight zero, ten wanted: the four come first (in
        // some order), then zero-weight ones, never twice.
        let eps: Vec<Endpoint> = (0..40)
            .map(|i| endpoint(&format!("198.51.100.{i}"), u32::from(i % 10 == 0)))
            .collect();
        for _ in 0..200 {
            let ordered = order(&eps, &vec![1.0; 40], 10, &mut rng);
            assert_eq!(ordered.len(), 10);
            let weighted = ordered[..4]
                .iter()
                .filter(|ip| eps.iter().any(|e| e.ip == **ip && e.weight == 1));
            assert_eq!(weighted.count(), 4, "{ordered:?}");
            let distinct: std::collections::HashSet<_> = ordered.iter().collect();
            assert_eq!(distinct.len(), 10);
        }
    }

    #[test]
    fn uniform_and_weighted_bands_side_by_side_draw_by_their_own_weights() {
        // Running weights start at the first band of unequal weights; the uniform bands
        // around it must not shift which weight belongs to which address.
        let rounds = 20_000;
        for weighted_first in [false, true] {
            let uniform: Vec<Endpoint> = (0..3)
                .map(|i| endpoint(&format!("192.0.2.{i}"), 5))
                .collect();
            let weighted: Vec<Endpoint> = (0..4)
                .map(|i| endpoint(&format!("198.51.100.{i}"), if i == 3 { 97 } else { 1 }))
                .collect();
            let tail: Vec<Endpoint> = (0..2)
                .map(|i| endpoint(&format!("203.0.113.{i}"), 5))
                .collect();
            let (first, second) = if weighted_first {
                (&weighted, &uniform)
            } else {
                (&uniform, &weighted)
            };
            let mut costed: Vec<(&Endpoint, f64)> = first
                .iter()
                .map(|e| (e, 0.0))
                .chain(second.iter().map(|e| (e, 100.0)))
                .chain(tail.iter().map(|e| (e, 1000.0)))
                .collect();
            let plan = bands::<Ipv4Addr>(&mut costed, 9);
            let shapes: Vec<(u32, bool)> = plan.shapes.iter().map(|s| (s.len, s.uniform)).collect();
            let expected_shapes = if weighted_first {
                [(4, false), (3, true), (2, true)]
            } else {
                [(3, true), (4, false), (2, true)]
            };
            assert_eq!(shapes, expected_shapes);
            assert_eq!(
                plan.running.len(),
                plan.addrs.len(),
                "aligned with the addresses"
            );

            let weighted_at = if weighted_first { 0 } else { 3 };
            let heavy = weighted[3].ip;
            let mut rng = fastrand::Rng::with_seed(17);
            let mut heavy_first = 0;
            for _ in 0..rounds {
                let ordered = plan.draw(&mut rng);
                assert_eq!(ordered.len(), 9);
                let band_of = |ip: &IpAddr| {
                    if weighted.iter().any(|e| e.ip == *ip) {
                        1
                    } else if uniform.iter().any(|e| e.ip == *ip) {
                        2
                    } else {
                        3
                    }
                };
                let bands: Vec<u8> = ordered.iter().map(band_of).collect();
                let mut expected = vec![1u8; 4];
                if weighted_first {
                    expected.extend([2, 2, 2]);
                } else {
                    expected.splice(0..0, [2, 2, 2]);
                }
                expected.extend([3, 3]);
                assert_eq!(bands, expected, "{ordered:?}");
                heavy_first += usize::from(ordered[weighted_at] == heavy);
            }
            // P(heavy first in its band) = 97/100.
            let share = heavy_first as f64 / rounds as f64;
            assert!(
                (share - 0.97).abs() < 0.01,
                "weighted first {weighted_first}: {share}"
            );
        }
    }

    #[test]
    fn equal_weights_are_marked_uniform_and_drawn_uniformly() {
        let equal: Vec<Endpoint> = (0..40)
            .map(|i| endpoint(&format!("192.0.2.{i}"), 7))
            .collect();
        let mut costed: Vec<(&Endpoint, f64)> = equal.iter().map(|e| (e, 1.0)).collect();
        let plan = bands::<Ipv4Addr>(&mut costed, 4);
        assert!(plan.shapes[0].uniform, "one weight throughout: uniform");
        assert!(
            plan.running.is_empty(),
            "uniform bands keep no running weights"
        );
        let mut uneven = equal.clone();
        uneven[39].weight = 8;
        let mut costed: Vec<(&Endpoint, f64)> = uneven.iter().map(|e| (e, 1.0)).collect();
        assert!(!bands::<Ipv4Addr>(&mut costed, 4).shapes[0].uniform);

        // Few of a band (redraws on a taken position: in one word of free bits up to
        // 64 members, in a bit set past that) and most of one (the `k`-th free bit,
        // or walking the free positions past a word): every position equally likely
        // in every place, never twice.
        let wide: Vec<Endpoint> = (0..100)
            .map(|i| endpoint(&format!("198.51.100.{i}"), 7))
            .collect();
        let mut rng = fastrand::Rng::with_seed(5);
        for (size, wanted) in [
            (40usize, 4usize),
            (6, 4),
            (5, 5),
            (64, 3),
            (100, 4),
            (66, 34),
        ] {
            let eps = &wide[..size];
            let rounds = 30_000;
            let mut seen = vec![vec![0usize; size]; wanted];
            for _ in 0..rounds {
                let ordered = order(eps, &vec![1.0; size], wanted, &mut rng);
                assert_eq!(ordered.len(), wanted);
                let distinct: std::collections::HashSet<_> = ordered.iter().collect();
                assert_eq!(distinct.len(), wanted, "size {size}: no endpoint twice");
                for (place, ip) in ordered.iter().enumerate() {
                    seen[place][eps.iter().position(|e| e.ip == *ip).unwrap()] += 1;
                }
            }
            let expected = rounds as f64 / size as f64;
            for (place, counts) in seen.iter().enumerate() {
                for (position, &n) in counts.iter().enumerate() {
                    assert!(
                        (n as f64 - expected).abs() < expected * 0.2,
                        "size {size}, place {place}: position {position} drawn {n} times, expected {expected}"
                    );
                }
            }
        }
    }
}

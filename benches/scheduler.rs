//! The scheduler hot path for one host: geo lookup, rule match, failover walk and
//! ranking, over a model of 1,000 endpoints whose health churns while it runs.
//!
//! Two views of the same path:
//! - `scheduler/decide_1000_endpoints_churn`: `geoip` lookup + `scheduler::decide` with a
//!   [`LiveView`] built like the resolver's (health map by IP, speed table per bucket,
//!   `BucketView::terms` + `ReportTerms::cost`). Between batches of iterations a rotating tenth
//!   of the endpoints flips up/down, so the decision walks failover chains and drops
//!   down endpoints, as it does during an incident.
//! - `resolver/decide_1000_endpoints`: one host through the real request path below the
//!   front (`Resolver::request` → `for_client`: geo lookup and live view → `decide`;
//!   metrics recorder installed, as in the server) on the same model, everything healthy.
//! - `geoip/lookup`: the geo lookup alone, the part of both that is not scheduling.
//!
//! Run: `cargo bench --bench scheduler`. Target: under 2 µs per host (BENCH.md).

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use criterion::{Criterion, criterion_group, criterion_main};
use httpdns::config::Limits;
use httpdns::config::zones::parse;
use httpdns::epoch::{Epoch, now_ms};
use httpdns::geoip::{Geo, GeoDb};
use httpdns::health::HealthChecks;
use httpdns::model::{CidrSet, Domain, Endpoint, IpMap, Model, ZoneId};
use httpdns::resolver::{Live, Resolver};
use httpdns::scheduler::ranking::Cost;
use httpdns::scheduler::{self, AnswerLimits, Families, LiveView, Query};
use httpdns::snapshot::Snapshot;
use httpdns::speed::{Bucket, BucketView, Sample, SpeedLimits, SpeedTable};
use httpdns::state::StateStore;
use tokio_util::sync::CancellationToken;

/// The server's allocator (src/main.rs): the decision allocates its plan and answer
/// vectors, and what those cost depends on the allocator the server runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ZONES: usize = 50;
const ENDPOINTS_PER_ZONE: usize = 20; // 16 IPv4 + 4 IPv6: 1,000 endpoints in all
const DOMAINS: usize = 1_000;
const HOST: &str = "api.example.com";
/// Iterations between two health flips.
const CHURN_EVERY: u64 = 256;

fn v4(zone: usize, i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, zone as u8, 0, i as u8 + 1))
}

fn v6(zone: usize, i: usize) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(
        0x2001,
        0xdb8,
        zone as u16,
        0,
        0,
        0,
        0,
        i as u16 + 1,
    ))
}

/// 50 zones of 20 endpoints, each failing over to the next two; `api.example.com` (and
/// 999 others) served by four zones with the rules of the shipped example.
fn zones_toml() -> String {
    let mut t = String::new();
    for z in 0..ZONES {
        let mut endpoints: Vec<String> = (0..16).map(|i| format!("\"{}\"", v4(z, i))).collect();
        endpoints.extend((0..4).map(|i| format!("\"{}\"", v6(z, i))));
        writeln!(
            t,
            "[[zone]]\nname = \"z{z:02}\"\nendpoints = [{}]\nfailover = [\"z{:02}\", \"z{:02}\"]\n",
            endpoints.join(", "),
            (z + 1) % ZONES,
            (z + 2) % ZONES
        )
        .unwrap();
    }
    for d in 0..DOMAINS {
        let name = if d == 0 {
            HOST.to_string()
        } else {
            format!("svc{d}.example.com")
        };
        let a = d % ZONES;
        let zone = |k: usize| format!("z{:02}", (a + k) % ZONES);
        writeln!(
            t,
            r#"[[domain]]
name = "{name}"
ttl = 60
zones = ["{z0}", "{z1}", "{z2}", "{z3}"]
default_zone = "{z1}"
[[domain.rule]]
name = "office"
cidr = ["100.64.0.0/10", "2001:db8:ff00::/40"]
zone = "{z1}"
[[domain.rule]]
name = "south-telecom"
country = ["CN"]
province = ["CN-GD", "CN-GX", "CN-HI", "CN-FJ", "CN-HN", "CN-YN", "CN-GZ", "CN-SC", "CN-CQ"]
carrier = ["telecom"]
zone = "{z0}"
[[domain.rule]]
name = "north-unicom"
country = ["CN"]
province = ["北京", "天津", "河北", "山西", "内蒙古", "辽宁", "吉林", "黑龙江", "山东", "河南"]
carrier = ["unicom"]
zone = "{z2}"
[[domain.rule]]
name = "china-other"
country = ["CN"]
zone = "{z1}"
[[domain.rule]]
name = "overseas"
not_country = ["CN"]
zone = "{z3}"
"#,
            z0 = zone(0),
            z1 = zone(1),
            z2 = zone(2),
            z3 = zone(3),
        )
        .unwrap();
    }
    t
}

fn model() -> Model {
    let file = parse(&zones_toml(), Path::new("bench.toml")).expect("bench zones parse");
    Model::compile(&[file]).expect("bench zones compile")
}

fn geo_db() -> GeoDb {
    GeoDb::open(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("geoip/test-geo.mmdb"),
        None,
        None,
    )
    .expect("test IP database opens")
}

/// Client IPs cycled through: Guangdong telecom, Beijing unicom, Shanghai mobile,
/// overseas, and one in no range.
fn clients() -> Vec<IpAddr> {
    [
        "202.96.128.86",
        "123.125.81.6",
        "211.136.17.10",
        "8.8.8.8",
        "192.0.2.1",
        "14.17.1.1",
    ]
    .iter()
    .map(|ip| ip.parse().unwrap())
    .collect()
}

const LIMITS: AnswerLimits = AnswerLimits {
    max_answer_ips: 4,
    fallback_zones: 1,
    fallback_ips: 2,
};

/// Live state shaped like the resolver's: health flags by endpoint IP, client speed
/// statistics per (bucket, endpoint).
struct ChurningLive {
    health: IpMap<Arc<AtomicBool>>,
    speed: SpeedTable,
    /// The client bucket's statistics, looked up once per query as the resolver does.
    bucket: Option<BucketView>,
    now_ms: u64,
}

impl LiveView for ChurningLive {
    fn endpoint_up(&self, _zone: ZoneId, endpoint: &Endpoint) -> bool {
        self.health
            .get(&endpoint.ip)
            .is_none_or(|up| up.load(Ordering::Relaxed))
    }

    fn zone_keep_share(&self, _zone: ZoneId, _domain: &Domain) -> f64 {
        1.0
    }

    fn endpoint_cost(&self, endpoint: &Endpoint, _geo: &Geo) -> Cost {
        self.bucket
            .as_ref()
            .and_then(|b| b.terms(endpoint.ip, self.now_ms))
            .unwrap_or_default()
            .cost(Some(12.0))
    }
}

/// Reports from Guangdong telecom clients for every endpoint of the first ten zones.
fn speed_table(model: &Model, geo: &Geo) -> SpeedTable {
    let table = SpeedTable::new(SpeedLimits::default());
    let now = now_ms();
    for (n, zone) in model.zones.iter().take(10).enumerate() {
        for (i, endpoint) in zone.endpoints.iter().enumerate() {
            let item = Sample {
                ip: endpoint.ip,
                rtt_ms: Some(20.0 + (i * 7 % 40) as f64),
                ok: i % 5 != 0,
            };
            // One reporter per item: the per-client rate limit must not interfere.
            let reporter = IpAddr::V4(Ipv4Addr::new(100, 0, n as u8, i as u8));
            table
                .record(reporter, geo, &[item], |_| true, now)
                .expect("report accepted");
        }
    }
    table
}

fn scheduler_decide(c: &mut Criterion) {
    let model = model();
    let db = geo_db();
    let clients = clients();
    let domain = model.domain(HOST).expect("host compiled");
    let all: Vec<IpAddr> = model
        .zones
        .iter()
        .flat_map(|z| z.endpoints.iter().map(|e| e.ip))
        .collect();
    assert_eq!(all.len(), ZONES * ENDPOINTS_PER_ZONE);
    let gd_telecom = db.lookup(clients[0]);
    let mut live = ChurningLive {
        health: all
            .iter()
            .map(|ip| (*ip, Arc::new(AtomicBool::new(true))))
            .collect(),
        speed: speed_table(&model, &gd_telecom),
        bucket: None,
        now_ms: now_ms(),
    };
    // Flip a rotating tenth of all endpoints (every 10th, offset moving each flip),
    // plus, every third flip, every endpoint of one home zone so failover is exercised.
    let mut flip = 0usize;
    let mut churn = |live: &ChurningLive| {
        for (i, ip) in all.iter().enumerate() {
            let down = i % 10 == flip % 10 || (flip % 3 == 0 && i / ENDPOINTS_PER_ZONE == 0);
            live.health[ip].store(!down, Ordering::Relaxed);
        }
        flip += 1;
    };

    let mut group = c.benchmark_group("scheduler");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("decide_1000_endpoints_churn", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0;
            let mut seed = 0u64;
            while done < iters {
                churn(&live);
                let batch = CHURN_EVERY.min(iters - done);
                let started = Instant::now();
                for k in 0..batch {
                    let ip = clients[(k as usize) % clients.len()];
                    let geo = db.lookup(black_box(ip));
                    live.bucket = live.speed.bucket(&Bucket::of(&geo)).map(|b| b.view());
                    seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let query = Query {
                        domain,
                        geo: &geo,
                        client_ip: ip,
                        families: Families::Both,
                        seed,
                    };
                    black_box(scheduler::decide(&model, &live, &query, &LIMITS));
                }
                total += started.elapsed();
                done += batch;
            }
            total
        });
    });
    group.finish();
}

fn resolver_decide(c: &mut Criterion) {
    httpdns::metrics::install();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let state_dir = tempfile::tempdir().unwrap();
    let snapshot = Snapshot::new(model(), geo_db(), Limits::default(), CidrSet::default());
    let epoch = Arc::new(Epoch::default());
    let live = Arc::new(Live::with_speed(
        HealthChecks::new(Arc::clone(&epoch), CancellationToken::new()),
        SpeedTable::new(SpeedLimits::default()),
        StateStore::open(state_dir.path(), false, Arc::clone(&epoch)).unwrap(),
    ));
    let resolver = Resolver::new(Arc::new(ArcSwap::from_pointee(snapshot)), epoch, live);
    let clients = clients();
    let mut group = c.benchmark_group("resolver");
    group.measurement_time(Duration::from_secs(5));
    let mut k = 0usize;
    group.bench_function("decide_1000_endpoints", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            let ip = clients[k % clients.len()];
            let request = resolver.request();
            let context = request.for_client(black_box(ip));
            black_box(context.decide(HOST, Families::Both))
        });
    });
    group.finish();
}

/// The geo lookup alone, to show how the per-host time splits.
fn geo_lookup(c: &mut Criterion) {
    let db = geo_db();
    let clients = clients();
    let mut k = 0usize;
    c.bench_function("geoip/lookup", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            black_box(db.lookup(black_box(clients[k % clients.len()])))
        });
    });
}

criterion_group!(benches, scheduler_decide, resolver_decide, geo_lookup);
criterion_main!(benches);

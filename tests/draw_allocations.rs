//! Drawing an answer from a plan, which every request served from the answer cache
//! does, allocates nothing with the default answer limits (and does allocate past them,
//! which shows the count is real).

mod counting;

use std::fmt::Write;
use std::path::Path;

use counting::thread_allocations as allocations;
use httpdns::config::Limits;
use httpdns::config::zones::parse;
use httpdns::geoip::Geo;
use httpdns::model::Model;
use httpdns::scheduler::{self, AnswerLimits, Families, LiveView, Query};

/// Counted per thread, so the test harness's own threads cannot add to the count.
#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

struct AllUp;
impl LiveView for AllUp {}

/// Two zones of 40 IPv4 and 40 IPv6 endpoints, the second the first's failover.
fn model() -> Model {
    let mut zones = String::new();
    for (zone, next) in [("east", "west"), ("west", "east")] {
        let octet = if zone == "east" { 1 } else { 2 };
        let endpoints: Vec<String> = (1..=40)
            .map(|i| format!("\"10.0.{octet}.{i}\", \"2001:db8:{octet}::{i:x}\""))
            .collect();
        writeln!(
            zones,
            "[[zone]]\nname = \"{zone}\"\nendpoints = [{}]\nfailover = [\"{next}\"]",
            endpoints.join(", ")
        )
        .unwrap();
    }
    zones.push_str(
        "[[domain]]\nname = \"api.example.com\"\nttl = 60\nzones = [\"east\", \"west\"]\ndefault_zone = \"east\"\n",
    );
    Model::compile(&[parse(&zones, Path::new("zones.toml")).unwrap()]).unwrap()
}

fn allocations_of_draws(model: &Model, limits: &AnswerLimits) -> usize {
    let geo = Geo::default();
    let query = Query {
        domain: model.domain("api.example.com").unwrap(),
        geo: &geo,
        client_ip: "192.0.2.77".parse().unwrap(),
        families: Families::Both,
        seed: 7,
    };
    let plan = scheduler::plan(model, &AllUp, &query, limits);
    let mut rng = fastrand::Rng::with_seed(11);
    let before = allocations();
    for _ in 0..100 {
        let decision = plan.draw(&mut rng);
        assert_eq!(decision.answer.v4.len(), limits.max_answer_ips);
        assert_eq!(decision.answer.v6.len(), limits.max_answer_ips);
        assert_eq!(decision.fallback.len(), limits.fallback_zones);
        std::hint::black_box(decision);
    }
    allocations() - before
}

#[test]
fn drawing_an_answer_with_the_default_limits_allocates_nothing() {
    let model = model();
    let limits = Limits::default().answer_limits();
    assert_eq!(allocations_of_draws(&model, &limits), 0);
    let more = AnswerLimits {
        max_answer_ips: 8,
        ..limits
    };
    assert!(allocations_of_draws(&model, &more) >= 100);
}

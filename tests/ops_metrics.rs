//! The metrics the operations files rely on: every `httpdns_*` name in the alert rules
//! (`deploy/prometheus/alerts.yml`) and the Grafana dashboard (`deploy/grafana/httpdns.json`)
//! is exported by a running server, and the scrape-time zone gauges say what the zones do.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

/// Exported only in cluster mode, which needs etcd: `tests/cluster.rs` scrapes them from
/// real cluster-mode nodes (connected, stale during an etcd outage, a member down), so
/// this test leaves them to it instead of starting etcd a second time.
const CLUSTER_ONLY: &[&str] = &[
    "httpdns_cluster_connected",
    "httpdns_cluster_stale_seconds",
    "httpdns_cluster_etcd_endpoint_up",
];

/// Every `httpdns_*` word in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("httpdns_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// Series names in a Prometheus text scrape (histograms as `_bucket`, `_sum`, `_count`).
fn exported(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// The value of the series starting with `series` (name and labels as rendered).
fn value(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The shipped zones plus `dead`, whose one endpoint fails its TCP check (a closed
/// loopback port), so `dead.example.com` fails open.
async fn start() -> common::Running {
    let dir = tempfile::tempdir().unwrap();
    let config_path = common::workspace(dir.path());
    let closed = std::net::TcpListener::bind("127.0.9.11:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    std::fs::write(
        dir.path().join("zones/dead.toml"),
        format!(
            r#"
[[zone]]
name = "dead"
endpoints = ["127.0.9.11"]
health_check = {{ type = "tcp", port = {port}, interval_ms = 100, timeout_ms = 100, rise = 1, fall = 1 }}

[[domain]]
name = "dead.example.com"
ttl = 10
zones = ["dead"]
default_zone = "dead"
"#
        ),
    )
    .unwrap();
    let config = httpdns::ServerConfig::load(&config_path).unwrap();
    let options = httpdns::StartOptions {
        config_path: Some(config_path),
        ..common::options()
    };
    common::start_with(config, options, Some(dir)).await
}

#[tokio::test]
// One test, not several: the metrics registry is process-wide, so two servers in one
// test binary would overwrite each other's scrape-time gauges.
async fn zone_gauges_and_every_metric_the_alerts_and_dashboard_name() {
    let s = start().await;
    let settled = common::wait_until(Duration::from_secs(10), || async {
        let scrape = s.metrics().await;
        value(&scrape, "httpdns_zone_endpoints_down{zone=\"dead\"}") == Some(1.0)
    })
    .await;
    assert!(settled.is_some(), "dead zone never counted down");

    // Every answer counts, also those drawn from a plan the answer cache kept (the
    // counter handle lives with the plan, not looked up per answer).
    let answers =
        "httpdns_answers_total{domain=\"api.example.com\",zone=\"gz-telecom\",failover=\"false\"}";
    let before = value(&s.metrics().await, answers).unwrap_or(0.0);
    for _ in 0..5 {
        assert_eq!(
            s.zone_for("api.example.com", "202.96.128.86").await,
            ("gz-telecom".to_string(), false)
        );
    }
    assert_eq!(value(&s.metrics().await, answers), Some(before + 5.0));
    let scrape = s.metrics().await;
    assert_eq!(
        value(&scrape, "httpdns_zone_endpoints_healthy{zone=\"dead\"}"),
        Some(0.0)
    );
    assert_eq!(
        value(&scrape, "httpdns_zone_endpoints{zone=\"gz-telecom\"}"),
        Some(4.0)
    );
    assert_eq!(
        value(
            &scrape,
            "httpdns_zone_endpoints_healthy{zone=\"gz-telecom\"}"
        ),
        Some(4.0)
    );
    assert_eq!(
        value(
            &scrape,
            "httpdns_zone_drain_age_seconds{zone=\"gz-telecom\"}"
        ),
        Some(0.0)
    );
    assert_eq!(
        value(&scrape, "httpdns_reloads_total{result=\"failed\"}"),
        Some(0.0)
    );

    let (status, _) = s
        .admin(Method::POST, "/admin/endpoints/203.0.113.10/disable", None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .admin(
            Method::POST,
            "/admin/zones/gz-telecom/drain",
            Some(json!({"weight": 0, "reason": "gauge test"})),
        )
        .await;
    assert_eq!(status, 200);
    let aged = common::wait_until(Duration::from_secs(5), || async {
        let scrape = s.metrics().await;
        value(
            &scrape,
            "httpdns_zone_drain_age_seconds{zone=\"gz-telecom\"}",
        )
        .is_some_and(|age| age > 0.0)
    })
    .await;
    assert!(aged.is_some(), "drain age never grew");
    let scrape = s.metrics().await;
    assert_eq!(
        value(
            &scrape,
            "httpdns_zone_endpoints_disabled{zone=\"gz-telecom\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &scrape,
            "httpdns_zone_endpoints_healthy{zone=\"gz-telecom\"}"
        ),
        Some(3.0)
    );

    // A broken zones file: the reload fails, the old config keeps serving, the gauge says so.
    let workdir = s.state.as_ref().unwrap().path().to_path_buf();
    std::fs::write(workdir.join("zones/broken.toml"), "[[zone]]\nname = 3\n").unwrap();
    let (status, _) = s.admin(Method::POST, "/admin/reload", None).await;
    assert_eq!(status, 422);
    let scrape = s.metrics().await;
    assert_eq!(value(&scrape, "httpdns_reload_last_success "), Some(0.0));
    let (status, body) = s.admin(Method::GET, "/admin/status", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["last_reload"]["ok"], false, "{body}");
    assert!(!body["last_reload"]["errors"].as_array().unwrap().is_empty());
    std::fs::remove_file(workdir.join("zones/broken.toml")).unwrap();
    let (status, _) = s.admin(Method::POST, "/admin/reload", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        value(&s.metrics().await, "httpdns_reload_last_success "),
        Some(1.0)
    );

    check_named_metrics_are_exported(&s).await;
}

/// Fails open, drains, and checks every named metric against the scrape.
async fn check_named_metrics_are_exported(s: &common::Running) {
    let down = common::wait_until(Duration::from_secs(10), || async {
        let (_, zones) = s.admin(Method::GET, "/admin/zones", None).await;
        zones["zones"]
            .as_array()
            .and_then(|z| z.iter().find(|z| z["zone"] == "dead"))
            .is_some_and(|z| z["endpoints"][0]["up"] == false)
    })
    .await;
    assert!(down.is_some(), "the dead endpoint never went down");
    let (status, body) = s
        .get_json("/resolve?host=dead.example.com,api.example.com&ip=202.96.128.86")
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = s
        .admin(
            Method::POST,
            "/admin/zones/sh-bgp/drain",
            Some(json!({"weight": 0, "reason": "metrics test"})),
        )
        .await;
    assert_eq!(status, 200);
    let scrape = s.metrics().await;
    let exported = exported(&scrape);

    let repo = common::repo();
    let mut named = BTreeSet::new();
    for file in [
        "deploy/prometheus/alerts.yml",
        "deploy/grafana/httpdns.json",
    ] {
        let text = std::fs::read_to_string(repo.join(file)).unwrap();
        let names = metric_names(&text);
        assert!(names.len() >= 5, "{file} names {names:?}");
        named.extend(names);
    }
    let missing: Vec<_> = named
        .iter()
        .filter(|n| !exported.contains(*n) && !CLUSTER_ONLY.contains(&n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "named in alerts/dashboard but not exported: {missing:?}\n{scrape}"
    );
}

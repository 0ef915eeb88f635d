//! Health checks against real TCP and HTTP listeners on 127.0.N.x that are stopped and
//! restarted: endpoints leave and rejoin answers in the documented time, a dead home
//! zone fails over, and a dead chain fails open.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use httpdns::ServerConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const INTERVAL_MS: u64 = 200;
const RISE: u64 = 2;
const FALL: u64 = 2;

/// A TCP listener that accepts and drops connections until stopped.
struct TcpEndpoint {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl TcpEndpoint {
    async fn start(ip: &str, port: u16) -> Self {
        let listener = TcpListener::bind((ip.parse::<IpAddr>().unwrap(), port))
            .await
            .expect("bind endpoint");
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = token.cancelled() => return,
                    accepted = listener.accept() => drop(accepted),
                }
            }
        });
        Self { addr, stop }
    }

    fn stop(&self) {
        self.stop.cancel();
    }
}

/// An HTTP endpoint answering `GET /health` with 200 until stopped.
async fn http_endpoint(ip: &str, port: u16) -> (SocketAddr, CancellationToken) {
    let listener = TcpListener::bind((ip.parse::<IpAddr>().unwrap(), port))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let app = axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
    let token = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(token.cancelled_owned())
            .await
            .unwrap();
    });
    (addr, stop)
}

/// Zones: `home` (two TCP-checked endpoints) fails over to `backup` (one HTTP-checked).
fn zones_file(net: u8, tcp_port: u16, http_port: u16) -> String {
    format!(
        r#"
[[zone]]
name = "home"
endpoints = ["127.0.{net}.11", "127.0.{net}.12"]
failover = ["backup"]
health_check = {{ type = "tcp", port = {tcp_port}, interval_ms = {INTERVAL_MS}, timeout_ms = 100, rise = {RISE}, fall = {FALL} }}

[[zone]]
name = "backup"
endpoints = ["127.0.{net}.21"]
health_check = {{ type = "http", port = {http_port}, path = "/health", host = "backup.test", interval_ms = {INTERVAL_MS}, timeout_ms = 100, rise = {RISE}, fall = {FALL} }}

[[domain]]
name = "svc.example.com"
ttl = 10
zones = ["home", "backup"]
default_zone = "home"
"#
    )
}

async fn start(net: u8, tcp_port: u16, http_port: u16) -> common::Running {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::write(
        dir.path().join("zones/svc.toml"),
        zones_file(net, tcp_port, http_port),
    )
    .unwrap();
    let mut config = common::example_config(&dir.path().join("state"));
    config.zones_dir = dir.path().join("zones");
    let config: ServerConfig = config;
    common::start_with(config, common::options(), Some(dir)).await
}

/// Each test uses its own 127.0.N.0/24 so process-wide metrics do not mix.
fn ip(net: u8, host: u8) -> String {
    format!("127.0.{net}.{host}")
}

async fn answer(s: &common::Running) -> (String, bool, Vec<String>) {
    let (status, body) = s
        .get_json("/resolve?host=svc.example.com&type=A&ip=192.0.2.1")
        .await;
    assert_eq!(status, 200, "{body}");
    let a = &body["answers"][0];
    let ips = a["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    (
        a["zone"].as_str().unwrap().to_string(),
        a["failover"].as_bool().unwrap(),
        ips,
    )
}

/// Waits until every health-checked endpoint has been probed at least once (its probe
/// RTT shows in `/admin/zones`): the event the scenarios below start from.
async fn first_probes_landed(s: &common::Running) {
    let landed = common::wait_until(Duration::from_secs(10), || async {
        let (_, body) = s.admin(reqwest::Method::GET, "/admin/zones", None).await;
        body["zones"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|zone| zone["endpoints"].as_array().into_iter().flatten())
            .filter(|endpoint| endpoint["health_checked"] == true)
            .all(|endpoint| !endpoint["probe_rtt_ms"].is_null())
    })
    .await;
    assert!(landed.is_some(), "first probes did not land within 10 s");
}

/// Slack for scheduling on a busy CI machine, on top of the documented bound.
const SLACK: Duration = Duration::from_millis(1500);

#[tokio::test]
async fn endpoints_leave_within_fall_intervals_and_return_within_rise_intervals() {
    let first = TcpEndpoint::start(&ip(1, 11), 0).await;
    let port = first.addr.port();
    let second = TcpEndpoint::start(&ip(1, 12), port).await;
    let (http_addr, _http) = http_endpoint(&ip(1, 21), 0).await;
    let s = start(1, port, http_addr.port()).await;
    first_probes_landed(&s).await;
    assert_eq!(answer(&s).await.2.len(), 2);

    first.stop();
    let bound = Duration::from_millis(INTERVAL_MS * (FALL + 1)) + SLACK;
    let left = common::wait_until(bound, || async { answer(&s).await.2 == vec![ip(1, 12)] }).await;
    assert!(
        left.is_some(),
        "stopped endpoint still answered after {bound:?}"
    );
    // The zone still serves from its healthy endpoint: no failover.
    assert_eq!(answer(&s).await.0, "home");
    assert!(!answer(&s).await.1);

    let _restarted = TcpEndpoint::start(&ip(1, 11), port).await;
    let bound = Duration::from_millis(INTERVAL_MS * (RISE + 1)) + SLACK;
    let back = common::wait_until(bound, || async { answer(&s).await.2.len() == 2 }).await;
    assert!(
        back.is_some(),
        "restarted endpoint not back after {bound:?}"
    );
    second.stop();
}

#[tokio::test]
async fn dead_home_zone_fails_over_and_a_dead_chain_fails_open() {
    let first = TcpEndpoint::start(&ip(2, 11), 0).await;
    let port = first.addr.port();
    let second = TcpEndpoint::start(&ip(2, 12), port).await;
    let (http_addr, http_stop) = http_endpoint(&ip(2, 21), 0).await;
    let s = start(2, port, http_addr.port()).await;
    first_probes_landed(&s).await;
    assert_eq!(answer(&s).await.0, "home");

    first.stop();
    second.stop();
    let bound = Duration::from_millis(INTERVAL_MS * (FALL + 1)) + SLACK;
    let moved = common::wait_until(bound, || async { answer(&s).await.0 == "backup" }).await;
    assert!(
        moved.is_some(),
        "home zone down but no failover after {bound:?}"
    );
    let (zone, failover, ips) = answer(&s).await;
    assert_eq!(
        (zone.as_str(), failover, ips),
        ("backup", true, vec![ip(2, 21)])
    );

    // Everything down: answer anyway (fail open), from the zone that was good last:
    // backup went down after home.
    http_stop.cancel();
    let fail_open = "httpdns_fail_open_answers_total{domain=\"svc.example.com\"}";
    let open = common::wait_until(bound, || async {
        let (zone, _, ips) = answer(&s).await;
        zone == "backup" && ips == vec![ip(2, 21)] && s.metrics().await.contains(fail_open)
    })
    .await;
    assert!(open.is_some(), "no fail-open answer after {bound:?}");
    let (_, zones) = s
        .admin(
            reqwest::Method::GET,
            "/admin/explain?host=svc.example.com&ip=192.0.2.1",
            None,
        )
        .await;
    assert_eq!(zones["fail_open"], true, "{zones}");
    assert_eq!(zones["answer_zone"], "backup");

    let metrics = s.metrics().await;
    assert!(
        metrics.contains("httpdns_endpoint_up{zone=\"home\",endpoint=\"127.0.2.11\"} 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn zones_view_shows_health_and_probe_rtt() {
    let first = TcpEndpoint::start(&ip(3, 11), 0).await;
    let port = first.addr.port();
    let (http_addr, _http) = http_endpoint(&ip(3, 21), 0).await;
    let s = start(3, port, http_addr.port()).await;
    let bound = Duration::from_millis(INTERVAL_MS * (FALL + 2)) + SLACK;
    let settled = common::wait_until(bound, || async {
        let (_, zones) = s.admin(reqwest::Method::GET, "/admin/zones", None).await;
        let home = &zones["zones"][0];
        home["endpoints"][0]["probe_rtt_ms"].is_number() && home["endpoints"][1]["up"] == false
    })
    .await;
    assert!(
        settled.is_some(),
        "127.0.3.12 has no listener and must be reported down"
    );
}

#[tokio::test]
async fn checks_follow_reloads() {
    let first = TcpEndpoint::start(&ip(4, 11), 0).await;
    let port = first.addr.port();
    let _second = TcpEndpoint::start(&ip(4, 12), port).await;
    let (http_addr, _http) = http_endpoint(&ip(4, 21), 0).await;
    let s = start(4, port, http_addr.port()).await;
    let zones_dir = s.state.as_ref().unwrap().path().join("zones");
    // Add an endpoint nobody listens on, drop 127.0.4.12.
    let text = zones_file(4, port, http_addr.port()).replace(
        "endpoints = [\"127.0.4.11\", \"127.0.4.12\"]",
        "endpoints = [\"127.0.4.11\", \"127.0.4.13\"]",
    );
    std::fs::write(zones_dir.join("svc.toml"), text).unwrap();
    let (status, body) = s.admin(reqwest::Method::POST, "/admin/reload", None).await;
    assert_eq!(status, 200, "{body}");
    let bound = Duration::from_millis(INTERVAL_MS * (FALL + 1)) + SLACK;
    let checked = common::wait_until(bound, || async {
        let (_, zones) = s.admin(reqwest::Method::GET, "/admin/zones", None).await;
        let endpoints = &zones["zones"][0]["endpoints"];
        endpoints[1]["ip"] == "127.0.4.13"
            && endpoints[1]["health_checked"] == true
            && endpoints[1]["up"] == false
    })
    .await;
    assert!(
        checked.is_some(),
        "the new endpoint was not checked after the reload"
    );
    assert_eq!(answer(&s).await.2, vec![ip(4, 11)]);
    let metrics = s.metrics().await;
    assert!(metrics.contains("endpoint=\"127.0.4.13\"} 0"), "{metrics}");
}

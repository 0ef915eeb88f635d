//! Admin API: auth, drains (full, partial, ramped), endpoint disables, epoch, explain,
//! zones, metrics, concurrency. Real server on 127.0.0.1.

mod common;

use reqwest::Method;
use serde_json::{Value, json};

const GD_TELECOM: &str = "202.96.128.86";

#[tokio::test]
async fn every_admin_route_needs_a_valid_token() {
    let s = common::start_example().await;
    let routes = [
        (Method::GET, "/admin/zones"),
        (Method::POST, "/admin/zones/gz-telecom/drain"),
        (Method::DELETE, "/admin/zones/gz-telecom/drain"),
        (Method::POST, "/admin/endpoints/203.0.113.10/disable"),
        (Method::DELETE, "/admin/endpoints/203.0.113.10/disable"),
        (Method::POST, "/admin/reload"),
        (
            Method::GET,
            "/admin/explain?host=api.example.com&ip=1.2.3.4",
        ),
        (Method::GET, "/metrics"),
        (Method::GET, "/admin/nope"),
    ];
    for (method, path) in routes {
        for auth in [
            None,
            Some("Bearer wrong-token-wrong-token"),
            Some("Basic dGVzdA=="),
        ] {
            let mut request = s
                .client
                .request(method.clone(), s.admin_url(path))
                .json(&json!({}));
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 401, "{method} {path} {auth:?}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "unauthorized");
        }
    }
    // Nothing changed.
    assert_eq!(
        s.zone_for("api.example.com", GD_TELECOM).await,
        ("gz-telecom".into(), false)
    );
}

#[tokio::test]
async fn drain_moves_the_next_request_and_undrain_restores() {
    let s = common::start_example().await;
    let before = s
        .get_json("/resolve?host=api.example.com&ip=202.96.128.86")
        .await
        .1["epoch"]
        .as_u64()
        .unwrap();
    let (status, body) = s
        .admin(
            Method::POST,
            "/admin/zones/gz-telecom/drain",
            Some(json!({"weight": 0, "reason": "fiber cut", "domains": ["api.example.com"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["epoch"].as_u64().unwrap() > before);
    // The very next request moves to the failover chain.
    assert_eq!(
        s.zone_for("api.example.com", GD_TELECOM).await,
        ("sh-bgp".into(), true)
    );
    // Only the named domain was drained.
    assert_eq!(
        s.zone_for("img.example.com", GD_TELECOM).await,
        ("gz-telecom".into(), false)
    );
    let response = s
        .client
        .get(s.url("/resolve?host=api.example.com&ip=202.96.128.86"))
        .send()
        .await
        .unwrap();
    let header: u64 = response.headers()["x-httpdns-epoch"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(header, body["epoch"].as_u64().unwrap());

    let (status, _) = s
        .admin(Method::DELETE, "/admin/zones/gz-telecom/drain", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        s.zone_for("api.example.com", GD_TELECOM).await,
        ("gz-telecom".into(), false)
    );
}

/// Clients in 1,000 different /24s of a Guangdong telecom range.
fn gd_clients() -> Vec<String> {
    (0..1000u32)
        .map(|i| format!("14.{}.{}.7", 16 + i / 256, i % 256))
        .collect()
}

async fn failover_share(s: &common::Running, clients: &[String]) -> f64 {
    let mut moved = 0;
    for ip in clients {
        let (zone, failover) = s.zone_for("api.example.com", ip).await;
        if failover {
            assert_eq!(zone, "sh-bgp");
            moved += 1;
        } else {
            assert_eq!(zone, "gz-telecom");
        }
    }
    f64::from(moved) / clients.len() as f64
}

#[tokio::test]
async fn partial_drain_moves_about_the_requested_share_and_sticks() {
    let s = common::start_example().await;
    let clients = gd_clients();
    assert_eq!(failover_share(&s, &clients).await, 0.0);
    let (status, _) = s
        .admin(
            Method::POST,
            "/admin/zones/gz-telecom/drain",
            Some(json!({"weight": 30, "reason": "half"})),
        )
        .await;
    assert_eq!(status, 200);
    let share = failover_share(&s, &clients).await;
    // 70% should move; binomial sd for n=1000 is 1.5%, allow 5 sd.
    assert!((0.625..=0.775).contains(&share), "{share}");
    // Sticky: the same clients move on the next pass.
    assert_eq!(failover_share(&s, &clients).await, share);
    // Moving the weight up keeps the already-kept clients in place (monotone slots).
    let kept: Vec<String> = {
        let mut kept = Vec::new();
        for ip in &clients {
            if !s.zone_for("api.example.com", ip).await.1 {
                kept.push(ip.clone());
            }
        }
        kept
    };
    s.admin(
        Method::POST,
        "/admin/zones/gz-telecom/drain",
        Some(json!({"weight": 60})),
    )
    .await;
    assert_eq!(failover_share(&s, &kept).await, 0.0);
}

#[tokio::test]
async fn gradual_drain_ramps_over_time() {
    let s = common::start_example().await;
    let clients: Vec<String> = gd_clients().into_iter().take(300).collect();
    let (status, body) = s
        .admin(
            Method::POST,
            "/admin/zones/gz-telecom/drain",
            Some(json!({"weight": 0, "over": "2s"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let early = failover_share(&s, &clients).await;
    let drained = common::wait_until(std::time::Duration::from_secs(10), || async {
        failover_share(&s, &clients).await == 1.0
    })
    .await;
    assert!(
        drained.is_some(),
        "the 2 s ramp did not end in a full drain"
    );
    assert!(
        early < 0.9,
        "the ramp started near its start value: {early}"
    );
    // Undrain with a ramp: right after it starts, most clients are still away.
    let (status, _) = s
        .admin(
            Method::DELETE,
            "/admin/zones/gz-telecom/drain?over=10m",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(failover_share(&s, &clients).await > 0.9);
}

#[tokio::test]
async fn bad_drain_requests_are_rejected_and_change_nothing() {
    let s = common::start_example().await;
    let cases = [
        ("/admin/zones/nowhere/drain", json!({"weight": 0}), 404),
        ("/admin/zones/gz-telecom/drain", json!({"weight": 101}), 400),
        ("/admin/zones/gz-telecom/drain", json!({"weight": -1}), 400),
        (
            "/admin/zones/gz-telecom/drain",
            json!({"weight": "zero"}),
            400,
        ),
        (
            "/admin/zones/gz-telecom/drain",
            json!({"over": "soon"}),
            400,
        ),
        ("/admin/zones/gz-telecom/drain", json!({"over": "30d"}), 400),
        (
            "/admin/zones/gz-telecom/drain",
            json!({"domains": ["nope.example.com"]}),
            400,
        ),
        (
            "/admin/zones/gz-telecom/drain",
            json!({"colour": "red"}),
            400,
        ),
        ("/admin/endpoints/203.0.113.99/disable", json!({}), 404),
        ("/admin/endpoints/not-an-ip/disable", json!({}), 400),
    ];
    for (path, body, want) in cases {
        let (status, answer) = s.admin(Method::POST, path, Some(body.clone())).await;
        assert_eq!(status, want, "{path} {body}: {answer}");
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
    }
    let (status, _) = s
        .admin(
            Method::DELETE,
            "/admin/zones/gz-telecom/drain?over=later",
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        s.zone_for("api.example.com", GD_TELECOM).await,
        ("gz-telecom".into(), false)
    );
}

#[tokio::test]
async fn disabled_endpoints_leave_answers() {
    let s = common::start_example().await;
    let (status, _) = s
        .admin(
            Method::POST,
            "/admin/endpoints/203.0.113.10/disable",
            Some(json!({"reason": "disk"})),
        )
        .await;
    assert_eq!(status, 200);
    for _ in 0..20 {
        let (_, body) = s
            .get_json("/resolve?host=api.example.com&ip=202.96.128.86")
            .await;
        let ips: Vec<&str> = body["answers"][0]["ips"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(ips.len(), 2);
        assert!(!ips.contains(&"203.0.113.10"));
    }
    let (status, _) = s
        .admin(
            Method::DELETE,
            "/admin/endpoints/203.0.113.10/disable",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (_, body) = s
        .get_json("/resolve?host=api.example.com&ip=202.96.128.86")
        .await;
    assert_eq!(body["answers"][0]["ips"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn explain_zones_and_metrics_show_the_state() {
    let s = common::start_example().await;
    s.admin(
        Method::POST,
        "/admin/zones/gz-telecom/drain",
        Some(json!({"weight": 0, "reason": "maintenance"})),
    )
    .await;
    let (status, explain) = s
        .admin(
            Method::GET,
            "/admin/explain?host=api.example.com&ip=202.96.128.86",
            None,
        )
        .await;
    assert_eq!(status, 200, "{explain}");
    assert_eq!(explain["geo"]["province"], "CN-GD");
    assert_eq!(explain["rule"], "south-telecom");
    assert_eq!(explain["home_zone"], "gz-telecom");
    assert_eq!(explain["skipped"][0]["zone"], "gz-telecom");
    assert_eq!(explain["skipped"][0]["reason"], "drained for this client");
    assert_eq!(explain["answer_zone"], "sh-bgp");
    assert_eq!(explain["failover"], true);
    assert_eq!(explain["fallback"][0]["zone"], "bj-unicom");
    assert!(explain["fallback"][0]["ips"].is_array());
    let scores = explain["endpoints"].as_array().unwrap();
    assert!(
        scores
            .iter()
            .any(|e| e["ip"] == "203.0.113.10" && e["cost"]["total"].is_number())
    );

    let (status, zones) = s.admin(Method::GET, "/admin/zones", None).await;
    assert_eq!(status, 200);
    let gz = zones["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zone"] == "gz-telecom")
        .unwrap();
    assert_eq!(gz["keep_weight_all_domains"], 0.0);
    assert_eq!(gz["drains"]["*"]["reason"], "maintenance");
    assert_eq!(gz["endpoints"].as_array().unwrap().len(), 4);
    s.zone_for("api.example.com", GD_TELECOM).await;
    let (_, zones) = s.admin(Method::GET, "/admin/zones", None).await;
    let gz = zones["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zone"] == "gz-telecom")
        .unwrap();
    assert!(gz["recent_failovers"]["total"].as_u64().unwrap() >= 1);

    let (status, bad) = s
        .admin(
            Method::GET,
            "/admin/explain?host=api.example.com&ip=nope",
            None,
        )
        .await;
    assert_eq!((status, bad["error"].as_str()), (400, Some("bad_request")));
    let (status, _) = s
        .admin(
            Method::GET,
            "/admin/explain?host=nope.example.com&ip=1.1.1.1",
            None,
        )
        .await;
    assert_eq!(status, 404);

    let metrics = s.metrics().await;
    for needle in [
        "httpdns_requests_total",
        "httpdns_request_duration_seconds_bucket",
        "httpdns_answers_total",
        "httpdns_zone_keep_weight_percent{zone=\"gz-telecom\"} 0",
        "failover=\"true\"",
    ] {
        assert!(metrics.contains(needle), "{needle} missing from\n{metrics}");
    }
}

#[tokio::test]
async fn every_change_is_audited_with_the_token_name() {
    let s = common::start_example().await;
    s.admin(
        Method::POST,
        "/admin/zones/bj-unicom/drain",
        Some(json!({"weight": 20, "reason": "power work"})),
    )
    .await;
    s.admin(
        Method::POST,
        "/admin/endpoints/192.0.2.10/disable",
        Some(json!({"reason": "nic"})),
    )
    .await;
    let audit =
        std::fs::read_to_string(s.state.as_ref().unwrap().path().join("audit.log")).unwrap();
    let lines: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["action"], "zone.drain");
    assert_eq!(lines[0]["token"], "tester");
    assert_eq!(lines[0]["target"], "bj-unicom");
    assert_eq!(lines[0]["reason"], "power work");
    assert_eq!(
        lines[0]["after"]["drains"]["bj-unicom"]["*"]["to_weight"],
        20.0
    );
    assert!(lines[0]["time"].as_str().unwrap().starts_with("20"));
    assert_eq!(lines[1]["action"], "endpoint.disable");
    assert_eq!(lines[1]["before"], lines[0]["after"]);
}

#[tokio::test]
async fn concurrent_changes_end_in_the_last_write_and_no_request_fails() {
    let s = std::sync::Arc::new(common::start_example().await);
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let s = std::sync::Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let weight = (worker * 10 + i) % 100;
                let (status, _) = s
                    .admin(
                        Method::POST,
                        "/admin/zones/sh-bgp/drain",
                        Some(json!({"weight": weight})),
                    )
                    .await;
                assert_eq!(status, 200);
                if i % 3 == 0 {
                    let (status, _) = s
                        .admin(Method::DELETE, "/admin/zones/sh-bgp/drain", None)
                        .await;
                    assert_eq!(status, 200);
                }
            }
        }));
    }
    let reader = {
        let s = std::sync::Arc::clone(&s);
        tokio::spawn(async move {
            for _ in 0..300 {
                let (status, body) = s
                    .get_json("/resolve?host=api.example.com,img.example.com&ip=211.136.17.107")
                    .await;
                assert_eq!(status, 200, "{body}");
                assert!(!body["answers"][0]["ips"].as_array().unwrap().is_empty());
            }
        })
    };
    for task in tasks {
        task.await.unwrap();
    }
    reader.await.unwrap();
    let dir = s.state.as_ref().unwrap().path();
    let audit = std::fs::read_to_string(dir.join("audit.log")).unwrap();
    let last: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
    assert_eq!(last["after"], on_disk, "state file holds the last write");
    let (_, zones) = s.admin(Method::GET, "/admin/zones", None).await;
    let sh = zones["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zone"] == "sh-bgp")
        .unwrap();
    let expected = on_disk["drains"]["sh-bgp"]["*"]["to_weight"]
        .as_f64()
        .unwrap_or(100.0);
    assert_eq!(
        sh["keep_weight_all_domains"].as_f64().unwrap(),
        expected,
        "served state is the last write"
    );
    assert_eq!(audit.lines().count(), 40 + 16);
}

#[tokio::test]
async fn without_a_token_the_admin_api_stays_off_unless_insecure_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::example_config(dir.path());
    let off = common::start_with(config.clone(), httpdns::StartOptions::default(), None).await;
    assert!(off.server.admin_addr.is_none());
    assert_eq!(
        off.zone_for("api.example.com", GD_TELECOM).await.0,
        "gz-telecom"
    );

    let insecure = httpdns::StartOptions {
        admin_insecure_loopback: true,
        ..httpdns::StartOptions::default()
    };
    let on = common::start_with(config.clone(), insecure.clone(), None).await;
    let response = on
        .client
        .post(on.admin_url("/admin/zones/gz-telecom/drain"))
        .json(&json!({"weight": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let audit = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert!(audit.contains("\"token\":\"insecure-loopback\""), "{audit}");

    let mut exposed = config;
    exposed.admin_listen = "0.0.0.0:0".parse().unwrap();
    let err = httpdns::Server::start(exposed, insecure)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("loopback"), "{err}");
}

#[tokio::test]
async fn endpoint_disable_body_is_optional_but_must_be_json_when_given() {
    let s = common::start_example().await;
    let url = s.admin_url("/admin/endpoints/203.0.113.10/disable");
    let empty = s
        .client
        .post(&url)
        .bearer_auth(common::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status().as_u16(), 200);
    let garbled = s
        .client
        .post(&url)
        .bearer_auth(common::ADMIN_TOKEN)
        .body("{reason")
        .send()
        .await
        .unwrap();
    assert_eq!(garbled.status().as_u16(), 400);
    let body: Value = garbled.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("invalid JSON"),
        "{body}"
    );
}

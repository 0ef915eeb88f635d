//! `POST /report`: client speed reports re-rank endpoints for the reporter's bucket only;
//! bad bodies are refused and change nothing.

mod common;

use serde_json::{Value, json};

const TELECOM_GD: &str = "202.96.128.86";
const MOBILE_SH: &str = "211.136.17.107";

async fn report(s: &common::Running, from: &str, body: &Value) -> (u16, Value) {
    let response = s
        .client
        .post(s.url("/report"))
        .header("x-forwarded-for", from)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The first IPv4 of the first fallback tier (sh-bgp) for a telecom client, and of the
/// answer (sh-bgp is its home) for a mobile client.
async fn first_sh_bgp_ip(s: &common::Running, client: &str) -> String {
    let (_, body) = s
        .get_json(&format!("/resolve?host=api.example.com&type=A&ip={client}"))
        .await;
    let answer = &body["answers"][0];
    let ips = if answer["zone"] == "sh-bgp" {
        &answer["ips"]
    } else {
        &answer["fallback"][0]["ips"]
    };
    ips[0].as_str().unwrap().to_string()
}

async fn first_choices(
    s: &common::Running,
    client: &str,
    n: usize,
) -> std::collections::HashSet<String> {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..n {
        seen.insert(first_sh_bgp_ip(s, client).await);
    }
    seen
}

#[tokio::test]
async fn reports_reorder_endpoints_for_that_bucket_only() {
    let s = common::start_example().await;
    // Before: near-equal endpoints share first place.
    assert_eq!(first_choices(&s, TELECOM_GD, 60).await.len(), 2);
    let mut reports = Vec::new();
    for _ in 0..10 {
        reports.push(json!({"ip": "198.51.100.10", "rtt_ms": 250, "ok": true}));
        reports.push(json!({"ip": "198.51.100.11", "rtt_ms": 12, "ok": true}));
    }
    let (status, body) = report(
        &s,
        TELECOM_GD,
        &json!({"host": "api.example.com", "reports": reports}),
    )
    .await;
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(20)),
        "{body}"
    );
    // Telecom/Guangdong clients now always get the fast one first...
    let telecom = first_choices(&s, TELECOM_GD, 60).await;
    assert_eq!(telecom, ["198.51.100.11".to_string()].into());
    // ...another telecom client in the same province shares the bucket...
    assert_eq!(
        first_choices(&s, "202.96.128.99", 20).await,
        ["198.51.100.11".to_string()].into()
    );
    // ...and a mobile client's ranking is untouched.
    assert_eq!(first_choices(&s, MOBILE_SH, 60).await.len(), 2);
}

#[tokio::test]
async fn failing_endpoints_sink_when_several_networks_say_so_but_not_for_one() {
    let s = common::start_example().await;
    let mut reports = Vec::new();
    for _ in 0..8 {
        reports.push(json!({"ip": "198.51.100.10", "rtt_ms": 20, "ok": true}));
        reports.push(json!({"ip": "198.51.100.11", "rtt_ms": 20, "ok": true}));
        reports.push(json!({"ip": "198.51.100.11", "ok": false}));
        reports.push(json!({"ip": "198.51.100.11", "ok": false}));
    }
    let body = json!({"host": "api.example.com", "reports": reports});
    // One network (however many reports) cannot sink an endpoint for its bucket...
    assert_eq!(report(&s, TELECOM_GD, &body).await.0, 200);
    assert_eq!(report(&s, "202.96.128.87", &body).await.0, 200);
    assert_eq!(first_choices(&s, TELECOM_GD, 60).await.len(), 2);
    // ...three Guangdong telecom networks can.
    assert_eq!(report(&s, "14.16.1.1", &body).await.0, 200);
    assert_eq!(report(&s, "14.17.2.2", &body).await.0, 200);
    assert_eq!(
        first_choices(&s, TELECOM_GD, 40).await,
        ["198.51.100.10".to_string()].into()
    );
}

async fn explain_costs(s: &common::Running) -> Value {
    let (status, body) = s
        .admin(
            reqwest::Method::GET,
            &format!("/admin/explain?host=api.example.com&ip={TELECOM_GD}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    body["endpoints"].clone()
}

#[tokio::test]
async fn bad_reports_are_refused_and_change_nothing() {
    let s = common::start_example().await;
    let before = explain_costs(&s).await;
    let good = json!({"ip": "203.0.113.10", "rtt_ms": 5, "ok": true});
    let huge = "x".repeat(100_000);
    let cases: Vec<(String, &str, u16)> = vec![
        ("{not json".into(), "invalid JSON", 400),
        (json!({"host": "api.example.com"}).to_string(), "invalid JSON", 400),
        (json!({"host": "api.example.com", "reports": []}).to_string(), "empty", 400),
        (json!({"host": "nope.example.com", "reports": [good]}).to_string(), "unknown host", 400),
        (json!({"host": "api.example.com", "reports": [good, {"ip": "203.0.113.10", "rtt_ms": -3, "ok": true}]}).to_string(), "outside", 400),
        (json!({"host": "api.example.com", "reports": [good, {"ip": "203.0.113.10", "rtt_ms": 1e12, "ok": true}]}).to_string(), "outside", 400),
        (json!({"host": "api.example.com", "reports": [good, {"ip": "8.8.8.8", "rtt_ms": 3, "ok": true}]}).to_string(), "not an endpoint", 400),
        (json!({"host": "api.example.com", "reports": [good, {"ip": "bogus", "rtt_ms": 3, "ok": true}]}).to_string(), "not an IP", 400),
        (json!({"host": "api.example.com", "reports": [good, {"ip": "203.0.113.10", "rtt_ms": "fast", "ok": true}]}).to_string(), "invalid JSON", 400),
        (json!({"host": huge, "reports": [good]}).to_string(), "larger than", 413),
    ];
    for (body, needle, status) in cases {
        let response = s
            .client
            .post(s.url("/report"))
            .header("content-type", "application/json")
            .header("x-forwarded-for", TELECOM_GD)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            status,
            "{}",
            &body[..body.len().min(200)]
        );
        let answer: Value = response.json().await.unwrap();
        let code = if status == 413 {
            "payload_too_large"
        } else {
            "bad_request"
        };
        assert_eq!(answer["error"], code);
        assert!(
            answer["message"].as_str().unwrap().contains(needle),
            "{needle}: {answer}"
        );
    }
    assert_eq!(
        explain_costs(&s).await,
        before,
        "refused reports left no trace"
    );
}

#[tokio::test]
async fn one_client_cannot_flood_its_bucket() {
    let s = common::start_example().await;
    let item = json!({"ip": "203.0.113.10", "rtt_ms": 5, "ok": true});
    let body = json!({"host": "api.example.com", "reports": vec![item; 60]});
    assert_eq!(report(&s, TELECOM_GD, &body).await.0, 200);
    assert_eq!(report(&s, TELECOM_GD, &body).await.0, 200);
    let (status, answer) = report(&s, TELECOM_GD, &body).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (429, Some("rate_limited")),
        "{answer}"
    );
    // Another client is not affected.
    assert_eq!(report(&s, "202.96.128.87", &body).await.0, 200);
}

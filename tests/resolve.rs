//! `/resolve` end to end: real server on loopback, real HTTP, the shipped example config
//! and test IP database.

mod common;

use serde_json::Value;

fn ips(answer: &Value, key: &str) -> Vec<String> {
    answer[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn guangdong_telecom_client_is_steered_to_the_south_zone() {
    let s = common::start_example().await;
    let (status, body) = s
        .get_json("/resolve?host=api.example.com&ip=202.96.128.86")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["client_ip"], "202.96.128.86");
    assert_eq!(body["geo"]["country"], "CN");
    assert_eq!(body["geo"]["province"], "CN-GD");
    assert_eq!(body["geo"]["carrier"], "telecom");
    assert_eq!(body["geo"]["asn"], 4134);
    assert!(body["epoch"].as_u64().unwrap() > 0);
    let answer = &body["answers"][0];
    assert_eq!(answer["host"], "api.example.com");
    assert_eq!(answer["zone"], "gz-telecom");
    assert_eq!(answer["failover"], false);
    assert_eq!(answer["ttl"], 60);
    let v4 = ips(answer, "ips");
    assert_eq!(v4.len(), 3);
    assert!(v4.iter().all(|ip| ip.starts_with("203.0.113.1")), "{v4:?}");
    assert_eq!(ips(answer, "ipsv6"), vec!["2001:db8:10::1"]);
    // Fallback: first zone of the chain, capped at 2 IPs per family.
    let fallback = answer["fallback"].as_array().unwrap();
    assert_eq!(fallback.len(), 1);
    assert_eq!(fallback[0]["zone"], "sh-bgp");
    assert_eq!(ips(&fallback[0], "ips").len(), 2);
    assert_eq!(ips(&fallback[0], "ipsv6").len(), 2);
}

#[tokio::test]
async fn beijing_unicom_overseas_and_unknown_clients() {
    let s = common::start_example().await;
    for (ip, zone) in [
        ("123.125.81.6", "bj-unicom"),
        ("8.8.8.8", "hk-overseas"),
        ("2001:4860::8888", "hk-overseas"),
        ("192.0.2.99", "sh-bgp"),      // in no range → default zone
        ("211.136.17.107", "sh-bgp"),  // mobile: China rule
        ("168.95.1.1", "hk-overseas"), // Taiwan, 中华电信 is not China Telecom
        ("2408:8000::1", "sh-bgp"),    // unicom but no province → China rule
        ("100.64.1.1", "sh-bgp"),      // office CIDR rule
    ] {
        let (status, body) = s
            .get_json(&format!("/resolve?host=api.example.com&ip={ip}"))
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["answers"][0]["zone"], zone, "{ip}: {body}");
    }
    let (_, body) = s
        .get_json("/resolve?host=api.example.com&ip=192.0.2.99")
        .await;
    assert_eq!(
        body["geo"],
        serde_json::json!({"country": null, "province": null, "city": null, "carrier": null, "asn": null})
    );
}

#[tokio::test]
async fn ipv4_mapped_client_ip_is_normalised() {
    let s = common::start_example().await;
    let (_, body) = s
        .get_json("/resolve?host=api.example.com&ip=::ffff:123.125.81.6")
        .await;
    assert_eq!(body["client_ip"], "123.125.81.6");
    assert_eq!(body["answers"][0]["zone"], "bj-unicom");
}

#[tokio::test]
async fn batch_with_an_unknown_host_answers_the_others() {
    let s = common::start_example().await;
    let (status, body) = s
        .get_json("/resolve?host=api.example.com,nope.example.com,IMG.example.com.&ip=123.125.81.6&type=A")
        .await;
    assert_eq!(status, 200);
    let answers = body["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0]["zone"], "bj-unicom");
    assert_eq!(
        answers[1],
        serde_json::json!({"host": "nope.example.com", "error": "unknown_host"})
    );
    assert_eq!(answers[2]["host"], "img.example.com");
    assert_eq!(answers[2]["ttl"], 300);
    assert_eq!(answers[2]["zone"], "bj-unicom");
    assert!(
        ips(&answers[2], "ipsv6").is_empty(),
        "type=A asks for no IPv6"
    );
}

#[tokio::test]
async fn client_ip_is_the_socket_peer_or_a_trusted_proxy_header() {
    let s = common::start_example().await;
    // The example trusts 127.0.0.1 (a local load balancer), so X-Forwarded-For counts.
    let response = s
        .client
        .get(s.url("/resolve?host=api.example.com"))
        .header("x-forwarded-for", "202.96.128.86")
        .send()
        .await
        .unwrap();
    let epoch_header: u64 = response.headers()["x-httpdns-epoch"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["client_ip"], "202.96.128.86");
    assert_eq!(body["answers"][0]["zone"], "gz-telecom");
    assert_eq!(body["epoch"].as_u64().unwrap(), epoch_header);
    // Without headers the peer itself is the client.
    let (_, body) = s.get_json("/resolve?host=api.example.com").await;
    assert_eq!(body["client_ip"], "127.0.0.1");
}

#[tokio::test]
async fn untrusted_peer_cannot_forge_forwarded_for() {
    let state = tempfile::tempdir().unwrap();
    let mut config = common::example_config(state.path());
    config.trusted_proxies.clear();
    let s = common::start_with(config, common::options(), Some(state)).await;
    let body: Value = s
        .client
        .get(s.url("/resolve?host=api.example.com"))
        .header("x-forwarded-for", "202.96.128.86")
        .header("x-real-ip", "202.96.128.86")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["client_ip"], "127.0.0.1");
}

#[tokio::test]
async fn every_class_of_bad_input_is_a_400_with_a_message() {
    let s = common::start_example().await;
    let many: Vec<String> = (0..33).map(|i| format!("h{i}.example.com")).collect();
    let cases = [
        ("/resolve".to_string(), "missing host"),
        ("/resolve?host=".to_string(), "malformed host"),
        ("/resolve?host=bad%20host".to_string(), "malformed host"),
        ("/resolve?host=a..example.com".to_string(), "malformed host"),
        (
            "/resolve?host=api.example.com,".to_string(),
            "malformed host",
        ),
        (
            "/resolve?host=api.example.com&ip=1.2.3".to_string(),
            "not an IP address",
        ),
        (
            "/resolve?host=api.example.com&ip=".to_string(),
            "not an IP address",
        ),
        (
            "/resolve?host=api.example.com&type=MX".to_string(),
            "not A or AAAA",
        ),
        (
            "/resolve?host=api.example.com&host=img.example.com".to_string(),
            "bad query string",
        ),
        ("/resolve?host=%FF%FE".to_string(), "malformed host"),
        (
            format!("/resolve?host={}", many.join(",")),
            "the limit is 32",
        ),
    ];
    for (path, needle) in cases {
        let (status, body) = s.get_json(&path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"], "bad_request", "{path}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(needle), "{path}: {message}");
    }
}

#[tokio::test]
async fn healthz_and_unknown_routes() {
    let s = common::start_example().await;
    let (status, body) = s.get_json("/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = s.get_json("/nope").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn signed_mode_refuses_unsigned_and_expired_requests() {
    let state = tempfile::tempdir().unwrap();
    let secret = state.path().join("signing.secret");
    std::fs::write(&secret, "0123456789abcdef-app-secret\n").unwrap();
    let mut config = common::example_config(state.path());
    config.signing = Some(httpdns::config::SigningConfig {
        secret_file: secret,
        max_validity_secs: 600,
    });
    let s = common::start_with(config, common::options(), Some(state)).await;
    let signing = httpdns::policy::Signing::new(b"0123456789abcdef-app-secret".to_vec(), 600);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let hosts = "api.example.com,img.example.com";

    let (status, body) = s.get_json(&format!("/resolve?host={hosts}")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );

    let t = (now + 60).to_string();
    let sign = signing.sign(hosts, &t);
    let with_ip = signing.sign_with_ip(hosts, &t, "202.96.128.86");
    let (status, body) = s
        .get_json(&format!(
            "/resolve?host={hosts}&t={t}&sign={with_ip}&ip=202.96.128.86"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["answers"][1]["zone"], "gz-telecom");

    let (status, _) = s
        .get_json(&format!("/resolve?host=api.example.com&t={t}&sign={sign}"))
        .await;
    assert_eq!(
        status, 403,
        "a signature covers exactly the hosts it was made for"
    );
    let old = (now - 1).to_string();
    let (status, body) = s
        .get_json(&format!(
            "/resolve?host={hosts}&t={old}&sign={}",
            signing.sign(hosts, &old)
        ))
        .await;
    assert_eq!(status, 403);
    assert!(body["message"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn a_malformed_forwarded_for_entry_cannot_hand_the_choice_to_x_real_ip() {
    // The example trusts 127.0.0.1 as a proxy: this test is that proxy.
    let s = common::start_example().await;
    let client_ip = |xff: &'static str| {
        let request = s
            .client
            .get(s.url("/resolve?host=api.example.com"))
            .header("x-forwarded-for", xff)
            .header("x-real-ip", "8.8.8.8");
        async move {
            let body: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            body["client_ip"].as_str().unwrap().to_string()
        }
    };
    // Forged junk left of the real client is ignored.
    assert_eq!(
        client_ip("8.8.8.8, junk, 202.96.128.86").await,
        "202.96.128.86"
    );
    // Junk in the client's own position: the last trusted hop (the peer), not X-Real-IP.
    assert_eq!(client_ip("202.96.128.86, junk").await, "127.0.0.1");
}

#[tokio::test]
async fn hot_routes_count_requests_by_route_and_status_like_the_router() {
    // GET /resolve and GET /dns-query skip the router: their request metrics must still
    // carry the route and status labels the router's middleware gives every route.
    let s = common::start_example().await;
    assert_eq!(s.get_json("/resolve?host=api.example.com").await.0, 200);
    assert_eq!(s.get_json("/resolve?host=bad%20host").await.0, 400);
    assert_eq!(
        s.get_json("/dns-query?name=api.example.com&type=A").await.0,
        200
    );
    let metrics = s.metrics().await;
    // The recorder is per process and other tests run beside this one: at least.
    let value = |series: &str| -> u64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0)
    };
    for (series, at_least) in [
        (
            r#"httpdns_requests_total{route="/resolve",status="200"}"#,
            1,
        ),
        (
            r#"httpdns_requests_total{route="/resolve",status="400"}"#,
            1,
        ),
        (
            r#"httpdns_requests_total{route="/dns-query",status="200"}"#,
            1,
        ),
        (
            r#"httpdns_request_duration_seconds_count{route="/resolve"}"#,
            2,
        ),
    ] {
        assert!(
            value(series) >= at_least,
            "{series} < {at_least}:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn with_the_answer_cache_off_every_request_is_decided_and_steered_alike() {
    let state = tempfile::tempdir().unwrap();
    let mut config = common::example_config(state.path());
    config.limits.answer_cache_entries = 0;
    let s = common::start_with(config, common::options(), Some(state)).await;
    for _ in 0..3 {
        let (status, body) = s
            .get_json("/resolve?host=api.example.com&ip=202.96.128.86")
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["answers"][0]["zone"], "gz-telecom", "{body}");
        assert_eq!(body["geo"]["carrier"], "telecom", "{body}");
    }
}

//! Rate limits against the real server on loopback: token buckets per client address
//! and network on `/resolve`, `/dns-query`, `/report` (429, JSON, `Retry-After`), and
//! response rate limiting with slip on classic DNS over UDP.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use serde_json::Value;
use tokio::net::UdpSocket;

/// A GET from loopback (a trusted proxy in the example config) on behalf of `client`.
async fn get_as(s: &common::Running, path: &str, client: &str) -> (u16, Option<String>, Value) {
    let response = s
        .client
        .get(s.url(path))
        .header("x-forwarded-for", client)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, retry_after, body)
}

#[tokio::test]
async fn a_client_over_its_bucket_gets_429_with_retry_after_and_others_are_served() {
    let state = tempfile::tempdir().unwrap();
    let mut config = common::example_config(state.path());
    config.limits.rate_per_ip = 1;
    config.limits.burst_per_ip = 3;
    let s = common::start_with(config, common::options(), Some(state)).await;

    // Varying `ip=` does not dodge the bucket: the caller is counted, not the subject.
    for subject in ["202.96.128.86", "123.125.81.6", "8.8.8.8"] {
        let (status, _, body) = get_as(
            &s,
            &format!("/resolve?host=api.example.com&ip={subject}"),
            "198.51.100.7",
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, retry_after, body) =
        get_as(&s, "/resolve?host=api.example.com", "198.51.100.7").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "rate_limited", "{body}");
    assert!(body["message"].is_string());
    assert_eq!(retry_after.as_deref(), Some("1"));
    // DoH counts against the same bucket.
    let (status, _, _) = get_as(&s, "/dns-query?name=api.example.com&type=A", "198.51.100.7").await;
    assert_eq!(status, 429);
    // GETs of /resolve and /dns-query take the hot path, everything else the router:
    // both draw on one bucket, so a POST finds it as empty.
    let posted = s
        .client
        .post(s.url("/dns-query"))
        .header("x-forwarded-for", "198.51.100.7")
        .header("content-type", "application/dns-message")
        .body(query(7))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status().as_u16(), 429);
    // Another client, and health checks, are untouched.
    let (status, _, _) = get_as(&s, "/resolve?host=api.example.com", "198.51.100.8").await;
    assert_eq!(status, 200);
    let (status, _, _) = get_as(&s, "/healthz", "198.51.100.7").await;
    assert_eq!(status, 200);
    // A token comes back after about a second: wait for it, not for a fixed time.
    let back = common::wait_until(std::time::Duration::from_secs(5), || async {
        get_as(&s, "/resolve?host=api.example.com", "198.51.100.7")
            .await
            .0
            == 200
    })
    .await;
    assert!(back.is_some(), "the bucket never refilled");
    let metrics = s.metrics().await;
    assert!(
        metrics.contains("httpdns_rate_limited_total{front=\"http\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_network_shares_one_bucket_across_addresses() {
    let state = tempfile::tempdir().unwrap();
    let mut config = common::example_config(state.path());
    config.limits.rate_per_network = 1;
    config.limits.burst_per_network = 4;
    let s = common::start_with(config, common::options(), Some(state)).await;
    for host in 1..=4 {
        let (status, _, _) = get_as(
            &s,
            "/resolve?host=api.example.com",
            &format!("203.0.113.{host}"),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (status, retry_after, _) =
        get_as(&s, "/resolve?host=api.example.com", "203.0.113.99").await;
    assert_eq!(status, 429);
    assert!(retry_after.is_some());
    // A report from the same /24 is refused too; another /24 is served.
    let response = s
        .client
        .post(s.url("/report"))
        .header("x-forwarded-for", "203.0.113.50")
        .header("content-type", "application/json")
        .body(r#"{"host":"api.example.com","reports":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let (status, _, _) = get_as(&s, "/resolve?host=api.example.com", "203.0.114.1").await;
    assert_eq!(status, 200);
    // IPv6: every /64 of one /48 is one network.
    for subnet in 1..=4 {
        let client = format!("2001:db8:7:{subnet}::1");
        assert_eq!(
            get_as(&s, "/resolve?host=api.example.com", &client).await.0,
            200
        );
    }
    assert_eq!(
        get_as(&s, "/resolve?host=api.example.com", "2001:db8:7:ff::1")
            .await
            .0,
        429
    );
}

/// A UDP query for `api.example.com` A with `id`.
fn query(id: u16) -> Vec<u8> {
    let mut message = Message::query();
    message.metadata.id = id;
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(
        Name::from_ascii("api.example.com.").unwrap(),
        RecordType::A,
    ));
    message.to_vec().unwrap()
}

/// Sends `count` queries at once from `socket` and collects the replies that come
/// back within a second after the last one.
async fn burst(socket: &UdpSocket, server: SocketAddr, count: u16) -> Vec<Message> {
    for id in 1..=count {
        socket.send_to(&query(id), server).await.unwrap();
    }
    let mut replies = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(received) =
        tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf)).await
    {
        let (len, _) = received.unwrap();
        replies.push(Message::from_vec(&buf[..len]).unwrap());
        if replies.len() == usize::from(count) {
            break;
        }
    }
    replies
}

#[tokio::test]
async fn udp_over_the_response_limit_slips_tc_answers_and_drops_the_rest() {
    let (s, _dir) = common::start_config(|d| {
        let mut config = common::dns_config(d, true);
        config.dns.rrl_responses_per_second = 1;
        config.dns.rrl_burst = 3;
        config.dns.rrl_slip = 2;
        config
    })
    .await;
    let server = s.server.dns_addr.unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let replies = burst(&socket, server, 10).await;
    let (full, slipped): (Vec<&Message>, Vec<&Message>) =
        replies.iter().partition(|m| !m.metadata.truncation);
    // 3 from the burst; of the 7 over the limit every 2nd slips (4), the rest drop (3).
    assert_eq!(full.len(), 3, "{replies:?}");
    assert!(full.iter().all(|m| !m.answers.is_empty()));
    assert_eq!(slipped.len(), 4, "{replies:?}");
    assert!(
        slipped
            .iter()
            .all(|m| m.answers.is_empty() && m.queries.len() == 1)
    );

    // Another /24 (loopback has a whole /8) is served in full meanwhile.
    let neighbour = UdpSocket::bind("127.0.1.1:0").await.unwrap();
    let replies = burst(&neighbour, server, 2).await;
    assert_eq!(replies.len(), 2);
    assert!(
        replies
            .iter()
            .all(|m| !m.metadata.truncation && !m.answers.is_empty())
    );

    // The slip's purpose: a resolver retrying over TCP is answered.
    let (_, out, err) = common::run(
        "dig",
        &common::args(&[
            "@127.0.0.1",
            "-p",
            &server.port().to_string(),
            "+tcp",
            "+time=5",
            "+tries=1",
            "api.example.com",
            "A",
        ]),
    )
    .await;
    assert!(
        out.contains("status: NOERROR") && out.contains("ANSWER: "),
        "{out}{err}"
    );
    let metrics = s.metrics().await;
    assert!(
        metrics.contains(r#"httpdns_rate_limited_total{front="dns_udp",action="slip"} 4"#),
        "{metrics}"
    );
}

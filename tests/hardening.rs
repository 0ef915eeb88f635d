//! Hostile clients against the real server on loopback: connection caps per client
//! network, header/body/idle timeouts, DNS TCP slots per client, and the JSON error
//! shape for every refusal. Other clients must keep being served throughout.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

/// A connection to `server` from the loopback address `from` (127.0.0.x: each one is
/// a different client to the server).
async fn connect_from(from: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    socket.connect(server).await.unwrap()
}

/// True when the server closed `stream` within `limit` (reads EOF or a reset).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// A plain HTTP/1.1 GET on `stream`; the status code of the answer.
async fn get_status(stream: &mut TcpStream, path: &str) -> u16 {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = stream.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

async fn start(edit: impl FnOnce(&mut httpdns::ServerConfig)) -> common::Running {
    let (running, _) = common::start_config(|dir| {
        let mut config = common::dns_config(dir, true);
        edit(&mut config);
        config
    })
    .await;
    running
}

#[tokio::test]
async fn one_client_at_its_connection_cap_does_not_stop_anyone_else() {
    let s = start(|c| c.limits.max_connections_per_ip = 4).await;
    let addr = s.server.public_addr;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = connect_from("127.0.0.2", addr).await;
        assert_eq!(get_status(&mut stream, "/healthz").await, 200);
        held.push(stream);
    }
    // The fifth from the same client is closed at once...
    let mut fifth = connect_from("127.0.0.2", addr).await;
    assert!(closed_within(&mut fifth, Duration::from_secs(5)).await);
    // ...while another client is served, and the held connections still work.
    let mut other = connect_from("127.0.0.3", addr).await;
    assert_eq!(
        get_status(&mut other, "/resolve?host=api.example.com").await,
        200
    );
    assert_eq!(get_status(&mut held[0], "/healthz").await, 200);
    // A closed connection gives its place back.
    held.pop();
    let place_back = common::wait_until(Duration::from_secs(5), || async {
        let mut again = connect_from("127.0.0.2", addr).await;
        !closed_within(&mut again, Duration::from_millis(200)).await
    })
    .await;
    assert!(place_back.is_some(), "the client's slot was not released");
    assert!(
        s.metrics()
            .await
            .contains("httpdns_connections_refused_total")
    );
}

#[tokio::test]
async fn half_sent_headers_idle_keep_alives_and_trickled_bodies_are_cut_off() {
    let s = start(|c| {
        c.limits.header_read_timeout_ms = 300;
        c.limits.idle_timeout_ms = 600;
        c.limits.body_read_timeout_ms = 300;
    })
    .await;
    let addr = s.server.public_addr;

    // Connected, nothing sent: the head's clock runs from the connect.
    let mut silent = connect_from("127.0.0.4", addr).await;
    // Half a request head.
    let mut half = connect_from("127.0.0.4", addr).await;
    half.write_all(b"GET /resolve?host=api.example.com HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await);
    assert!(closed_within(&mut half, Duration::from_secs(5)).await);
    assert!(started.elapsed() < Duration::from_secs(5));

    // A keep-alive connection that went quiet after an answer.
    let mut idle = connect_from("127.0.0.4", addr).await;
    assert_eq!(get_status(&mut idle, "/healthz").await, 200);
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);

    // A body that never finishes: 408 in the JSON shape.
    let mut slow = connect_from("127.0.0.4", addr).await;
    slow.write_all(
        b"POST /report HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"host\":",
    )
    .await
    .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut answer))
        .await
        .expect("an answer before the test's own deadline")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"error\":\"request_timeout\""), "{text}");

    // Everyone else is served meanwhile.
    assert_eq!(s.get_json("/healthz").await.0, 200);
    let metrics = s.metrics().await;
    assert!(metrics.contains("kind=\"header_read\""), "{metrics}");
    assert!(metrics.contains("kind=\"idle\""), "{metrics}");
}

/// A DNS query for `name` (type A) in TCP framing.
fn tcp_query(name: &str) -> Vec<u8> {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};
    let mut message = Message::query();
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let wire = message.to_vec().unwrap();
    let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&wire);
    framed
}

#[tokio::test]
async fn one_client_cannot_hold_every_dns_tcp_slot() {
    let s = start(|c| c.dns.tcp_max_connections_per_ip = 2).await;
    let addr = s.server.dns_addr.unwrap();
    let _a = connect_from("127.0.0.5", addr).await;
    let _b = connect_from("127.0.0.5", addr).await;
    let mut third = connect_from("127.0.0.5", addr).await;
    assert!(closed_within(&mut third, Duration::from_secs(5)).await);
    let mut other = connect_from("127.0.0.6", addr).await;
    other
        .write_all(&tcp_query("api.example.com."))
        .await
        .unwrap();
    let mut len = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), other.read_exact(&mut len))
        .await
        .expect("answered")
        .unwrap();
    assert!(u16::from_be_bytes(len) > 12);
}

#[tokio::test]
async fn trailing_bytes_after_a_dns_question_are_formerr_over_udp() {
    let s = start(|_| {}).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut wire = tcp_query("api.example.com.")[2..].to_vec();
    wire.extend_from_slice(b"smuggled");
    socket
        .send_to(&wire, s.server.dns_addr.unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .expect("answered")
        .unwrap();
    assert!(n >= 12);
    assert_eq!(buf[3] & 0x0f, 1, "RCODE FORMERR");
}

#[tokio::test]
async fn small_refusals_are_json_with_the_right_status() {
    let s = start(|_| {}).await;
    let client = &s.client;
    let status_and_json = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let json: serde_json::Value = response.json().await.expect("a JSON error body");
        (status, json)
    };
    // Two trailing dots are an empty label.
    let (status, json) = s.get_json("/resolve?host=api.example.com..").await;
    assert_eq!((status, json["error"].as_str()), (400, Some("bad_request")));
    // DoH GET over max_query_bytes (4096): 413.
    let big = "A".repeat(6000);
    let (status, json) = s.get_json(&format!("/dns-query?dns={big}")).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    // DoH POST over the bound: 413 as JSON, not axum's plain text.
    let response = client
        .post(s.url("/dns-query"))
        .header("content-type", "application/dns-message")
        .body(vec![0u8; 5000])
        .send()
        .await
        .unwrap();
    let (status, json) = status_and_json(response).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    // A report body over limits.max_body_bytes: 413.
    let response = client
        .post(s.url("/report"))
        .header("content-type", "application/json")
        .body(" ".repeat(70_000))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_json(response).await.0, 413);
    // A report that does not say it is JSON (a browser's preflight-free POST): 415.
    let response = client
        .post(s.url("/report"))
        .header("content-type", "text/plain")
        .body(r#"{"host": "api.example.com", "reports": [{"ip": "203.0.113.10", "ok": false}]}"#)
        .send()
        .await
        .unwrap();
    let (status, json) = status_and_json(response).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    // A repeated admin parameter: 400 in the JSON shape.
    let (status, json) = s
        .admin(
            reqwest::Method::DELETE,
            "/admin/zones/gz-telecom/drain?over=1m&over=2m",
            None,
        )
        .await;
    assert_eq!((status, json["error"].as_str()), (400, Some("bad_request")));
}

#[tokio::test]
async fn ecs_scope_is_no_wider_than_the_finest_rule_that_could_change_the_answer() {
    use hickory_proto::op::{Edns, Message, Query};
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
    use hickory_proto::rr::{Name, RecordType};
    let zones = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(common::repo().join("zones")).unwrap() {
        let path = entry.unwrap().path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        if path.file_name().unwrap() == "api.example.com.toml" {
            // One address of a Guangdong telecom /24 goes to another zone.
            text = text.replacen(
                "[[domain.rule]]\nname = \"office\"",
                "[[domain.rule]]\nname = \"vip\"\ncidr = [\"202.96.128.77/32\"]\nzone = \"hk-overseas\"\n\n[[domain.rule]]\nname = \"office\"",
                1,
            );
        }
        std::fs::write(zones.path().join(path.file_name().unwrap()), text).unwrap();
    }
    let zones_dir = zones.path().to_path_buf();
    let s = start(move |c| c.zones_dir = zones_dir).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let scope_for = |client: &'static str, source: u8| {
        let socket = &socket;
        let server = s.server.dns_addr.unwrap();
        async move {
            let mut message = Message::query();
            message.add_query(Query::query(
                Name::from_ascii("api.example.com.").unwrap(),
                RecordType::A,
            ));
            let mut edns = Edns::new();
            let subnet = ClientSubnet::new(client.parse().unwrap(), source, 0);
            edns.options_mut().insert(EdnsOption::Subnet(subnet));
            message.set_edns(edns);
            socket
                .send_to(&message.to_vec().unwrap(), server)
                .await
                .unwrap();
            let mut buf = [0u8; 2048];
            let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
                .await
                .expect("answered")
                .unwrap();
            let reply = Message::from_vec(&buf[..n]).unwrap();
            match reply.edns.as_ref().and_then(|e| e.option(EdnsCode::Subnet)) {
                Some(EdnsOption::Subnet(subnet)) => subnet.scope_prefix(),
                other => panic!("no ECS echo: {other:?}"),
            }
        }
    };
    assert_eq!(scope_for("202.96.128.77", 32).await, 32);
    assert_eq!(scope_for("202.96.128.1", 32).await, 26);
    assert_eq!(scope_for("123.125.81.6", 32).await, 24);
    assert_eq!(scope_for("::ffff:123.125.81.6", 128).await, 120);
}

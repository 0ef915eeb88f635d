//! Classic DNS end to end: the real server on loopback, queried by `dig` over UDP and
//! TCP (installed by `.ci/run`), plus raw sockets for what no polite client sends.

mod common;

use std::time::{Duration, Instant};

use common::{args, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What one `dig` run printed, picked apart.
struct Dig {
    out: String,
}

impl Dig {
    fn status(&self) -> &str {
        let at = self.out.find("status: ").expect("status line") + "status: ".len();
        self.out[at..].split(',').next().unwrap()
    }

    fn flags(&self) -> Vec<&str> {
        let line = self
            .out
            .lines()
            .find(|l| l.starts_with(";; flags:"))
            .expect("flags line");
        line[";; flags:".len()..]
            .split(';')
            .next()
            .unwrap()
            .split_whitespace()
            .collect()
    }

    /// Records of one section as (name, ttl, type, data).
    fn section(&self, title: &str) -> Vec<(String, u32, String, String)> {
        let header = format!(";; {title} SECTION:");
        self.out
            .lines()
            .skip_while(|l| *l != header)
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (
                    f[0].to_string(),
                    f[1].parse().unwrap(),
                    f[3].to_string(),
                    f[4..].join(" "),
                )
            })
            .collect()
    }

    fn answers(&self) -> Vec<String> {
        self.section("ANSWER").into_iter().map(|r| r.3).collect()
    }

    fn client_subnet(&self) -> Option<&str> {
        self.out
            .lines()
            .find_map(|l| l.strip_prefix("; CLIENT-SUBNET: "))
            .map(str::trim)
    }
}

async fn dig(port: u16, query: &[&str]) -> Dig {
    let mut all = args(&["@127.0.0.1", "-p", &port.to_string(), "+time=5", "+tries=1"]);
    all.extend(args(query));
    let (_, out, err) = run("dig", &all).await;
    assert!(out.contains("Got answer"), "dig {query:?}: {out}{err}");
    Dig { out }
}

fn dns_port(s: &common::Running) -> u16 {
    s.server.dns_addr.expect("dns listener").port()
}

#[tokio::test]
async fn udp_and_tcp_answers_follow_the_ecs_subnet() {
    let (s, _dir) = common::start_config(|d| common::dns_config(d, true)).await;
    let port = dns_port(&s);
    for transport in ["+notcp", "+tcp"] {
        let gz = dig(
            port,
            &[transport, "+subnet=202.96.128.0/24", "api.example.com", "A"],
        )
        .await;
        assert_eq!(gz.status(), "NOERROR");
        assert!(gz.flags().contains(&"aa"), "{}", gz.out);
        let ips = gz.answers();
        assert_eq!(ips.len(), 3, "{}", gz.out);
        for ip in &ips {
            assert!(
                ["203.0.113.10", "203.0.113.11", "203.0.113.12"].contains(&ip.as_str()),
                "{transport}: {ip} is not gz-telecom"
            );
        }
        assert!(
            gz.section("ANSWER").iter().all(|r| r.1 == 60),
            "scheduler TTL"
        );
        assert_eq!(gz.client_subnet(), Some("202.96.128.0/24/24"));

        let bj = dig(
            port,
            &[transport, "+subnet=123.125.81.0/24", "api.example.com", "A"],
        )
        .await;
        let mut ips = bj.answers();
        ips.sort();
        assert_eq!(ips, ["192.0.2.10", "192.0.2.11"], "{transport}: {}", bj.out);

        let v6 = dig(
            port,
            &[
                transport,
                "+subnet=202.96.128.0/24",
                "api.example.com",
                "AAAA",
            ],
        )
        .await;
        assert_eq!(v6.answers(), ["2001:db8:10::1"], "{}", v6.out);
    }
}

#[tokio::test]
async fn untrusted_ecs_is_ignored_and_the_real_peer_steers() {
    let (s, _dir) = common::start_config(|d| {
        let mut config = common::dns_config(d, true);
        config.dns.ecs_trusted.clear();
        config
    })
    .await;
    let answer = dig(
        dns_port(&s),
        &["+subnet=202.96.128.0/24", "api.example.com", "A"],
    )
    .await;
    // 127.0.0.1 is in no IP database range: the default zone, sh-bgp.
    let mut ips = answer.answers();
    ips.sort();
    assert_eq!(ips, ["198.51.100.10", "198.51.100.11"], "{}", answer.out);
    assert_eq!(answer.client_subnet(), None, "untrusted ECS is not echoed");
}

#[tokio::test]
async fn large_answer_sets_tc_over_udp_and_comes_whole_over_tcp() {
    let (s, _dir) = common::start_config(|d| common::dns_config(d, false)).await;
    let port = dns_port(&s);
    for udp in [
        vec!["+ignore", "big.example.com", "A"],
        vec!["+ignore", "+bufsize=4096", "big.example.com", "A"],
        vec!["+ignore", "+noedns", "big.example.com", "A"],
    ] {
        let truncated = dig(port, &udp).await;
        assert!(
            truncated.flags().contains(&"tc"),
            "{udp:?}: {}",
            truncated.out
        );
        assert!(truncated.answers().is_empty());
        assert!(truncated.out.contains("(UDP)"), "{}", truncated.out);
    }
    let whole = dig(port, &["+tcp", "big.example.com", "A"]).await;
    assert!(!whole.flags().contains(&"tc"));
    assert_eq!(whole.answers().len(), 120, "{}", whole.out);
    // dig's default: retry over TCP on TC and get everything.
    let retried = dig(port, &["big.example.com", "A"]).await;
    assert_eq!(retried.answers().len(), 120);
}

#[tokio::test]
async fn apex_answers_soa_and_ns_and_names_outside_are_nxdomain_or_refused() {
    let (s, _dir) = common::start_config(|d| common::dns_config(d, false)).await;
    let port = dns_port(&s);

    let soa = dig(port, &["example.com", "SOA"]).await;
    assert_eq!(soa.status(), "NOERROR");
    let records = soa.section("ANSWER");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].2, "SOA");
    assert_eq!(
        records[0].3,
        "ns1.example.com. hostmaster.example.com. 2024060101 3600 600 604800 60"
    );
    let mut ns = dig(port, &["example.com", "NS", "+tcp"]).await.answers();
    ns.sort();
    assert_eq!(ns, ["ns1.example.com.", "ns2.example.com."]);

    let missing = dig(port, &["nope.example.com", "A"]).await;
    assert_eq!(missing.status(), "NXDOMAIN");
    assert!(missing.flags().contains(&"aa"));
    let authority = missing.section("AUTHORITY");
    assert_eq!(authority.len(), 1, "{}", missing.out);
    assert_eq!((authority[0].1, authority[0].2.as_str()), (60, "SOA"));

    for nodata in [
        vec!["deep.example.com", "A"],   // empty non-terminal
        vec!["local.example.com", "MX"], // a domain, not that type
        vec!["example.com", "A"],        // the apex itself
    ] {
        let answer = dig(port, &nodata).await;
        assert_eq!(answer.status(), "NOERROR", "{nodata:?}");
        assert!(answer.answers().is_empty(), "{nodata:?}");
        assert_eq!(answer.section("AUTHORITY")[0].2, "SOA", "{nodata:?}");
    }

    for outside in ["www.example.org", "com", "example.com.evil.net"] {
        let refused = dig(port, &[outside, "A"]).await;
        assert_eq!(refused.status(), "REFUSED", "{outside}");
        assert!(refused.answers().is_empty());
    }
}

#[tokio::test]
async fn garbage_over_udp_gets_formerr_and_runts_get_silence() {
    let (s, _dir) = common::start_config(|d| common::dns_config(d, true)).await;
    let server = s.server.dns_addr.unwrap();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut garbage = vec![0xbe, 0xef, 0x01, 0x00, 0x00, 0x01];
    garbage.extend_from_slice(b"not a dns question at all");
    socket.send_to(&garbage, server).await.unwrap();
    let mut buf = [0u8; 512];
    let (len, _) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    assert!(len >= 12);
    assert_eq!(&buf[..2], &[0xbe, 0xef], "same ID");
    assert_eq!(buf[2] & 0x80, 0x80, "QR set");
    assert_eq!(buf[3] & 0x0f, 1, "FORMERR");

    socket.send_to(&[1, 2, 3], server).await.unwrap();
    let silent = tokio::time::timeout(Duration::from_millis(300), socket.recv_from(&mut buf)).await;
    assert!(silent.is_err(), "no answer to 3 bytes");
}

/// A query for `api.example.com A` with ID `id`.
fn a_query(id: u16) -> Vec<u8> {
    let mut wire = id.to_be_bytes().to_vec();
    wire.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in ["api", "example", "com"] {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label.as_bytes());
    }
    wire.extend_from_slice(&[0, 0, 1, 0, 1]);
    wire
}

#[tokio::test]
async fn a_burst_from_many_clients_is_answered_query_by_query_to_each_sender() {
    // Workers take queued datagrams in batches and answer them with one send: every
    // query of a burst must still get its own answer, with its ID, at its sender.
    // Each burst (8 clients × 5 queries = 40 datagrams) spans more than one batch of 32
    // and fits the kernel's default socket buffers many times over: UDP may drop what a
    // buffer cannot hold, so a burst bigger than that would test the buffer, not us.
    let (s, _dir) = common::start_config(|d| common::dns_config(d, true)).await;
    let server = s.server.dns_addr.unwrap();
    const CLIENTS: u16 = 8;
    const PER_BURST: u16 = 5;
    const BURSTS: u16 = 10;
    let mut sockets = Vec::new();
    for _ in 0..CLIENTS {
        sockets.push(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    }
    let id = |client: usize, burst: u16, query: u16| client as u16 * 1000 + burst * 10 + query;
    for burst in 0..BURSTS {
        for query in 0..PER_BURST {
            for (c, socket) in sockets.iter().enumerate() {
                socket
                    .send_to(&a_query(id(c, burst, query)), server)
                    .await
                    .unwrap();
            }
        }
        for (c, socket) in sockets.iter().enumerate() {
            let mut ids = Vec::new();
            let mut buf = [0u8; 1500];
            while ids.len() < usize::from(PER_BURST) {
                let (len, from) =
                    tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
                        .await
                        .unwrap_or_else(|_| {
                            panic!("client {c}, burst {burst}: only {} answers", ids.len())
                        })
                        .unwrap();
                assert_eq!(from, server);
                let answer = hickory_proto::op::Message::from_vec(&buf[..len]).unwrap();
                assert!(!answer.answers.is_empty(), "steered addresses");
                ids.push(answer.metadata.id);
            }
            ids.sort_unstable();
            let expected: Vec<u16> = (0..PER_BURST).map(|q| id(c, burst, q)).collect();
            assert_eq!(
                ids, expected,
                "client {c}: each query answered once, to its sender"
            );
        }
    }
}

#[tokio::test]
async fn tcp_connections_are_bounded_in_size_idle_time_and_number() {
    let (s, _dir) = common::start_config(|d| {
        let mut config = common::dns_config(d, true);
        config.dns.tcp_idle_timeout_ms = 300;
        config.dns.tcp_max_connections = 1;
        config
    })
    .await;
    let server = s.server.dns_addr.unwrap();

    // A length prefix over max_query_bytes closes the connection.
    let mut oversized = tokio::net::TcpStream::connect(server).await.unwrap();
    oversized.write_all(&[0xff, 0xff]).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(2), oversized.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "closed: {read:?}");
    drop(oversized);

    // An idle connection is closed after the idle timeout...
    let started = Instant::now();
    let mut idle = tokio::net::TcpStream::connect(server).await.unwrap();
    // ...and while it holds the only slot, a second client waits for it.
    let answer = dig(server.port(), &["+tcp", "+time=5", "api.example.com", "A"]).await;
    assert_eq!(answer.status(), "NOERROR");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "second connection served only after the first went idle: {:?}",
        started.elapsed()
    );
    let read = tokio::time::timeout(Duration::from_secs(2), idle.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "idle closed: {read:?}"
    );
}

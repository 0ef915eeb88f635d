//! DNS over HTTPS end to end: the real server on loopback with a certificate made at
//! test time, queried by `kdig +https` and curl's own DoH client (installed by
//! `.ci/run`); HTTP-level errors and the JSON shape over plaintext with reqwest.

mod common;

use std::time::Duration;

use common::{args, run};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use serde_json::Value;

async fn start_tls(example_zones: bool) -> (common::Running, std::path::PathBuf) {
    common::start_config(|dir| {
        let mut config = common::dns_config(dir, example_zones);
        common::with_tls(&mut config, dir);
        config
    })
    .await
}

/// `kdig +https` output: status and answer data.
async fn kdig(port: u16, query: &[&str]) -> (String, Vec<String>, String) {
    let mut all = args(&["@127.0.0.1", "-p", &port.to_string(), "+timeout=5"]);
    all.extend(args(query));
    let (_, out, err) = run("kdig", &all).await;
    let status = out
        .lines()
        .find(|l| l.starts_with(";; ->>HEADER<<-"))
        .and_then(|l| l.split("status: ").nth(1))
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("kdig {query:?}: no status in {out}{err}"))
        .trim()
        .to_string();
    let answers = out
        .lines()
        .skip_while(|l| !l.starts_with(";; ANSWER SECTION:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect();
    (status, answers, out)
}

#[tokio::test]
async fn kdig_over_https_answers_a_and_aaaa_steered_by_ecs() {
    let (s, _dir) = start_tls(true).await;
    assert!(s.server.public_tls);
    let port = s.server.public_addr.port();
    for method in ["+https", "+https-get"] {
        let (status, mut ips, out) = kdig(
            port,
            &[method, "+subnet=202.96.128.0/24", "api.example.com", "A"],
        )
        .await;
        assert_eq!(status, "NOERROR", "{out}");
        assert!(out.contains("HTTP/2"), "ALPN h2: {out}");
        assert!(out.contains("CLIENT-SUBNET: 202.96.128.0/24/24"), "{out}");
        ips.sort();
        assert_eq!(
            ips,
            ["203.0.113.10", "203.0.113.11", "203.0.113.12"],
            "{method} gz-telecom: {out}"
        );

        let (_, mut ips, out) = kdig(
            port,
            &[method, "+subnet=123.125.81.0/24", "api.example.com", "A"],
        )
        .await;
        ips.sort();
        assert_eq!(
            ips,
            ["192.0.2.10", "192.0.2.11"],
            "{method} bj-unicom: {out}"
        );

        let (_, ips, out) = kdig(
            port,
            &[method, "+subnet=123.125.81.0/24", "api.example.com", "AAAA"],
        )
        .await;
        assert_eq!(ips, ["2001:db8:30::1"], "{method} bj-unicom v6: {out}");
    }
}

#[tokio::test]
async fn kdig_over_https_gets_refused_nxdomain_and_soa() {
    let (s, _dir) = start_tls(true).await;
    let port = s.server.public_addr.port();
    let (status, ips, _) = kdig(port, &["+https", "www.example.org", "A"]).await;
    assert_eq!((status.as_str(), ips.len()), ("REFUSED", 0));
    let (status, _, out) = kdig(port, &["+https", "nope.example.com", "A"]).await;
    assert_eq!(status, "NXDOMAIN");
    assert!(out.contains("AUTHORITY SECTION:"), "{out}");
    let (status, ips, _) = kdig(port, &["+https", "example.com", "NS"]).await;
    assert_eq!(status, "NOERROR");
    assert_eq!(ips.len(), 2);
}

#[tokio::test]
async fn curl_doh_client_connects_to_the_steered_address() {
    let (_, help, _) = run("curl", &args(&["--help", "all"])).await;
    assert!(
        help.contains("--doh-url") && help.contains("--doh-insecure"),
        "this curl has no DoH client; `bash .ci/run` installs Debian's curl"
    );
    let (s, _dir) = start_tls(false).await;
    let port = s.server.public_addr.port();
    // local.example.com steers 127.0.0.0/8 to 127.0.0.1 and everyone else to
    // 192.0.2.1: reaching our own /healthz proves curl used our steered answer.
    let (ok, out, err) = run(
        "curl",
        &args(&[
            "-sS",
            "-k",
            "--max-time",
            "10",
            "--doh-url",
            &format!("https://127.0.0.1:{port}/dns-query"),
            "--doh-insecure",
            "-w",
            "\n%{remote_ip}",
            &format!("https://local.example.com:{port}/healthz"),
        ]),
    )
    .await;
    assert!(ok, "curl failed: {err}");
    let (body, remote) = out.rsplit_once('\n').unwrap();
    assert_eq!(remote, "127.0.0.1");
    assert!(body.contains("\"ok\""), "{body}");
}

#[tokio::test]
async fn public_listener_speaks_http1_and_http2_over_tls() {
    let (s, _dir) = start_tls(true).await;
    let url = format!("https://127.0.0.1:{}/healthz", s.server.public_addr.port());
    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let (ok, out, err) = run(
            "curl",
            &args(&[
                "-sSk",
                flag,
                "-o",
                "/dev/null",
                "-w",
                "%{http_version}",
                &url,
            ]),
        )
        .await;
        assert!(ok, "{err}");
        assert_eq!(out, version);
    }
}

/// SHA-256 fingerprint of the certificate the server presents.
async fn served_fingerprint(port: u16) -> String {
    let script = format!(
        "openssl s_client -connect 127.0.0.1:{port} </dev/null 2>/dev/null \
         | openssl x509 -noout -fingerprint -sha256"
    );
    let (ok, out, err) = run("sh", &args(&["-c", &script])).await;
    assert!(ok && out.contains("Fingerprint"), "openssl: {out}{err}");
    out.trim().to_string()
}

#[tokio::test]
async fn certificate_change_is_served_without_restart() {
    common::require_tool("openssl");
    let (s, dir) = start_tls(true).await;
    let port = s.server.public_addr.port();
    let before = served_fingerprint(port).await;
    // Renew the pair in place, as certbot or a secrets agent would.
    tokio::time::sleep(Duration::from_millis(20)).await;
    httpdns::tls::write_self_signed(&dir.join("tls"), &["localhost".to_string()]).unwrap();
    let mut after = before.clone();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = served_fingerprint(port).await;
        if after != before {
            break;
        }
    }
    assert_ne!(after, before, "new certificate served");
    let (status, ips, _) = kdig(port, &["+https", "api.example.com", "A"]).await;
    assert_eq!((status.as_str(), ips.is_empty()), ("NOERROR", false));
}

// ---- plaintext mode: the same routes without TLS, with reqwest ----

fn query_bytes(name: &str, kind: RecordType) -> Vec<u8> {
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
    message.to_vec().unwrap()
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn plaintext_get_and_post_carry_wire_messages_with_cache_control() {
    let s = common::start_example().await;
    let query = query_bytes("img.example.com.", RecordType::A);
    let get = s
        .client
        .get(s.url(&format!("/dns-query?dns={}", base64url(&query))))
        .header("accept", "application/dns-message")
        .send()
        .await
        .unwrap();
    let post = s
        .client
        .post(s.url("/dns-query"))
        .header("content-type", "application/dns-message")
        .body(query.clone())
        .send()
        .await
        .unwrap();
    for response in [get, post] {
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/dns-message"
        );
        assert_eq!(response.headers()["cache-control"], "max-age=300");
        let epoch: u64 = response.headers()["x-httpdns-epoch"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(epoch > 0);
        let answer = Message::from_vec(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(
            answer.metadata.id,
            Message::from_vec(&query).unwrap().metadata.id
        );
        // 127.0.0.1 is in no range: img.example.com's default zone, sh-bgp.
        let ips: Vec<String> = answer.answers.iter().map(|r| r.data.to_string()).collect();
        assert!(!ips.is_empty());
        assert!(
            ips.iter().all(|ip| ip.starts_with("198.51.100.")),
            "{ips:?}"
        );
    }
}

#[tokio::test]
async fn trusted_proxy_forwarded_for_steers_doh_like_resolve() {
    let s = common::start_example().await;
    let query = query_bytes("api.example.com.", RecordType::A);
    let response = s
        .client
        .post(s.url("/dns-query"))
        .header("content-type", "application/dns-message")
        .header("x-forwarded-for", "202.96.128.86")
        .body(query)
        .send()
        .await
        .unwrap();
    let answer = Message::from_vec(&response.bytes().await.unwrap()).unwrap();
    let ips: Vec<String> = answer.answers.iter().map(|r| r.data.to_string()).collect();
    assert!(
        ips.iter().all(|ip| ip.starts_with("203.0.113.1")),
        "{ips:?}"
    );
}

#[tokio::test]
async fn bad_doh_requests_are_http_errors_or_formerr() {
    let s = common::start_example().await;
    for (path, needle) in [
        ("/dns-query", "missing dns parameter"),
        ("/dns-query?dns=", "not a DNS query"),
        ("/dns-query?dns=!!!!", "not base64url"),
        ("/dns-query?dns=AAAA&d%6Es=AAAA", "dns given twice"),
        ("/dns-query?dns=AAAA", "not a DNS query"),
        ("/dns-query?name=bad%20name", "malformed name"),
        (
            "/dns-query?name=api.example.com&type=NOPE",
            "not a DNS record type",
        ),
    ] {
        let (status, body) = s.get_json(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"], "bad_request");
        assert!(
            body["message"].as_str().unwrap().contains(needle),
            "{path}: {body}"
        );
    }
    let wrong_type = s
        .client
        .post(s.url("/dns-query"))
        .header("content-type", "application/json")
        .body(query_bytes("api.example.com.", RecordType::A))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415);
    let body: Value = wrong_type.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_media_type");

    // A header followed by garbage: a DNS FORMERR with the same ID, not an HTTP error.
    let mut garbage = vec![0x12, 0x34, 0x01, 0x00, 0x00, 0x01];
    garbage.extend_from_slice(&[0xff; 40]);
    let response = s
        .client
        .post(s.url("/dns-query"))
        .header("content-type", "application/dns-message")
        .body(garbage)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    assert_eq!(&bytes[..2], &[0x12, 0x34]);
    assert_eq!(bytes[3] & 0x0f, 1, "FORMERR");
}

#[tokio::test]
async fn dns_json_answers_in_the_google_cloudflare_shape() {
    let s = common::start_example().await;
    let response = s
        .client
        .get(s.url("/dns-query?name=api.example.com&type=AAAA&edns_client_subnet=123.125.81.0/24"))
        .header("accept", "application/dns-json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/dns-json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["Status"], 0);
    assert_eq!(body["Question"][0]["name"], "api.example.com.");
    assert_eq!(body["Question"][0]["type"], 28);
    assert_eq!(body["Answer"][0]["data"], "2001:db8:30::1");
    assert_eq!(body["Answer"][0]["TTL"], 60);
    assert_eq!(body["edns_client_subnet"], "123.125.81.0/24");

    let (status, body) = s.get_json("/dns-query?name=nope.example.com").await;
    assert_eq!(status, 200);
    assert_eq!(body["Status"], 3, "NXDOMAIN: {body}");
    assert_eq!(body["Authority"][0]["type"], 6, "SOA: {body}");
    let (_, body) = s.get_json("/dns-query?name=www.example.org").await;
    assert_eq!(body["Status"], 5, "REFUSED: {body}");
}

#[tokio::test]
async fn admin_listener_can_share_the_tls_certificate() {
    let (s, _dir) = common::start_config(|dir| {
        let mut config = common::example_config(dir);
        common::with_tls(&mut config, dir);
        if let Some(tls) = config.tls.as_mut() {
            tls.admin = true;
        }
        config
    })
    .await;
    let admin = s.server.admin_addr.unwrap();
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let response = client
        .get(format!("https://{admin}/admin/zones"))
        .bearer_auth(common::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // Plain HTTP to the TLS admin port does not get an answer.
    let plain = reqwest::get(format!("http://{admin}/admin/zones")).await;
    assert!(plain.map(|r| r.status().as_u16() != 200).unwrap_or(true));
}

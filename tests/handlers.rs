//! Handler tests without sockets: the public and admin routers called with
//! `tower::ServiceExt::oneshot` for status codes, JSON shapes and headers. What needs
//! the network (TLS, real DNS clients, restarts) is tested against the real server in
//! the other files.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use httpdns::admin::{self, AdminState, AdminTokens};
use httpdns::policy::Signing;
use httpdns::reload::Reloader;
use httpdns::resolver::Resolver;
use httpdns::server::public_router;
use httpdns::{ServerConfig, snapshot};
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "handler-test-token-0123456789";
const READ_TOKEN: &str = "handler-read-token-0123456789";

/// The example config's routers over one resolver, as the server wires them.
struct Routers {
    public: Router,
    admin: Router,
    resolver: Resolver,
    _state: tempfile::TempDir,
}

fn routers_with(edit: impl FnOnce(&mut snapshot::Snapshot)) -> Routers {
    let state = tempfile::tempdir().unwrap();
    let config: ServerConfig = common::example_config(state.path());
    let mut built = snapshot::load(&config).unwrap();
    edit(&mut built);
    let resolver = Resolver::standalone(built, &state.path().join("state")).unwrap();
    let reloader = Arc::new(Reloader::new(None, config.clone(), resolver.clone()));
    let admin = admin::router(AdminState {
        resolver: resolver.clone(),
        reloader,
        tokens: Arc::new(AdminTokens::single("tester", TOKEN).with(
            "viewer",
            admin::Scope::Read,
            READ_TOKEN,
        )),
        insecure: false,
        max_body_bytes: config.limits.max_body_bytes,
    });
    Routers {
        public: public_router(&resolver, &config),
        admin,
        resolver,
        _state: state,
    }
}

fn routers() -> Routers {
    routers_with(|_| {})
}

/// A request as it arrives from `peer` (the listener adds `ConnectInfo`).
fn request(method: &str, uri: &str, body: Body) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .body(body)
        .unwrap();
    let peer: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

fn admin_request(method: &str, uri: &str, body: Option<Value>) -> Request<Body> {
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let mut request = request(method, uri, body);
    request.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {TOKEN}").parse().unwrap(),
    );
    request
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    json: Value,
}

async fn call(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        json,
    }
}

fn assert_error_shape(answer: &Answer, status: StatusCode, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.json);
    assert_eq!(answer.json["error"], code, "{}", answer.json);
    assert!(answer.json["message"].is_string(), "{}", answer.json);
    assert_eq!(
        answer.headers[header::CONTENT_TYPE],
        "application/json",
        "errors are JSON"
    );
}

#[tokio::test]
async fn resolve_answers_the_documented_shape_with_the_epoch_header() {
    let r = routers();
    let answer = call(
        &r.public,
        request(
            "GET",
            "/resolve?host=api.example.com,nope.example.com&ip=202.96.128.86",
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers[header::CONTENT_TYPE], "application/json");
    let epoch = answer.json["epoch"].as_u64().unwrap();
    assert_eq!(
        answer.headers["x-httpdns-epoch"],
        epoch.to_string().as_str()
    );
    assert_eq!(answer.json["client_ip"], "202.96.128.86");
    assert_eq!(answer.json["geo"]["carrier"], "telecom");
    let found = &answer.json["answers"][0];
    assert_eq!(found["zone"], "gz-telecom");
    assert_eq!(found["failover"], false);
    assert!(!found["ips"].as_array().unwrap().is_empty());
    assert_eq!(found["fallback"][0]["zone"], "sh-bgp");
    assert_eq!(
        answer.json["answers"][1],
        json!({"host": "nope.example.com", "error": "unknown_host"})
    );
}

#[tokio::test]
async fn resolve_refuses_bad_input_with_the_json_error_shape() {
    let r = routers();
    for uri in [
        "/resolve",
        "/resolve?host=bad%20host",
        "/resolve?host=api.example.com&type=MX",
        "/resolve?host=api.example.com&ip=300.1.1.1",
        "/resolve?host=a.com&host=b.com",
    ] {
        let answer = call(&r.public, request("GET", uri, Body::empty())).await;
        assert_error_shape(&answer, StatusCode::BAD_REQUEST, "bad_request");
    }
    let answer = call(&r.public, request("GET", "/nowhere", Body::empty())).await;
    assert_error_shape(&answer, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn healthz_and_report_answer_json() {
    let r = routers();
    let answer = call(&r.public, request("GET", "/healthz", Body::empty())).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json, json!({"status": "ok"}));

    let body = json!({"host": "api.example.com", "reports": [
        {"ip": "203.0.113.10", "rtt_ms": 23, "ok": true},
        {"ip": "203.0.113.11", "ok": false}]});
    let mut report = request("POST", "/report", Body::from(body.to_string()));
    report
        .headers_mut()
        .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    let answer = call(&r.public, report).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json, json!({"accepted": 2}));

    for (body, needle) in [
        (
            json!({"host": "api.example.com", "reports": [{"ip": "nope", "ok": false}]}),
            "reports[0].ip",
        ),
        (
            json!({"host": "nope.example.com", "reports": [{"ip": "203.0.113.10", "ok": false}]}),
            "unknown host",
        ),
        (
            json!({"host": "api.example.com", "reports": [{"ip": "192.0.2.99", "ok": false}]}),
            "not an endpoint",
        ),
    ] {
        let mut report = request("POST", "/report", Body::from(body.to_string()));
        report.headers_mut().insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        let answer = call(&r.public, report).await;
        assert_error_shape(&answer, StatusCode::BAD_REQUEST, "bad_request");
        let message = answer.json["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message}");
    }
}

#[tokio::test]
async fn signed_mode_covers_dns_json_as_it_covers_resolve() {
    let secret = b"0123456789abcdef-app-secret".to_vec();
    let signing = Signing::new(secret.clone(), 600);
    let r = routers_with(|s| s.signing = Some(Signing::new(secret, 600)));
    for uri in [
        "/resolve?host=api.example.com",
        "/dns-query?name=api.example.com&type=A",
    ] {
        let answer = call(&r.public, request("GET", uri, Body::empty())).await;
        assert_error_shape(&answer, StatusCode::FORBIDDEN, "forbidden");
    }
    let t = (httpdns::epoch::now_ms() / 1000 + 60).to_string();
    let sign = signing.sign("api.example.com", &t);
    let answer = call(
        &r.public,
        request(
            "GET",
            &format!("/dns-query?name=api.example.com&type=A&t={t}&sign={sign}"),
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["Status"], 0);
    assert!(!answer.json["Answer"].as_array().unwrap().is_empty());

    // ip= picks whose answer it is: a signature over the host alone does not cover it.
    let uri =
        |sign: &str| format!("/resolve?host=api.example.com&ip=202.96.128.86&t={t}&sign={sign}");
    let answer = call(&r.public, request("GET", &uri(&sign), Body::empty())).await;
    assert_error_shape(&answer, StatusCode::FORBIDDEN, "forbidden");
    let with_ip = signing.sign_with_ip("api.example.com", &t, "202.96.128.86");
    let answer = call(&r.public, request("GET", &uri(&with_ip), Body::empty())).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["client_ip"], "202.96.128.86");
}

#[tokio::test]
async fn admin_needs_a_bearer_token() {
    let r = routers();
    let answer = call(&r.admin, request("GET", "/admin/zones", Body::empty())).await;
    assert_error_shape(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
    let mut wrong = request("GET", "/admin/zones", Body::empty());
    wrong
        .headers_mut()
        .insert(header::AUTHORIZATION, "Bearer nope".parse().unwrap());
    let answer = call(&r.admin, wrong).await;
    assert_error_shape(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
}

fn with_authorization(mut request: Request<Body>, value: &str) -> Request<Body> {
    request
        .headers_mut()
        .insert(header::AUTHORIZATION, value.parse().unwrap());
    request
}

fn audit_lines(r: &Routers) -> Vec<Value> {
    std::fs::read_to_string(r._state.path().join("state/audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn a_lower_case_bearer_scheme_is_accepted() {
    let r = routers();
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let request = with_authorization(
            request("GET", "/admin/zones", Body::empty()),
            &format!("{scheme} {TOKEN}"),
        );
        let answer = call(&r.admin, request).await;
        assert_eq!(answer.status, StatusCode::OK, "{scheme}: {}", answer.json);
    }
}

#[tokio::test]
async fn a_read_token_reads_but_cannot_write_and_refusals_are_audited() {
    let r = routers();
    let read = |method: &str, uri: &str, body: Option<Value>| {
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        with_authorization(request(method, uri, body), &format!("Bearer {READ_TOKEN}"))
    };
    for uri in [
        "/admin/zones",
        "/admin/explain?host=api.example.com&ip=202.96.128.86",
        "/metrics",
    ] {
        let answer = call(&r.admin, read("GET", uri, None)).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}");
    }
    for (method, uri, body) in [
        (
            "POST",
            "/admin/zones/gz-telecom/drain",
            Some(json!({"weight": 0})),
        ),
        ("DELETE", "/admin/zones/gz-telecom/drain", None),
        ("POST", "/admin/endpoints/203.0.113.10/disable", None),
        ("DELETE", "/admin/endpoints/203.0.113.10/disable", None),
        ("POST", "/admin/reload", None),
    ] {
        let answer = call(&r.admin, read(method, uri, body)).await;
        assert_error_shape(&answer, StatusCode::FORBIDDEN, "forbidden");
    }
    // Nothing changed: the read token's drain was refused.
    let zones = call(&r.admin, admin_request("GET", "/admin/zones", None)).await;
    assert!(
        zones.json.to_string().contains("\"drains\":{}"),
        "{}",
        zones.json
    );
    let wrong = with_authorization(
        request("POST", "/admin/reload", Body::empty()),
        "Bearer not-a-valid-token-at-all",
    );
    assert_error_shape(
        &call(&r.admin, wrong).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    let audit = audit_lines(&r);
    let refused: Vec<&Value> = audit
        .iter()
        .filter(|l| l["action"] == "admin.rejected")
        .collect();
    assert_eq!(refused.len(), 6, "{audit:?}");
    assert!(
        refused[..5]
            .iter()
            .all(|l| l["status"] == 403 && l["token"] == "viewer")
    );
    assert_eq!(refused[0]["method"], "POST");
    assert_eq!(refused[0]["path"], "/admin/zones/gz-telecom/drain");
    assert_eq!(refused[0]["peer"], "198.51.100.7");
    assert_eq!(refused[5]["status"], 401);
    assert_eq!(refused[5]["token"], Value::Null);
    // The write token still writes.
    let drained = call(
        &r.admin,
        admin_request(
            "POST",
            "/admin/zones/gz-telecom/drain",
            Some(json!({"weight": 0})),
        ),
    )
    .await;
    assert_eq!(drained.status, StatusCode::OK, "{}", drained.json);
}

#[tokio::test]
async fn admin_zones_drain_and_explain_shapes() {
    let r = routers();
    let zones = call(&r.admin, admin_request("GET", "/admin/zones", None)).await;
    assert_eq!(zones.status, StatusCode::OK);
    let names: Vec<&str> = zones.json["zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["zone"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"gz-telecom"), "{names:?}");
    let epoch = zones.json["epoch"].as_u64().unwrap();

    let drained = call(
        &r.admin,
        admin_request(
            "POST",
            "/admin/zones/gz-telecom/drain",
            Some(json!({"weight": 0, "reason": "maintenance"})),
        ),
    )
    .await;
    assert_eq!(drained.status, StatusCode::OK, "{}", drained.json);
    assert_eq!(drained.json["action"], "zone.drain");
    assert_eq!(drained.json["target"], "gz-telecom");
    assert!(drained.json["epoch"].as_u64().unwrap() > epoch);
    assert_eq!(r.resolver.epoch().current(), drained.json["epoch"]);

    let explained = call(
        &r.admin,
        admin_request(
            "GET",
            "/admin/explain?host=api.example.com&ip=202.96.128.86",
            None,
        ),
    )
    .await;
    assert_eq!(explained.status, StatusCode::OK);
    assert_eq!(explained.json["home_zone"], "gz-telecom");
    assert_eq!(explained.json["failover"], true);
    assert_eq!(explained.json["skipped"][0]["zone"], "gz-telecom");

    for (method, uri, body, status, code) in [
        (
            "POST",
            "/admin/zones/nowhere/drain",
            Some(json!({"weight": 0})),
            StatusCode::NOT_FOUND,
            "unknown",
        ),
        (
            "POST",
            "/admin/zones/gz-telecom/drain",
            Some(json!({"weight": 101})),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "GET",
            "/admin/explain?host=api.example.com",
            None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "POST",
            "/admin/endpoints/192.0.2.250/disable",
            None,
            StatusCode::NOT_FOUND,
            "unknown",
        ),
    ] {
        let answer = call(&r.admin, admin_request(method, uri, body)).await;
        assert_error_shape(&answer, status, code);
    }
}

#[tokio::test]
async fn admin_reload_reports_its_result() {
    let r = routers();
    let answer = call(&r.admin, admin_request("POST", "/admin/reload", None)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["result"], "applied");
    assert_eq!(answer.json["restart_required"], json!([]));
    assert!(answer.json["zones"].as_u64().unwrap() >= 4);
}

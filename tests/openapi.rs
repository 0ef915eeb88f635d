//! The checked-in OpenAPI description (`src/admin/openapi.json`, served at
//! `GET /openapi.json`) against the real routers: every documented operation exists on
//! the documented listener, answers only with documented statuses, asks for a token
//! exactly when it says so, and every route in the source is documented.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use httpdns::admin::dashboard::OPENAPI_JSON;
use serde_json::Value;

fn spec() -> Value {
    serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON")
}

/// Example values for path parameters: a zone and an endpoint of the shipped zones.
fn fill(path: &str) -> String {
    path.replace("{zone}", "gz-telecom")
        .replace("{ip}", "203.0.113.12")
}

/// `(method, path)` of every documented operation, with its listener and operation.
fn operations(spec: &Value) -> Vec<(String, String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        let listener = item["x-listener"].as_str().expect("x-listener").to_string();
        for (method, operation) in item.as_object().unwrap() {
            if ["get", "post", "delete", "put", "patch"].contains(&method.as_str()) {
                out.push((
                    method.clone(),
                    path.clone(),
                    listener.clone(),
                    operation.clone(),
                ));
            }
        }
    }
    out
}

fn needs_token(spec: &Value, operation: &Value) -> bool {
    let security = operation.get("security").unwrap_or(&spec["security"]);
    security.as_array().is_some_and(|s| !s.is_empty())
}

/// Required top-level fields of a `$ref`'d 200 JSON schema that the body lacks.
fn missing_fields(spec: &Value, operation: &Value, body: &Value) -> Vec<String> {
    let schema = &operation["responses"]["200"]["content"]["application/json"]["schema"];
    let Some(name) = schema["$ref"].as_str().and_then(|r| r.rsplit('/').next()) else {
        return Vec::new();
    };
    spec["components"]["schemas"][name]["required"]
        .as_array()
        .map(|required| {
            required
                .iter()
                .filter_map(Value::as_str)
                .filter(|field| body.get(field).is_none())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn every_documented_operation_answers_as_documented() {
    let s = common::start_example().await;
    let spec = spec();
    let operations = operations(&spec);
    assert!(operations.len() >= 16, "{} operations", operations.len());
    for (method, path, listener, operation) in &operations {
        let base = match listener.as_str() {
            "public" => &s.base,
            "admin" => &s.admin,
            other => panic!("{path}: unknown x-listener {other}"),
        };
        let url = format!("{base}{}", fill(path));
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let documented: BTreeSet<String> = operation["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .cloned()
            .collect();

        let anonymous = s.client.request(method.clone(), &url).send().await.unwrap();
        let anonymous_status = anonymous.status().as_u16();
        if needs_token(&spec, operation) {
            assert_eq!(anonymous_status, 401, "{method} {path} without a token");
        } else {
            assert_ne!(anonymous_status, 401, "{method} {path} asked for a token");
        }

        let response = s
            .client
            .request(method.clone(), &url)
            .bearer_auth(common::ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let json = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        let text = response.text().await.unwrap();
        assert!(
            documented.contains(&status.to_string()),
            "{method} {path} answered {status}, documented {documented:?}: {text}"
        );
        // A 404 may be documented (unknown zone), but never the router's "no such route".
        assert!(
            !text.contains("\"not_found\""),
            "{method} {path} is not routed on the {listener} listener: {text}"
        );
        if status == 200 && json {
            let body: Value = serde_json::from_str(&text).unwrap();
            let missing = missing_fields(&spec, operation, &body);
            assert!(
                missing.is_empty(),
                "{method} {path} lacks {missing:?}: {text}"
            );
        }
    }
}

#[tokio::test]
async fn served_description_is_the_checked_in_file() {
    let s = common::start_example().await;
    let response = s
        .client
        .get(s.admin_url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let served: Value = response.json().await.unwrap();
    assert_eq!(served, spec());
}

/// Every `.route("PATH"` in `src/` (wherever the routers move to).
fn routed_paths(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            routed_paths(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for (at, _) in text.match_indices(".route(") {
                let rest = text[at + ".route(".len()..].trim_start();
                if let Some(literal) = rest.strip_prefix('"') {
                    let end = literal.find('"').unwrap();
                    out.insert(literal[..end].to_string());
                }
            }
        }
    }
}

#[test]
fn every_route_in_the_source_is_documented() {
    let mut routed = BTreeSet::new();
    routed_paths(&common::repo().join("src"), &mut routed);
    assert!(
        routed.contains("/resolve") && routed.contains("/admin/zones"),
        "{routed:?}"
    );
    let spec = spec();
    let documented: BTreeSet<String> = spec["paths"].as_object().unwrap().keys().cloned().collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.json: {undocumented:?}"
    );
}

//! Contract test: the real server's responses have the same shape (keys and JSON types)
//! as the fixtures in `clients/testdata/`, which both SDK test suites are built on. If
//! this fails, either the server broke the API or the fixtures must change with it.

mod common;

use reqwest::Method;
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = common::repo().join("clients/testdata").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture exists"))
        .expect("fixture is JSON")
}

/// Checks that `real` has the shape of `expected`; returns the first mismatch's path.
fn same_shape(expected: &Value, real: &Value, path: &str) -> Result<(), String> {
    match (expected, real) {
        (Value::Object(e), Value::Object(r)) => {
            let mut ek: Vec<_> = e.keys().collect();
            let mut rk: Vec<_> = r.keys().collect();
            ek.sort();
            rk.sort();
            if ek != rk {
                return Err(format!("{path}: keys {ek:?} vs server {rk:?}"));
            }
            e.iter()
                .try_for_each(|(k, v)| same_shape(v, &r[k], &format!("{path}.{k}")))
        }
        (Value::Array(e), Value::Array(r)) if e.is_empty() || r.is_empty() => Ok(()),
        (Value::Array(e), Value::Array(r)) if e.len() == r.len() => e
            .iter()
            .zip(r)
            .enumerate()
            .try_for_each(|(i, (ev, rv))| same_shape(ev, rv, &format!("{path}[{i}]"))),
        (Value::Array(e), Value::Array(r)) => r
            .iter()
            .enumerate()
            .try_for_each(|(i, rv)| same_shape(&e[0], rv, &format!("{path}[{i}]"))),
        (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null) => Ok(()),
        _ => Err(format!("{path}: fixture {expected} vs server {real}")),
    }
}

fn assert_shape(name: &str, real: &Value) {
    if let Err(mismatch) = same_shape(&fixture(name), real, name) {
        panic!("server response does not match {name}: {mismatch}\nserver said: {real}");
    }
}

#[test]
fn shape_check_catches_a_changed_contract() {
    let fixture = json!({"a": 1, "b": [{"c": "x"}]});
    assert!(same_shape(&fixture, &json!({"a": 2, "b": [{"c": "y"}]}), "").is_ok());
    assert!(same_shape(&fixture, &json!({"a": 2}), "").is_err());
    assert!(same_shape(&fixture, &json!({"a": "2", "b": []}), "").is_err());
    assert!(same_shape(&fixture, &json!({"a": 2, "b": [{"c": 1}]}), "").is_err());
}

#[tokio::test]
async fn resolve_responses_match_the_sdk_fixtures() {
    let s = common::start_example().await;
    let (status, single) = s
        .get_json("/resolve?host=api.example.com&ip=202.96.128.86")
        .await;
    assert_eq!(status, 200);
    assert_shape("resolve_single.json", &single);

    let (_, batch) = s
        .get_json("/resolve?host=api.example.com,nope.example.com,img.example.com&ip=202.96.128.86")
        .await;
    assert_shape("resolve_batch_unknown.json", &batch);

    let (status, _) = s
        .admin(
            Method::POST,
            "/admin/zones/sh-bgp/drain",
            Some(json!({"weight": 0})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, failover) = s
        .get_json("/resolve?host=api.example.com&ip=211.136.17.107")
        .await;
    assert_eq!(failover["answers"][0]["failover"], true);
    assert_shape("resolve_failover.json", &failover);

    let (status, error) = s.get_json("/resolve").await;
    assert_eq!(status, 400);
    assert_shape("error_bad_request.json", &error);
}

#[tokio::test]
async fn report_fixture_is_accepted_by_the_server() {
    let s = common::start_example().await;
    let response = s
        .client
        .post(s.url("/report"))
        .json(&fixture("report_request.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_shape("report_response.json", &body);
    assert_eq!(body, fixture("report_response.json"));
}

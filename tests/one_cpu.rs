//! The real binary on one CPU (`taskset -c 0`, like a container limited to a core):
//! it runs on tokio's current-thread runtime (`httpdns::runtime`), and every door that
//! runtime carries still works on its one thread: `/resolve` over HTTP/1.1, many h2c
//! streams of one connection at once (hyper spawns a task per stream), and a drain
//! through the admin API that the next answer follows. With two CPUs the same binary
//! runs a worker per CPU.

mod common;

use std::process::{Child, Command};

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Bytes;
use serde_json::{Value, json};

const RESOLVE: &str = "/resolve?host=api.example.com&ip=202.96.128.86";

/// The binary on `cpus` (a `taskset` CPU list), and its "httpdns listening" fields.
fn start_on(cpus: &str, config: &std::path::Path) -> (Child, Value) {
    common::require_tool("taskset");
    let binary = common::binary_command(config, &[]);
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", cpus])
        .arg(binary.get_program())
        .args(binary.get_args())
        .envs(binary.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    common::spawn_listening(cmd)
}

/// Kills the server when the test ends, passed or not.
struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn h2c_answers(addr: &str, streams: usize) -> Vec<Value> {
    let sender = common::h2c_connect(addr.parse().unwrap()).await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..streams {
        let mut sender = sender.clone();
        let uri = format!("http://{addr}{RESOLVE}");
        set.spawn(async move {
            let request = Request::get(uri).body(Empty::<Bytes>::new()).unwrap();
            let response = sender.send_request(request).await.unwrap();
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            serde_json::from_slice::<Value>(&body).unwrap()
        });
    }
    set.join_all().await
}

#[tokio::test]
async fn one_cpu_runs_every_door_on_the_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::workspace(dir.path());
    let (child, fields) = start_on("0", &config);
    let _stop = Stop(child);
    assert_eq!(fields["runtime"], "CurrentThread", "{fields}");
    let public = fields["public_addr"].as_str().unwrap().to_string();
    let admin = fields["admin_addr"].as_str().unwrap().to_string();
    let client = reqwest::Client::new();

    let answer: Value = client
        .get(format!("http://{public}{RESOLVE}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["answers"][0]["zone"], "gz-telecom", "{answer}");

    // 100 streams in flight on one connection, each answered whole.
    let answers = h2c_answers(&public, 100).await;
    assert_eq!(answers.len(), 100);
    for answer in &answers {
        assert_eq!(answer["answers"][0]["zone"], "gz-telecom", "{answer}");
    }

    // The admin listener shares the thread: a drain is acknowledged and followed.
    let drained = client
        .post(format!("http://{admin}/admin/zones/gz-telecom/drain"))
        .bearer_auth(common::ADMIN_TOKEN)
        .json(&json!({"weight": 0, "reason": "one-cpu test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(drained.status(), 200);
    for answer in h2c_answers(&public, 10).await {
        assert_ne!(answer["answers"][0]["zone"], "gz-telecom", "{answer}");
        assert_eq!(answer["answers"][0]["failover"], true, "{answer}");
    }
}

#[test]
fn two_cpus_get_a_worker_each() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        eprintln!("one CPU on this machine: nothing to compare with");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = common::workspace(dir.path());
    let (child, fields) = start_on("0,1", &config);
    let _stop = Stop(child);
    assert_eq!(fields["runtime"], "MultiThread", "{fields}");
}

//! state.json and audit.log stay consistent through hard crashes: the real binary is
//! killed with SIGKILL in the middle of bursts of admin changes, many times, and after
//! every restart the state on disk is exactly the last audit record's `after`, and every
//! change that was answered 200 has its audit record.

mod common;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ROUNDS: usize = 8;

struct Process {
    child: Child,
    admin: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config: &Path) -> Process {
    let (child, fields) = common::spawn_listening(common::binary_command(config, &[]));
    Process {
        child,
        admin: format!("http://{}", fields["admin_addr"].as_str().unwrap()),
    }
}

/// One writer: alternating changes until the server stops answering (or a bound).
fn burst(admin: &str, writer: usize) -> Vec<Value> {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let zone = ["gz-telecom", "bj-unicom"][writer % 2];
    let ip = ["203.0.113.11", "192.0.2.10"][writer % 2];
    let mut acked = Vec::new();
    for i in 0..400 {
        let request = match i % 4 {
            0 => http
                .post(format!("{admin}/admin/zones/{zone}/drain"))
                .json(&json!({"weight": i % 100, "reason": format!("w{writer} #{i}")})),
            1 => http.delete(format!("{admin}/admin/zones/{zone}/drain")),
            2 => http
                .post(format!("{admin}/admin/endpoints/{ip}/disable"))
                .json(&json!({"reason": format!("w{writer} #{i}")})),
            _ => http.delete(format!("{admin}/admin/endpoints/{ip}/disable")),
        };
        match request.bearer_auth(common::ADMIN_TOKEN).send() {
            Ok(response) if response.status() == 200 => {
                acked.push(response.json::<Value>().unwrap()["after"].clone());
            }
            Ok(response) => panic!("unexpected {}", response.status()),
            Err(_) => break,
        }
    }
    acked
}

fn audit_afters(state: &Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("every audit line is whole JSON")["after"]
                .clone()
        })
        .collect()
}

#[test]
fn kill_9_during_bursts_of_changes_leaves_state_and_audit_in_agreement() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::workspace(dir.path());
    let state = dir.path().join("state");
    let mut acked_total = Vec::new();
    for round in 0..ROUNDS {
        let mut server = start(&config);
        let admin = server.admin.clone();
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let admin = admin.clone();
                std::thread::spawn(move || burst(&admin, w))
            })
            .collect();
        // Kill mid-burst, at a different point each round: once the burst has added a
        // few more audit records than the round before.
        let records = || {
            std::fs::read_to_string(state.join("audit.log"))
                .map_or(0, |text| text.matches('\n').count())
        };
        let target = records() + 2 + 3 * round;
        let started = Instant::now();
        while records() < target {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the burst stalled"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        for writer in writers {
            acked_total.extend(writer.join().unwrap());
        }
        // The next start settles the files; then they must agree.
        let restarted = start(&config);
        let afters = audit_afters(&state);
        let on_disk: Value = std::fs::read(state.join("state.json"))
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap_or(json!({"drains": {}, "disabled": {}}));
        if let Some(last) = afters.last() {
            assert_eq!(
                last, &on_disk,
                "round {round}: state.json is the last record's after"
            );
        }
        for acked in &acked_total {
            assert!(
                afters.contains(acked),
                "round {round}: an acknowledged change has no audit record"
            );
        }
        drop(restarted);
    }
    assert!(
        acked_total.len() > ROUNDS,
        "the bursts committed changes: {}",
        acked_total.len()
    );
}

//! The real binary: drains survive restarts, a corrupt state file stops the start,
//! `--reset-state` overrides, SIGHUP reloads.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::{Value, json};

struct Process {
    child: Child,
    public: String,
    admin: String,
    http: reqwest::blocking::Client,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    fn zone(&self, host: &str, ip: &str) -> (String, bool) {
        let body: Value = self
            .http
            .get(format!("{}/resolve?host={host}&ip={ip}", self.public))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let answer = &body["answers"][0];
        (
            answer["zone"].as_str().unwrap().to_string(),
            answer["failover"].as_bool().unwrap(),
        )
    }

    fn drain(&self, zone: &str, body: Value) -> u16 {
        self.http
            .post(format!("{}/admin/zones/{zone}/drain", self.admin))
            .bearer_auth(common::ADMIN_TOKEN)
            .json(&body)
            .send()
            .unwrap()
            .status()
            .as_u16()
    }
}

fn command(config: &Path, extra: &[&str]) -> Command {
    common::binary_command(config, extra)
}

/// Starts the binary and waits for its "listening" log line.
fn start(config: &Path, extra: &[&str]) -> Process {
    let (child, fields) = common::spawn_listening(command(config, extra));
    Process {
        child,
        public: format!("http://{}", fields["public_addr"].as_str().unwrap()),
        admin: format!("http://{}", fields["admin_addr"].as_str().unwrap()),
        http: reqwest::blocking::Client::new(),
    }
}

#[test]
fn drain_survives_a_hard_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::workspace(dir.path());
    let first = start(&config, &[]);
    assert_eq!(
        first.zone("api.example.com", "202.96.128.86"),
        ("gz-telecom".into(), false)
    );
    assert_eq!(
        first.drain("gz-telecom", json!({"weight": 0, "reason": "fiber cut"})),
        200
    );
    drop(first); // SIGKILL: no chance to flush anything not already on disk.

    let second = start(&config, &[]);
    assert_eq!(
        second.zone("api.example.com", "202.96.128.86"),
        ("sh-bgp".into(), true)
    );
}

#[test]
fn corrupt_state_file_stops_the_start_until_reset() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::workspace(dir.path());
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("state.json"), b"{\"drains\": {\"gz-telecom\": ").unwrap();
    let output = command(&config, &[]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("corrupt")
            && stderr.contains("--reset-state")
            && stderr.contains("state.json"),
        "{stderr}"
    );

    let reset = start(&config, &["--reset-state"]);
    assert_eq!(
        reset.zone("api.example.com", "202.96.128.86"),
        ("gz-telecom".into(), false)
    );
    let set_aside = std::fs::read_dir(&state)
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state.json.reset-")
        });
    assert!(set_aside, "the corrupt file is kept for inspection");
}

#[test]
fn sighup_reloads_the_zones() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::workspace(dir.path());
    let server = start(&config, &[]);
    assert_eq!(
        server.zone("img.example.com", "202.96.128.86").0,
        "gz-telecom"
    );
    let file = dir.path().join("zones/img.example.com.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replacen("zone = \"gz-telecom\"", "zone = \"sh-bgp\"", 1),
    )
    .unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut moved = false;
    for _ in 0..100 {
        if server.zone("img.example.com", "202.96.128.86").0 == "sh-bgp" {
            moved = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(moved, "SIGHUP did not reload");
}

fn cli(admin: &str, token: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_httpdns"))
        .args(["admin", "--url", admin])
        .args(args)
        .env("HTTPDNS_ADMIN_TOKEN", token)
        .output()
        .unwrap()
}

#[test]
fn admin_cli_drives_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::workspace(dir.path());
    let server = start(&config, &[]);
    let ok = |args: &[&str]| {
        let out = cli(&server.admin, common::ADMIN_TOKEN, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let drained = ok(&[
        "drain",
        "gz-telecom",
        "--weight",
        "0",
        "--reason",
        "fiber cut",
        "--domain",
        "api.example.com",
    ]);
    assert_eq!(drained["action"], "zone.drain");
    assert_eq!(
        server.zone("api.example.com", "202.96.128.86"),
        ("sh-bgp".into(), true)
    );
    let explain = ok(&["explain", "api.example.com", "202.96.128.86"]);
    assert_eq!(explain["answer_zone"], "sh-bgp");
    let zones = ok(&["zones"]);
    assert!(zones["zones"].as_array().unwrap().len() >= 4);
    assert_eq!(ok(&["reload"])["result"], "applied");
    ok(&["undrain", "gz-telecom"]);
    assert_eq!(
        server.zone("api.example.com", "202.96.128.86"),
        ("gz-telecom".into(), false)
    );

    let refused = cli(&server.admin, "wrong-token-wrong-token", &["zones"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));
}

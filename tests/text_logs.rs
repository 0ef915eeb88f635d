//! The text log (no `--log-json`) of the real binary: operator-supplied strings such as a
//! drain `reason` are escaped, so a reason with newlines or terminal escapes cannot
//! forge log lines or repaint an operator's terminal.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;

/// The value after `key=` in a text log line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    line[start..].split_whitespace().next()
}

#[test]
fn a_drain_reason_cannot_forge_text_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::workspace(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_httpdns"))
        .arg("--config")
        .arg(&config)
        .arg("--no-watch")
        .env("HTTPDNS_ADMIN_TOKEN", common::ADMIN_TOKEN)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = |what: &str| {
        rx.recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no log line while waiting for {what}"))
    };
    let admin = loop {
        let line = next_line("httpdns listening");
        if line.contains("httpdns listening") {
            break field(&line, "admin_addr").expect("admin_addr").to_string();
        }
    };

    let forged = "fiber cut\n2026-11-26T00:00:00.000000Z  INFO httpdns::admin: admin change token=\"root\"\u{1b}[2J";
    let response = reqwest::blocking::Client::new()
        .post(format!("http://{admin}/admin/zones/gz-telecom/drain"))
        .bearer_auth(common::ADMIN_TOKEN)
        .json(&json!({"weight": 0, "reason": forged}))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    let mut lines = Vec::new();
    loop {
        let line = next_line("the admin change line");
        let done = line.contains("admin change");
        lines.push(line);
        if done {
            break;
        }
    }
    // Read on until the log is quiet a moment later, to catch a forged continuation.
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
        lines.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();

    let change = lines.iter().find(|l| l.contains("admin change")).unwrap();
    assert!(change.contains(r#"reason="fiber cut\n2026"#), "{change}");
    assert!(
        !lines.iter().any(|l| l.starts_with("2026-11-26T00:00:00")),
        "a reason forged a log line: {lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains('\u{1b}')),
        "a raw escape reached the log: {lines:#?}"
    );
}

//! `[geoip] overrides`: an operator's CSV laid over the IP database, through the real
//! server — most specific prefix wins, and the file reloads with the database (watcher and
//! `POST /admin/reload`), a broken file keeping the last good one.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use httpdns::ServerConfig;
use reqwest::Method;

const HEADER: &str = "network,country,province,city,carrier,isp,asn\n";

/// A workspace whose config names `overrides.csv` beside it.
fn workspace(dir: &Path, overrides: &str) -> PathBuf {
    let path = common::workspace(dir);
    let mut config = std::fs::read_to_string(&path).unwrap();
    config.push_str("overrides = \"overrides.csv\"\n");
    std::fs::write(&path, config).unwrap();
    std::fs::write(dir.join("overrides.csv"), overrides).unwrap();
    path
}

async fn start(path: &Path) -> common::Running {
    let config = ServerConfig::load(path).unwrap();
    let options = httpdns::StartOptions {
        config_path: Some(path.to_path_buf()),
        watch_files: true,
        ..common::options()
    };
    common::start_with(config, options, None).await
}

#[tokio::test]
async fn most_specific_override_steers_and_edits_reload_with_the_database() {
    let dir = tempfile::tempdir().unwrap();
    // Google's resolver, overridden: the /24 as Guangdong Telecom, one host as Beijing
    // Unicom. The wide row comes last to show that order does not matter.
    let path = workspace(
        dir.path(),
        &format!("{HEADER}8.8.8.8/32,CN,北京,,unicom,,\n8.8.8.0/24,CN,广东,,telecom,,\n"),
    );
    let s = start(&path).await;
    assert_eq!(
        s.zone_for("api.example.com", "8.8.8.8").await.0,
        "bj-unicom"
    );
    assert_eq!(
        s.zone_for("api.example.com", "8.8.8.9").await.0,
        "gz-telecom"
    );
    // Outside every override the database answers as before.
    assert_eq!(
        s.zone_for("api.example.com", "1.1.1.1").await.0,
        "hk-overseas"
    );
    let (_, body) = s.get_json("/resolve?host=api.example.com&ip=8.8.8.9").await;
    assert_eq!(body["geo"]["province"], "CN-GD");

    // The watcher reloads on an edit of the overrides file alone.
    std::fs::write(
        dir.path().join("overrides.csv"),
        format!("{HEADER}8.8.8.0/24,CN,广东,,telecom,,\n"),
    )
    .unwrap();
    let moved = common::wait_until(Duration::from_secs(10), || async {
        s.zone_for("api.example.com", "8.8.8.8").await.0 == "gz-telecom"
    })
    .await;
    assert!(moved.is_some(), "overrides edit not picked up within 10 s");

    // A broken file is refused with its line; the last good overrides keep serving.
    std::fs::write(
        dir.path().join("overrides.csv"),
        format!("{HEADER}8.8.8.0/33,CN,,,,,\n"),
    )
    .unwrap();
    let (status, body) = s.admin(Method::POST, "/admin/reload", None).await;
    assert_eq!(status, 422, "{body}");
    let text = body.to_string();
    assert!(
        text.contains("overrides.csv line 2") && text.contains("bad network"),
        "{text}"
    );
    assert_eq!(
        s.zone_for("api.example.com", "8.8.8.8").await.0,
        "gz-telecom"
    );
}

#[tokio::test]
async fn empty_override_cells_keep_the_database_answer() {
    let dir = tempfile::tempdir().unwrap();
    // Only the carrier: the test database's country and province for 202.96.128.86
    // (Guangzhou, China Telecom) stay.
    let path = workspace(
        dir.path(),
        &format!("{HEADER}202.96.128.0/24,,,,unicom,,\n"),
    );
    let s = start(&path).await;
    let (status, body) = s
        .get_json("/resolve?host=api.example.com&ip=202.96.128.86")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["geo"]["carrier"], "unicom");
    assert_eq!(body["geo"]["province"], "CN-GD");
    assert_eq!(body["geo"]["country"], "CN");
}

//! Reloads: admin API and file watching; a broken file never takes the service down.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use httpdns::ServerConfig;
use reqwest::Method;

/// A config + zones directory in a temp dir, copied from the shipped example.
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = common::workspace(dir.path());
    (dir, path)
}

async fn start(path: &Path, watch: bool) -> common::Running {
    let config = ServerConfig::load(path).unwrap();
    let options = httpdns::StartOptions {
        config_path: Some(path.to_path_buf()),
        watch_files: watch,
        ..common::options()
    };
    common::start_with(config, options, None).await
}

fn retarget_img_telecom(zones: &Path, to: &str) {
    let file = zones.join("img.example.com.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text.replacen(
        "carrier = [\"telecom\"]\nzone = \"gz-telecom\"",
        &format!("carrier = [\"telecom\"]\nzone = \"{to}\""),
        1,
    );
    std::fs::write(&file, text).unwrap();
}

#[tokio::test]
async fn broken_zones_file_is_refused_with_every_error_and_the_old_config_serves() {
    let (dir, path) = workspace();
    let s = start(&path, false).await;
    let zones = dir.path().join("zones");
    let before = s
        .get_json("/resolve?host=img.example.com&ip=202.96.128.86")
        .await
        .1;
    std::fs::write(
        zones.join("broken.toml"),
        "[[domain]]\nname = \"new.example.com\"\nttl = 0\nzones = [\"gz-telecom\", \"mars\"]\ndefault_zone = \"gz-telecom\"\n",
    )
    .unwrap();
    let (status, body) = s.admin(Method::POST, "/admin/reload", None).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "reload_failed");
    let errors: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("broken.toml") && e.contains("ttl")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("broken.toml") && e.contains("unknown zone \"mars\"")),
        "{errors:?}"
    );
    let after = s
        .get_json("/resolve?host=img.example.com&ip=202.96.128.86")
        .await
        .1;
    assert_eq!(after["answers"][0]["zone"], before["answers"][0]["zone"]);
    assert_eq!(
        after["epoch"], before["epoch"],
        "a failed reload changes nothing"
    );
    let (status, _) = s.get_json("/resolve?host=new.example.com").await;
    assert_eq!(status, 200);

    // Fix it: the new domain and a changed rule are served after reload.
    std::fs::write(
        zones.join("broken.toml"),
        "[[domain]]\nname = \"new.example.com\"\nttl = 30\nzones = [\"gz-telecom\"]\ndefault_zone = \"gz-telecom\"\n",
    )
    .unwrap();
    retarget_img_telecom(&zones, "sh-bgp");
    let (status, body) = s.admin(Method::POST, "/admin/reload", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["domains"], 3);
    assert_eq!(
        s.zone_for("img.example.com", "202.96.128.86").await.0,
        "sh-bgp"
    );
    assert_eq!(
        s.zone_for("new.example.com", "8.8.8.8").await.0,
        "gz-telecom"
    );
    let epoch = s.get_json("/resolve?host=img.example.com").await.1["epoch"]
        .as_u64()
        .unwrap();
    assert!(epoch > before["epoch"].as_u64().unwrap());
}

#[tokio::test]
async fn broken_ip_database_is_refused_and_the_old_one_serves() {
    let (dir, path) = workspace();
    let db = dir.path().join("geo.mmdb");
    std::fs::copy(common::repo().join("geoip/test-geo.mmdb"), &db).unwrap();
    let text = std::fs::read_to_string(&path).unwrap().replace(
        &common::repo()
            .join("geoip/test-geo.mmdb")
            .display()
            .to_string(),
        &db.display().to_string(),
    );
    std::fs::write(&path, text).unwrap();
    let s = start(&path, false).await;
    std::fs::write(&db, b"garbage").unwrap();
    let (status, body) = s.admin(Method::POST, "/admin/reload", None).await;
    assert_eq!(status, 422);
    assert!(
        body["errors"][0].as_str().unwrap().contains("geo.mmdb"),
        "{body}"
    );
    assert_eq!(
        s.zone_for("api.example.com", "202.96.128.86").await.0,
        "gz-telecom"
    );
}

#[tokio::test]
async fn a_request_storm_during_reloads_sees_no_error() {
    let (dir, path) = workspace();
    let s = Arc::new(start(&path, false).await);
    let zones = dir.path().join("zones");
    let storm: Vec<_> = (0..4)
        .map(|_| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                for _ in 0..150 {
                    let (status, body) = s
                        .get_json("/resolve?host=api.example.com,img.example.com&ip=202.96.128.86")
                        .await;
                    assert_eq!(status, 200, "{body}");
                    for answer in body["answers"].as_array().unwrap() {
                        assert!(answer.get("error").is_none(), "{answer}");
                        assert!(!answer["ips"].as_array().unwrap().is_empty());
                    }
                }
            })
        })
        .collect();
    let file = zones.join("img.example.com.toml");
    let original = std::fs::read_to_string(&file).unwrap();
    retarget_img_telecom(&zones, "sh-bgp");
    let retargeted = std::fs::read_to_string(&file).unwrap();
    for i in 0..10 {
        std::fs::write(&file, if i % 2 == 0 { &original } else { &retargeted }).unwrap();
        let (status, body) = s.admin(Method::POST, "/admin/reload", None).await;
        assert_eq!(status, 200, "{body}");
    }
    for task in storm {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn file_changes_are_picked_up_by_the_watcher() {
    let (dir, path) = workspace();
    let s = start(&path, true).await;
    let zones = dir.path().join("zones");
    assert_eq!(
        s.zone_for("img.example.com", "202.96.128.86").await.0,
        "gz-telecom"
    );
    retarget_img_telecom(&zones, "bj-unicom");
    let moved = common::wait_until(Duration::from_secs(10), || async {
        s.zone_for("img.example.com", "202.96.128.86").await.0 == "bj-unicom"
    })
    .await;
    assert!(moved.is_some(), "watcher did not reload within 10 s");
    // A broken edit is ignored; the last good config keeps serving.
    let mut status = s.server.reloader().status();
    status.mark_unchanged();
    std::fs::write(zones.join("img.example.com.toml"), "[[domain]\nbroken").unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|st| st.last_result == Some("failed")),
    )
    .await
    .expect("the watcher tried the broken edit within 10 s")
    .unwrap();
    assert_eq!(
        s.zone_for("img.example.com", "202.96.128.86").await.0,
        "bj-unicom"
    );
}

#[tokio::test]
async fn dns_apexes_reload_with_the_zones() {
    let (_dir, path) = workspace();
    let base = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{base}[dns]\n[[dns.apex]]\nname = \"example.com\"\nns = [\"ns1.example.com\"]\n"),
    )
    .unwrap();
    let s = start(&path, false).await;
    let status = |body: serde_json::Value| body["Status"].as_u64().unwrap();
    let (_, body) = s
        .get_json("/dns-query?name=missing.example.com&type=A")
        .await;
    assert_eq!(status(body), 3, "NXDOMAIN under the apex");
    std::fs::write(&path, base).unwrap();
    let (code, _) = s.admin(Method::POST, "/admin/reload", None).await;
    assert_eq!(code, 200);
    let (_, body) = s
        .get_json("/dns-query?name=missing.example.com&type=A")
        .await;
    assert_eq!(status(body), 5, "REFUSED once the apex is gone");
}

#[tokio::test]
async fn a_reload_names_start_only_changes_and_keeps_running_the_started_values() {
    let (_dir, path) = workspace();
    let s = start(&path, false).await;
    let (status, body) = s.admin(Method::POST, "/admin/reload", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], "applied");
    assert_eq!(body["restart_required"], serde_json::json!([]));

    // One live change (batch size) and two start-only ones (DNS listener, body bound).
    let base = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!(
            "dns_listen = \"127.0.0.1:0\"\n{base}[limits]\nmax_batch_hosts = 1\nmax_body_bytes = 1024\n"
        ),
    )
    .unwrap();
    let (status, body) = s.admin(Method::POST, "/admin/reload", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], "applied");
    assert_eq!(
        body["restart_required"],
        serde_json::json!(["dns_listen", "limits.max_body_bytes"])
    );
    let (_, zones) = s.admin(Method::GET, "/admin/zones", None).await;
    assert_eq!(zones["reload"]["last_result"], "applied");
    assert_eq!(
        zones["reload"]["restart_required"],
        serde_json::json!(["dns_listen", "limits.max_body_bytes"])
    );

    // The live field applies at once...
    let (status, _) = s
        .get_json("/resolve?host=api.example.com,img.example.com")
        .await;
    assert_eq!(status, 400, "max_batch_hosts = 1 is live");
    // ...the start-only one does not: a 2 KiB body is still read (64 KiB bound).
    let padded = format!(
        "{{\"host\": \"api.example.com\", \"reports\": [{{\"ip\": \"203.0.113.10\", \"rtt_ms\": 20, \"ok\": true}}]}}{}",
        " ".repeat(2048)
    );
    let response = s
        .client
        .post(s.url("/report"))
        .header("content-type", "application/json")
        .body(padded)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert!(
        s.server.dns_addr.is_none(),
        "no DNS listener until a restart"
    );
}

#[tokio::test]
async fn a_reload_that_orphans_a_drain_says_so() {
    let (dir, path) = workspace();
    let s = start(&path, false).await;
    let (status, _) = s
        .admin(
            Method::POST,
            "/admin/zones/gz-telecom/drain",
            Some(serde_json::json!({"weight": 0, "reason": "fibre cut"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, zones) = s.admin(Method::GET, "/admin/zones", None).await;
    assert_eq!(zones["orphaned_overrides"], serde_json::json!([]));

    // Rename the drained zone everywhere in the zones files: the drain now matches nothing.
    let zones_dir = dir.path().join("zones");
    for entry in std::fs::read_dir(&zones_dir).unwrap() {
        let file = entry.unwrap().path();
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replace("gz-telecom", "gz-telecom-2")).unwrap();
    }
    let (status, body) = s.admin(Method::POST, "/admin/reload", None).await;
    assert_eq!(status, 200, "{body}");
    let (_, zones) = s.admin(Method::GET, "/admin/zones", None).await;
    assert_eq!(
        zones["orphaned_overrides"],
        serde_json::json!([{"kind": "drain", "zone": "gz-telecom"}])
    );
    assert!(s.metrics().await.contains("httpdns_orphaned_overrides"));
}

#[tokio::test]
async fn the_watcher_follows_a_zones_directory_replaced_by_another() {
    let (dir, path) = workspace();
    let s = start(&path, true).await;
    let zones = dir.path().join("zones");
    let fresh = dir.path().join("zones.new");
    std::fs::create_dir(&fresh).unwrap();
    for entry in std::fs::read_dir(&zones).unwrap() {
        let file = entry.unwrap().path();
        std::fs::copy(&file, fresh.join(file.file_name().unwrap())).unwrap();
    }
    retarget_img_telecom(&fresh, "bj-unicom");
    std::fs::rename(&zones, dir.path().join("zones.old")).unwrap();
    std::fs::rename(&fresh, &zones).unwrap();
    let moved = common::wait_until(Duration::from_secs(10), || async {
        s.zone_for("img.example.com", "202.96.128.86").await.0 == "bj-unicom"
    })
    .await;
    assert!(moved.is_some(), "the replaced directory was not reloaded");
    // An edit inside the new directory is seen too: the watch followed it.
    let file = zones.join("img.example.com.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replacen("zone = \"bj-unicom\"", "zone = \"sh-bgp\"", 1),
    )
    .unwrap();
    let edited = common::wait_until(Duration::from_secs(10), || async {
        s.zone_for("img.example.com", "202.96.128.86").await.0 == "sh-bgp"
    })
    .await;
    assert!(edited.is_some(), "an edit in the new directory went unseen");
}

#[cfg(unix)]
#[tokio::test]
async fn the_watcher_follows_a_configmap_style_symlink_swap() {
    use std::os::unix::fs::symlink;
    let (dir, path) = workspace();
    // Lay the zones out as a Kubernetes ConfigMap volume: versioned directories, a
    // `..data` symlink to the current one, and each file a symlink through `..data`.
    let zones = dir.path().join("zones");
    let v1 = zones.join("..v1");
    std::fs::create_dir(&v1).unwrap();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&zones).unwrap() {
        let file = entry.unwrap().path();
        if file.is_file() {
            let name = file.file_name().unwrap().to_owned();
            std::fs::rename(&file, v1.join(&name)).unwrap();
            names.push(name);
        }
    }
    symlink("..v1", zones.join("..data")).unwrap();
    for name in &names {
        symlink(Path::new("..data").join(name), zones.join(name)).unwrap();
    }
    let s = start(&path, true).await;
    assert_eq!(
        s.zone_for("img.example.com", "202.96.128.86").await.0,
        "gz-telecom"
    );
    // Publish a new version the way the kubelet does: new directory, new symlink, rename.
    let v2 = zones.join("..v2");
    std::fs::create_dir(&v2).unwrap();
    for name in &names {
        std::fs::copy(v1.join(name), v2.join(name)).unwrap();
    }
    retarget_img_telecom(&v2, "bj-unicom");
    symlink("..v2", zones.join("..data_tmp")).unwrap();
    std::fs::rename(zones.join("..data_tmp"), zones.join("..data")).unwrap();
    let moved = common::wait_until(Duration::from_secs(10), || async {
        s.zone_for("img.example.com", "202.96.128.86").await.0 == "bj-unicom"
    })
    .await;
    assert!(moved.is_some(), "the ..data swap was not reloaded");
}

//! Cluster mode against real etcd members and real httpdns processes on loopback:
//! drains reach every node, an etcd outage is survived, concurrent writers converge,
//! compare-and-set lets one writer win, a lost etcd member is tolerated, membership
//! and the single-node import work. Needs `etcd` and `etcdctl` (`bash .ci/deps.sh`).

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const HOST: &str = "api.example.com";
/// A Guangzhou Telecom client: home zone gz-telecom, failover sh-bgp.
const CLIENT: &str = "202.96.128.86";
const PREFIX: &str = "/httpdns/test";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Polls `check` until it returns `Some`; `None` once `deadline` passes.
fn poll_until<T>(deadline: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if start.elapsed() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls `check` until it returns `Some`; fails the test once `deadline` passes.
fn wait_for<T>(what: &str, deadline: Duration, check: impl FnMut() -> Option<T>) -> T {
    poll_until(deadline, check)
        .unwrap_or_else(|| panic!("timed out after {deadline:?} waiting for {what}"))
}

fn etcd_binary() -> &'static str {
    let found = Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "etcd is not installed: run `bash .ci/deps.sh` (Debian etcd-server, etcd-client)"
    );
    "etcd"
}

/// One etcd member, restartable on the same ports and data directory.
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data: PathBuf,
    child: Option<Child>,
}

impl Member {
    fn log(&self) -> PathBuf {
        self.data.with_extension("log")
    }

    /// The last lines etcd wrote, for a failure message.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

/// Real etcd members on loopback.
struct Etcd {
    members: Vec<Member>,
    initial_cluster: String,
    _dir: tempfile::TempDir,
}

impl Etcd {
    /// How long a member may take to report healthy. A three-member cluster elects its
    /// first leader only once all three are up, and on a loaded 2-core CI machine that
    /// has taken over 20 s.
    const HEALTHY_WITHIN: Duration = Duration::from_secs(45);

    /// A new cluster of `size` members on fresh loopback ports. A member that cannot
    /// start (its port, chosen free a moment before, taken by then by some other
    /// socket's ephemeral port) fails the attempt, and the cluster is started again on
    /// other ports; after three failed attempts the test fails with the members' logs.
    fn start(size: usize) -> Self {
        let mut failures = Vec::new();
        for _attempt in 0..3 {
            let mut etcd = Self::spawn_all(size);
            match (0..size).try_for_each(|i| etcd.healthy_within(i, Self::HEALTHY_WITHIN)) {
                Ok(()) => return etcd,
                // Dropping `etcd` stops every member of the failed attempt.
                Err(why) => failures.push(why),
            }
        }
        panic!(
            "etcd cluster did not start in three attempts:\n{}",
            failures.join("\n")
        );
    }

    fn spawn_all(size: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let members: Vec<Member> = (0..size)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                data: dir.path().join(format!("m{i}")),
                child: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut etcd = Self {
            members,
            initial_cluster,
            _dir: dir,
        };
        for i in 0..size {
            etcd.spawn(i);
        }
        etcd
    }

    fn spawn(&mut self, i: usize) {
        let m = &self.members[i];
        // Appended to across restarts; read back when a member fails to come up.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(m.log())
            .expect("etcd log file");
        let client = format!("http://127.0.0.1:{}", m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let child = Command::new(etcd_binary())
            .args(["--name", &m.name, "--data-dir"])
            .arg(&m.data)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &self.initial_cluster])
            .args([
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "httpdns-test",
            ])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--log-level", "warn", "--logger", "zap"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd starts");
        self.members[i].child = Some(child);
    }

    /// Waits for member `i` to report healthy; says why not (with the end of its log)
    /// if it exits or `deadline` passes first.
    fn healthy_within(&mut self, i: usize, deadline: Duration) -> Result<(), String> {
        let url = format!("http://127.0.0.1:{}/health", self.members[i].client_port);
        let http = reqwest::blocking::Client::new();
        let member = &mut self.members[i];
        let outcome = poll_until(deadline, || {
            let healthy = http
                .get(&url)
                .send()
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .is_some_and(|body| body["health"] == "true");
            if healthy {
                return Some(Ok(()));
            }
            let status = member.child.as_mut()?.try_wait().ok().flatten()?;
            Some(Err(format!("exited ({status})")))
        });
        let why = match outcome {
            Some(Ok(())) => return Ok(()),
            Some(Err(exited)) => exited,
            None => format!("not healthy within {deadline:?}"),
        };
        Err(format!(
            "etcd member {} (client port {}, peer port {}) {why}; end of its log:\n{}",
            member.name,
            member.client_port,
            member.peer_port,
            member.log_tail()
        ))
    }

    fn stop(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self, i: usize) {
        self.spawn(i);
        if let Err(why) = self.healthy_within(i, Self::HEALTHY_WITHIN) {
            panic!("{why}");
        }
    }

    fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// How many audit records etcd holds, read with the real `etcdctl`.
    fn audit_records(&self) -> usize {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoints().join(",")))
            .args([
                "get",
                &format!("{PREFIX}/audit/"),
                "--prefix",
                "--keys-only",
            ])
            .output()
            .expect("etcdctl runs");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with(PREFIX))
            .count()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.stop(i);
        }
    }
}

/// One httpdns process in cluster mode with its own workspace and state directory.
struct Node {
    dir: PathBuf,
    child: Child,
    public: String,
    admin: String,
    http: reqwest::blocking::Client,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a workspace for node `name` under `root` and returns its directory.
fn node_workspace(root: &Path, name: &str, etcd: &[String]) -> PathBuf {
    node_workspace_with(root, name, etcd, "")
}

/// Like [`node_workspace`], with `extra` lines appended to the `[cluster]` section.
fn node_workspace_with(root: &Path, name: &str, etcd: &[String], extra: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let config = common::workspace(&dir);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[cluster]\netcd = {}\nprefix = \"{PREFIX}\"\nnode = \"{name}\"\n{extra}",
        json!(etcd)
    ));
    std::fs::write(&config, text).unwrap();
    dir
}

impl Node {
    fn start(dir: &Path) -> Self {
        let (child, fields) =
            common::spawn_listening(common::binary_command(&dir.join("httpdns.toml"), &[]));
        Self {
            dir: dir.to_path_buf(),
            child,
            public: format!("http://{}", fields["public_addr"].as_str().unwrap()),
            admin: format!("http://{}", fields["admin_addr"].as_str().unwrap()),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    /// The zone the node answers the Guangzhou Telecom client from right now.
    fn zone(&self) -> String {
        self.zone_of(HOST)
    }

    fn zone_of(&self, host: &str) -> String {
        let body: Value = self
            .http
            .get(format!("{}/resolve?host={host}&ip={CLIENT}", self.public))
            .send()
            .unwrap()
            .json()
            .unwrap();
        body["answers"][0]["zone"].as_str().unwrap().to_string()
    }

    fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.admin))
            .bearer_auth(common::ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    }

    fn drain(&self, zone: &str, body: Value) -> (u16, Value) {
        self.admin(
            reqwest::Method::POST,
            &format!("/admin/zones/{zone}/drain"),
            Some(body),
        )
    }

    fn undrain(&self, zone: &str) -> (u16, Value) {
        self.admin(
            reqwest::Method::DELETE,
            &format!("/admin/zones/{zone}/drain"),
            None,
        )
    }

    fn cluster(&self) -> Value {
        self.admin(reqwest::Method::GET, "/admin/cluster", None).1
    }

    fn metric(&self, name: &str) -> Option<f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.admin))
            .bearer_auth(common::ADMIN_TOKEN)
            .send()
            .ok()?
            .text()
            .ok()?;
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        *self = Node::start(&self.dir.clone());
    }
}

fn fleet(root: &Path, etcd: &Etcd, names: &[&str]) -> Vec<Node> {
    let dirs: Vec<PathBuf> = names
        .iter()
        .map(|n| node_workspace(root, n, &etcd.endpoints()))
        .collect();
    let nodes: Vec<Node> = dirs.iter().map(|d| Node::start(d)).collect();
    for node in &nodes {
        wait_for("node connected to etcd", Duration::from_secs(20), || {
            (node.cluster()["etcd"] == "connected").then_some(())
        });
    }
    nodes
}

/// Waits until every node answers from `zone`; returns the time since `since`.
fn every_node_answers_from(
    nodes: &[&Node],
    zone: &str,
    since: Instant,
    deadline: Duration,
) -> Duration {
    for node in nodes {
        wait_for(&format!("answers from {zone}"), deadline, || {
            (node.zone() == zone).then_some(())
        });
    }
    since.elapsed()
}

fn median_max(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() - 1])
}

#[test]
fn a_drain_on_one_node_reaches_every_node_within_a_second() {
    let etcd = Etcd::start(1);
    let root = tempfile::tempdir().unwrap();
    let nodes = fleet(root.path(), &etcd, &["node-a", "node-b", "node-c"]);
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    assert_eq!(a.zone(), "gz-telecom");

    let mut drains = Vec::new();
    let mut undrains = Vec::new();
    for round in 0..20 {
        // Timed from the moment the request is sent on node A until all three answer
        // from the failover zone (each node polled in turn).
        let sent = Instant::now();
        let (status, body) = a.drain(
            "gz-telecom",
            json!({"weight": 0, "reason": format!("round {round}")}),
        );
        assert_eq!(status, 200, "{body}");
        assert!(body["revision"].as_i64().unwrap() > 0, "{body}");
        drains.push(every_node_answers_from(
            &[b, c, a],
            "sh-bgp",
            sent,
            Duration::from_secs(1),
        ));
        let sent = Instant::now();
        let (status, body) = c.undrain("gz-telecom");
        assert_eq!(status, 200, "{body}");
        undrains.push(every_node_answers_from(
            &[a, b, c],
            "gz-telecom",
            sent,
            Duration::from_secs(1),
        ));
    }
    let (median, max) = median_max(drains);
    eprintln!("BENCH drain via A to every node, 20 rounds: median {median:?}, max {max:?}");
    let (median, max) = median_max(undrains);
    eprintln!("BENCH undrain via C to every node, 20 rounds: median {median:?}, max {max:?}");

    // Membership: every node is listed with the revision it applied, all the same.
    let view = wait_for("every node at one revision", Duration::from_secs(5), || {
        let view = a.cluster();
        let nodes = view["nodes"].as_array()?.clone();
        let revision = view["revision"].as_i64()?;
        (nodes.len() == 3 && nodes.iter().all(|n| n["revision"] == revision)).then_some(view)
    });
    let mut names: Vec<&str> = view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["node-a", "node-b", "node-c"]);
    assert_eq!(view["node"], "node-a");
    assert!(view["since_ms"].as_u64().unwrap() > 0);
    // 40 changes, each answered 200, each with exactly one audit record in etcd.
    assert_eq!(etcd.audit_records(), 40);
    let local = std::fs::read_to_string(a.dir.join("state/audit.log")).unwrap();
    assert_eq!(
        local.lines().count(),
        20,
        "node-a's local audit log holds its own 20"
    );

    // A node killed without leaving disappears once its lease runs out (TTL 10 s).
    let mut nodes = nodes;
    let c = nodes.pop().unwrap();
    let mut killed = c;
    let _ = killed.child.kill();
    wait_for(
        "node-c to leave the listing",
        Duration::from_secs(15),
        || {
            let listed = nodes[0].cluster()["nodes"].as_array()?.len();
            (listed == 2).then_some(())
        },
    );

    // A restart keeps the node's local audit log whole (it records fleet changes).
    nodes[0].restart();
    let local = std::fs::read_to_string(nodes[0].dir.join("state/audit.log")).unwrap();
    assert_eq!(local.lines().count(), 20);
}

#[test]
fn nodes_keep_serving_the_last_state_through_an_etcd_outage() {
    let mut etcd = Etcd::start(1);
    let root = tempfile::tempdir().unwrap();
    let mut nodes = fleet(root.path(), &etcd, &["node-a", "node-b", "node-c"]);
    let (status, _) = nodes[0].drain("gz-telecom", json!({"weight": 0, "reason": "fiber cut"}));
    assert_eq!(status, 200);
    every_node_answers_from(
        &nodes.iter().collect::<Vec<_>>(),
        "sh-bgp",
        Instant::now(),
        Duration::from_secs(1),
    );

    etcd.stop(0);
    for node in &nodes {
        wait_for("disconnected", Duration::from_secs(10), || {
            (node.cluster()["etcd"] == "disconnected").then_some(())
        });
        assert_eq!(node.zone(), "sh-bgp", "still drained while etcd is down");
    }
    let (status, body) = nodes[2].drain("bj-unicom", json!({"weight": 0}));
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "control_plane_unavailable");
    assert_eq!(nodes[0].metric("httpdns_cluster_connected"), Some(0.0));
    wait_for("stale seconds grow", Duration::from_secs(5), || {
        (nodes[0].metric("httpdns_cluster_stale_seconds")? > 0.0).then_some(())
    });
    let zones = nodes[0].admin(reqwest::Method::GET, "/admin/zones", None).1;
    assert_eq!(zones["cluster"]["etcd"], "disconnected");

    // A node restarted during the outage still has the drain, from its disk cache.
    nodes[1].restart();
    assert_eq!(nodes[1].zone(), "sh-bgp");
    assert_eq!(nodes[1].cluster()["etcd"], "disconnected");

    etcd.restart(0);
    for node in &nodes {
        wait_for("connected again", Duration::from_secs(15), || {
            (node.cluster()["etcd"] == "connected").then_some(())
        });
    }
    assert_eq!(nodes[0].metric("httpdns_cluster_connected"), Some(1.0));
    let (status, body) = nodes[1].undrain("gz-telecom");
    assert_eq!(status, 200, "{body}");
    every_node_answers_from(
        &nodes.iter().collect::<Vec<_>>(),
        "gz-telecom",
        Instant::now(),
        Duration::from_secs(1),
    );
}

#[test]
fn concurrent_writers_converge_and_if_revision_lets_exactly_one_win() {
    let etcd = Etcd::start(1);
    let root = tempfile::tempdir().unwrap();
    let nodes = fleet(root.path(), &etcd, &["node-a", "node-b", "node-c"]);
    const ROUNDS: usize = 25;
    let ok = std::thread::scope(|scope| {
        let writers: Vec<_> = nodes[..2]
            .iter()
            .enumerate()
            .map(|(w, node)| {
                scope.spawn(move || {
                    (0..ROUNDS)
                        .filter(|round| {
                            let weight = (w * 50 + round) as f64;
                            node.drain(
                                "gz-telecom",
                                json!({"weight": weight, "reason": format!("w{w}")}),
                            )
                            .0 == 200
                        })
                        .count()
                })
            })
            .collect();
        writers
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum::<usize>()
    });
    assert_eq!(ok, 2 * ROUNDS, "every concurrent write was committed");
    assert_eq!(etcd.audit_records(), 2 * ROUNDS, "one audit record per 200");
    // Every node converges on one state at one revision.
    wait_for("convergence", Duration::from_secs(5), || {
        let views: Vec<(Value, Value)> = nodes
            .iter()
            .map(|n| {
                let zones = n.admin(reqwest::Method::GET, "/admin/zones", None).1;
                (
                    n.cluster()["revision"].clone(),
                    zones["zones"][0]["drains"].clone(),
                )
            })
            .collect();
        views.iter().all(|v| *v == views[0]).then_some(())
    });

    // Compare-and-set: two writers with the same if_revision, exactly one wins.
    for round in 0..10 {
        let (status, body) = nodes[2].drain("gz-telecom", json!({"weight": 90, "reason": "base"}));
        assert_eq!(status, 200);
        let base = body["revision"].as_i64().unwrap();
        let results: Vec<(u16, Value)> = std::thread::scope(|scope| {
            let handles: Vec<_> = nodes[..2]
                .iter()
                .map(|node| {
                    scope.spawn(move || {
                        node.drain("gz-telecom", json!({"weight": round, "if_revision": base}))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
        statuses.sort();
        assert_eq!(statuses, [200, 409], "{results:?}");
        let (winner, loser) = if results[0].0 == 200 {
            (&results[0].1, &results[1].1)
        } else {
            (&results[1].1, &results[0].1)
        };
        assert_eq!(loser["error"], "conflict");
        assert_eq!(
            loser["revision"], winner["revision"],
            "409 names the winning revision"
        );
    }
}

#[test]
fn losing_one_etcd_member_of_three_keeps_writes_and_watches_working() {
    let mut etcd = Etcd::start(3);
    let root = tempfile::tempdir().unwrap();
    let nodes = fleet(root.path(), &etcd, &["node-a", "node-b"]);
    let (status, _) = nodes[0].drain("gz-telecom", json!({"weight": 0}));
    assert_eq!(status, 200);
    every_node_answers_from(
        &[&nodes[1]],
        "sh-bgp",
        Instant::now(),
        Duration::from_secs(1),
    );
    etcd.stop(0);
    let dead = etcd.endpoints()[0].clone();
    // Every node finds the dead member on its own and routes around it. The live two
    // count as healthy only once they agree on a leader again: when the stopped member
    // led, that is an election (500 ms timeout, more rounds on a split vote) plus a
    // probe round (1 s), which under the whole suite's load on two cores took over 5 s
    // once; the same 10 s bound as the write below.
    for node in &nodes {
        wait_for("the dead member marked", Duration::from_secs(10), || {
            let health: Vec<Value> = node.cluster()["endpoints"]
                .as_array()?
                .iter()
                .map(|e| e["healthy"].clone())
                .collect();
            (health == [json!(false), json!(true), json!(true)]).then_some(())
        });
        let up = format!("httpdns_cluster_etcd_endpoint_up{{endpoint=\"{dead}\"}}");
        assert_eq!(node.metric(&up), Some(0.0), "{up}");
    }
    // The nodes may reconnect to another member; a write succeeds within a deadline.
    let body = wait_for(
        "a write with one member down",
        Duration::from_secs(10),
        || {
            let (status, body) = nodes[1].undrain("gz-telecom");
            (status == 200).then_some(body)
        },
    );
    assert!(body["revision"].as_i64().unwrap() > 0);
    every_node_answers_from(
        &[&nodes[0], &nodes[1]],
        "gz-telecom",
        Instant::now(),
        Duration::from_secs(5),
    );
    let (status, _) = nodes[0].drain("bj-unicom", json!({"weight": 0}));
    assert_eq!(status, 200);
    wait_for("the watch still delivers", Duration::from_secs(5), || {
        let zones = nodes[1].admin(reqwest::Method::GET, "/admin/zones", None).1;
        let bj = zones["zones"]
            .as_array()?
            .iter()
            .find(|z| z["zone"] == "bj-unicom")?
            .clone();
        (bj["keep_weight_all_domains"] == 0.0).then_some(())
    });
    // A session that was on the dead member reconnects to a live one.
    for node in &nodes {
        wait_for("etcd connected", Duration::from_secs(5), || {
            (node.cluster()["etcd"] == "connected").then_some(())
        });
    }
    etcd.restart(0);
    for node in &nodes {
        wait_for("the member back in use", Duration::from_secs(5), || {
            let endpoints = node.cluster()["endpoints"].clone();
            (endpoints[0] == json!({"endpoint": dead, "healthy": true})).then_some(())
        });
    }
}

#[test]
fn a_single_nodes_state_json_is_imported_on_first_cluster_start() {
    let etcd = Etcd::start(1);
    let root = tempfile::tempdir().unwrap();
    let a_dir = node_workspace(root.path(), "node-a", &etcd.endpoints());
    // The drain a single node made before the fleet existed.
    std::fs::create_dir_all(a_dir.join("state")).unwrap();
    std::fs::write(
        a_dir.join("state/state.json"),
        json!({"drains": {"gz-telecom": {"*": {"from_weight": 100.0, "to_weight": 0.0, "start_ms": 1, "end_ms": 1, "reason": "legacy", "by": "sre"}}}, "disabled": {}}).to_string(),
    )
    .unwrap();
    let a = Node::start(&a_dir);
    assert_eq!(
        a.zone(),
        "sh-bgp",
        "drained from the first request, before etcd answers"
    );
    let b = Node::start(&node_workspace(root.path(), "node-b", &etcd.endpoints()));
    every_node_answers_from(&[&b], "sh-bgp", Instant::now(), Duration::from_secs(10));
    wait_for("state.json set aside", Duration::from_secs(5), || {
        (!a_dir.join("state/state.json").exists()).then_some(())
    });
    let aside = std::fs::read_dir(a_dir.join("state"))
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state.json.imported-")
        });
    assert!(aside, "the imported file is kept, renamed");
}

/// Runs `httpdns admin push-zones`; returns success, stdout, and stdout + stderr.
fn push_zones(config: &Path, dir: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_httpdns"))
        .arg("--config")
        .arg(config)
        .args(["admin", "push-zones"])
        .arg(dir)
        .output()
        .expect("httpdns runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        text,
    )
}

#[test]
fn pushed_zones_are_validated_before_etcd_and_by_every_node() {
    let mut etcd = Etcd::start(1);
    let root = tempfile::tempdir().unwrap();
    let zones = "zones = \"etcd\"\n";
    let a_dir = node_workspace_with(root.path(), "node-a", &etcd.endpoints(), zones);
    let b_dir = node_workspace_with(root.path(), "node-b", &etcd.endpoints(), zones);
    // node-b reads its own copy of the IP database.
    let b_db = b_dir.join("geo.mmdb");
    std::fs::copy(common::repo().join("geoip/test-geo.mmdb"), &b_db).unwrap();
    let b_config = b_dir.join("httpdns.toml");
    let text = std::fs::read_to_string(&b_config).unwrap();
    let original_db = common::repo().join("geoip/test-geo.mmdb");
    std::fs::write(
        &b_config,
        text.replace(&*original_db.to_string_lossy(), "geo.mmdb"),
    )
    .unwrap();
    let mut a = Node::start(&a_dir);
    let b = Node::start(&b_dir);
    for node in [&a, &b] {
        wait_for("connected", Duration::from_secs(20), || {
            (node.cluster()["etcd"] == "connected").then_some(())
        });
    }
    assert_eq!(a.zone_of("img.example.com"), "gz-telecom");

    // A set with an error never reaches etcd.
    let bad = root.path().join("bad-zones");
    std::fs::create_dir_all(&bad).unwrap();
    for entry in std::fs::read_dir(common::repo().join("zones")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, bad.join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(bad.join("img.example.com.toml"), "[[domain]]\nname = ").unwrap();
    let (ok, _, output) = push_zones(&a_dir.join("httpdns.toml"), &bad);
    assert!(!ok, "{output}");
    assert!(output.contains("img.example.com.toml"), "{output}");
    let keys = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", etcd.endpoints().join(",")))
        .args(["get", &format!("{PREFIX}/zones"), "-w", "json"])
        .output()
        .unwrap();
    let got: Value = serde_json::from_slice(&keys.stdout).expect("etcdctl answers JSON");
    assert!(got["header"].is_object(), "{got}");
    assert!(got.get("kvs").is_none(), "nothing was pushed: {got}");

    // node-b's IP database is now unreadable: it rejects the next push, node-a applies it.
    std::fs::write(&b_db, b"not an mmdb").unwrap();
    let good = root.path().join("good-zones");
    std::fs::create_dir_all(&good).unwrap();
    for entry in std::fs::read_dir(common::repo().join("zones")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, good.join(path.file_name().unwrap())).unwrap();
    }
    let img = std::fs::read_to_string(good.join("img.example.com.toml")).unwrap();
    std::fs::write(
        good.join("img.example.com.toml"),
        img.replacen("zone = \"gz-telecom\"", "zone = \"sh-bgp\"", 1),
    )
    .unwrap();
    let (ok, stdout, output) = push_zones(&a_dir.join("httpdns.toml"), &good);
    assert!(ok, "{output}");
    let pushed: Value = serde_json::from_str(&stdout).unwrap();
    let revision = pushed["zones_revision"].as_i64().unwrap();
    wait_for(
        "node-a serves the pushed zones",
        Duration::from_secs(10),
        || (a.zone_of("img.example.com") == "sh-bgp").then_some(()),
    );
    let view = wait_for(
        "node-b's rejection is visible",
        Duration::from_secs(10),
        || {
            let view = a.cluster();
            let nodes = view["nodes"].as_array()?.clone();
            let b_record = nodes.iter().find(|n| n["node"] == "node-b")?.clone();
            let a_record = nodes.iter().find(|n| n["node"] == "node-a")?.clone();
            (a_record["zones_revision"] == revision && b.cluster()["zones_error"].is_string())
                .then_some((b_record, view["zones_revision"].clone()))
        },
    );
    assert_eq!(view.1, revision);
    assert!(
        view.0["zones_revision"].as_i64().unwrap() < revision,
        "node-b lags: {}",
        view.0
    );
    assert_eq!(
        b.zone_of("img.example.com"),
        "gz-telecom",
        "node-b keeps its last good zones"
    );
    assert!(
        b.metric("httpdns_cluster_zones_rejected_total")
            .unwrap_or(0.0)
            >= 1.0
    );

    // A node started while etcd is down serves the zones it cached on disk.
    etcd.stop(0);
    a.restart();
    assert_eq!(a.zone_of("img.example.com"), "sh-bgp");
    assert_eq!(a.cluster()["zones_revision"], revision);
}

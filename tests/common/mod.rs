//! Test harness: starts the real server on 127.0.0.1 with ephemeral ports.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use httpdns::admin::AdminTokens;
use httpdns::{Server, ServerConfig, StartOptions};
use serde_json::Value;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped example config, listening on ephemeral loopback ports, with its state
/// directory under `state_dir`.
pub fn example_config(state_dir: &Path) -> ServerConfig {
    let mut config = ServerConfig::load(&repo().join("deploy/example/httpdns.toml"))
        .expect("example config loads");
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.admin_listen = "127.0.0.1:0".parse().unwrap();
    config.state_dir = state_dir.to_path_buf();
    config
}

pub fn options() -> StartOptions {
    StartOptions {
        admin_tokens: AdminTokens::single("tester", ADMIN_TOKEN),
        ..StartOptions::default()
    }
}

/// A config file in `dir` with its own copy of the shipped zones (`dir/zones`), state in
/// `dir/state`, ephemeral loopback ports and the test IP database. Returns its path.
pub fn workspace(dir: &Path) -> PathBuf {
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    for entry in std::fs::read_dir(repo().join("zones")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, zones.join(path.file_name().unwrap())).unwrap();
    }
    let config = format!(
        "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nzones_dir = \"zones\"\nstate_dir = \"state\"\n[geoip]\ndatabase = \"{}\"\n",
        repo().join("geoip/test-geo.mmdb").display()
    );
    let path = dir.join("httpdns.toml");
    std::fs::write(&path, config).unwrap();
    path
}

pub struct Running {
    pub server: Server,
    pub base: String,
    pub admin: String,
    pub client: reqwest::Client,
    pub state: Option<tempfile::TempDir>,
}

impl Running {
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.base, path_and_query)
    }

    pub fn admin_url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.admin, path_and_query)
    }

    pub async fn get_json(&self, path_and_query: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.url(path_and_query))
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json body"))
    }

    /// The zone answering `host` for client `ip`, and whether it is a failover.
    pub async fn zone_for(&self, host: &str, ip: &str) -> (String, bool) {
        let (status, body) = self
            .get_json(&format!("/resolve?host={host}&ip={ip}"))
            .await;
        assert_eq!(status, 200, "{body}");
        let answer = &body["answers"][0];
        (
            answer["zone"].as_str().unwrap().to_string(),
            answer["failover"].as_bool().unwrap(),
        )
    }

    /// The Prometheus text from the admin listener.
    pub async fn metrics(&self) -> String {
        let response = self
            .client
            .get(self.admin_url("/metrics"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("metrics request");
        response.text().await.expect("metrics body")
    }

    /// An admin request with the test token; returns status and JSON body.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, self.admin_url(path))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

pub async fn start_with(
    config: ServerConfig,
    options: StartOptions,
    state: Option<tempfile::TempDir>,
) -> Running {
    let server = Server::start(config, options).await.expect("server starts");
    let base = format!("http://{}", server.public_addr);
    let admin = server
        .admin_addr
        .map(|a| format!("http://{a}"))
        .unwrap_or_default();
    Running {
        server,
        base,
        admin,
        client: reqwest::Client::new(),
        state,
    }
}

/// Starts the example server with the test admin token.
pub async fn start_example() -> Running {
    let state = tempfile::tempdir().unwrap();
    let config = example_config(state.path());
    start_with(config, options(), Some(state)).await
}

/// Polls `check` every 20 ms until it is true or `limit` passes; returns the time taken.
pub async fn wait_until<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// A running server with classic DNS on and the test DNS zones (`tests/data/dns-zones`:
/// `local.example.com`, `big.example.com`) or, with `example_zones`, the shipped ones.
pub fn dns_config(state_dir: &Path, example_zones: bool) -> ServerConfig {
    let mut config = example_config(state_dir);
    config.dns_listen = Some("127.0.0.1:0".parse().unwrap());
    if !example_zones {
        config.zones_dir = repo().join("tests/data/dns-zones");
        config.limits.max_answer_ips = 200;
    }
    config
}

/// Serves the public listener over HTTPS with a self-signed pair made now under `dir`.
pub fn with_tls(config: &mut ServerConfig, dir: &Path) {
    let names = ["localhost".to_string(), "127.0.0.1".to_string()];
    let (cert, key) = httpdns::tls::write_self_signed(&dir.join("tls"), &names).unwrap();
    config.tls = Some(httpdns::config::TlsConfig {
        cert,
        key,
        reload_interval_ms: 100,
        admin: false,
    });
}

/// Starts `config` with its state directory kept alive.
pub async fn start_config(
    make: impl FnOnce(&Path) -> ServerConfig,
) -> (Running, std::path::PathBuf) {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_path_buf();
    let config = make(&dir);
    (start_with(config, options(), Some(state)).await, dir)
}

/// Fails (never skips) when a client tool is missing.
pub fn require_tool(name: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not installed; `bash .ci/run` installs it (apt-get install knot-dnsutils dnsutils curl openssl)"
    );
}

/// Runs a client tool without blocking the server's runtime; returns stdout and stderr.
pub async fn run(program: &str, args: &[String]) -> (bool, String, String) {
    require_tool(program);
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tokio::process::Command::new(program)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{program} {args:?} timed out"))
    .unwrap_or_else(|e| panic!("{program}: {e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `["a", "b"]` as owned arguments.
pub fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(ToString::to_string).collect()
}

/// The real binary serving `config` (JSON logs on a pipe, no file watching), plus `extra`
/// arguments, with the test admin token.
pub fn binary_command(config: &Path, extra: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_httpdns"));
    cmd.arg("--config")
        .arg(config)
        .args(["--log-json", "--no-watch"])
        .args(extra)
        .env("HTTPDNS_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// Spawns `cmd` and waits for its "httpdns listening" log line; returns the child and
/// that line's fields (`public_addr`, `admin_addr`, ...).
pub fn spawn_listening(mut cmd: std::process::Command) -> (std::process::Child, Value) {
    use std::io::BufRead;
    let mut child = cmd.spawn().expect("binary starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Ok(log) = serde_json::from_str::<Value>(&line)
                && log["fields"]["message"] == "httpdns listening"
            {
                let _ = tx.send(log["fields"].clone());
            }
        }
    });
    let fields = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("server reported its addresses");
    (child, fields)
}

/// An h2c connection to `addr` (prior knowledge), driven on a task of its own.
pub async fn h2c_connect<B>(
    addr: std::net::SocketAddr,
) -> hyper::client::conn::http2::SendRequest<B>
where
    B: hyper::body::Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    sender
}

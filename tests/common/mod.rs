//! Test harness: starts the real server on 127.0.0.1 with ephemeral ports.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use httpdns::{Server, ServerConfig};

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

pub struct Running {
    pub server: Server,
    pub base: String,
    pub client: reqwest::Client,
    _state: Option<tempfile::TempDir>,
}

impl Running {
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.base, path_and_query)
    }

    pub async fn get_json(&self, path_and_query: &str) -> (u16, serde_json::Value) {
        let response = self
            .client
            .get(self.url(path_and_query))
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json body"))
    }
}

pub async fn start_with(config: ServerConfig, state: Option<tempfile::TempDir>) -> Running {
    let server = Server::start(config).await.expect("server starts");
    let base = format!("http://{}", server.public_addr);
    Running {
        server,
        base,
        client: reqwest::Client::new(),
        _state: state,
    }
}

/// Starts the example server.
pub async fn start_example() -> Running {
    let state = tempfile::tempdir().unwrap();
    let config = example_config(state.path());
    start_with(config, Some(state)).await
}

pub fn addr(running: &Running) -> SocketAddr {
    running.server.public_addr
}

//! Configuration files: the server config (`httpdns.toml`) and the zones directory.
//!
//! Owns the serde shapes, loading and the errors a user sees when a file is wrong.
//! Turning zones files into the steering model (and validating their meaning) is
//! `model`'s job; this module only reads and parses.

pub mod zones;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use serde::Deserialize;
use thiserror::Error;

/// Errors reading the server config.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        field: &'static str,
        message: String,
    },
}

/// The server config file. Relative paths are resolved against the file's directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Public listener: `/resolve`, `/report`, `/healthz`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Admin listener (drain, reload, explain, metrics).
    #[serde(default = "default_admin_listen")]
    pub admin_listen: SocketAddr,
    /// Directory of zones files (`*.toml`).
    pub zones_dir: PathBuf,
    /// Where drains and the audit log live.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    pub geoip: GeoIpConfig,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<IpNetwork>,
    #[serde(default)]
    pub limits: Limits,
    /// Classic DNS listener (UDP and TCP on the same address); none when absent.
    #[serde(default)]
    pub dns_listen: Option<SocketAddr>,
    /// DNS fronts: ECS trust, zone apexes, UDP/TCP bounds.
    #[serde(default)]
    pub dns: DnsConfig,
    /// HTTPS for the public listener; plaintext when absent.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Require signed `/resolve` requests.
    pub signing: Option<SigningConfig>,
}

/// The `[dns]` section: how the DNS fronts (DoH, UDP, TCP) behave.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Peers whose EDNS Client Subnet option is believed (recursive resolvers you
    /// trust). ECS from anyone else is ignored and the real client IP steers.
    pub ecs_trusted: Vec<IpNetwork>,
    /// Zone apexes answered with SOA and NS; names under an apex that are not
    /// configured domains get NXDOMAIN, names under no apex and no domain get REFUSED.
    pub apex: Vec<ApexConfig>,
    /// Largest UDP answer we send, whatever the client advertises (bytes, 512..=4096).
    pub udp_max_payload: u16,
    /// A TCP connection with no query for this long is closed.
    pub tcp_idle_timeout_ms: u64,
    /// Concurrent TCP connections; more wait in the accept queue.
    pub tcp_max_connections: usize,
    /// Largest query accepted over TCP or DoH (bytes).
    pub max_query_bytes: usize,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            ecs_trusted: Vec::new(),
            apex: Vec::new(),
            udp_max_payload: 1232,
            tcp_idle_timeout_ms: 10_000,
            tcp_max_connections: 512,
            max_query_bytes: 4096,
        }
    }
}

/// One zone apex we are authoritative for: its SOA and NS records.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApexConfig {
    /// The apex, e.g. `example.com`.
    pub name: String,
    /// Name servers for the NS answer; at least one.
    pub ns: Vec<String>,
    /// SOA MNAME; the first `ns` when absent.
    pub mname: Option<String>,
    /// SOA RNAME (mailbox as a name); `hostmaster.<apex>` when absent.
    pub rname: Option<String>,
    #[serde(default = "default_serial")]
    pub serial: u32,
    #[serde(default = "default_refresh")]
    pub refresh: u32,
    #[serde(default = "default_retry")]
    pub retry: u32,
    #[serde(default = "default_expire")]
    pub expire: u32,
    /// Negative-caching TTL (RFC 2308).
    #[serde(default = "default_minimum")]
    pub minimum: u32,
    /// TTL of the SOA and NS records themselves.
    #[serde(default = "default_apex_ttl")]
    pub ttl: u32,
}

fn default_serial() -> u32 {
    1
}
fn default_refresh() -> u32 {
    3600
}
fn default_retry() -> u32 {
    600
}
fn default_expire() -> u32 {
    604_800
}
fn default_minimum() -> u32 {
    60
}
fn default_apex_ttl() -> u32 {
    3600
}

/// The `[tls]` section: certificate files, watched and reloaded when they change.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// How often the files' modification times are checked (ms).
    #[serde(default = "default_reload_interval_ms")]
    pub reload_interval_ms: u64,
    /// Serve the admin listener over HTTPS too, with the same certificate.
    #[serde(default)]
    pub admin: bool,
}

fn default_reload_interval_ms() -> u64 {
    2000
}

/// Request signing: `/resolve` must carry `t` (expiry, unix seconds) and
/// `sign` = hex HMAC-SHA256(secret, host + "\n" + t).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// File holding the secret (first line); the secret never sits in this config.
    pub secret_file: PathBuf,
    /// Furthest in the future an expiry may be, so a leaked URL dies soon.
    #[serde(default = "default_max_validity_secs")]
    pub max_validity_secs: u64,
}

fn default_max_validity_secs() -> u64 {
    86_400
}

/// IP database files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoIpConfig {
    /// Flat-schema (or ip-location-db city) MaxMind DB.
    pub database: PathBuf,
    /// Optional ASN-only MaxMind DB, consulted when the main DB has no ASN.
    pub asn_database: Option<PathBuf>,
    /// ASN → carrier table; the shipped `geoip/asn-carriers.toml` when absent.
    pub asn_carriers: Option<PathBuf>,
    /// Operator overrides in the `geoip build --csv` columns, laid over the database.
    pub overrides: Option<PathBuf>,
}

/// Bounds on what one request may ask for and get.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Hosts per `/resolve` request.
    pub max_batch_hosts: usize,
    /// IPs per address family in one answer.
    pub max_answer_ips: usize,
    /// Failover zones listed in `fallback`.
    pub fallback_zones: usize,
    /// IPs per family per fallback zone.
    pub fallback_ips: usize,
    /// Largest request body accepted (bytes).
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_batch_hosts: 32,
            max_answer_ips: 4,
            fallback_zones: 1,
            fallback_ips: 2,
            max_body_bytes: 64 * 1024,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8080))
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8081))
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("state")
}

impl ServerConfig {
    /// Reads and parses `path`, resolving relative paths against its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, path, base)
    }

    /// Parses config text; `origin` names it in errors, `base` anchors relative paths.
    pub fn parse(text: &str, origin: &Path, base: &Path) -> Result<Self, ConfigError> {
        let mut config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        let invalid = |field, message: &str| ConfigError::Invalid {
            path: origin.to_path_buf(),
            field,
            message: message.to_string(),
        };
        let limits = &config.limits;
        if limits.max_batch_hosts == 0 {
            return Err(invalid("limits.max_batch_hosts", "must be at least 1"));
        }
        if limits.max_answer_ips == 0 {
            return Err(invalid("limits.max_answer_ips", "must be at least 1"));
        }
        if limits.max_body_bytes < 1024 {
            return Err(invalid("limits.max_body_bytes", "must be at least 1024"));
        }
        let dns = &config.dns;
        if !(512..=4096).contains(&dns.udp_max_payload) {
            return Err(invalid("dns.udp_max_payload", "must be 512 ..= 4096"));
        }
        if dns.tcp_max_connections == 0 {
            return Err(invalid("dns.tcp_max_connections", "must be at least 1"));
        }
        if !(512..=65535).contains(&dns.max_query_bytes) {
            return Err(invalid("dns.max_query_bytes", "must be 512 ..= 65535"));
        }
        if dns.tcp_idle_timeout_ms == 0 {
            return Err(invalid("dns.tcp_idle_timeout_ms", "must be at least 1"));
        }
        if config
            .tls
            .as_ref()
            .is_some_and(|t| t.reload_interval_ms == 0)
        {
            return Err(invalid("tls.reload_interval_ms", "must be at least 1"));
        }
        let anchor = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        anchor(&mut config.zones_dir);
        anchor(&mut config.state_dir);
        anchor(&mut config.geoip.database);
        if let Some(p) = config.geoip.asn_database.as_mut() {
            anchor(p);
        }
        if let Some(p) = config.geoip.asn_carriers.as_mut() {
            anchor(p);
        }
        if let Some(p) = config.geoip.overrides.as_mut() {
            anchor(p);
        }
        if let Some(tls) = config.tls.as_mut() {
            anchor(&mut tls.cert);
            anchor(&mut tls.key);
        }
        if let Some(signing) = config.signing.as_mut() {
            anchor(&mut signing.secret_file);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "zones_dir = \"zones\"\n[geoip]\ndatabase = \"geo.mmdb\"\n";

    #[test]
    fn relative_paths_are_anchored_at_the_config_directory() {
        let config =
            ServerConfig::parse(MINIMAL, Path::new("/etc/h/c.toml"), Path::new("/etc/h")).unwrap();
        assert_eq!(config.zones_dir, Path::new("/etc/h/zones"));
        assert_eq!(config.geoip.database, Path::new("/etc/h/geo.mmdb"));
        assert_eq!(config.state_dir, Path::new("/etc/h/state"));
        assert_eq!(config.limits.max_batch_hosts, 32);
        assert_eq!(config.admin_listen, "127.0.0.1:8081".parse().unwrap());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_naming_the_file() {
        let err = ServerConfig::parse(
            &format!("{MINIMAL}lisen = 1\n"),
            Path::new("c.toml"),
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("c.toml") && err.contains("lisen"), "{err}");
        let err = ServerConfig::parse(
            &format!("trusted_proxies = [\"10.0.0.0/33\"]\n{MINIMAL}"),
            Path::new("c.toml"),
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("c.toml"), "{err}");
        let err = ServerConfig::parse(
            &format!("{MINIMAL}[limits]\nmax_batch_hosts = 0\n"),
            Path::new("c.toml"),
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("limits.max_batch_hosts"), "{err}");
    }
}

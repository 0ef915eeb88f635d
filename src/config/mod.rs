//! Configuration files: the server config (`httpdns.toml`) and the zones directory.
//!
//! Owns the serde shapes, loading and the errors a user sees when a file is wrong.
//! Turning zones files into the steering model (and validating their meaning) is
//! `model`'s job; this module only reads and parses.
//!
//! The config has two kinds of field. Most are *live*: a reload compiles them into the
//! next snapshot (zones, IP databases, limits on answers, trusted proxies, signing, DNS
//! apexes and ECS trust). The rest are bound once at start (listen addresses, TLS
//! files, the state directory, body and DNS TCP bounds); [`ServerConfig::keep_start_fields`]
//! is the one list of them, so a reload can say which of them would need a restart.

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
    /// Cluster mode: drains and disables shared by a fleet through etcd.
    #[serde(default)]
    pub cluster: Option<crate::cluster::ClusterConfig>,
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
    /// TCP connections one client (IPv4 address, IPv6 /64) may hold at once.
    pub tcp_max_connections_per_ip: u32,
    /// UDP responses per second per client network (IPv4 /24, IPv6 /48) before response
    /// rate limiting starts; 0 = off.
    pub rrl_responses_per_second: u32,
    /// Responses a network may get at once before the rate applies.
    pub rrl_burst: u32,
    /// Over the limit, every `rrl_slip`-th query gets an empty truncated (TC) answer so
    /// a real resolver retries over TCP; the others get nothing. 0 = drop them all.
    pub rrl_slip: u32,
}

impl DnsConfig {
    /// The UDP front's response rate limit, counted per client network.
    pub fn response_limits(&self) -> crate::policy::rate_limit::ClientLimits {
        crate::policy::rate_limit::ClientLimits::per_network(crate::policy::rate_limit::Rate {
            per_second: self.rrl_responses_per_second,
            burst: self.rrl_burst,
        })
    }
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
            tcp_max_connections_per_ip: 16,
            rrl_responses_per_second: 0,
            rrl_burst: 0,
            rrl_slip: 2,
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
    /// Connections each HTTP listener holds at once; more wait in the kernel's queue.
    /// Absent: as many as the open-file limit allows (see [`Limits::connection_budget`]).
    pub max_connections: Option<usize>,
    /// Connections one client (IPv4 address, IPv6 /64) holds on one HTTP listener.
    pub max_connections_per_ip: u32,
    /// From a request head's first byte (or the connect) to its last (ms).
    pub header_read_timeout_ms: u64,
    /// From a request's dispatch to the last byte of its body (ms).
    pub body_read_timeout_ms: u64,
    /// A keep-alive connection with no request for this long is closed (ms).
    pub idle_timeout_ms: u64,
    /// `/resolve`, `/dns-query` and `/report` requests per second per client address
    /// (IPv4 /32, IPv6 /64); 0 = no limit.
    pub rate_per_ip: u32,
    /// Requests a client address may make at once before `rate_per_ip` applies.
    pub burst_per_ip: u32,
    /// The same per client network (IPv4 /24, IPv6 /48); 0 = no limit.
    pub rate_per_network: u32,
    pub burst_per_network: u32,
    /// Decided plans the answer cache keeps (and half as many client networks' geo
    /// records); 0 turns the cache off. Bound at start.
    pub answer_cache_entries: u64,
}

impl Limits {
    /// The HTTP fronts' buckets per client address and network.
    pub fn client_limits(&self) -> crate::policy::rate_limit::ClientLimits {
        use crate::policy::rate_limit::{ClientLimits, Rate};
        ClientLimits::new(
            Rate {
                per_second: self.rate_per_ip,
                burst: self.burst_per_ip,
            },
            Rate {
                per_second: self.rate_per_network,
                burst: self.burst_per_network,
            },
        )
    }

    /// How many addresses and fallback tiers an answer holds.
    pub fn answer_limits(&self) -> crate::scheduler::AnswerLimits {
        crate::scheduler::AnswerLimits {
            max_answer_ips: self.max_answer_ips,
            fallback_zones: self.fallback_zones,
            fallback_ips: self.fallback_ips,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_batch_hosts: 32,
            max_answer_ips: 4,
            fallback_zones: 1,
            fallback_ips: 2,
            max_body_bytes: 64 * 1024,
            max_connections: None,
            max_connections_per_ip: 64,
            header_read_timeout_ms: 5_000,
            body_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            rate_per_ip: 0,
            burst_per_ip: 0,
            rate_per_network: 0,
            burst_per_network: 0,
            answer_cache_entries: crate::answer_cache::MAX_PLANS,
        }
    }
}

/// Descriptors kept free of connections: state and audit files, IP databases, the
/// zones watcher, health probes, DNS over UDP, logs.
pub const FD_HEADROOM: u64 = 256;

impl Limits {
    /// Connections each of the two HTTP listeners may hold so that both, DNS over TCP
    /// (`dns_tcp` connections) and [`FD_HEADROOM`] fit under `open_files`; the
    /// configured `max_connections` when it fits, else the most that does (at least 16).
    pub fn connection_budget(&self, open_files: u64, dns_tcp: usize) -> usize {
        let free = open_files.saturating_sub(FD_HEADROOM + dns_tcp as u64) / 2;
        let fits = usize::try_from(free).unwrap_or(usize::MAX).max(16);
        self.max_connections.map_or(fits, |wanted| wanted.min(fits))
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

/// Sets `next` to `running`; true when they differed.
fn pin<T: PartialEq + Clone>(next: &mut T, running: &T) -> bool {
    let differed = next != running;
    if differed {
        *next = running.clone();
    }
    differed
}

impl ServerConfig {
    /// Pins every field that is bound at start to its `running` value and returns the
    /// names of those that differed: what a reload cannot apply without a restart.
    /// After this, `self` describes what the process actually runs.
    pub fn keep_start_fields(&mut self, running: &ServerConfig) -> Vec<&'static str> {
        let mut restart_required = Vec::new();
        let mut check = |name: &'static str, differed: bool| {
            if differed {
                restart_required.push(name);
            }
        };
        check("listen", pin(&mut self.listen, &running.listen));
        check(
            "admin_listen",
            pin(&mut self.admin_listen, &running.admin_listen),
        );
        check("state_dir", pin(&mut self.state_dir, &running.state_dir));
        check("dns_listen", pin(&mut self.dns_listen, &running.dns_listen));
        check("tls", pin(&mut self.tls, &running.tls));
        check(
            "limits.max_body_bytes",
            pin(
                &mut self.limits.max_body_bytes,
                &running.limits.max_body_bytes,
            ),
        );
        check(
            "dns.tcp_idle_timeout_ms",
            pin(
                &mut self.dns.tcp_idle_timeout_ms,
                &running.dns.tcp_idle_timeout_ms,
            ),
        );
        check(
            "dns.tcp_max_connections",
            pin(
                &mut self.dns.tcp_max_connections,
                &running.dns.tcp_max_connections,
            ),
        );
        check(
            "limits.answer_cache_entries",
            pin(
                &mut self.limits.answer_cache_entries,
                &running.limits.answer_cache_entries,
            ),
        );
        check(
            "limits.rate_per_ip",
            pin(&mut self.limits.rate_per_ip, &running.limits.rate_per_ip),
        );
        check(
            "limits.burst_per_ip",
            pin(&mut self.limits.burst_per_ip, &running.limits.burst_per_ip),
        );
        check(
            "limits.rate_per_network",
            pin(
                &mut self.limits.rate_per_network,
                &running.limits.rate_per_network,
            ),
        );
        check(
            "limits.burst_per_network",
            pin(
                &mut self.limits.burst_per_network,
                &running.limits.burst_per_network,
            ),
        );
        check(
            "dns.rrl_responses_per_second",
            pin(
                &mut self.dns.rrl_responses_per_second,
                &running.dns.rrl_responses_per_second,
            ),
        );
        check(
            "dns.rrl_burst",
            pin(&mut self.dns.rrl_burst, &running.dns.rrl_burst),
        );
        check(
            "dns.rrl_slip",
            pin(&mut self.dns.rrl_slip, &running.dns.rrl_slip),
        );
        check(
            "dns.max_query_bytes",
            pin(&mut self.dns.max_query_bytes, &running.dns.max_query_bytes),
        );
        check(
            "dns.tcp_max_connections_per_ip",
            pin(
                &mut self.dns.tcp_max_connections_per_ip,
                &running.dns.tcp_max_connections_per_ip,
            ),
        );
        check(
            "limits.max_connections",
            pin(
                &mut self.limits.max_connections,
                &running.limits.max_connections,
            ),
        );
        check(
            "limits.max_connections_per_ip",
            pin(
                &mut self.limits.max_connections_per_ip,
                &running.limits.max_connections_per_ip,
            ),
        );
        check(
            "limits.header_read_timeout_ms",
            pin(
                &mut self.limits.header_read_timeout_ms,
                &running.limits.header_read_timeout_ms,
            ),
        );
        check(
            "limits.body_read_timeout_ms",
            pin(
                &mut self.limits.body_read_timeout_ms,
                &running.limits.body_read_timeout_ms,
            ),
        );
        check(
            "limits.idle_timeout_ms",
            pin(
                &mut self.limits.idle_timeout_ms,
                &running.limits.idle_timeout_ms,
            ),
        );
        restart_required
    }

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
        if limits.max_connections == Some(0) {
            return Err(invalid("limits.max_connections", "must be at least 1"));
        }
        if limits.max_connections_per_ip == 0 {
            return Err(invalid(
                "limits.max_connections_per_ip",
                "must be at least 1",
            ));
        }
        for (field, value) in [
            (
                "limits.header_read_timeout_ms",
                limits.header_read_timeout_ms,
            ),
            ("limits.body_read_timeout_ms", limits.body_read_timeout_ms),
            ("limits.idle_timeout_ms", limits.idle_timeout_ms),
        ] {
            if value == 0 {
                return Err(invalid(field, "must be at least 1"));
            }
        }
        let dns = &config.dns;
        if dns.tcp_max_connections_per_ip == 0 {
            return Err(invalid(
                "dns.tcp_max_connections_per_ip",
                "must be at least 1",
            ));
        }
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
        if let Some(cluster) = config.cluster.as_mut() {
            cluster
                .validate()
                .map_err(|(field, message)| invalid(field, &message))?;
            cluster.anchor(base);
        }
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

    #[test]
    fn rate_limits_are_start_only_and_off_by_default() {
        let base = Path::new("/etc/h");
        let running = ServerConfig::parse(MINIMAL, Path::new("c.toml"), base).unwrap();
        assert!(running.limits.client_limits().is_off());
        let edited = format!(
            "{MINIMAL}[limits]\nrate_per_ip = 5\nburst_per_network = 9\n\
             [dns]\nrrl_responses_per_second = 7\nrrl_slip = 0\n"
        );
        let mut next = ServerConfig::parse(&edited, Path::new("c.toml"), base).unwrap();
        assert_eq!(
            next.keep_start_fields(&running),
            [
                "limits.rate_per_ip",
                "limits.burst_per_network",
                "dns.rrl_responses_per_second",
                "dns.rrl_slip",
            ]
        );
        assert_eq!(next.limits.rate_per_ip, 0);
        assert_eq!(next.dns.rrl_slip, 2);
    }

    #[test]
    fn start_only_fields_are_named_and_pinned_while_live_fields_change() {
        let base = Path::new("/etc/h");
        let running = ServerConfig::parse(MINIMAL, Path::new("c.toml"), base).unwrap();
        let edited = format!(
            "listen = \"127.0.0.1:9\"\ndns_listen = \"127.0.0.1:53\"\nstate_dir = \"/var/x\"\n\
             trusted_proxies = [\"10.0.0.0/8\"]\n{MINIMAL}\
             [limits]\nmax_body_bytes = 2048\nmax_batch_hosts = 4\nanswer_cache_entries = 0\n\
             [dns]\ntcp_max_connections = 3\nmax_query_bytes = 1024\ntcp_idle_timeout_ms = 5\n\
             [tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n"
        );
        let mut next = ServerConfig::parse(&edited, Path::new("c.toml"), base).unwrap();
        let restart = next.keep_start_fields(&running);
        assert_eq!(
            restart,
            [
                "listen",
                "state_dir",
                "dns_listen",
                "tls",
                "limits.max_body_bytes",
                "dns.tcp_idle_timeout_ms",
                "dns.tcp_max_connections",
                "limits.answer_cache_entries",
                "dns.max_query_bytes",
            ]
        );
        // What runs is what was bound at start...
        assert_eq!(next.listen, running.listen);
        assert_eq!(next.dns_listen, None);
        assert_eq!(next.tls, None);
        assert_eq!(next.limits.max_body_bytes, running.limits.max_body_bytes);
        assert_eq!(
            next.limits.answer_cache_entries,
            crate::answer_cache::MAX_PLANS,
            "the cache was sized at start"
        );
        assert_eq!(
            next.dns.tcp_max_connections,
            running.dns.tcp_max_connections
        );
        // ...while live fields take the new values.
        assert_eq!(next.limits.max_batch_hosts, 4);
        assert_eq!(next.trusted_proxies.len(), 1);
        let mut same = running.clone();
        assert!(same.keep_start_fields(&running).is_empty());
    }
}

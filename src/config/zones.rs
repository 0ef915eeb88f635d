//! Zones files: the serde shape of `zones/*.toml`.
//!
//! A zones directory holds any number of TOML files, each with `[[zone]]` (an IDC and
//! its endpoints) and `[[domain]]` (a name, its TTL, routing rules and default zone)
//! tables. Files are read in name order. Meaning (unknown zones, cycles, bad IPs) is
//! checked when `model` compiles them, so every error can name file, item and field.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

/// One parsed zones file.
#[derive(Debug, Clone)]
pub struct ZonesFile {
    pub path: PathBuf,
    pub zones: Vec<ZoneSpec>,
    pub domains: Vec<DomainSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ZonesFileBody {
    #[serde(default)]
    zone: Vec<ZoneSpec>,
    #[serde(default)]
    domain: Vec<DomainSpec>,
}

/// An IDC: where answers point.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneSpec {
    pub name: String,
    pub endpoints: Vec<EndpointSpec>,
    /// Zones to answer from, in order, when this one cannot serve.
    #[serde(default)]
    pub failover: Vec<String>,
    /// Active health check for this zone's endpoints; none means "assumed healthy".
    pub health_check: Option<HealthCheckSpec>,
}

/// An endpoint: `"203.0.113.10"` or `{ ip = "203.0.113.10", weight = 200 }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EndpointSpec {
    Ip(String),
    Detailed {
        ip: String,
        #[serde(default)]
        weight: Option<u32>,
        /// Overrides the zone's health check for this endpoint.
        #[serde(default)]
        health_check: Option<HealthCheckSpec>,
    },
}

impl EndpointSpec {
    pub fn ip(&self) -> &str {
        match self {
            Self::Ip(ip) | Self::Detailed { ip, .. } => ip,
        }
    }

    pub fn weight(&self) -> Option<u32> {
        match self {
            Self::Ip(_) => None,
            Self::Detailed { weight, .. } => *weight,
        }
    }

    pub fn health_check(&self) -> Option<&HealthCheckSpec> {
        match self {
            Self::Ip(_) => None,
            Self::Detailed { health_check, .. } => health_check.as_ref(),
        }
    }
}

/// How to probe an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSpec {
    /// `tcp`, `http` or `https`.
    #[serde(rename = "type")]
    pub kind: String,
    pub port: u16,
    /// HTTP(S) only.
    #[serde(default = "default_path")]
    pub path: String,
    /// Host header (and SNI for https).
    pub host: Option<String>,
    #[serde(default = "default_expect_status")]
    pub expect_status: u16,
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_rise")]
    pub rise: u32,
    #[serde(default = "default_fall")]
    pub fall: u32,
}

fn default_path() -> String {
    "/".to_string()
}
fn default_expect_status() -> u16 {
    200
}
fn default_interval_ms() -> u64 {
    2000
}
fn default_timeout_ms() -> u64 {
    1000
}
fn default_rise() -> u32 {
    2
}
fn default_fall() -> u32 {
    3
}

/// A domain and how its clients are routed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainSpec {
    pub name: String,
    pub ttl: u32,
    /// The zones that serve this domain; failover skips zones not listed here.
    pub zones: Vec<String>,
    /// Where clients no rule matches go.
    pub default_zone: String,
    /// Tried in order; the first match picks the home zone.
    #[serde(default)]
    pub rule: Vec<RuleSpec>,
}

/// A routing rule: every condition given must match; within a list any entry matches.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: Option<String>,
    #[serde(default)]
    pub country: Vec<String>,
    /// Matches clients whose country is known and not in this list (e.g. overseas).
    #[serde(default)]
    pub not_country: Vec<String>,
    /// ISO 3166-2 codes (`CN-GD`) or names (`广东`, `Guangdong`).
    #[serde(default)]
    pub province: Vec<String>,
    #[serde(default)]
    pub city: Vec<String>,
    #[serde(default)]
    pub carrier: Vec<String>,
    #[serde(default)]
    pub cidr: Vec<String>,
    pub zone: String,
}

/// Reads every `*.toml` in `dir`, in name order.
pub fn load_dir(dir: &Path) -> Result<Vec<ZonesFile>, Vec<ConfigError>> {
    let entries = std::fs::read_dir(dir).map_err(|source| {
        vec![ConfigError::Read {
            path: dir.to_path_buf(),
            source,
        }]
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "toml") && p.is_file())
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(vec![ConfigError::Parse {
            path: dir.to_path_buf(),
            message: "no *.toml zones files in this directory".to_string(),
        }]);
    }
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for outcome in read_and_parse_all(paths) {
        match outcome {
            Ok(file) => files.push(file),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

/// Reads and parses `paths`, results in the same order. Large configs come as many
/// files and parsing TOML is most of loading them, so the files are shared out over
/// the machine's cores (one thread per core, each taking the next unparsed file).
fn read_and_parse_all(paths: Vec<PathBuf>) -> Vec<Result<ZonesFile, ConfigError>> {
    let read_and_parse = |path: &PathBuf| match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(source) => Err(ConfigError::Read {
            path: path.clone(),
            source,
        }),
    };
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(paths.len());
    if workers <= 1 {
        return paths.iter().map(read_and_parse).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, Result<ZonesFile, ConfigError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(path) = paths.get(i) else {
                            return mine;
                        };
                        mine.push((i, read_and_parse(path)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, outcome)| outcome).collect()
}

/// Parses one zones file's text.
pub fn parse(text: &str, path: &Path) -> Result<ZonesFile, ConfigError> {
    let body: ZonesFileBody = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(ZonesFile {
        path: path.to_path_buf(),
        zones: body.zone,
        domains: body.domain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_may_be_plain_ips_or_tables() {
        let file = parse(
            r#"
            [[zone]]
            name = "a"
            endpoints = ["192.0.2.1", { ip = "2001:db8::1", weight = 5 }]
            "#,
            Path::new("z.toml"),
        )
        .unwrap();
        let endpoints = &file.zones[0].endpoints;
        assert_eq!(endpoints[0].ip(), "192.0.2.1");
        assert_eq!(endpoints[0].weight(), None);
        assert_eq!(endpoints[1].weight(), Some(5));
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let err = parse("[[zone]]\nname = \n", Path::new("bad.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.toml") && err.contains("line 2"), "{err}");
        let err = parse(
            "[[domain]]\nname = \"a\"\nttl = 1\nzones=[]\ndefault_zone=\"a\"\nfoo = 1\n",
            Path::new("bad.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("foo"), "{err}");
    }

    #[test]
    fn a_directory_loads_in_name_order_and_every_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..12 {
            let text = if i % 5 == 3 {
                format!("[[zone]]\nname = \"z{i}\"\nendpoints = [\n")
            } else {
                format!("[[zone]]\nname = \"z{i}\"\nendpoints = [\"192.0.2.{i}\"]\n")
            };
            std::fs::write(dir.path().join(format!("{i:02}.toml")), text).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "not a zones file").unwrap();
        let errors = load_dir(dir.path()).unwrap_err();
        let named: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(named.len(), 2, "{named:?}");
        for (error, bad) in named.iter().zip(["03.toml", "08.toml"]) {
            assert!(error.contains(bad), "{error} names {bad}");
        }
        assert!(named.iter().all(|e| !e.contains("notes.txt")));

        for bad in [3, 8] {
            std::fs::write(
                dir.path().join(format!("{bad:02}.toml")),
                format!("[[zone]]\nname = \"z{bad}\"\nendpoints = [\"192.0.2.{bad}\"]\n"),
            )
            .unwrap();
        }
        let files = load_dir(dir.path()).unwrap();
        let zones: Vec<&str> = files.iter().map(|f| f.zones[0].name.as_str()).collect();
        let expected: Vec<String> = (0..12).map(|i| format!("z{i}")).collect();
        assert_eq!(zones, expected);
    }
}

//! Health checks, compiled: how one endpoint is probed, as a typed value.
//!
//! The zones file says `type = "tcp" | "http" | "https"` with a flat set of fields; the
//! model keeps a [`HealthCheck`] whose [`Probe`] carries only the fields its kind uses,
//! validated once at load. The `health` module dispatches on the enum, never on text.

use std::time::Duration;

use crate::config::zones::HealthCheckSpec;

/// How often, how patiently and how strictly an endpoint is probed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HealthCheck {
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive successes that bring a down endpoint up.
    pub rise: u32,
    /// Consecutive failures that take an up endpoint down.
    pub fall: u32,
}

/// What one probe does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Probe {
    /// A TCP connect to `port`.
    Tcp { port: u16 },
    /// `GET path` on `port`, expecting `expect_status`; over TLS when `tls`. With `host`,
    /// the request carries it as Host (and SNI), and the certificate is verified for it.
    Http {
        tls: bool,
        port: u16,
        path: String,
        host: Option<String>,
        expect_status: u16,
    },
}

impl Probe {
    pub fn port(&self) -> u16 {
        match self {
            Self::Tcp { port } | Self::Http { port, .. } => *port,
        }
    }
}

impl HealthCheck {
    /// Compiles a zones-file check; every problem is reported through `err` (field
    /// names relative to `field`) and yields `None`.
    pub fn compile(
        spec: &HealthCheckSpec,
        field: &str,
        err: &mut impl FnMut(&str, String),
    ) -> Option<Self> {
        let mut ok = true;
        let mut fail = |name: &str, message: String| {
            ok = false;
            err(&format!("{field}.{name}"), message);
        };
        if spec.port == 0 {
            fail("port", "must not be 0".into());
        }
        if spec.interval_ms < 100 {
            fail("interval_ms", "must be at least 100".into());
        }
        if spec.timeout_ms == 0 || spec.timeout_ms > spec.interval_ms.max(100) {
            fail("timeout_ms", "must be between 1 and interval_ms".into());
        }
        if spec.rise == 0 || spec.fall == 0 {
            fail("rise/fall", "must be at least 1".into());
        }
        let http = |tls| Probe::Http {
            tls,
            port: spec.port,
            path: spec.path.clone(),
            host: spec.host.clone(),
            expect_status: spec.expect_status,
        };
        let probe = match spec.kind.as_str() {
            "tcp" => Some(Probe::Tcp { port: spec.port }),
            "http" => Some(http(false)),
            "https" => Some(http(true)),
            other => {
                fail("type", format!("{other:?} is not tcp, http or https"));
                None
            }
        };
        let probe = probe.filter(|_| ok)?;
        Some(Self {
            probe,
            interval: Duration::from_millis(spec.interval_ms),
            timeout: Duration::from_millis(spec.timeout_ms),
            rise: spec.rise,
            fall: spec.fall,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: &str) -> HealthCheckSpec {
        HealthCheckSpec {
            kind: kind.into(),
            port: 443,
            path: "/health".into(),
            host: Some("api.example.com".into()),
            expect_status: 204,
            interval_ms: 1000,
            timeout_ms: 300,
            rise: 2,
            fall: 3,
        }
    }

    fn compile(spec: &HealthCheckSpec) -> (Option<HealthCheck>, Vec<String>) {
        let mut errors = Vec::new();
        let check = HealthCheck::compile(spec, "health_check", &mut |f, m| {
            errors.push(format!("{f}: {m}"))
        });
        (check, errors)
    }

    #[test]
    fn kinds_compile_to_typed_probes_with_only_their_fields() {
        let (https, _) = compile(&spec("https"));
        let https = https.unwrap();
        assert_eq!(
            https.probe,
            Probe::Http {
                tls: true,
                port: 443,
                path: "/health".into(),
                host: Some("api.example.com".into()),
                expect_status: 204,
            }
        );
        assert_eq!(https.interval, Duration::from_secs(1));
        assert_eq!(https.timeout, Duration::from_millis(300));
        let (tcp, _) = compile(&spec("tcp"));
        assert_eq!(tcp.unwrap().probe, Probe::Tcp { port: 443 });
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut bad = spec("icmp");
        bad.port = 0;
        bad.timeout_ms = 5000;
        bad.fall = 0;
        let (check, errors) = compile(&bad);
        assert!(check.is_none());
        let all = errors.join("\n");
        for field in [
            "health_check.type",
            "health_check.port",
            "health_check.timeout_ms",
            "health_check.rise/fall",
        ] {
            assert!(all.contains(field), "{field} missing in {all}");
        }
    }
}

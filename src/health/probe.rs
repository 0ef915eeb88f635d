//! One probe of one endpoint: TCP connect, or HTTP(S) GET with an expected status.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::model::{HealthCheck, Probe};

pub(super) enum Prober {
    Tcp {
        addr: SocketAddr,
        timeout: Duration,
    },
    Http {
        client: reqwest::Client,
        url: String,
        expect: u16,
    },
}

impl Prober {
    pub(super) fn new(ip: IpAddr, check: &HealthCheck) -> Result<Self, String> {
        let addr = SocketAddr::new(ip, check.probe.port());
        let timeout = check.timeout;
        let Probe::Http {
            tls,
            port,
            path,
            host: name,
            expect_status,
        } = &check.probe
        else {
            return Ok(Self::Tcp { addr, timeout });
        };
        // With a host name, connect to this endpoint's IP but send Host/SNI for the
        // name and verify the certificate against it, as a real client would.
        let host = name.clone().unwrap_or_else(|| match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        });
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .pool_max_idle_per_host(0);
        if let Some(name) = name {
            builder = builder.resolve(name, addr);
        } else {
            // No name to verify a certificate against.
            builder = builder.danger_accept_invalid_certs(true);
        }
        let client = builder.build().map_err(|e| e.to_string())?;
        Ok(Self::Http {
            client,
            url: format!(
                "{}://{host}:{port}{path}",
                if *tls { "https" } else { "http" }
            ),
            expect: *expect_status,
        })
    }

    /// Probes once; the RTT on success, the reason on failure.
    pub(super) async fn probe(&self) -> Result<Duration, String> {
        let started = Instant::now();
        match self {
            Self::Tcp { addr, timeout } => {
                match tokio::time::timeout(*timeout, tokio::net::TcpStream::connect(addr)).await {
                    Ok(Ok(_stream)) => Ok(started.elapsed()),
                    Ok(Err(e)) => Err(format!("tcp connect to {addr}: {e}")),
                    Err(_) => Err(format!(
                        "tcp connect to {addr}: timed out after {timeout:?}"
                    )),
                }
            }
            Self::Http {
                client,
                url,
                expect,
            } => match client.get(url).send().await {
                Ok(response) if response.status().as_u16() == *expect => Ok(started.elapsed()),
                Ok(response) => Err(format!(
                    "GET {url}: status {} (want {expect})",
                    response.status().as_u16()
                )),
                Err(e) => Err(format!("GET {url}: {e}")),
            },
        }
    }
}

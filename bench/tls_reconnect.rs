//! A bounded HTTPS load generator for the reconnect rows of `bench/run.sh`: HTTP/1.1
//! over TLS 1.3 where every connection carries a fixed number of requests and is then
//! closed, and the next connection offers TLS session resumption — what mobile clients
//! that reconnect often cost a server. No Debian load generator does this (wrk and
//! h2load keep connections open).
//!
//! `--conns` clients run concurrently for `--duration` seconds, each one connection at a
//! time with its own session cache, as each app has its own TLS stack: a client resumes
//! with the ticket (or session ID) its previous connection got. One shared cache would
//! model something else, and rustls keeps only 8 TLS 1.3 tickets per server in one
//! cache, so a burst of reconnects would find it empty. The result is one
//! JSON line on stdout: requests/s, latency percentiles (the first request on each
//! connection counts from the TCP connect, so it carries the handshake), handshake
//! percentiles, errors by kind, and the share of handshakes that resumed a session, as
//! rustls saw each handshake (not assumed). Only IP literals are accepted as targets:
//! nothing is resolved by name.
//!
//! ```text
//! bench-tls-reconnect --url 'https://127.0.0.1:19498/resolve?host=api.example.com' \
//!     --ca target/bench/tls/cert.pem --conns 64 --duration 10 --per-conn 10 \
//!     -H 'X-Forwarded-For: 202.96.128.86'
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, Uri, header};
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::client::Resumption;
use rustls::{ClientConfig, HandshakeKind, ProtocolVersion, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;

/// After a failed connection, a worker waits this long so a refusing server does not
/// turn the run into a busy loop.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

#[derive(Parser, Debug)]
#[command(about = "HTTP/1.1 over TLS 1.3 with a new, resumed connection every N requests")]
struct Args {
    /// https://IP:PORT/path?query (an IP literal: nothing is resolved by name).
    #[arg(long)]
    url: String,
    /// PEM certificate(s) to trust as roots (the server's self-signed certificate).
    #[arg(long)]
    ca: PathBuf,
    /// Concurrent connections.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    conns: u32,
    /// Seconds to run; no request starts after that.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Requests per connection before it is closed and a new one is made.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    per_conn: u32,
    /// Extra request header, "Name: value"; repeatable.
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// Bound on each connect, handshake, request and body read (seconds).
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// Offer no session resumption (every handshake full): the control measurement.
    #[arg(long)]
    no_resumption: bool,
}

/// Where and what to ask, parsed once.
struct Target {
    addr: SocketAddr,
    server_name: ServerName<'static>,
    authority: HeaderValue,
    path: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Target {
    fn from_args(args: &Args) -> anyhow::Result<Self> {
        let uri: Uri = args
            .url
            .parse()
            .with_context(|| format!("--url {}", args.url))?;
        if uri.scheme_str() != Some("https") {
            bail!("--url {}: the scheme must be https", args.url);
        }
        let host = uri.host().unwrap_or_default();
        let ip: IpAddr = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .with_context(|| format!("--url {}: the host must be an IP literal", args.url))?;
        let addr = SocketAddr::new(ip, uri.port_u16().unwrap_or(443));
        let authority = match uri.authority() {
            Some(authority) => HeaderValue::from_str(authority.as_str())?,
            None => bail!("--url {}: no host", args.url),
        };
        let path: Uri = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .with_context(|| format!("--url {}: path", args.url))?;
        let headers = args
            .headers
            .iter()
            .map(|line| {
                let (name, value) = line
                    .split_once(':')
                    .with_context(|| format!("-H {line:?}: expected \"Name: value\""))?;
                Ok((
                    HeaderName::from_bytes(name.trim().as_bytes())
                        .with_context(|| format!("-H {line:?}: header name"))?,
                    HeaderValue::from_str(value.trim())
                        .with_context(|| format!("-H {line:?}: header value"))?,
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            addr,
            server_name: ServerName::from(ip),
            authority,
            path,
            headers,
        })
    }

    fn request(&self) -> Request<Empty<Bytes>> {
        let mut request = Request::new(Empty::new());
        *request.uri_mut() = self.path.clone();
        let headers = request.headers_mut();
        headers.insert(header::HOST, self.authority.clone());
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        request
    }
}

/// TLS 1.3 only, ALPN http/1.1, the given roots, no resumption; each client gets a copy
/// with its own session cache ([`with_own_sessions`]).
fn client_config(args: &Args) -> anyhow::Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&args.ca)
        .with_context(|| format!("--ca {}", args.ca.display()))?
    {
        roots.add(cert.with_context(|| format!("--ca {}", args.ca.display()))?)?;
    }
    if roots.is_empty() {
        bail!("--ca {}: no certificate in the file", args.ca.display());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = Resumption::disabled();
    Ok(config)
}

/// One client's connector: the shared settings and, unless resumption is off, a session
/// cache of its own (a few entries: it talks to one server).
fn with_own_sessions(base: &ClientConfig, resume: bool) -> TlsConnector {
    let mut config = base.clone();
    if resume {
        config.resumption = Resumption::in_memory_sessions(4);
    }
    TlsConnector::from(Arc::new(config))
}

/// One worker's counts; merged at the end.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    handshakes_us: Vec<u32>,
    resumed: u64,
    errors: BTreeMap<&'static str, u64>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.handshakes_us.extend(other.handshakes_us);
        self.resumed += other.resumed;
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
    }
}

struct Run {
    target: Target,
    deadline: Instant,
    per_conn: u32,
    timeout: Duration,
}

async fn worker(run: Arc<Run>, connector: TlsConnector) -> Tally {
    let mut tally = Tally::default();
    while Instant::now() < run.deadline {
        if let Err(kind) = connection(&run, &connector, &mut tally).await {
            *tally.errors.entry(kind).or_default() += 1;
            tokio::time::sleep(ERROR_PAUSE).await;
        }
    }
    tally
}

/// One connection: connect, handshake, up to `per_conn` requests, close.
async fn connection(
    run: &Run,
    connector: &TlsConnector,
    tally: &mut Tally,
) -> Result<(), &'static str> {
    let started = Instant::now();
    let tcp = within(run.timeout, "connect", TcpStream::connect(run.target.addr)).await?;
    tcp.set_nodelay(true).map_err(|_| "connect")?;
    let tls = within(
        run.timeout,
        "handshake",
        connector.connect(run.target.server_name.clone(), tcp),
    )
    .await?;
    let session = tls.get_ref().1;
    if session.protocol_version() != Some(ProtocolVersion::TLSv1_3) {
        return Err("not TLS 1.3");
    }
    tally.handshakes_us.push(micros(started.elapsed()));
    if session.handshake_kind() == Some(HandshakeKind::Resumed) {
        tally.resumed += 1;
    }
    let (mut sender, driver) = within(
        run.timeout,
        "http",
        hyper::client::conn::http1::handshake(TokioIo::new(tls)),
    )
    .await?;
    let driver = tokio::spawn(driver);
    let mut sent = started;
    for _ in 0..run.per_conn {
        if Instant::now() >= run.deadline {
            break;
        }
        let response = within(
            run.timeout,
            "request",
            sender.send_request(run.target.request()),
        )
        .await?;
        let status = response.status();
        within(run.timeout, "body", response.into_body().collect()).await?;
        if status != StatusCode::OK {
            return Err("status not 200");
        }
        tally.latencies_us.push(micros(sent.elapsed()));
        sent = Instant::now();
    }
    // Dropping the sender lets hyper close the connection (TLS close_notify, FIN).
    drop(sender);
    let _ = tokio::time::timeout(run.timeout, driver).await;
    Ok(())
}

async fn within<T, E>(
    limit: Duration,
    what: &'static str,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, &'static str> {
    match tokio::time::timeout(limit, future).await {
        Ok(Ok(value)) => Ok(value),
        _ => Err(what),
    }
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// The p-th percentile of sorted microseconds, in milliseconds (the harness's rule:
/// the value at index ⌊n·p/100⌋).
fn percentile_ms(sorted_us: &[u32], p: f64) -> Option<f64> {
    let last = sorted_us.len().checked_sub(1)?;
    let index = ((sorted_us.len() as f64 * p / 100.0) as usize).min(last);
    Some(f64::from(sorted_us[index]) / 1000.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !(args.duration > 0.0 && args.duration <= 3600.0) {
        bail!("--duration {}: must be in (0, 3600] seconds", args.duration);
    }
    if !(args.timeout > 0.0 && args.timeout <= 60.0) {
        bail!("--timeout {}: must be in (0, 60] seconds", args.timeout);
    }
    let base = client_config(&args)?;
    let run = Arc::new(Run {
        target: Target::from_args(&args)?,
        deadline: Instant::now() + Duration::from_secs_f64(args.duration),
        per_conn: args.per_conn,
        timeout: Duration::from_secs_f64(args.timeout),
    });
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..args.conns {
        let connector = with_own_sessions(&base, !args.no_resumption);
        workers.spawn(worker(Arc::clone(&run), connector));
    }
    let mut tally = Tally::default();
    while let Some(done) = workers.join_next().await {
        tally.merge(done.context("a worker panicked")?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    tally.latencies_us.sort_unstable();
    tally.handshakes_us.sort_unstable();
    let requests = tally.latencies_us.len();
    let handshakes = tally.handshakes_us.len();
    let errors: u64 = tally.errors.values().sum();
    let result = serde_json::json!({
        "generator": "bench-tls-reconnect",
        "proto": "http/1.1+tls1.3",
        "conns": args.conns,
        "per_conn": args.per_conn,
        "resumption_offered": !args.no_resumption,
        "duration_s": elapsed,
        "requests": requests,
        "rps": requests as f64 / elapsed,
        "p50_ms": percentile_ms(&tally.latencies_us, 50.0),
        "p99_ms": percentile_ms(&tally.latencies_us, 99.0),
        "p999_ms": percentile_ms(&tally.latencies_us, 99.9),
        "handshakes": handshakes,
        "resumed": tally.resumed,
        "resumed_pct": if handshakes > 0 { 100.0 * tally.resumed as f64 / handshakes as f64 } else { 0.0 },
        "handshake_p50_ms": percentile_ms(&tally.handshakes_us, 50.0),
        "handshake_p99_ms": percentile_ms(&tally.handshakes_us, 99.0),
        "errors": errors,
        "errors_by_kind": tally.errors,
    });
    println!("{result}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_the_harness_rule() {
        let us: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&us, 50.0), Some(51.0));
        assert_eq!(percentile_ms(&us, 99.0), Some(100.0));
        assert_eq!(percentile_ms(&[], 99.0), None);
    }

    #[test]
    fn targets_must_be_https_ip_literals() {
        let args = |url: &str| Args::parse_from(["x", "--url", url, "--ca", "c.pem"]);
        let t = Target::from_args(&args("https://127.0.0.1:8443/resolve?host=a")).unwrap();
        assert_eq!(t.addr, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(t.path, "/resolve?host=a");
        assert!(Target::from_args(&args("http://127.0.0.1/")).is_err());
        assert!(Target::from_args(&args("https://example.com/")).is_err());
    }
}

//! The throughput ceiling for `bench/run.sh`: the smallest axum server, with the same
//! axum, tokio and release profile as httpdns, answering `GET /` (and any path) with
//! "Hello, World!". Whatever /resolve reaches is measured as a share of this.
//!
//! With a second address and a certificate pair, the same router is also served over
//! TLS, with httpdns's own rustls configuration ([`httpdns::tls::Tls`]: TLS 1.3/1.2,
//! ALPN h2 and http/1.1, the same session cache) and hyper's HTTP/1.1 + HTTP/2
//! connection builder, so the TLS rows have a ceiling too.
//!
//! `cargo run --release --example bench-hello -- 127.0.0.1:19480 [127.0.0.1:19497 cert.pem key.pem]`

use std::io::{Error, ErrorKind};
use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use httpdns::config::TlsConfig;
use httpdns::tls::Tls;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

const USAGE: &str = "usage: bench-hello ADDR [TLS_ADDR CERT_PEM KEY_PEM]";

/// On the runtime httpdns itself picks for the CPUs it may use ([`httpdns::runtime`]),
/// so the ceiling runs on what the server runs on.
fn main() -> std::io::Result<()> {
    httpdns::runtime::for_this_process()?.block_on(serve())
}

async fn serve() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = parse_addr(&args.next().unwrap_or_else(|| "127.0.0.1:19480".to_string()))?;
    let app = Router::new().fallback(|| async { "Hello, World!" });
    match (args.next(), args.next(), args.next(), args.next()) {
        (None, ..) => {}
        (Some(tls_addr), Some(cert), Some(key), None) => {
            let tls = Tls::from_config(&TlsConfig {
                cert: PathBuf::from(cert),
                key: PathBuf::from(key),
                reload_interval_ms: 2000,
                admin: false,
            })
            .map_err(|e| Error::new(ErrorKind::InvalidInput, e))?;
            let listener = TcpListener::bind(parse_addr(&tls_addr)?).await?;
            tokio::spawn(serve_tls(listener, tls, app.clone()));
        }
        _ => return Err(Error::new(ErrorKind::InvalidInput, USAGE)),
    }
    let listener = TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

fn parse_addr(text: &str) -> std::io::Result<SocketAddr> {
    text.parse()
        .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("{text}: {e}; {USAGE}")))
}

/// The plainest TLS accept loop: handshake, then HTTP/1.1 or HTTP/2 (by preface).
async fn serve_tls(listener: TcpListener, tls: Tls, app: Router) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(error) => {
                // Out of descriptors and the like: back off rather than spin.
                eprintln!("accept: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Small answers must not wait for Nagle's algorithm (httpdns does the same).
        let _ = tcp.set_nodelay(true);
        let (acceptor, builder, app) = (tls.acceptor.clone(), builder.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let service = TowerToHyperService::new(app);
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

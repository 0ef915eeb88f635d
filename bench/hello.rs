//! The throughput ceiling for `bench/run.sh`: the smallest axum server, with the same
//! axum, tokio and release profile as httpdns, answering `GET /` (and any path) with
//! "Hello, World!". Whatever /resolve reaches is measured as a share of this.
//!
//! `cargo run --release --example bench-hello -- 127.0.0.1:19480`

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:19480".to_string())
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let app = axum::Router::new().fallback(|| async { "Hello, World!" });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

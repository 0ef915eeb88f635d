//! Classic DNS transports: UDP and TCP on one address (`dns_listen`).
//!
//! UDP answers fit the client's EDNS payload size (512 without EDNS, capped by
//! `dns.udp_max_payload`); a bigger answer goes out empty with TC set so the client
//! retries over TCP, where the whole answer is sent. TCP is bounded: at most
//! `dns.tcp_max_connections` at once and `dns.tcp_max_connections_per_ip` from one
//! client network (so one client cannot hold every slot), each closed after
//! `dns.tcp_idle_timeout_ms`
//! without a complete query, and queries over `dns.max_query_bytes` close the
//! connection. UDP is served by [`super::udp`] (batched, a socket per worker) and passes
//! response rate limiting ([`super::rrl`]). Both stop on
//! the shutdown token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::handler::{DnsHandler, Transport};
use super::rrl::ResponseRateLimit;
use crate::accept::ConnectionLimits;
use crate::config::DnsConfig;

/// Attempts to find a port free for both UDP and TCP when asked for port 0.
const PORT_ATTEMPTS: usize = 16;

/// Bound DNS sockets, ready to serve.
pub struct DnsSockets {
    /// One per UDP worker, all on `addr` (`SO_REUSEPORT`).
    udp: Vec<std::net::UdpSocket>,
    tcp: TcpListener,
    pub addr: SocketAddr,
}

/// Binds UDP and TCP on the same address; with port 0, on the same free port. UDP gets
/// one socket per available CPU, each served by its own worker thread.
pub async fn bind(addr: SocketAddr) -> std::io::Result<DnsSockets> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut last_error = None;
    for _ in 0..PORT_ATTEMPTS {
        let tcp = TcpListener::bind(addr).await?;
        let bound = tcp.local_addr()?;
        match (0..workers)
            .map(|_| super::udp::bind_shared(bound))
            .collect::<std::io::Result<Vec<_>>>()
        {
            Ok(udp) => {
                return Ok(DnsSockets {
                    udp,
                    tcp,
                    addr: bound,
                });
            }
            // Someone holds the UDP side of the port TCP got; try another one.
            Err(error) if addr.port() == 0 => last_error = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no port free for UDP and TCP")))
}

/// Serves both transports until `shutdown`.
pub fn spawn(
    sockets: DnsSockets,
    handler: DnsHandler,
    config: &DnsConfig,
    shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let limits = TcpLimits {
        idle: Duration::from_millis(config.tcp_idle_timeout_ms),
        max_query_bytes: config.max_query_bytes,
    };
    let rrl = Arc::new(ResponseRateLimit::new(config));
    let mut tasks: Vec<JoinHandle<()>> = sockets
        .udp
        .into_iter()
        .filter_map(|socket| {
            let (handler, rrl, shutdown) = (handler.clone(), rrl.clone(), shutdown.clone());
            // A thread of its own, not the runtime's blocking pool: a runtime dropped
            // without a shutdown (a test, a panic) must not wait on a worker forever.
            let (done, finished) = tokio::sync::oneshot::channel::<()>();
            let spawned = std::thread::Builder::new()
                .name("dns-udp".into())
                .spawn(move || {
                    super::udp::serve(socket, handler, rrl, shutdown);
                    let _ = done.send(());
                });
            match spawned {
                Ok(_) => Some(tokio::spawn(async move {
                    let _ = finished.await;
                })),
                Err(error) => {
                    tracing::error!(%error, "cannot start a DNS UDP worker thread");
                    None
                }
            }
        })
        .collect();
    tasks.push(tokio::spawn(serve_tcp(
        sockets.tcp,
        handler,
        limits,
        ConnectionLimits::new(
            "dns_tcp",
            config.tcp_max_connections,
            config.tcp_max_connections_per_ip,
        ),
        shutdown,
    )));
    tasks
}

#[derive(Clone, Copy)]
struct TcpLimits {
    idle: Duration,
    max_query_bytes: usize,
}

async fn serve_tcp(
    listener: TcpListener,
    handler: DnsHandler,
    limits: TcpLimits,
    connection_limits: Arc<ConnectionLimits>,
    shutdown: CancellationToken,
) {
    let connections = shutdown.clone();
    crate::accept::accept_loop(
        listener,
        connection_limits,
        shutdown,
        |stream, peer, slot| {
            let handler = handler.clone();
            let shutdown = connections.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = serve_connection(stream, peer, &handler, limits) => {}
                }
                drop(slot);
            });
        },
    )
    .await;
}

/// Queries one after another on one connection (RFC 7766 framing: 2-byte length).
async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    handler: &DnsHandler,
    limits: TcpLimits,
) {
    // Reused for every query on the connection.
    let (mut query, mut answer, mut framed) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        let mut prefix = [0u8; 2];
        match tokio::time::timeout(limits.idle, stream.read_exact(&mut prefix)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let len = usize::from(u16::from_be_bytes(prefix));
        if len == 0 || len > limits.max_query_bytes {
            tracing::debug!(%peer, len, "DNS TCP query size out of bounds; closing");
            return;
        }
        query.resize(len, 0);
        match tokio::time::timeout(limits.idle, stream.read_exact(&mut query)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        if handler
            .respond(&query, peer.ip(), Transport::Stream, &mut answer)
            .is_none()
        {
            return;
        }
        let Ok(answer_len) = u16::try_from(answer.len()) else {
            return;
        };
        framed.clear();
        framed.extend_from_slice(&answer_len.to_be_bytes());
        framed.extend_from_slice(&answer);
        match tokio::time::timeout(limits.idle, stream.write_all(&framed)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}

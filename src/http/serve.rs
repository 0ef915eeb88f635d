//! Serving an axum router on a TCP listener, over TLS or plaintext.
//!
//! The one way an HTTP listener runs, so the public and admin listeners get the same
//! accept loop ([`crate::accept`]), TLS handshake bound, HTTP/1.1 + HTTP/2 (h2 by ALPN,
//! h2c by prior knowledge), client address (`ConnectInfo<SocketAddr>` for handlers) and
//! graceful shutdown: stop accepting, let requests in flight finish, then close.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_service::Service;

use crate::tls::Tls;

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connections in flight get to finish after shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown`, over TLS when `tls` is given, else
/// plaintext.
pub fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Tls>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        let builder = auto::Builder::new(TokioExecutor::new());
        crate::accept::accept_loop(listener, None, shutdown, "http", |tcp, peer, _slot| {
            // Small answers must not wait for Nagle's algorithm.
            let _ = tcp.set_nodelay(true);
            let router = router.clone();
            let builder = builder.clone();
            let watcher = graceful.watcher();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => serve_connection(tcp, peer, router, builder, watcher).await,
                    Some(tls) => {
                        let handshake = tls.acceptor.accept(tcp);
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                            Ok(Ok(stream)) => {
                                serve_connection(stream, peer, router, builder, watcher).await;
                            }
                            Ok(Err(error)) => {
                                tracing::debug!(%error, %peer, "TLS handshake failed");
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
            });
        })
        .await;
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the drain timeout");
        }
    })
}

async fn serve_connection<S>(
    io: S,
    peer: SocketAddr,
    router: Router,
    builder: auto::Builder<TokioExecutor>,
    watcher: Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(
        move |mut request: axum::http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().call(request)
        },
    );
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    if let Err(error) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(%error, %peer, "connection ended with an error");
    }
}

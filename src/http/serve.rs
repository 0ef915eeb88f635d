//! Serving an axum router on a TCP listener, over TLS or plaintext, bounded.
//!
//! The one way an HTTP listener runs, so the public and admin listeners get the same
//! accept loop and connection caps ([`crate::accept`]), TLS handshake bound, HTTP/1.1 +
//! HTTP/2 (h2 by ALPN, h2c by prior knowledge), client address
//! (`ConnectInfo<SocketAddr>` for handlers), body deadline ([`super::deadline`]) and
//! graceful shutdown.
//!
//! Each connection has a watchdog, like Go's `ReadHeaderTimeout` and `IdleTimeout`: from
//! the first byte of a request head (or from the connect) the whole head must arrive
//! within `header_read_timeout`; a connection with no request in flight and no byte of a
//! new one is closed after `idle_timeout`. Half-sent headers and idle keep-alives cannot
//! hold descriptors for longer than that.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_service::Service;

use super::hot::HotRoutes;
use crate::accept::{ConnectionLimits, ConnectionSlot};
use crate::tls::Tls;

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connections in flight get to finish after shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The bounds of one HTTP listener.
#[derive(Clone)]
pub struct HttpLimits {
    pub connections: Arc<ConnectionLimits>,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown`, over TLS when `tls` is given, else
/// plaintext.
pub fn serve(
    listener: TcpListener,
    router: Router,
    hot: Option<Arc<HotRoutes>>,
    tls: Option<Tls>,
    limits: HttpLimits,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let router = router.layer(axum::middleware::from_fn_with_state(
        limits.body_read_timeout,
        super::deadline::limit_body_time,
    ));
    tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        let builder = auto::Builder::new(TokioExecutor::new());
        let connections = Arc::clone(&limits.connections);
        crate::accept::accept_loop(listener, connections, shutdown, |tcp, peer, slot| {
            // Small answers must not wait for Nagle's algorithm.
            let _ = tcp.set_nodelay(true);
            let connection = Connection {
                peer,
                router: router.clone(),
                hot: hot.clone(),
                builder: builder.clone(),
                watcher: graceful.watcher(),
                limits: limits.clone(),
                _slot: slot,
            };
            let tls = tls.clone();
            tokio::spawn(async move {
                let Some(tls) = tls else {
                    return connection.serve(tcp, false).await;
                };
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                        connection.serve(stream, h2).await;
                    }
                    Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
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

/// One accepted connection and what it needs to be served.
struct Connection {
    peer: SocketAddr,
    router: Router,
    /// Served before the router, when the listener has hot routes.
    hot: Option<Arc<HotRoutes>>,
    builder: auto::Builder<TokioExecutor>,
    watcher: Watcher,
    limits: HttpLimits,
    /// Held for the connection's life: its place under the listener's caps.
    _slot: ConnectionSlot,
}

impl Connection {
    async fn serve<S>(self, io: S, h2: bool)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let peer = self.peer;
        let activity = Arc::new(Activity::new(h2));
        let router = self.router;
        let hot = self.hot;
        let in_service = Arc::clone(&activity);
        // The answer is made inside the returned future, not in `call`: HTTP/2 calls the
        // service on the connection's task and runs the future on a task of its own, so
        // work done in `call` would hold up reading and writing for every other stream.
        // HTTP/1.1 polls the future at once either way.
        let service = hyper::service::service_fn(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                let request_guard = in_service.request_started();
                let hot = hot.clone();
                let mut router = router.clone();
                async move {
                    let response = match hot.as_ref().and_then(|hot| hot.answer(&request, peer)) {
                        Some(answered) => Ok(answered),
                        // Boxed: unboxed, the router's future would make every
                        // answer's future as large, hot ones included, and HTTP/2
                        // copies a stream's future four times on its way into a task
                        // (callgrind, h2c `/resolve`: 41.0k instructions per request
                        // boxed, 42.0k not).
                        None => {
                            request.extensions_mut().insert(ConnectInfo(peer));
                            Box::pin(router.call(request)).await
                        }
                    };
                    drop(request_guard);
                    response
                }
            },
        );
        let io = Tracked {
            inner: io,
            activity: Arc::clone(&activity),
        };
        let connection = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service);
        let connection = self.watcher.watch(connection.into_owned());
        tokio::select! {
            result = connection => {
                if let Err(error) = result {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
            }
            kind = watchdog(&activity, &self.limits) => {
                metrics::counter!("httpdns_connection_timeouts_total", "kind" => kind).increment(1);
                tracing::debug!(%peer, kind, "closing connection");
            }
        }
    }
}

/// Sentinel for "no request head in progress".
const NONE: u64 = u64::MAX;

/// What a connection is doing, as its watchdog sees it (milliseconds since `start`).
struct Activity {
    start: Instant,
    h2: AtomicBool,
    /// Requests dispatched and not yet answered.
    in_flight: AtomicU32,
    /// Requests answered so far.
    served: AtomicU64,
    /// When the first byte of a request head arrived (the connect, for the first one);
    /// `NONE` while no head is in progress.
    head_started: AtomicU64,
    /// When the connection last became idle (no request in flight).
    idle_since: AtomicU64,
}

impl Activity {
    fn new(h2: bool) -> Self {
        Self {
            start: Instant::now(),
            h2: AtomicBool::new(h2),
            in_flight: AtomicU32::new(0),
            served: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    /// Bytes arrived: with nothing in flight and no head in progress, a head starts.
    fn bytes_read(&self, first: &[u8]) {
        if self.served.load(Ordering::Relaxed) == 0 && first.starts_with(b"PRI * HTTP/2.0") {
            self.h2.store(true, Ordering::Relaxed);
        }
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == NONE
        {
            self.head_started.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(NONE, Ordering::Relaxed);
        RequestGuard(Arc::clone(self))
    }
}

/// Marks a request answered when dropped.
struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.served.fetch_add(1, Ordering::Relaxed);
        if activity.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            activity
                .idle_since
                .store(activity.now_ms(), Ordering::Relaxed);
        }
    }
}

/// Resolves when the connection has overstayed: `"header_read"` or `"idle"`.
///
/// Nothing wakes it but its own timer, so a request costs the watchdog nothing. That is
/// exact because it never sleeps more than the shorter of the two timeouts past its
/// last look: any state change after that look (a head starting, the last request
/// ending) sets a deadline at least that far after the change, so the watchdog is
/// already awake by then and simply sleeps on to the new deadline.
async fn watchdog(activity: &Activity, limits: &HttpLimits) -> &'static str {
    let header = u64::try_from(limits.header_read_timeout.as_millis()).unwrap_or(u64::MAX / 2);
    let idle = u64::try_from(limits.idle_timeout.as_millis()).unwrap_or(u64::MAX / 2);
    let look_again = header.min(idle).max(1);
    loop {
        let now = activity.now_ms();
        let head_started = activity.head_started.load(Ordering::Relaxed);
        // HTTP/2 clients send frames (SETTINGS acks, window updates) between requests;
        // after the first request only the idle rule applies to them.
        let heads_count =
            !activity.h2.load(Ordering::Relaxed) || activity.served.load(Ordering::Relaxed) == 0;
        let (deadline, kind) = if activity.in_flight.load(Ordering::Relaxed) > 0 {
            // A request is being served; its body has its own deadline.
            (now + idle, "")
        } else if head_started != NONE && heads_count {
            (head_started + header, "header_read")
        } else {
            (activity.idle_since.load(Ordering::Relaxed) + idle, "idle")
        };
        if now >= deadline && !kind.is_empty() {
            return kind;
        }
        let wake = deadline.min(now + look_again);
        tokio::time::sleep(Duration::from_millis(wake.saturating_sub(now).max(1))).await;
    }
}

/// A stream that tells its connection's [`Activity`] when bytes arrive.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    /// Not vectored, on purpose: on a vectored stream h2 sends every DATA frame over 256
    /// bytes by itself (a `/resolve` answer is ~420), one `writev` per answer, while it
    /// copies frames up to 1 KiB into its buffer on a plain one and writes the answers
    /// of many streams at once (measured: 1.0 answer per `writev` vs 1.6 with h2load
    /// -c64 -m4). HTTP/1.1 then copies head and body into one buffer, one `write` each.
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

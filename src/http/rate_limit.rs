//! Rate limiting of the public HTTP fronts: `/resolve`, `/dns-query` and `/report`.
//!
//! The client is who the fronts answer for ([`crate::policy::client_ip`]: the socket
//! peer, or the address trusted proxies name), never the `ip=` a caller asks about, so
//! a proxy's clients each get their own buckets and a caller cannot dodge its bucket by
//! varying `ip=`. Over the limit: 429 in the JSON error shape with `Retry-After`
//! (whole seconds, at least 1). The buckets are [`ClientLimits`]; with every rate at 0
//! this layer passes requests straight through.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::policy::client_ip::client_ip;
use crate::policy::rate_limit::ClientLimits;
use crate::resolver::Resolver;

/// Paths that count against a client's buckets; `/healthz` and unknown paths do not.
const LIMITED_PATHS: &[&str] = &["/resolve", "/dns-query", "/report"];

/// What the middleware needs: the buckets and the resolver (for trusted proxies).
#[derive(Clone)]
pub struct RateLimit {
    pub limits: Arc<ClientLimits>,
    pub resolver: Resolver,
}

/// Answers 429 when the client's bucket is empty, else passes the request on.
pub async fn limit(State(state): State<RateLimit>, request: Request, next: Next) -> Response {
    let refused = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .and_then(|ConnectInfo(peer)| state.refuse(request.uri().path(), *peer, request.headers()));
    match refused {
        Some(response) => response,
        None => next.run(request).await,
    }
}

impl RateLimit {
    /// The 429 answer when `path` counts against the client's buckets and they are
    /// empty; `None` lets the request through. Shared by the middleware and the hot
    /// path ([`super::hot`]).
    pub fn refuse(&self, path: &str, peer: SocketAddr, headers: &HeaderMap) -> Option<Response> {
        if self.limits.is_off() || !LIMITED_PATHS.contains(&path) {
            return None;
        }
        let (client, _) = client_ip(
            peer.ip(),
            headers,
            &self.resolver.snapshot().trusted_proxies,
            None,
        );
        let wait = self.limits.check(client).err()?;
        metrics::counter!("httpdns_rate_limited_total", "front" => "http").increment(1);
        tracing::debug!(%client, path, "rate limited");
        let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
        let mut response = ApiError::RateLimited(format!(
            "too many requests from {client}; retry in {seconds}s"
        ))
        .into_response();
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
        Some(response)
    }
}

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
use axum::http::HeaderValue;
use axum::http::header::RETRY_AFTER;
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
    if state.limits.is_off() || !LIMITED_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() else {
        return next.run(request).await;
    };
    let (client, _) = client_ip(
        peer.ip(),
        request.headers(),
        &state.resolver.snapshot().trusted_proxies,
        None,
    );
    match state.limits.check(client) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            metrics::counter!("httpdns_rate_limited_total", "front" => "http").increment(1);
            tracing::debug!(%client, path = request.uri().path(), "rate limited");
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut response = ApiError::RateLimited(format!(
                "too many requests from {client}; retry in {}s",
                seconds.max(1)
            ))
            .into_response();
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            response
        }
    }
}

//! The hot routes, served without the router: `GET /resolve` and `GET /dns-query`.
//!
//! Nearly every request a public listener sees is one of these two, bodiless and
//! answered from the answer cache in a microsecond or two, so the router's own cost
//! (boxing and cloning its service stack, three middleware futures, route matching,
//! owned copies of the headers and query, label strings for the metrics) would be a
//! large share of the request. [`HotRoutes::answer`] is called by the connection
//! ([`super::serve`]) before the router and does the same things in the same order,
//! through the same functions: the rate limit ([`RateLimit::refuse`]), the handler
//! (the router's handlers call the very same function), and the request metrics
//! through pre-registered handles ([`RouteMetrics`]). Anything else, including a
//! `POST` to these paths, goes to the router.

use std::net::SocketAddr;
use std::time::Instant;

use axum::http::{HeaderMap, Method, Request};
use axum::response::{IntoResponse, Response};

use super::ApiError;
use super::rate_limit::RateLimit;
use crate::metrics::RouteMetrics;

/// A hot route's handler: peer, headers and raw query in, the answer out.
pub type Handler =
    Box<dyn Fn(SocketAddr, &HeaderMap, Option<&str>) -> Result<Response, ApiError> + Send + Sync>;

struct Route {
    path: &'static str,
    handler: Handler,
    metrics: RouteMetrics,
}

/// The hot `GET` routes of one listener and the rate limit in front of them.
pub struct HotRoutes {
    routes: Vec<Route>,
    rate_limit: RateLimit,
}

impl HotRoutes {
    pub fn new(rate_limit: RateLimit) -> Self {
        Self {
            routes: Vec::new(),
            rate_limit,
        }
    }

    /// Serves `GET path` with `handler`.
    pub fn get(mut self, path: &'static str, handler: Handler) -> Self {
        self.routes.push(Route {
            path,
            handler,
            metrics: RouteMetrics::new(path),
        });
        self
    }

    /// The answer when `request` is a `GET` of a hot route; `None` sends it to the
    /// router.
    pub fn answer<B>(&self, request: &Request<B>, peer: SocketAddr) -> Option<Response> {
        if request.method() != Method::GET {
            return None;
        }
        let path = request.uri().path();
        let route = self.routes.iter().find(|route| route.path == path)?;
        let started = Instant::now();
        let response = match self.rate_limit.refuse(path, peer, request.headers()) {
            Some(refused) => refused,
            None => (route.handler)(peer, request.headers(), request.uri().query())
                .unwrap_or_else(IntoResponse::into_response),
        };
        route.metrics.record(response.status(), started.elapsed());
        Some(response)
    }
}

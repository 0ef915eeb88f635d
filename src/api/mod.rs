//! Public HTTP API: `/resolve`, `/report`, `/healthz`.
//!
//! Handlers translate HTTP into a resolver request context and decisions into JSON;
//! they hold no steering logic. Client-IP and signing rules are [`crate::policy`]'s;
//! every bad input becomes an [`ApiError`] with one status and one JSON shape, never a
//! panic or a 500.

mod answer_json;
mod report;
mod resolve;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use serde_json::json;

pub use crate::http::{ApiError, EPOCH_HEADER};
use crate::resolver::Resolver;
pub use resolve::answer as resolve_answer;

/// Shared state of the public handlers.
#[derive(Clone)]
pub struct AppState {
    pub resolver: Resolver,
    /// Largest request body read by handlers that read bodies themselves.
    pub max_body_bytes: usize,
}

/// The public router.
pub fn router(state: AppState) -> Router {
    let max_body_bytes = state.max_body_bytes;
    Router::new()
        .route("/resolve", get(resolve::resolve))
        .route("/report", post(report::report))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .route_layer(axum::middleware::from_fn(crate::metrics::track))
        .with_state(state)
}

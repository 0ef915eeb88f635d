//! Public HTTP API: `/resolve`, `/healthz`; client-IP extraction; the one error type.
//!
//! Handlers translate HTTP into scheduler queries and decisions into JSON; they hold no
//! steering logic. Every bad input becomes an [`ApiError`] with one status and one JSON
//! shape, never a panic or a 500.

pub mod client_ip;
mod resolve;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::resolver::Resolver;

/// Name of the header carrying the steering epoch on every answer.
pub const EPOCH_HEADER: &str = "x-httpdns-epoch";

/// Shared state of the public handlers.
#[derive(Clone)]
pub struct AppState {
    pub resolver: Resolver,
}

/// The public router.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/resolve", get(resolve::resolve))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// Every error a handler can answer with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("no such route")]
    NotFound,
    #[error("{0}")]
    UnsupportedMediaType(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
        };
        (
            status,
            Json(json!({"error": code, "message": self.to_string()})),
        )
            .into_response()
    }
}

//! Public HTTP API: `/resolve`, `/healthz`; client-IP extraction; the one error type.
//!
//! Handlers translate HTTP into scheduler queries and decisions into JSON; they hold no
//! steering logic. Every bad input becomes an [`ApiError`] with one status and one JSON
//! shape, never a panic or a 500.

pub mod client_ip;
mod report;
mod resolve;
pub mod signing;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::resolver::Resolver;

/// Name of the header carrying the steering epoch on every answer.
pub const EPOCH_HEADER: &str = "x-httpdns-epoch";

/// Shared state of the public handlers.
#[derive(Clone)]
pub struct AppState {
    pub resolver: Resolver,
    /// Largest request body read by handlers that read bodies themselves.
    pub max_body_bytes: usize,
}

/// The public router.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/resolve", get(resolve::resolve))
        .route("/report", post(report::report))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .route_layer(axum::middleware::from_fn(crate::metrics::track))
        .with_state(state)
}

/// Every error a handler (public or admin) can answer with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("no such route")]
    NotFound,
    /// A named thing (zone, endpoint, host) that does not exist.
    #[error("{0}")]
    UnknownResource(String),
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// A request that fails signature checks.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    RateLimited(String),
    /// A reload that found errors; the old configuration keeps serving.
    #[error("reload failed; the previous configuration is still serving")]
    ReloadFailed(Vec<String>),
    /// Our own failure (e.g. the state file could not be written).
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Cluster mode: a compare-and-set lost; `revision` is the key's current one.
    #[error("changed since the given revision; now at revision {revision}")]
    Conflict { revision: i64 },
    /// Cluster mode: etcd is unreachable, so no change can be committed.
    #[error("{0}")]
    ControlPlaneUnavailable(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::UnknownResource(_) => (StatusCode::NOT_FOUND, "unknown"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::ReloadFailed(_) => (StatusCode::UNPROCESSABLE_ENTITY, "reload_failed"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            Self::ControlPlaneUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "control_plane_unavailable")
            }
        };
        let mut body = json!({"error": code, "message": self.to_string()});
        if let Self::ReloadFailed(errors) = &self {
            body["errors"] = json!(errors);
        }
        if let Self::Conflict { revision } = &self {
            body["revision"] = json!(revision);
        }
        (status, Json(body)).into_response()
    }
}

/// Reads a JSON body of at most `limit` bytes; every failure is a 400 with the reason.
pub async fn json_body<T: serde::de::DeserializeOwned>(
    body: axum::body::Body,
    limit: usize,
) -> Result<T, ApiError> {
    parse_json(&read_body(body, limit).await?)
}

/// Like [`json_body`], but an empty (or all-whitespace) body means `T::default()`.
pub async fn optional_json_body<T: serde::de::DeserializeOwned + Default>(
    body: axum::body::Body,
    limit: usize,
) -> Result<T, ApiError> {
    let bytes = read_body(body, limit).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(&bytes)
    }
}

async fn read_body(body: axum::body::Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::BadRequest(format!("body larger than {limit} bytes")))
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Parses an IP a caller gave us (`what` names it in the error); IPv4-mapped IPv6
/// addresses become IPv4.
pub fn parse_ip(text: &str, what: &str) -> Result<std::net::IpAddr, ApiError> {
    text.trim()
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.to_canonical())
        .map_err(|_| ApiError::BadRequest(format!("{what} {text:?} is not an IP address")))
}

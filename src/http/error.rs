//! The one error type of every HTTP handler (public API, DoH, admin).
//!
//! Each kind maps to one status and one JSON shape, `{"error": "...", "message": "..."}`,
//! so no handler builds an error body by hand and every refusal reads the same.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

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
    /// A body (or DoH query) over its size bound.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A body that did not arrive within its time bound.
    #[error("{0}")]
    RequestTimeout(String),
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
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
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

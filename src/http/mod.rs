//! HTTP plumbing shared by the public API, DoH and the admin API.
//!
//! The one error type ([`ApiError`]), body and parameter reading ([`body`]) with a
//! deadline on slow bodies ([`deadline`]), the way an axum router is served on a
//! listener, over TLS or plaintext, with connection caps and timeouts ([`serve`]), and
//! the per-client rate limit of the public fronts ([`rate_limit`]), and the lean path
//! of the two hot `GET` routes ([`hot`]). No
//! steering logic lives here: these are the parts every HTTP front needs the same.

pub mod body;
pub mod deadline;
mod error;
pub mod hot;
pub mod rate_limit;
pub mod serve;

pub use body::{
    json_body, optional_json_body, parse_ip, query, query_params, read_body, require_content_type,
};
pub use error::ApiError;

/// Name of the header carrying the steering epoch on every answer.
pub const EPOCH_HEADER: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-httpdns-epoch");

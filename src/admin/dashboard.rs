//! The SRE dashboard (`GET /dashboard`) and the API description (`GET /openapi.json`),
//! both served on the admin listener without a token.
//!
//! The page is static: HTML, CSS and JS embedded in the binary (no CDN, no web fonts, so
//! it works on an isolated admin network). It holds no admin data; it asks the operator
//! for a token, keeps it in `sessionStorage` and calls the authenticated admin API with
//! `Authorization: Bearer`, like any other client. The OpenAPI file is checked in and
//! tested against the routers (`tests/openapi.rs`).

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const STYLE_CSS: &str = include_str!("dashboard/style.css");
/// OpenAPI 3.1 description of the public and admin HTTP APIs.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Same-origin only: the page may talk to this listener and nothing else.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Routes that need no token; merged beside (not inside) the authenticated router.
pub fn routes() -> Router {
    Router::new()
        .route(
            "/dashboard",
            get(|| asset("text/html; charset=utf-8", INDEX_HTML)),
        )
        .route(
            "/dashboard/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/dashboard/style.css",
            get(|| asset("text/css; charset=utf-8", STYLE_CSS)),
        )
        .route(
            "/openapi.json",
            get(|| asset("application/json", OPENAPI_JSON)),
        )
}

async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, content_type),
            (CONTENT_SECURITY_POLICY, CSP),
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

//! `GET /admin/status`: the server's version, epoch and last reload, for the dashboard's
//! header. Read-only, behind the admin token like every `/admin` route.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AdminState;

pub fn routes() -> Router<AdminState> {
    Router::new().route("/admin/status", get(status))
}

async fn status(State(state): State<AdminState>) -> Json<Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "epoch": state.resolver.epoch().current(),
        "last_reload": state.reloader.last(),
    }))
}

//! `POST /report`: SDK speed reports, validated and handed to the speed table.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::client_ip::client_ip;
use super::{ApiError, AppState, json_body};
use crate::model::normalize_host;
use crate::speed::{ReportBody, ReportError};

pub(super) async fn report(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let report: ReportBody = json_body(body, app.max_body_bytes).await?;
    let snapshot = app.resolver.snapshot();
    let host = normalize_host(&report.host);
    let model = &snapshot.model;
    let domain = model
        .domain(&host)
        .ok_or_else(|| ApiError::BadRequest(format!("unknown host {:?}", report.host)))?;
    let (ip, _) = client_ip(peer.ip(), &headers, &snapshot.trusted_proxies, None);
    let geo = snapshot.geo.lookup(ip);
    let is_endpoint = |candidate| {
        domain
            .zones
            .iter()
            .any(|&zone| model.zone(zone).endpoints.iter().any(|e| e.ip == candidate))
    };
    let accepted = app
        .resolver
        .live()
        .speed
        .record(
            ip,
            &geo,
            &report.reports,
            is_endpoint,
            crate::epoch::now_ms(),
        )
        .map_err(|e| match e {
            ReportError::Invalid(message) => ApiError::BadRequest(message),
            limited @ ReportError::RateLimited(..) => ApiError::RateLimited(limited.to_string()),
        })?;
    Ok(Json(json!({"accepted": accepted})))
}

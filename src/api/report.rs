//! `POST /report`: SDK speed reports, validated and handed to the resolver.
//!
//! The JSON body is this front's wire shape; the speed table sees typed samples.

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::http::{json_body, require_content_type};
use crate::model::normalize_host;
use crate::policy::client_ip::client_ip;
use crate::speed::{ReportError, Sample};

/// One SDK measurement as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportItem {
    ip: String,
    rtt_ms: Option<f64>,
    ok: bool,
}

/// The `POST /report` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportBody {
    host: String,
    reports: Vec<ReportItem>,
}

fn samples(items: &[ReportItem]) -> Result<Vec<Sample>, ApiError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let ip = item.ip.trim().parse::<IpAddr>().map_err(|_| {
                ApiError::BadRequest(format!(
                    "reports[{i}].ip {:?} is not an IP address",
                    item.ip
                ))
            })?;
            Ok(Sample {
                ip,
                rtt_ms: item.rtt_ms,
                ok: item.ok,
            })
        })
        .collect()
}

pub(super) async fn report(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    // Must say it is JSON: a browser page then cannot post a report without a CORS
    // preflight (a form or `text/plain` fetch is a "simple request" that skips it).
    require_content_type(&headers, "application/json")?;
    let report: ReportBody = json_body(body, app.max_body_bytes).await?;
    let samples = samples(&report.reports)?;
    let request = app.resolver.request();
    let (ip, _) = client_ip(
        peer.ip(),
        &headers,
        &request.snapshot().trusted_proxies,
        None,
    );
    let accepted = request
        .for_client(ip)
        .record_speed(&normalize_host(&report.host), &samples)
        .map_err(|e| match e {
            ReportError::Invalid(message) => ApiError::BadRequest(message),
            limited @ ReportError::RateLimited(..) => ApiError::RateLimited(limited.to_string()),
        })?;
    Ok(Json(json!({"accepted": accepted})))
}

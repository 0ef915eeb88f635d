//! Admin HTTP API: drains, endpoint disables, reload, inspection, metrics.
//!
//! Every route sits behind a bearer token (see [`auth`]) except the dashboard page and
//! the API description ([`dashboard`]), which carry no admin data; the token's name is
//! who the audit log says made a change. Handlers validate against the current model, then call
//! `state` (drains), `reload` or the resolver's explain; they never touch the
//! scheduler's insides. A change is persisted and audited before the handler answers.

pub mod auth;
pub mod client;
pub mod dashboard;
pub mod gauges;
pub mod status;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiError, json_body, optional_json_body, parse_ip};
use crate::reload::Reloader;
use crate::resolver::Resolver;
use crate::state::{ALL_DOMAINS, Change};

pub use auth::AdminTokens;

/// Longest ramp accepted for a gradual drain.
const MAX_RAMP: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone)]
pub struct AdminState {
    pub resolver: Resolver,
    pub reloader: Arc<Reloader>,
    pub tokens: Arc<AdminTokens>,
    /// Loopback-only mode without tokens (`--admin-insecure-loopback`).
    pub insecure: bool,
    pub max_body_bytes: usize,
}

/// Who is making a change (the token's name).
#[derive(Clone)]
struct Actor(String);

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/admin/zones", get(zones))
        .route("/admin/zones/{zone}/drain", post(drain).delete(undrain))
        .route(
            "/admin/endpoints/{ip}/disable",
            post(disable).delete(enable),
        )
        .route("/admin/reload", post(reload))
        .route("/admin/explain", get(explain))
        .route("/metrics", get(metrics))
        .merge(status::routes())
        .fallback(|| async { ApiError::NotFound })
        .route_layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
        .with_state(state)
        .merge(dashboard::routes())
}

async fn authenticate(
    State(state): State<AdminState>,
    mut request: Request,
    next: Next,
) -> Response {
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let actor = match state.tokens.check(header) {
        Some(name) => name.to_string(),
        None if state.insecure => "insecure-loopback".to_string(),
        None => return ApiError::Unauthorized.into_response(),
    };
    request.extensions_mut().insert(Actor(actor));
    next.run(request).await
}

fn parse_ramp(over: Option<&str>) -> Result<u64, ApiError> {
    let Some(text) = over.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(0);
    };
    let ramp = humantime::parse_duration(text)
        .map_err(|e| ApiError::BadRequest(format!("over {text:?}: {e} (e.g. \"10m\", \"90s\")")))?;
    if ramp > MAX_RAMP {
        return Err(ApiError::BadRequest(format!(
            "over {text:?} is longer than 24h"
        )));
    }
    Ok(u64::try_from(ramp.as_millis()).unwrap_or(u64::MAX))
}

fn known_zone(resolver: &Resolver, zone: &str) -> Result<(), ApiError> {
    match resolver.snapshot().model.zone_id(zone) {
        Some(_) => Ok(()),
        None => Err(ApiError::UnknownResource(format!("unknown zone {zone:?}"))),
    }
}

/// Applies a change, bumps the epoch, and answers with the zone's or endpoint's state.
async fn apply(state: &AdminState, actor: &Actor, change: Change) -> Result<Json<Value>, ApiError> {
    let record = state
        .resolver
        .live()
        .state
        .apply(change, &actor.0)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let epoch = state.resolver.epoch().bump();
    tracing::info!(token = %record.token, action = record.action, target = %record.target, reason = %record.reason, epoch, "admin change");
    Ok(Json(json!({
        "action": record.action,
        "target": record.target,
        "epoch": epoch,
        "after": record.after,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainBody {
    #[serde(default)]
    weight: f64,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    domains: Vec<String>,
    over: Option<String>,
}

async fn drain(
    State(state): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path(zone): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let body: DrainBody = json_body(body, state.max_body_bytes).await?;
    known_zone(&state.resolver, &zone)?;
    if !body.weight.is_finite() || !(0.0..=100.0).contains(&body.weight) {
        return Err(ApiError::BadRequest(format!(
            "weight {} is outside 0..=100",
            body.weight
        )));
    }
    let over_ms = parse_ramp(body.over.as_deref())?;
    let mut domains = Vec::new();
    {
        let snapshot = state.resolver.snapshot();
        let zone_id = snapshot.model.zone_id(&zone).unwrap_or_default();
        for name in &body.domains {
            let normalized = crate::model::normalize_host(name);
            match snapshot.model.domain(&normalized) {
                Some(domain) if domain.is_served_by(zone_id) => domains.push(normalized),
                Some(_) => {
                    return Err(ApiError::BadRequest(format!(
                        "zone {zone:?} does not serve {name:?}"
                    )));
                }
                None => return Err(ApiError::BadRequest(format!("unknown domain {name:?}"))),
            }
        }
    }
    let change = Change::Drain {
        zone,
        weight: body.weight,
        domains,
        over_ms,
        reason: body.reason,
    };
    apply(&state, &actor, change).await
}

#[derive(Deserialize)]
struct UndrainQuery {
    over: Option<String>,
    reason: Option<String>,
}

async fn undrain(
    State(state): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path(zone): Path<String>,
    Query(query): Query<UndrainQuery>,
) -> Result<Json<Value>, ApiError> {
    known_zone(&state.resolver, &zone)?;
    let change = Change::Undrain {
        zone,
        over_ms: parse_ramp(query.over.as_deref())?,
        reason: query.reason.unwrap_or_default(),
    };
    apply(&state, &actor, change).await
}

fn known_endpoint(resolver: &Resolver, ip: &str) -> Result<IpAddr, ApiError> {
    let ip = parse_ip(ip, "endpoint")?;
    let snapshot = resolver.snapshot();
    if snapshot
        .model
        .zones
        .iter()
        .any(|z| z.endpoints.iter().any(|e| e.ip == ip))
    {
        Ok(ip)
    } else {
        Err(ApiError::UnknownResource(format!(
            "{ip} is not an endpoint of any zone"
        )))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    #[serde(default)]
    reason: String,
}

async fn disable(
    State(state): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path(ip): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let body: ReasonBody = optional_json_body(body, state.max_body_bytes).await?;
    let ip = known_endpoint(&state.resolver, &ip)?;
    apply(
        &state,
        &actor,
        Change::Disable {
            ip,
            reason: body.reason,
        },
    )
    .await
}

async fn enable(
    State(state): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path(ip): Path<String>,
    Query(query): Query<UndrainQuery>,
) -> Result<Json<Value>, ApiError> {
    let ip = known_endpoint(&state.resolver, &ip)?;
    let reason = query.reason.unwrap_or_default();
    apply(&state, &actor, Change::Enable { ip, reason }).await
}

async fn reload(State(state): State<AdminState>) -> Result<Json<Value>, ApiError> {
    match state.reloader.reload("admin api").await {
        Ok(summary) => Ok(Json(
            json!({"status": "reloaded", "epoch": summary.epoch, "domains": summary.domains, "zones": summary.zones}),
        )),
        Err(errors) => Err(ApiError::ReloadFailed(errors)),
    }
}

async fn zones(State(state): State<AdminState>) -> Json<Value> {
    let snapshot = state.resolver.snapshot();
    let live = state.resolver.live();
    let health = live.health.snapshot();
    let overrides = live.state.current();
    let now = crate::epoch::now_ms();
    let zones: Vec<Value> = snapshot
        .model
        .zones
        .iter()
        .map(|zone| {
            let endpoints: Vec<Value> = zone
                .endpoints
                .iter()
                .map(|e| {
                    let checked = health.get(&e.ip);
                    json!({
                        "ip": e.ip,
                        "weight": e.weight,
                        "health_checked": checked.is_some(),
                        "up": checked.is_none_or(|h| h.is_up()),
                        "probe_rtt_ms": checked.and_then(|h| h.probe_rtt_ms()),
                        "disabled": overrides.disabled.get(&e.ip),
                    })
                })
                .collect();
            let drains: BTreeMap<&str, Value> = overrides
                .drains
                .get(&*zone.name)
                .map(|by_domain| {
                    by_domain
                        .iter()
                        .map(|(domain, d)| {
                            (domain.as_str(), json!({
                                "keep_weight_now": d.keep_share(now) * 100.0,
                                "to_weight": d.to_weight,
                                "ramp_ends_ms": d.end_ms,
                                "since_ms": d.start_ms,
                                "reason": d.reason,
                                "by": d.by,
                            }))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let failovers = live.failovers.snapshot(&zone.name);
            json!({
                "zone": zone.name,
                "failover": zone.failover.iter().map(|z| &snapshot.model.zone(*z).name).collect::<Vec<_>>(),
                "endpoints": endpoints,
                "drains": drains,
                "keep_weight_all_domains": overrides.keep_share(&zone.name, ALL_DOMAINS, now) * 100.0,
                "recent_failovers": failovers,
            })
        })
        .collect();
    Json(json!({"epoch": state.resolver.epoch().current(), "zones": zones}))
}

#[derive(Deserialize)]
struct ExplainQuery {
    host: Option<String>,
    ip: Option<String>,
}

async fn explain(
    State(state): State<AdminState>,
    Query(query): Query<ExplainQuery>,
) -> Result<Json<Value>, ApiError> {
    let host = query
        .host
        .ok_or_else(|| ApiError::BadRequest("missing host parameter".into()))?;
    let ip = query
        .ip
        .ok_or_else(|| ApiError::BadRequest("missing ip parameter".into()))?;
    let ip = parse_ip(&ip, "ip")?;
    let normalized = crate::model::normalize_host(&host);
    let explanation = state
        .resolver
        .explain(&normalized, ip)
        .ok_or_else(|| ApiError::UnknownResource(format!("unknown host {host:?}")))?;
    Ok(Json(serde_json::to_value(explanation).unwrap_or_default()))
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    // Drain state is a function of time (ramps): compute it when scraped.
    let snapshot = state.resolver.snapshot();
    let overrides = state.resolver.live().state.current();
    let now = crate::epoch::now_ms();
    for zone in &snapshot.model.zones {
        metrics::gauge!("httpdns_zone_keep_weight_percent", "zone" => zone.name.to_string())
            .set(overrides.keep_share(&zone.name, ALL_DOMAINS, now) * 100.0);
    }
    metrics::gauge!("httpdns_epoch").set(state.resolver.epoch().current() as f64);
    gauges::record(&state, now);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::metrics::render(),
    )
}

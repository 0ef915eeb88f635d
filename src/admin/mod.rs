//! Admin HTTP API: drains, endpoint disables, reload, inspection, metrics.
//!
//! Every route sits behind a bearer token (see [`auth`]) except the dashboard page and
//! the API description ([`dashboard`]), which carry no admin data; the token's name is
//! who the audit log says made a change. Reads (every GET) need the `read` scope,
//! changes the `write` scope; a refused attempt (401, 403) is logged at warn and
//! audited. Handlers validate against the current model, then call
//! `state` (drains), `reload` or the resolver's explain; they never touch the
//! scheduler's insides. A change is persisted and audited before the handler answers.

pub mod auth;
pub mod client;
pub mod dashboard;
pub mod gauges;
pub mod status;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{ApiError, json_body, optional_json_body, parse_ip};
use crate::model::{Model, ZoneId};
use crate::reload::Reloader;
use crate::resolver::Resolver;
use crate::state::{ALL_DOMAINS, Change, RejectedAttempt, StateError};

pub use auth::{AdminTokens, Scope};

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
        .route("/admin/cluster", get(cluster))
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
    // Every read is a GET (zones, explain, metrics); every other method changes something.
    let needed = if matches!(*request.method(), Method::GET | Method::HEAD) {
        Scope::Read
    } else {
        Scope::Write
    };
    let (refusal, token) = match state.tokens.check(header) {
        Some(holder) if holder.scope.allows(needed) => {
            let actor = Actor(holder.name.to_string());
            request.extensions_mut().insert(actor);
            return next.run(request).await;
        }
        Some(holder) => (
            ApiError::Forbidden(format!(
                "token {:?} has scope {}; this needs {}",
                holder.name,
                holder.scope.as_str(),
                needed.as_str()
            )),
            Some(holder.name.to_string()),
        ),
        None if state.insecure => {
            request
                .extensions_mut()
                .insert(Actor("insecure-loopback".to_string()));
            return next.run(request).await;
        }
        None => (ApiError::Unauthorized, None),
    };
    let attempt = rejected_attempt(&request, &refusal, token);
    drop(request);
    reject(&state, attempt, refusal).await
}

fn rejected_attempt(
    request: &Request,
    refusal: &ApiError,
    token: Option<String>,
) -> RejectedAttempt {
    let status = if matches!(refusal, ApiError::Forbidden(_)) {
        403
    } else {
        401
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    RejectedAttempt::new(
        status,
        token,
        request.method().to_string(),
        request.uri().path().to_string(),
        peer,
    )
}

/// Logs and audits a refused admin request, then answers it.
async fn reject(state: &AdminState, attempt: RejectedAttempt, refusal: ApiError) -> Response {
    // Debug formatting: the path and token name must not forge log lines.
    tracing::warn!(status = attempt.status, token = ?attempt.token, method = ?attempt.method, path = ?attempt.path, peer = ?attempt.peer, "admin request refused");
    if let Err(e) = state.resolver.live().state().audit_rejected(&attempt).await {
        tracing::error!(error = %e, "cannot audit a refused admin request");
    }
    refusal.into_response()
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

fn known_zone(model: &Model, zone: &str) -> Result<ZoneId, ApiError> {
    model
        .zone_id(zone)
        .ok_or_else(|| ApiError::UnknownResource(format!("unknown zone {zone:?}")))
}

/// Commits a change through the state owner (which bumps the epoch) and answers with
/// the zone's or endpoint's state, and the etcd revision in cluster mode.
async fn apply(
    state: &AdminState,
    actor: &Actor,
    change: Change,
    if_revision: Option<i64>,
) -> Result<Json<Value>, ApiError> {
    let committed = state
        .resolver
        .live()
        .state()
        .apply(change, &actor.0, if_revision)
        .await
        .map_err(|e| match e {
            StateError::Conflict { revision } => ApiError::Conflict { revision },
            StateError::ControlPlaneUnavailable(message) => {
                ApiError::ControlPlaneUnavailable(message)
            }
            StateError::NoRevisions => ApiError::BadRequest(e.to_string()),
            e => ApiError::Internal(e.to_string()),
        })?;
    let record = committed.record;
    // Operator-supplied strings are Debug-formatted (quoted, escaped) so a reason with
    // newlines or terminal escapes cannot forge log lines.
    tracing::info!(token = ?record.token, action = record.action, target = ?record.target, reason = ?record.reason, epoch = committed.epoch, revision = committed.revision, "admin change");
    let mut body = json!({
        "action": record.action,
        "target": record.target,
        "epoch": committed.epoch,
        "after": record.after,
    });
    if let Some(revision) = committed.revision {
        body["revision"] = json!(revision);
    }
    Ok(Json(body))
}

/// `GET /admin/cluster`: this node's etcd session and every live node (cluster mode).
async fn cluster(State(state): State<AdminState>) -> Result<Json<Value>, ApiError> {
    match state.resolver.live().state().cluster() {
        Some(cluster) => Ok(Json(cluster.view().await)),
        None => Err(ApiError::UnknownResource(
            "not in cluster mode (no [cluster] section in the server config)".into(),
        )),
    }
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
    /// Cluster mode: compare-and-set against the zone's last etcd revision.
    if_revision: Option<i64>,
}

async fn drain(
    State(state): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path(zone): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let body: DrainBody = json_body(body, state.max_body_bytes).await?;
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
        let zone_id = known_zone(&snapshot.model, &zone)?;
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
    apply(&state, &actor, change, body.if_revision).await
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
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query: UndrainQuery = crate::http::query(raw.as_deref())?;
    known_zone(&state.resolver.snapshot().model, &zone)?;
    let change = Change::Undrain {
        zone,
        over_ms: parse_ramp(query.over.as_deref())?,
        reason: query.reason.unwrap_or_default(),
    };
    apply(&state, &actor, change, None).await
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
    /// Cluster mode: compare-and-set against the endpoint's last etcd revision.
    if_revision: Option<i64>,
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
        body.if_revision,
    )
    .await
}

async fn enable(
    State(state): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path(ip): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query: UndrainQuery = crate::http::query(raw.as_deref())?;
    let ip = known_endpoint(&state.resolver, &ip)?;
    let reason = query.reason.unwrap_or_default();
    apply(&state, &actor, Change::Enable { ip, reason }, None).await
}

async fn reload(State(state): State<AdminState>) -> Result<Json<Value>, ApiError> {
    match state.reloader.reload("admin api").await {
        Ok(applied) => Ok(Json(json!({
            "result": "applied",
            "restart_required": applied.restart_required,
            "epoch": applied.epoch,
            "domains": applied.domains,
            "zones": applied.zones,
        }))),
        Err(errors) => Err(ApiError::ReloadFailed(errors)),
    }
}

async fn zones(State(state): State<AdminState>) -> Json<Value> {
    let snapshot = state.resolver.snapshot();
    let live = state.resolver.live();
    let health = live.health();
    let overrides = live.overrides();
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
            let failovers = live.failovers().snapshot(&zone.name);
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
    let reload = state.reloader.status().borrow().clone();
    let orphaned = overrides.orphans(&snapshot.model);
    let mut body = json!({
        "epoch": state.resolver.epoch().current(),
        "reload": reload,
        "orphaned_overrides": orphaned,
        "zones": zones,
    });
    if let Some(cluster) = live.state().cluster() {
        body["cluster"] = cluster.summary();
    }
    Json(body)
}

#[derive(Deserialize)]
struct ExplainQuery {
    host: Option<String>,
    ip: Option<String>,
}

async fn explain(
    State(state): State<AdminState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query: ExplainQuery = crate::http::query(raw.as_deref())?;
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
        .request()
        .for_client(ip)
        .explain(&normalized)
        .ok_or_else(|| ApiError::UnknownResource(format!("unknown host {host:?}")))?;
    Ok(Json(serde_json::to_value(explanation).unwrap_or_default()))
}

async fn metrics(State(state): State<AdminState>) -> Result<impl IntoResponse, ApiError> {
    // Drain state is a function of time (ramps): compute it when scraped.
    let snapshot = state.resolver.snapshot();
    let overrides = state.resolver.live().overrides();
    let now = crate::epoch::now_ms();
    for zone in &snapshot.model.zones {
        metrics::gauge!("httpdns_zone_keep_weight_percent", "zone" => zone.name.to_string())
            .set(overrides.keep_share(&zone.name, ALL_DOMAINS, now) * 100.0);
    }
    metrics::gauge!("httpdns_epoch").set(state.resolver.epoch().current() as f64);
    if let Some(cluster) = state.resolver.live().state().cluster() {
        cluster.export_metrics();
    }
    gauges::record(&state, now);
    let text = crate::metrics::render_off_runtime()
        .await
        .ok_or_else(|| ApiError::Internal("the metrics could not be rendered".into()))?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    ))
}

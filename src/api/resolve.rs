//! `GET /resolve`: the JSON HTTPDNS answer.

use std::borrow::Cow;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;

use super::answer_json::{AnswerWriter, FallbackTier, HostAnswer};
use super::{ApiError, AppState, EPOCH_HEADER};
use crate::http::parse_ip;
use crate::model::{normalize_host, valid_host};
use crate::policy::client_ip::client_ip;
use crate::scheduler::Families;

/// The parameters of `GET /resolve`, borrowed from the query string unless they had to
/// be percent-decoded.
struct ResolveParams<'a> {
    host: Option<Cow<'a, str>>,
    kind: Option<Cow<'a, str>>,
    ip: Option<Cow<'a, str>>,
    /// Signature expiry (unix seconds) and signature, when signing is on.
    t: Option<Cow<'a, str>>,
    sign: Option<Cow<'a, str>>,
}

impl<'a> ResolveParams<'a> {
    /// Reads the query string ([`crate::http::query_params`]: borrowed where possible, a
    /// repeated parameter refused, unknown ones ignored).
    fn parse(query: Option<&'a str>) -> Result<Self, ApiError> {
        let [host, kind, ip, t, sign] =
            crate::http::query_params(query, ["host", "type", "ip", "t", "sign"])?;
        Ok(Self {
            host,
            kind,
            ip,
            t,
            sign,
        })
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

/// Parses `type`: `A`, `AAAA`, or both comma-separated (any case).
fn parse_families(kind: Option<&str>) -> Result<Families, ApiError> {
    let Some(kind) = kind else {
        return Ok(Families::Both);
    };
    let (mut v4, mut v6) = (false, false);
    for part in kind.split(',') {
        match part.trim().to_ascii_uppercase().as_str() {
            "A" => v4 = true,
            "AAAA" => v6 = true,
            _ => return Err(bad(format!("type {part:?} is not A or AAAA"))),
        }
    }
    Ok(match (v4, v6) {
        (true, true) => Families::Both,
        (true, false) => Families::V4,
        _ => Families::V6,
    })
}

/// Splits and checks `host`: every name must be well-formed, and the batch bounded.
fn parse_hosts(hosts: Option<&str>, max: usize) -> Result<Vec<String>, ApiError> {
    let hosts = hosts.ok_or_else(|| bad("missing host parameter"))?;
    let count = hosts.bytes().filter(|&b| b == b',').count() + 1;
    if count > max {
        return Err(bad(format!(
            "{count} hosts in one request; the limit is {max}"
        )));
    }
    let mut names = Vec::with_capacity(count);
    for raw in hosts.split(',') {
        let host = normalize_host(raw);
        if !valid_host(&host) {
            return Err(bad(format!("malformed host {raw:?}")));
        }
        names.push(host);
    }
    Ok(names)
}

pub(super) async fn resolve(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    answer(&app, peer, &headers, query.as_deref())
}

/// `GET /resolve`, from the request's parts: shared by the router and the hot path
/// ([`crate::http::hot`]), which calls it without extracting owned copies.
pub fn answer(
    app: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let params = ResolveParams::parse(query)?;
    let request = app.resolver.request();
    let snapshot = request.snapshot();
    if let Some(signing) = &snapshot.signing {
        let now = crate::epoch::now_ms() / 1000;
        signing
            .verify_with_ip(
                params.host.as_deref().unwrap_or(""),
                params.ip.as_deref(),
                params.t.as_deref(),
                params.sign.as_deref(),
                now,
            )
            .map_err(ApiError::Forbidden)?;
    }
    let hosts = parse_hosts(params.host.as_deref(), snapshot.limits.max_batch_hosts)?;
    let families = parse_families(params.kind.as_deref())?;
    let explicit = params
        .ip
        .as_deref()
        .map(|ip| parse_ip(ip, "ip"))
        .transpose()?;

    let (ip, _source) = client_ip(peer.ip(), headers, &snapshot.trusted_proxies, explicit);
    let context = request.for_client(ip);
    let model = &snapshot.model;
    let epoch = app.resolver.epoch().current();
    let mut body = AnswerWriter::new(ip, context.geo(), epoch);
    for host in &hosts {
        match context.decide(host, families) {
            None => body.host(&HostAnswer::Failed {
                host,
                error: "unknown_host",
            }),
            Some(decision) => body.host(&HostAnswer::Found {
                host,
                zone: &model.zone(decision.answer.zone).name,
                failover: decision.failover,
                ttl: decision.ttl,
                ips: &decision.answer.v4,
                ipsv6: &decision.answer.v6,
                fallback: decision
                    .fallback
                    .iter()
                    .map(|tier| FallbackTier {
                        zone: &model.zone(tier.zone).name,
                        ips: &tier.v4,
                        ipsv6: &tier.v6,
                    })
                    .collect(),
            }),
        }
    }
    let mut response = Response::new(Body::from(body.finish()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(EPOCH_HEADER, crate::http::epoch_value(epoch));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_parse_in_any_order_and_case() {
        assert_eq!(parse_families(None).unwrap(), Families::Both);
        assert_eq!(parse_families(Some("a")).unwrap(), Families::V4);
        assert_eq!(parse_families(Some("AAAA")).unwrap(), Families::V6);
        assert_eq!(parse_families(Some("AAAA,A")).unwrap(), Families::Both);
        assert!(parse_families(Some("MX")).is_err());
        assert!(parse_families(Some("")).is_err());
    }

    #[test]
    fn parameters_are_borrowed_unless_encoded_and_never_repeated() {
        let params = ResolveParams::parse(Some(
            "host=a.example.com&&type=A&x=1&ip&sign=ab%3D%3D&t=1+2",
        ))
        .unwrap();
        assert!(matches!(params.host, Some(Cow::Borrowed("a.example.com"))));
        assert_eq!(params.kind.as_deref(), Some("A"));
        assert_eq!(params.ip.as_deref(), Some(""));
        assert_eq!(params.sign.as_deref(), Some("ab=="));
        assert_eq!(params.t.as_deref(), Some("1 2"));
        // `=` inside a value belongs to the value; an encoded key is still the key.
        let params = ResolveParams::parse(Some("sign=a=b&%68ost=x%2Ecom")).unwrap();
        assert_eq!(params.sign.as_deref(), Some("a=b"));
        assert_eq!(params.host.as_deref(), Some("x.com"));
        assert!(ResolveParams::parse(None).unwrap().host.is_none());
        let twice = ResolveParams::parse(Some("host=a.com&h%6Fst=b.com"));
        assert!(matches!(twice, Err(ApiError::BadRequest(m)) if m.contains("host given twice")));
        // Bad UTF-8 after decoding is replaced, and the host check refuses it.
        let params = ResolveParams::parse(Some("host=%FF%FE")).unwrap();
        assert!(parse_hosts(params.host.as_deref(), 32).is_err());
    }

    #[test]
    fn hosts_are_normalised_checked_and_bounded() {
        assert_eq!(
            parse_hosts(Some("API.example.com.,b.example.com"), 32).unwrap(),
            vec!["api.example.com", "b.example.com"]
        );
        assert!(parse_hosts(None, 32).is_err());
        assert!(parse_hosts(Some("a.com,,b.com"), 32).is_err());
        assert!(parse_hosts(Some("bad host"), 32).is_err());
        assert!(parse_hosts(Some("a.com,b.com,c.com"), 2).is_err());
    }
}

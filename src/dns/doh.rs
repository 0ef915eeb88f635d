//! DNS over HTTPS (RFC 8484) on the public listener, and the `application/dns-json` shape.
//!
//! - `GET /dns-query?dns=<base64url>` and `POST /dns-query` (`application/dns-message`)
//!   carry a wire query; the answer is `application/dns-message` with
//!   `Cache-Control: max-age` set to its smallest TTL.
//! - `GET /dns-query?name=N&type=T` answers JSON in the Google/Cloudflare shape
//!   (`Status`, `Question`, `Answer`, `Authority`); `edns_client_subnet=` plays the ECS
//!   option and is believed from the same peers.
//!
//! The client is found as for `/resolve` (socket peer, or `X-Forwarded-For` from a
//! trusted proxy); everything after that is [`DnsHandler`]'s. HTTP-level mistakes (no
//! `dns` parameter, bad base64, wrong content type, a body too short to be a query) are
//! [`ApiError`]s; a message that has a header but does not parse is a DNS FORMERR.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use serde::Serialize;

use super::handler::{DnsHandler, Transport, parse_name};
use crate::http::{ApiError, EPOCH_HEADER, read_body, require_content_type};
use crate::policy::client_ip::client_ip;
use crate::resolver::Request;

pub const DNS_MESSAGE: &str = "application/dns-message";
pub const DNS_JSON: &str = "application/dns-json";

/// RFC 8484 says base64url without padding; accept padding too, as most servers do.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The DoH routes, to merge into the public router.
pub fn router(handler: DnsHandler, max_query_bytes: usize) -> Router {
    Router::new()
        .route("/dns-query", get(doh_get).post(doh_post))
        .with_state(Doh::new(handler, max_query_bytes))
}

/// The DoH handlers' state: the shared DNS handler and the query size bound, which
/// holds for GET (decoded `dns=`) and POST bodies alike.
#[derive(Clone)]
pub struct Doh {
    handler: DnsHandler,
    max_query_bytes: usize,
}

fn too_large(len: usize, max: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!("DNS query of {len} bytes; at most {max}"))
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

fn client(request: &Request<'_>, peer: SocketAddr, headers: &HeaderMap) -> std::net::IpAddr {
    client_ip(
        peer.ip(),
        headers,
        &request.snapshot().trusted_proxies,
        None,
    )
    .0
}

async fn doh_get(
    State(doh): State<Doh>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    doh.get(peer, &headers, query.as_deref())
}

impl Doh {
    /// The DoH state for the hot path ([`crate::http::hot`]).
    pub fn new(handler: DnsHandler, max_query_bytes: usize) -> Self {
        Self {
            handler,
            max_query_bytes,
        }
    }

    /// `GET /dns-query`, from the request's parts: shared by the router and the hot
    /// path.
    pub fn get(
        &self,
        peer: SocketAddr,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<Response, ApiError> {
        let Self {
            handler,
            max_query_bytes,
        } = self;
        let max_query_bytes = *max_query_bytes;
        let [dns, name, kind, edns_client_subnet, t, sign] = crate::http::query_params(
            query,
            ["dns", "name", "type", "edns_client_subnet", "t", "sign"],
        )?;
        let request = handler.resolver().request();
        let client = client(&request, peer, headers);
        if let Some(dns) = dns {
            let bytes = BASE64URL
                .decode(dns.trim())
                .map_err(|e| bad(format!("dns parameter is not base64url: {e}")))?;
            if bytes.len() > max_query_bytes {
                return Err(too_large(bytes.len(), max_query_bytes));
            }
            return wire_answer(handler, &request, &bytes, client);
        }
        if let Some(name) = name {
            if let Some(signing) = &request.snapshot().signing {
                signing
                    .verify(
                        &name,
                        t.as_deref(),
                        sign.as_deref(),
                        crate::epoch::now_ms() / 1000,
                    )
                    .map_err(ApiError::Forbidden)?;
            }
            return json_answer(
                handler,
                &request,
                &name,
                kind.as_deref(),
                edns_client_subnet.as_deref(),
                client,
            );
        }
        Err(bad("missing dns parameter (or name= for JSON)"))
    }
}

async fn doh_post(
    State(Doh {
        handler,
        max_query_bytes,
    }): State<Doh>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_content_type(&headers, DNS_MESSAGE)?;
    let body = read_body(body, max_query_bytes).await?;
    let request = handler.resolver().request();
    let client = client(&request, peer, &headers);
    wire_answer(&handler, &request, &body, client)
}

fn wire_answer(
    handler: &DnsHandler,
    request: &Request<'_>,
    bytes: &[u8],
    client: std::net::IpAddr,
) -> Result<Response, ApiError> {
    // Room for a typical answer, written without growing the buffer.
    let mut body = Vec::with_capacity(512);
    let answered = handler
        .respond_in(request, bytes, client, Transport::Stream, &mut body)
        .ok_or_else(|| bad("not a DNS query: shorter than a header, or a response"))?;
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(DNS_MESSAGE));
    answer_headers(headers, answered.min_ttl, handler);
    Ok(response)
}

/// Caching headers of every DoH answer: `max-age` from the TTL, and the steering epoch
/// (as on `/resolve`) so clients can tell when cached answers went stale.
fn answer_headers(headers: &mut HeaderMap, min_ttl: Option<u32>, handler: &DnsHandler) {
    let epoch = handler.resolver().epoch().current();
    headers.insert(EPOCH_HEADER, crate::http::epoch_value(epoch));
    if let Some(value) = min_ttl.and_then(max_age) {
        headers.insert(header::CACHE_CONTROL, value);
    }
}

/// TTLs whose `Cache-Control` value is made once and shared: answers carry a handful of
/// configured TTLs, and making the value per answer (text, check, copy) was about a
/// twentieth of a DoH request's instructions (callgrind).
const SHARED_MAX_AGES: usize = 1024;

/// `max-age=<ttl>` (`None` cannot happen: the text is ASCII digits and letters).
fn max_age(ttl: u32) -> Option<HeaderValue> {
    static SHARED: [OnceLock<Option<HeaderValue>>; SHARED_MAX_AGES] =
        [const { OnceLock::new() }; SHARED_MAX_AGES];
    let make = || HeaderValue::from_str(&format!("max-age={ttl}")).ok();
    match usize::try_from(ttl).ok().and_then(|i| SHARED.get(i)) {
        Some(slot) => slot.get_or_init(make).clone(),
        None => make(),
    }
}

/// The Google/Cloudflare JSON answer.
#[derive(Serialize)]
struct JsonAnswer {
    #[serde(rename = "Status")]
    status: u16,
    #[serde(rename = "TC")]
    tc: bool,
    #[serde(rename = "RD")]
    rd: bool,
    #[serde(rename = "RA")]
    ra: bool,
    #[serde(rename = "AD")]
    ad: bool,
    #[serde(rename = "CD")]
    cd: bool,
    #[serde(rename = "Question")]
    question: Vec<JsonQuestion>,
    #[serde(rename = "Answer", skip_serializing_if = "Vec::is_empty")]
    answer: Vec<JsonRecord>,
    #[serde(rename = "Authority", skip_serializing_if = "Vec::is_empty")]
    authority: Vec<JsonRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    edns_client_subnet: Option<String>,
}

#[derive(Serialize)]
struct JsonQuestion {
    name: String,
    #[serde(rename = "type")]
    kind: u16,
}

#[derive(Serialize)]
struct JsonRecord {
    name: String,
    #[serde(rename = "type")]
    kind: u16,
    #[serde(rename = "TTL")]
    ttl: u32,
    data: String,
}

/// `type` as a mnemonic (`AAAA`) or a number (`28`); A when absent.
fn parse_type(kind: Option<&str>) -> Result<RecordType, ApiError> {
    let Some(kind) = kind.map(str::trim) else {
        return Ok(RecordType::A);
    };
    if let Ok(number) = kind.parse::<u16>() {
        return Ok(RecordType::from(number));
    }
    RecordType::from_str(&kind.to_ascii_uppercase())
        .map_err(|_| bad(format!("type {kind:?} is not a DNS record type")))
}

fn json_answer(
    handler: &DnsHandler,
    started: &Request<'_>,
    name: &str,
    kind: Option<&str>,
    subnet: Option<&str>,
    client: std::net::IpAddr,
) -> Result<Response, ApiError> {
    let qname = parse_name(name).ok_or_else(|| bad(format!("malformed name {name:?}")))?;
    let qtype = parse_type(kind)?;
    let mut request = Message::query();
    request.metadata.recursion_desired = true;
    request.add_query(Query::query(qname, qtype));
    if let Some(subnet) = subnet {
        let subnet = ClientSubnet::from_str(subnet.trim())
            .map_err(|_| bad(format!("edns_client_subnet {subnet:?} is not a subnet")))?;
        let mut edns = Edns::new();
        edns.options_mut().insert(EdnsOption::Subnet(subnet));
        request.set_edns(edns);
    }
    let reply = handler.answer_message(started, &request, client);
    let message = &reply.message;
    let records = |records: &[hickory_proto::rr::Record]| {
        records
            .iter()
            .map(|r| JsonRecord {
                name: r.name.to_ascii(),
                kind: r.record_type().into(),
                ttl: r.ttl,
                data: r.data.to_string(),
            })
            .collect()
    };
    let echo = message.edns.as_ref().and_then(|edns| {
        edns.options()
            .as_ref()
            .iter()
            .find_map(|(_, option)| match option {
                EdnsOption::Subnet(s) => Some(format!("{}/{}", s.addr(), s.scope_prefix())),
                _ => None,
            })
    });
    let body = JsonAnswer {
        status: message.metadata.response_code.into(),
        tc: message.metadata.truncation,
        rd: message.metadata.recursion_desired,
        ra: message.metadata.recursion_available,
        ad: message.metadata.authentic_data,
        cd: message.metadata.checking_disabled,
        question: message
            .queries
            .iter()
            .map(|q| JsonQuestion {
                name: q.name().to_ascii(),
                kind: q.query_type().into(),
            })
            .collect(),
        answer: records(&message.answers),
        authority: records(&message.authorities),
        edns_client_subnet: echo,
    };
    let mut response = axum::Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(DNS_JSON));
    answer_headers(headers, reply.min_ttl(), handler);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_the_ttl_whether_shared_or_made_for_the_answer() {
        for ttl in [0, 1, 60, 1023, 1024, 86_400, u32::MAX] {
            let expected = format!("max-age={ttl}");
            assert_eq!(max_age(ttl).unwrap(), expected.as_str());
            // Asked again (a shared value the second time): the same text.
            assert_eq!(max_age(ttl).unwrap(), expected.as_str());
        }
    }
}

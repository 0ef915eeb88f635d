//! Reading what a caller sent: bounded JSON bodies, query strings and IP parameters.
//!
//! Every failure is an [`ApiError`] naming the reason, never a panic: 400 for what does
//! not parse, 413 for a body over its bound, 408 for one that did not arrive in time
//! (see [`super::deadline`]).

use std::borrow::Cow;

use super::ApiError;

/// Reads a JSON body of at most `limit` bytes.
pub async fn json_body<T: serde::de::DeserializeOwned>(
    body: axum::body::Body,
    limit: usize,
) -> Result<T, ApiError> {
    parse_json(&read_body(body, limit).await?)
}

/// Like [`json_body`], but an empty (or all-whitespace) body means `T::default()`.
pub async fn optional_json_body<T: serde::de::DeserializeOwned + Default>(
    body: axum::body::Body,
    limit: usize,
) -> Result<T, ApiError> {
    let bytes = read_body(body, limit).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(&bytes)
    }
}

/// Reads a whole body of at most `limit` bytes.
pub async fn read_body(
    body: axum::body::Body,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(current) = cause {
            if current.is::<super::deadline::BodyTimedOut>() {
                return ApiError::RequestTimeout(current.to_string());
            }
            if current.is::<http_body_util::LengthLimitError>() {
                return ApiError::PayloadTooLarge(format!("body larger than {limit} bytes"));
            }
            cause = current.source();
        }
        ApiError::BadRequest(format!("cannot read the body: {error}"))
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Refuses (415) a request whose `Content-Type` is not `expected` (parameters such as
/// `charset` aside, any case).
pub fn require_content_type(
    headers: &axum::http::HeaderMap,
    expected: &str,
) -> Result<(), ApiError> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "content type {content_type:?} is not {expected}"
        )))
    }
}

/// Parses a query string (`RawQuery`) into `T`: a repeated, unknown-typed or malformed
/// parameter is a 400 in the JSON error shape, never axum's plain-text rejection.
pub fn query<T: serde::de::DeserializeOwned>(raw: Option<&str>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(format!("bad query string: {e}")))
}

/// Reads the parameters `names` of a hot route's query string, borrowed from it where
/// nothing needs decoding: `application/x-www-form-urlencoded`, decoded by
/// `form_urlencoded` only where a pair holds `%` or `+`. A repeated parameter is refused,
/// since which one should win is a guess; unknown ones are ignored. The values come back
/// in the order of `names`.
pub fn query_params<'a, const N: usize>(
    raw: Option<&'a str>,
    names: [&str; N],
) -> Result<[Option<Cow<'a, str>>; N], ApiError> {
    let mut values = [const { None }; N];
    for pair in raw.unwrap_or("").split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = if pair.bytes().any(|b| b == b'%' || b == b'+') {
            form_urlencoded::parse(pair.as_bytes())
                .next()
                .unwrap_or_default()
        } else {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (Cow::Borrowed(key), Cow::Borrowed(value))
        };
        let Some(slot) = names.iter().position(|name| *name == key) else {
            continue;
        };
        if values[slot].is_some() {
            return Err(ApiError::BadRequest(format!(
                "bad query string: {key} given twice"
            )));
        }
        values[slot] = Some(value);
    }
    Ok(values)
}

/// Parses an IP a caller gave us (`what` names it in the error); IPv4-mapped IPv6
/// addresses become IPv4.
pub fn parse_ip(text: &str, what: &str) -> Result<std::net::IpAddr, ApiError> {
    text.trim()
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.to_canonical())
        .map_err(|_| ApiError::BadRequest(format!("{what} {text:?} is not an IP address")))
}

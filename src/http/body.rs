//! Reading what a caller sent: bounded JSON bodies and IP parameters.
//!
//! Every failure is an [`ApiError::BadRequest`] naming the reason, never a panic.

use super::ApiError;

/// Reads a JSON body of at most `limit` bytes; every failure is a 400 with the reason.
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

async fn read_body(body: axum::body::Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::BadRequest(format!("body larger than {limit} bytes")))
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Parses an IP a caller gave us (`what` names it in the error); IPv4-mapped IPv6
/// addresses become IPv4.
pub fn parse_ip(text: &str, what: &str) -> Result<std::net::IpAddr, ApiError> {
    text.trim()
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.to_canonical())
        .map_err(|_| ApiError::BadRequest(format!("{what} {text:?} is not an IP address")))
}

//! HTTP plumbing shared by the public API, DoH and the admin API.
//!
//! The one error type ([`ApiError`]), body and parameter reading ([`body`]) with a
//! deadline on slow bodies ([`deadline`]), the way an axum router is served on a
//! listener, over TLS or plaintext, with connection caps and timeouts ([`serve`]), and
//! the per-client rate limit of the public fronts ([`rate_limit`]), and the lean path
//! of the two hot `GET` routes ([`hot`]). No
//! steering logic lives here: these are the parts every HTTP front needs the same.

pub mod body;
pub mod deadline;
mod error;
pub mod hot;
pub mod rate_limit;
pub mod serve;

pub use body::{
    json_body, optional_json_body, parse_ip, query, query_params, read_body, require_content_type,
};
pub use error::ApiError;

/// Name of the header carrying the steering epoch on every answer.
pub const EPOCH_HEADER: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-httpdns-epoch");

thread_local! {
    /// The last epoch's header value on this thread.
    static EPOCH_VALUE: std::cell::RefCell<Option<(u64, axum::http::HeaderValue)>> =
        const { std::cell::RefCell::new(None) };
}

/// The [`EPOCH_HEADER`] value for `epoch`. The epoch changes only with steering state,
/// so each thread formats it once per change and clones it after (a reference count),
/// where `HeaderValue::from(u64)` made two allocations on every answer.
pub fn epoch_value(epoch: u64) -> axum::http::HeaderValue {
    EPOCH_VALUE.with(|cached| {
        let mut cached = cached.borrow_mut();
        match &*cached {
            Some((formatted, value)) if *formatted == epoch => value.clone(),
            _ => {
                let value = axum::http::HeaderValue::from(epoch);
                *cached = Some((epoch, value.clone()));
                value
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_value_follows_the_epoch() {
        for epoch in [1_795_750_977_308, 1_795_750_977_309, 7, 1_795_750_977_308] {
            assert_eq!(epoch_value(epoch), epoch.to_string().as_str());
            assert_eq!(epoch_value(epoch), epoch.to_string().as_str(), "cached");
        }
    }
}

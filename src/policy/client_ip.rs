//! Which IP a request is for: the client's real address, as far as we can trust it.
//!
//! The socket peer is the truth unless the peer is one of our trusted proxies, in which
//! case `X-Forwarded-For` names the client: walked from the right, each trusted hop is
//! skipped, and the first entry that is not a trusted proxy is the client. Everything
//! left of it may be forged, and so may the entry itself be garbage: a malformed entry
//! in the client's position means "the last trusted hop's peer", never another header.
//! `X-Real-IP` is read only when there is no `X-Forwarded-For` at all (a proxy may pass
//! a client's own `X-Real-IP` through untouched). An explicit `ip=` parameter from a
//! server-side caller wins over both. Headers from untrusted peers are ignored.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderName};

use crate::model::CidrSet;

// Names, not strings: looking a header up by `&str` parses the name on every request.
const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Where the client IP came from (echoed in explain output and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Peer,
    ForwardedFor,
    RealIp,
    Explicit,
}

/// Picks the client IP for a request.
pub fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &CidrSet,
    explicit: Option<IpAddr>,
) -> (IpAddr, Source) {
    if let Some(ip) = explicit {
        return (ip.to_canonical(), Source::Explicit);
    }
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return (peer, Source::Peer);
    }
    // One lookup for both the test and the walk: a custom header name is hashed each
    // time it is looked up, and this runs on every request from a proxy.
    let forwarded = headers.get_all(FORWARDED_FOR);
    if forwarded.iter().next().is_some() {
        return (
            forwarded_for(forwarded, trusted, peer),
            Source::ForwardedFor,
        );
    }
    if let Some(ip) = header_ip(headers, REAL_IP) {
        return (ip, Source::RealIp);
    }
    (peer, Source::Peer)
}

/// The client as our proxies saw it: walk `X-Forwarded-For` from the right (every proxy
/// appends the peer it saw), skipping trusted hops; the first untrusted entry is the
/// client. A malformed entry there (or a header that is not text) stops the walk at
/// the last trusted hop, whose peer is the best we know. When every entry is trusted,
/// the left-most trusted hop is the client.
fn forwarded_for(
    values: axum::http::header::GetAll<'_, axum::http::HeaderValue>,
    trusted: &CidrSet,
    peer: IpAddr,
) -> IpAddr {
    let mut last_trusted = peer;
    for value in values.iter().rev() {
        let Ok(text) = value.to_str() else {
            return last_trusted;
        };
        for entry in text.rsplit(',') {
            match parse_hop(entry) {
                Some(ip) if trusted.contains(ip) => last_trusted = ip,
                Some(ip) => return ip,
                None => return last_trusted,
            }
        }
    }
    last_trusted
}

fn header_ip(headers: &HeaderMap, name: HeaderName) -> Option<IpAddr> {
    parse_hop(headers.get(name)?.to_str().ok()?)
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:80`.
fn parse_hop(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .or_else(|_| text.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn trusted() -> CidrSet {
        CidrSet::new(&["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()])
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("x-real-ip", "5.6.7.8")]);
        assert_eq!(
            client_ip(ip("203.0.113.9"), &h, &trusted(), None),
            (ip("203.0.113.9"), Source::Peer)
        );
    }

    #[test]
    fn trusted_proxy_forwarded_for_is_walked_from_the_right() {
        // client forged "6.6.6.6"; real client 1.2.3.4; then our own proxy 10.1.1.1.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.1.1.1")]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &h, &trusted(), None),
            (ip("1.2.3.4"), Source::ForwardedFor)
        );
    }

    #[test]
    fn multiple_headers_ports_and_ipv6_hops() {
        let h = headers(&[
            ("x-forwarded-for", "[2001:db8::5]:443"),
            ("x-forwarded-for", "fd00::1"),
        ]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &h, &trusted(), None).0,
            ip("2001:db8::5")
        );
        let h = headers(&[("x-forwarded-for", "1.2.3.4:5555")]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &h, &trusted(), None).0,
            ip("1.2.3.4")
        );
    }

    #[test]
    fn real_ip_only_when_no_forwarded_for_and_garbage_falls_back_to_peer() {
        let h = headers(&[("x-real-ip", "1.2.3.4")]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &h, &trusted(), None),
            (ip("1.2.3.4"), Source::RealIp)
        );
        let h = headers(&[("x-forwarded-for", "not-an-ip"), ("x-real-ip", "6.6.6.6")]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &h, &trusted(), None).0,
            ip("10.0.0.2"),
            "a malformed XFF never hands the choice to X-Real-IP"
        );
    }

    #[test]
    fn a_forged_malformed_entry_cannot_void_the_header() {
        // The client sent "XFF: 6.6.6.6, junk" and "X-Real-IP: 6.6.6.6"; our proxy
        // appended the client's real address. The junk is left of the client: ignored.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, junk, 1.2.3.4"),
            ("x-real-ip", "6.6.6.6"),
        ]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &h, &trusted(), None),
            (ip("1.2.3.4"), Source::ForwardedFor)
        );
        // Garbage in the client's own position: the last trusted hop (10.1.1.1) is used.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, junk, 10.1.1.1")]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &h, &trusted(), None).0,
            ip("10.1.1.1")
        );
        // Every hop trusted: the left-most is the client.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.1.1.1")]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &h, &trusted(), None).0,
            ip("10.9.9.9")
        );
    }

    #[test]
    fn explicit_ip_wins_and_mapped_addresses_are_canonical() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &h, &trusted(), Some(ip("::ffff:8.8.8.8"))),
            (ip("8.8.8.8"), Source::Explicit)
        );
        assert_eq!(
            client_ip(
                ip("::ffff:10.0.0.2"),
                &headers(&[("x-real-ip", "9.9.9.9")]),
                &trusted(),
                None
            )
            .0,
            ip("9.9.9.9")
        );
    }
}

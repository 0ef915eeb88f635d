//! EDNS Client Subnet (RFC 7871): whose address steers a DNS answer.
//!
//! A recursive resolver asking on behalf of a client may send the client's subnet. We
//! believe it only from peers listed in `[dns] ecs_trusted`; from anyone else the option
//! is ignored (and not echoed), and the peer itself — the real client as far as the
//! transport knows — steers, exactly as `/resolve` would. A trusted source prefix of 0
//! means "do not use my clients' address": the peer steers and the echo says scope 0.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::opt::ClientSubnet;

use crate::model::CidrSet;

/// Scope we claim for steered answers: our decisions (IP database ranges, rule CIDRs,
/// drain slots) do not get finer than a /24 or a /48.
pub const SCOPE_V4: u8 = 24;
pub const SCOPE_V6: u8 = 48;

/// What ECS decided for one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steering {
    /// The address the scheduler sees.
    pub client_ip: IpAddr,
    /// The option to echo in the response (scope still to be set), when we used ECS.
    pub echo: Option<ClientSubnet>,
}

impl Steering {
    /// The response option: the client's source prefix, and `scope` when the answer
    /// depends on the client (0 when it does not).
    pub fn response_option(&self, depends_on_client: bool) -> Option<ClientSubnet> {
        let echo = self.echo?;
        let scope = if !depends_on_client || echo.source_prefix() == 0 {
            0
        } else if echo.addr().is_ipv4() {
            SCOPE_V4
        } else {
            SCOPE_V6
        };
        Some(ClientSubnet::new(echo.addr(), echo.source_prefix(), scope))
    }
}

/// Picks the steering address from the query's ECS option and the transport's client.
pub fn steering(option: Option<&ClientSubnet>, client: IpAddr, trusted: &CidrSet) -> Steering {
    let client = client.to_canonical();
    let Some(option) = option else {
        return Steering {
            client_ip: client,
            echo: None,
        };
    };
    if !trusted.contains(client) {
        return Steering {
            client_ip: client,
            echo: None,
        };
    }
    let source = option.source_prefix();
    let address = mask(option.addr(), source);
    let echo = Some(ClientSubnet::new(address, source, 0));
    if source == 0 {
        return Steering {
            client_ip: client,
            echo,
        };
    }
    Steering {
        client_ip: address.to_canonical(),
        echo,
    }
}

/// Zeroes the bits past `prefix` (the wire format leaves the last octet's tail free).
fn mask(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let keep = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & keep))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let keep = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & keep))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted() -> CidrSet {
        CidrSet::new(&["127.0.0.0/8".parse().unwrap()])
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn trusted_resolver_subnet_steers_and_is_echoed_with_our_scope() {
        let ecs = ClientSubnet::new(ip("202.96.128.77"), 24, 0);
        let s = steering(Some(&ecs), ip("127.0.0.1"), &trusted());
        assert_eq!(s.client_ip, ip("202.96.128.0"));
        let echo = s.response_option(true).unwrap();
        assert_eq!(
            (echo.addr(), echo.source_prefix(), echo.scope_prefix()),
            (ip("202.96.128.0"), 24, SCOPE_V4)
        );
        assert_eq!(s.response_option(false).unwrap().scope_prefix(), 0);
    }

    #[test]
    fn untrusted_peer_subnet_is_ignored_and_not_echoed() {
        let ecs = ClientSubnet::new(ip("202.96.128.0"), 24, 0);
        let s = steering(Some(&ecs), ip("198.51.100.7"), &trusted());
        assert_eq!(s.client_ip, ip("198.51.100.7"));
        assert_eq!(s.response_option(true), None);
    }

    #[test]
    fn zero_source_prefix_keeps_the_peer_and_answers_scope_zero() {
        let ecs = ClientSubnet::new(ip("0.0.0.0"), 0, 0);
        let s = steering(Some(&ecs), ip("::ffff:127.0.0.1"), &trusted());
        assert_eq!(s.client_ip, ip("127.0.0.1"));
        assert_eq!(s.response_option(true).unwrap().scope_prefix(), 0);
    }

    #[test]
    fn odd_prefixes_are_masked() {
        assert_eq!(mask(ip("10.255.255.255"), 9), ip("10.128.0.0"));
        assert_eq!(mask(ip("2001:db8:ffff::1"), 36), ip("2001:db8:f000::"));
        assert_eq!(mask(ip("1.2.3.4"), 0), ip("0.0.0.0"));
        assert_eq!(mask(ip("1.2.3.4"), 32), ip("1.2.3.4"));
    }
}

//! EDNS Client Subnet (RFC 7871): whose address steers a DNS answer.
//!
//! A recursive resolver asking on behalf of a client may send the client's subnet. We
//! believe it only from peers listed in `[dns] ecs_trusted`; from anyone else the option
//! is ignored (and not echoed), and the peer itself — the real client as far as the
//! transport knows — steers, exactly as `/resolve` would. A trusted source prefix of 0
//! means "do not use my clients' address": the peer steers and the echo says scope 0.

use std::net::IpAddr;

use hickory_proto::rr::rdata::opt::ClientSubnet;

use crate::model::{CidrSet, network_of};

/// The least scope we claim for steered answers: sticky drain slots and IP database
/// ranges do not get finer than a /24 or a /48. Rule CIDRs and geo overrides that draw
/// finer lines make it narrower for the clients near them (`Snapshot::ecs_scopes`).
pub const SCOPE_V4: u8 = crate::model::BASE_SCOPE_V4;
pub const SCOPE_V6: u8 = crate::model::BASE_SCOPE_V6;

/// What ECS decided for one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steering {
    /// The address the scheduler sees.
    pub client_ip: IpAddr,
    /// The option to echo in the response (scope still to be set), when we used ECS.
    pub echo: Option<ClientSubnet>,
}

impl Steering {
    /// The response option: the client's source prefix, and when the answer depends
    /// on the client, the scope `scopes` gives for the steering address (0 when it does
    /// not). An IPv4 client carried in an IPv4-mapped IPv6 option gets its IPv4 scope
    /// in IPv6 bits (96 + n), never an IPv6 /48 that would span all of IPv4.
    pub fn response_option(
        &self,
        depends_on_client: bool,
        scopes: &crate::model::ScopeMap,
    ) -> Option<ClientSubnet> {
        let echo = self.echo?;
        let scope = if !depends_on_client || echo.source_prefix() == 0 {
            0
        } else {
            let scope = scopes.scope(self.client_ip);
            match echo.addr() {
                IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => 96 + scope,
                _ => scope,
            }
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
    let address = network_of(option.addr(), source, source);
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
        let echo = s.response_option(true, &Default::default()).unwrap();
        assert_eq!(
            (echo.addr(), echo.source_prefix(), echo.scope_prefix()),
            (ip("202.96.128.0"), 24, SCOPE_V4)
        );
        assert_eq!(
            s.response_option(false, &Default::default())
                .unwrap()
                .scope_prefix(),
            0
        );
    }

    #[test]
    fn untrusted_peer_subnet_is_ignored_and_not_echoed() {
        let ecs = ClientSubnet::new(ip("202.96.128.0"), 24, 0);
        let s = steering(Some(&ecs), ip("198.51.100.7"), &trusted());
        assert_eq!(s.client_ip, ip("198.51.100.7"));
        assert_eq!(s.response_option(true, &Default::default()), None);
    }

    #[test]
    fn zero_source_prefix_keeps_the_peer_and_answers_scope_zero() {
        let ecs = ClientSubnet::new(ip("0.0.0.0"), 0, 0);
        let s = steering(Some(&ecs), ip("::ffff:127.0.0.1"), &trusted());
        assert_eq!(s.client_ip, ip("127.0.0.1"));
        assert_eq!(
            s.response_option(true, &Default::default())
                .unwrap()
                .scope_prefix(),
            0
        );
    }

    #[test]
    fn odd_prefixes_are_masked() {
        assert_eq!(network_of(ip("10.255.255.255"), 9, 9), ip("10.128.0.0"));
        assert_eq!(
            network_of(ip("2001:db8:ffff::1"), 36, 36),
            ip("2001:db8:f000::")
        );
        assert_eq!(network_of(ip("1.2.3.4"), 0, 0), ip("0.0.0.0"));
        assert_eq!(network_of(ip("1.2.3.4"), 32, 32), ip("1.2.3.4"));
    }

    #[test]
    fn scope_follows_the_finest_rule_near_the_client_and_mapped_sources_stay_ipv4() {
        let mut scopes = crate::model::ScopeMap::default();
        scopes.add_network(&"202.96.128.77/32".parse().unwrap());
        let scope = |addr: IpAddr, source: u8| {
            let ecs = ClientSubnet::new(addr, source, 0);
            let s = steering(Some(&ecs), ip("127.0.0.1"), &trusted());
            s.response_option(true, &scopes).unwrap().scope_prefix()
        };
        assert_eq!(
            scope(ip("202.96.128.77"), 32),
            32,
            "a /32 rule: a /32 answer"
        );
        assert_eq!(scope(ip("202.96.128.5"), 32), 26);
        assert_eq!(scope(ip("8.8.8.8"), 24), 24);
        assert_eq!(
            scope(ip("::ffff:8.8.8.8"), 120),
            120,
            "IPv4-mapped: 96 + 24, not /48"
        );
        assert_eq!(scope(ip("2001:db8::1"), 56), 48);
    }
}

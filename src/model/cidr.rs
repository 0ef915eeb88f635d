//! A set of CIDRs compiled into sorted, merged ranges for O(log n) membership tests.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

/// CIDR membership, IPv4 and IPv6 kept apart so each is one binary search.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CidrSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl CidrSet {
    pub fn new(networks: &[IpNetwork]) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for network in networks {
            match network {
                IpNetwork::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNetwork::V6(n) => {
                    let start = u128::from(n.network());
                    let host_bits = 128 - u32::from(n.prefix());
                    let end = start | u128::MAX.checked_shr(128 - host_bits).unwrap_or(0);
                    v6.push((start, end));
                }
            }
        }
        Self {
            v4: merge(v4),
            v6: merge(v6),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(ip) => contains(&self.v4, u32::from(ip)),
            IpAddr::V6(ip) => contains(&self.v6, u128::from(ip)),
        }
    }
}

fn merge<T: Ord + Copy + num_like::Successor>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut merged: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start <= last.1.successor_or_max() => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

fn contains<T: Ord + Copy>(ranges: &[(T, T)], value: T) -> bool {
    let after = ranges.partition_point(|(start, _)| *start <= value);
    after > 0 && ranges[after - 1].1 >= value
}

mod num_like {
    pub trait Successor {
        fn successor_or_max(self) -> Self;
    }
    impl Successor for u32 {
        fn successor_or_max(self) -> Self {
            self.saturating_add(1)
        }
    }
    impl Successor for u128 {
        fn successor_or_max(self) -> Self {
            self.saturating_add(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(cidrs: &[&str]) -> CidrSet {
        CidrSet::new(&cidrs.iter().map(|c| c.parse().unwrap()).collect::<Vec<_>>())
    }

    #[test]
    fn membership_at_the_edges() {
        let s = set(&[
            "10.0.0.0/8",
            "192.0.2.0/24",
            "192.0.3.0/24",
            "2001:db8::/32",
        ]);
        for inside in [
            "10.0.0.0",
            "10.255.255.255",
            "192.0.2.0",
            "192.0.3.255",
            "2001:db8:ffff::1",
            "::ffff:10.1.1.1",
        ] {
            assert!(s.contains(inside.parse().unwrap()), "{inside}");
        }
        for outside in [
            "9.255.255.255",
            "11.0.0.0",
            "192.0.4.0",
            "2001:db9::",
            "::1",
        ] {
            assert!(!s.contains(outside.parse().unwrap()), "{outside}");
        }
    }

    #[test]
    fn whole_space_and_host_routes() {
        let s = set(&["0.0.0.0/0", "::/0"]);
        assert!(s.contains("255.255.255.255".parse().unwrap()));
        assert!(s.contains("ffff::1".parse().unwrap()));
        let h = set(&["192.0.2.7/32", "2001:db8::7/128"]);
        assert!(h.contains("192.0.2.7".parse().unwrap()));
        assert!(!h.contains("192.0.2.8".parse().unwrap()));
        assert!(h.contains("2001:db8::7".parse().unwrap()));
        assert!(!h.contains("2001:db8::8".parse().unwrap()));
    }
}

/// The network `ip` lies in, keeping `v4_bits` leading bits of an IPv4 address or
/// `v6_bits` of an IPv6 one (more than the family has keeps them all). The family is kept
/// as given: canonicalize first where an IPv4-mapped address should count as IPv4.
pub fn network_of(ip: IpAddr, v4_bits: u8, v6_bits: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let keep = u32::MAX
                .checked_shl(32 - u32::from(v4_bits.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(v4) & keep).into())
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX
                .checked_shl(128 - u32::from(v6_bits.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(v6) & keep).into())
        }
    }
}

/// Where answers may change inside a client's /24 (IPv6 /48): every boundary of a CIDR
/// range a rule or override draws there. An answer steered by a client's address may
/// be cached by a resolver for the whole ECS scope it carries, so the scope must be
/// narrow enough that no boundary falls strictly inside it ([`ScopeMap::scope`]).
#[derive(Debug, Clone, Default)]
pub struct ScopeMap {
    v4: HashMap<u32, Vec<u32>>,
    v6: HashMap<u128, Vec<u128>>,
}

/// The scope every steered answer has at least: sticky drains and the IP databases are
/// no finer than this.
pub const BASE_SCOPE_V4: u8 = 24;
pub const BASE_SCOPE_V6: u8 = 48;

impl ScopeMap {
    /// Adds the boundaries of every range of `set`.
    pub fn add_set(&mut self, set: &CidrSet) {
        for &(start, end) in &set.v4 {
            self.add_v4(start, end);
        }
        for &(start, end) in &set.v6 {
            self.add_v6(start, end);
        }
    }

    pub fn add_network(&mut self, network: &IpNetwork) {
        self.add_set(&CidrSet::new(std::slice::from_ref(network)));
    }

    fn add_v4(&mut self, start: u32, end: u32) {
        let base = |ip: u32| ip & !0xff;
        for boundary in [Some(start), end.checked_add(1)].into_iter().flatten() {
            if boundary != base(boundary) {
                self.v4.entry(base(boundary)).or_default().push(boundary);
            }
        }
    }

    fn add_v6(&mut self, start: u128, end: u128) {
        let base = |ip: u128| ip & !((1u128 << 80) - 1);
        for boundary in [Some(start), end.checked_add(1)].into_iter().flatten() {
            if boundary != base(boundary) {
                self.v6.entry(base(boundary)).or_default().push(boundary);
            }
        }
    }

    /// Merges `other`'s boundaries into this map.
    pub fn extend(&mut self, other: &ScopeMap) {
        for (key, bounds) in &other.v4 {
            self.v4.entry(*key).or_default().extend(bounds);
        }
        for (key, bounds) in &other.v6 {
            self.v6.entry(*key).or_default().extend(bounds);
        }
    }

    /// The narrowest-needed ECS scope for `ip`: the base (/24, /48), lengthened until no
    /// rule or override boundary falls strictly inside the client's scope network.
    pub fn scope(&self, ip: IpAddr) -> u8 {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let ip = u32::from(v4);
                let bounds = self.v4.get(&(ip & !0xff));
                let bounds = bounds.map_or(&[][..], Vec::as_slice).iter();
                narrowest(
                    u128::from(ip),
                    BASE_SCOPE_V4,
                    32,
                    bounds.map(|&b| u128::from(b)),
                )
            }
            IpAddr::V6(v6) => {
                let ip = u128::from(v6);
                let bounds = self.v6.get(&(ip & !((1u128 << 80) - 1)));
                narrowest(
                    ip,
                    BASE_SCOPE_V6,
                    128,
                    bounds.map_or(&[][..], Vec::as_slice).iter().copied(),
                )
            }
        }
    }
}

/// The shortest prefix from `base` up to `bits` whose block around `ip` holds no
/// boundary strictly inside (IPv4 values are widened to u128, `bits` = 32).
fn narrowest(ip: u128, base: u8, bits: u8, bounds: impl Iterator<Item = u128> + Clone) -> u8 {
    let mut prefix = base;
    while prefix < bits {
        let size = 1u128 << u32::from(bits - prefix);
        let start = ip - ip % size;
        if !bounds.clone().any(|b| b > start && b - start < size) {
            break;
        }
        prefix += 1;
    }
    prefix
}

#[cfg(test)]
mod scope_tests {
    use super::*;

    fn set(cidrs: &[&str]) -> CidrSet {
        CidrSet::new(&cidrs.iter().map(|c| c.parse().unwrap()).collect::<Vec<_>>())
    }

    #[test]
    fn scope_narrows_only_where_a_boundary_falls_inside() {
        let mut map = ScopeMap::default();
        map.add_set(&set(&["203.0.113.77/32", "198.51.100.0/25", "10.0.0.0/8"]));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            map.scope(ip("203.0.113.77")),
            32,
            "a /32 rule: only that address"
        );
        assert_eq!(
            map.scope(ip("203.0.113.76")),
            32,
            "its neighbour differs too"
        );
        assert_eq!(map.scope(ip("203.0.113.1")), 26);
        assert_eq!(map.scope(ip("198.51.100.200")), 25);
        assert_eq!(map.scope(ip("10.1.2.3")), 24, "wider than /24: the base");
        assert_eq!(map.scope(ip("192.0.2.1")), 24);
        map.add_set(&set(&["2001:db8:1:2::/64"]));
        assert_eq!(map.scope(ip("2001:db8:1:2::5")), 64);
        assert_eq!(map.scope(ip("2001:db8:1:3::5")), 64);
        assert_eq!(map.scope(ip("2001:db8:2::1")), 48);
    }
}

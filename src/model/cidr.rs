//! A set of CIDRs compiled into sorted, merged ranges for O(log n) membership tests.

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

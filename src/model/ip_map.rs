//! Maps keyed by endpoint IP, with a hasher made for them.
//!
//! The request path looks endpoints up by IP several times per answer (health, speed
//! statistics); std's SipHash costs more than the rest of such a lookup. Endpoint IPs
//! come from our own zones files (reports naming other IPs are refused), not from
//! clients, so a keyed DoS-resistant hash buys nothing here: a multiply-mix of the
//! address bits is enough.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

/// A map from endpoint IP to `V`.
pub type IpMap<V> = HashMap<IpAddr, V, BuildHasherDefault<IpHasher>>;

/// Multiply-rotate mixing (the FxHash scheme) over the integers `IpAddr` hashes into.
#[derive(Debug, Default, Clone, Copy)]
pub struct IpHasher(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl IpHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(26) ^ word).wrapping_mul(K);
    }
}

impl Hasher for IpHasher {
    fn finish(&self) -> u64 {
        // hashbrown takes the top 7 bits as a tag and the low bits as the slot: fold the
        // well-mixed high half into the low half so both are spread.
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn write_u128(&mut self, n: u128) {
        self.mix(n as u64);
        self.mix((n >> 64) as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn write_isize(&mut self, n: isize) {
        self.mix(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    #[test]
    fn lookups_find_v4_and_v6_endpoints() {
        let mut map: IpMap<u32> = IpMap::default();
        for i in 0..2000u32 {
            map.insert(IpAddr::from((0x0a00_0000 + i).to_be_bytes()), i);
            let v6 = std::net::Ipv6Addr::from((0x2001_0db8_u128 << 96) + u128::from(i));
            map.insert(IpAddr::V6(v6), i + 10_000);
        }
        assert_eq!(map.len(), 4000);
        assert_eq!(map.get(&"10.0.0.7".parse().unwrap()), Some(&7));
        assert_eq!(map.get(&"2001:db8::7".parse().unwrap()), Some(&10_007));
        assert_eq!(
            map.get(&"10.0.0.7".parse::<IpAddr>().unwrap().to_canonical()),
            Some(&7)
        );
        assert!(!map.contains_key(&"192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn neighbouring_addresses_spread_over_slots() {
        let build = BuildHasherDefault::<IpHasher>::default();
        let slots: HashSet<u64> = (0..1024u32)
            .map(|i| build.hash_one(IpAddr::from((0x0a00_0000 + i).to_be_bytes())) & 1023)
            .collect();
        assert!(slots.len() > 550, "{}", slots.len());
    }
}

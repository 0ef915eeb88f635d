//! Token buckets per client network: how often one client, and one network of clients,
//! may ask.
//!
//! A client is counted twice: by its address (IPv4 /32, IPv6 /64, since one IPv6 host
//! owns a whole /64) and by its network (IPv4 /24, IPv6 /48), so rotating addresses
//! inside one allocation does not multiply a budget. The buckets are `governor`'s
//! (GCRA: one atomic compare-and-swap per check, no lock); they are kept in a bounded
//! `moka` cache so a flood from many distinct addresses cannot grow memory without
//! bound. A bucket idle long enough to have refilled is dropped, losing nothing; one
//! evicted early by the bound comes back full, which favours that client, never hurts
//! another. The fronts decide what "over the limit" means (HTTP 429, DNS slip).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Buckets kept per table; beyond this the least useful are evicted.
const MAX_BUCKETS: u64 = 200_000;

/// A rate and burst for one kind of key; `rate == 0` turns it off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Requests allowed at once from a full bucket; 0 = one second's worth (`per_second`).
    pub burst: u32,
}

/// How many address bits name the key, per family.
#[derive(Debug, Clone, Copy)]
struct Prefix {
    v4: u8,
    v6: u8,
}

const ADDRESS: Prefix = Prefix { v4: 32, v6: 64 };
const NETWORK: Prefix = Prefix { v4: 24, v6: 48 };

/// The address `ip` falls under when keeping only `prefix` bits.
fn key(ip: IpAddr, prefix: Prefix) -> IpAddr {
    crate::model::network_of(ip.to_canonical(), prefix.v4, prefix.v6)
}

/// One table of buckets, keyed by `prefix`.
struct Buckets {
    prefix: Prefix,
    quota: Quota,
    cache: moka::sync::Cache<IpAddr, Arc<DefaultDirectRateLimiter>>,
}

impl Buckets {
    fn new(rate: Rate, prefix: Prefix) -> Option<Self> {
        let per_second = NonZeroU32::new(rate.per_second)?;
        let burst = NonZeroU32::new(rate.burst).unwrap_or(per_second);
        let quota = Quota::per_second(per_second).allow_burst(burst);
        // Idle this long, a bucket is full again: forgetting it changes nothing.
        let refill = Duration::from_secs_f64(f64::from(burst.get()) / f64::from(per_second.get()));
        Some(Self {
            prefix,
            quota,
            cache: moka::sync::Cache::builder()
                .max_capacity(MAX_BUCKETS)
                .time_to_idle(refill + Duration::from_secs(1))
                .build(),
        })
    }

    /// `Err(wait)` when the bucket of `ip` is empty.
    fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let limiter = self.cache.get_with(key(ip, self.prefix), || {
            Arc::new(RateLimiter::direct(self.quota))
        });
        limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// Per-address and per-network buckets for one front; both off when built from zero
/// rates, and then a check costs nothing.
#[derive(Default)]
pub struct ClientLimits {
    address: Option<Buckets>,
    network: Option<Buckets>,
}

impl ClientLimits {
    /// Buckets per address (IPv4 /32, IPv6 /64) and per network (IPv4 /24, IPv6 /48).
    pub fn new(per_address: Rate, per_network: Rate) -> Self {
        Self {
            address: Buckets::new(per_address, ADDRESS),
            network: Buckets::new(per_network, NETWORK),
        }
    }

    /// Buckets per network only (IPv4 /24, IPv6 /48): what DNS response rate limiting
    /// counts, since spoofed sources spread over a victim's network.
    pub fn per_network(rate: Rate) -> Self {
        Self {
            address: None,
            network: Buckets::new(rate, NETWORK),
        }
    }

    pub fn is_off(&self) -> bool {
        self.address.is_none() && self.network.is_none()
    }

    /// Takes one token for `ip` from each bucket it belongs to; `Err(wait)` says how
    /// long until the emptier one has a token again.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        if let Some(address) = &self.address {
            address.check(ip)?;
        }
        if let Some(network) = &self.network {
            network.check(ip)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn keys_are_the_address_and_the_network() {
        assert_eq!(key(ip("198.51.100.77"), NETWORK), ip("198.51.100.0"));
        assert_eq!(key(ip("198.51.100.77"), ADDRESS), ip("198.51.100.77"));
        assert_eq!(key(ip("2001:db8:1:2:3::9"), ADDRESS), ip("2001:db8:1:2::"));
        assert_eq!(key(ip("2001:db8:1:2:3::9"), NETWORK), ip("2001:db8:1::"));
        // An IPv4-mapped address counts as the IPv4 client it is.
        assert_eq!(key(ip("::ffff:198.51.100.77"), NETWORK), ip("198.51.100.0"));
    }

    #[test]
    fn an_address_gets_its_burst_then_waits_and_others_are_untouched() {
        let limits = ClientLimits::new(
            Rate {
                per_second: 1,
                burst: 3,
            },
            Rate {
                per_second: 0,
                burst: 0,
            },
        );
        for _ in 0..3 {
            assert!(limits.check(ip("198.51.100.7")).is_ok());
        }
        let wait = limits.check(ip("198.51.100.7")).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(limits.check(ip("198.51.100.8")).is_ok());
    }

    #[test]
    fn a_network_shares_one_budget_across_its_addresses() {
        let limits = ClientLimits::new(
            Rate {
                per_second: 100,
                burst: 100,
            },
            Rate {
                per_second: 1,
                burst: 4,
            },
        );
        for host in 1..=4 {
            assert!(limits.check(ip(&format!("203.0.113.{host}"))).is_ok());
        }
        assert!(limits.check(ip("203.0.113.200")).is_err());
        assert!(limits.check(ip("203.0.114.1")).is_ok());
        // IPv6: one /48 is one network whatever the /64.
        for subnet in 1..=4 {
            assert!(limits.check(ip(&format!("2001:db8:7:{subnet}::1"))).is_ok());
        }
        assert!(limits.check(ip("2001:db8:7:99::1")).is_err());
    }

    #[test]
    fn zero_rates_turn_limits_off() {
        let limits = ClientLimits::new(
            Rate {
                per_second: 0,
                burst: 10,
            },
            Rate {
                per_second: 0,
                burst: 10,
            },
        );
        assert!(limits.is_off());
        for _ in 0..1000 {
            assert!(limits.check(ip("198.51.100.7")).is_ok());
        }
    }
}

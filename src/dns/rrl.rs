//! Response rate limiting (RRL) for classic DNS over UDP, so we cannot be used to
//! reflect and amplify traffic at a spoofed victim.
//!
//! UDP sources can be forged, so answers are counted per client network (IPv4 /24,
//! IPv6 /48: [`ClientLimits::per_network`]), where a spoofed flood at one victim lands
//! in one bucket. Over the limit, every `dns.rrl_slip`-th response "slips" out as an
//! empty answer with TC set — a real resolver behind that network retries over TCP,
//! which cannot be spoofed, and is served — and the rest are dropped. TCP and DoH are
//! not limited here (the HTTP fronts have their own buckets).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::DnsConfig;
use crate::policy::rate_limit::{ClientLimits, Rate};

/// What to do with one UDP query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Answer,
    /// Answer empty with TC set: "ask me over TCP".
    Slip,
    Drop,
}

/// The UDP front's response rate limit; off when `dns.rrl_responses_per_second` is 0.
pub struct ResponseRateLimit {
    limits: ClientLimits,
    slip: u64,
    /// Over-limit responses so far: which one slips.
    over: AtomicU64,
}

impl ResponseRateLimit {
    pub fn new(config: &DnsConfig) -> Self {
        Self {
            limits: ClientLimits::per_network(Rate {
                per_second: config.rrl_responses_per_second,
                burst: config.rrl_burst,
            }),
            slip: u64::from(config.rrl_slip),
            over: AtomicU64::new(0),
        }
    }

    pub fn verdict(&self, client: IpAddr) -> Verdict {
        if self.limits.check(client).is_ok() {
            return Verdict::Answer;
        }
        let n = self.over.fetch_add(1, Ordering::Relaxed);
        let verdict = if self.slip > 0 && n % self.slip == 0 {
            Verdict::Slip
        } else {
            Verdict::Drop
        };
        let action = if verdict == Verdict::Slip {
            "slip"
        } else {
            "drop"
        };
        metrics::counter!("httpdns_rate_limited_total", "front" => "dns_udp", "action" => action)
            .increment(1);
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrl(rate: u32, burst: u32, slip: u32) -> ResponseRateLimit {
        ResponseRateLimit::new(&DnsConfig {
            rrl_responses_per_second: rate,
            rrl_burst: burst,
            rrl_slip: slip,
            ..DnsConfig::default()
        })
    }

    #[test]
    fn over_the_limit_every_nth_slips_and_the_rest_drop() {
        let limit = rrl(1, 2, 3);
        let victim: IpAddr = "198.51.100.9".parse().unwrap();
        let verdicts: Vec<Verdict> = (0..8).map(|_| limit.verdict(victim)).collect();
        use Verdict::*;
        assert_eq!(
            verdicts,
            [Answer, Answer, Slip, Drop, Drop, Slip, Drop, Drop]
        );
        // Another network is answered.
        assert_eq!(limit.verdict("203.0.113.1".parse().unwrap()), Answer);
    }

    #[test]
    fn slip_zero_drops_everything_over_the_limit_and_rate_zero_is_off() {
        let limit = rrl(1, 1, 0);
        let client: IpAddr = "198.51.100.9".parse().unwrap();
        assert_eq!(limit.verdict(client), Verdict::Answer);
        assert!((0..5).all(|_| limit.verdict(client) == Verdict::Drop));
        let off = rrl(0, 0, 2);
        assert!((0..1000).all(|_| off.verdict(client) == Verdict::Answer));
    }
}

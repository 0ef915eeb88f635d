//! Request policy every front shares, compiled into the snapshot.
//!
//! Who the client is ([`client_ip`]: the socket peer, or trusted proxies' headers),
//! whether a request is signed ([`signing`]), and what the DNS fronts are authoritative
//! for and whose ECS they believe ([`DnsPolicy`], [`authority`]), and how often a client
//! network may ask ([`rate_limit`]). These rules are the
//! same whether a question arrives as `/resolve`, DoH or classic DNS, so they live below
//! the snapshot and import no front: a front applies them, it does not define them.

pub mod authority;
pub mod client_ip;
pub mod rate_limit;
pub mod signing;

pub use authority::ApexError;
pub use signing::Signing;

use crate::config::DnsConfig;
use crate::model::CidrSet;

/// The reloadable part of the DNS configuration, compiled: it lives in the snapshot so a
/// reload changes apexes and ECS trust together with the zones they describe.
#[derive(Debug)]
pub struct DnsPolicy {
    pub authority: authority::Authority,
    pub ecs_trusted: CidrSet,
    pub udp_max_payload: u16,
}

impl Default for DnsPolicy {
    fn default() -> Self {
        let config = DnsConfig::default();
        Self {
            authority: authority::Authority::default(),
            ecs_trusted: CidrSet::new(&config.ecs_trusted),
            udp_max_payload: config.udp_max_payload,
        }
    }
}

impl DnsPolicy {
    pub fn compile(config: &DnsConfig) -> Result<Self, ApexError> {
        Ok(Self {
            authority: authority::Authority::compile(&config.apex)?,
            ecs_trusted: CidrSet::new(&config.ecs_trusted),
            udp_max_payload: config.udp_max_payload,
        })
    }
}

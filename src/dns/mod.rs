//! DNS fronts: DNS over HTTPS, classic UDP/TCP DNS with EDNS Client Subnet.
//!
//! Thin adapters over hickory-proto's wire format. [`handler`] turns one query into one
//! answer for every transport; [`doh`] is the RFC 8484 HTTP front (and the dns-json
//! shape), [`listener`] the UDP and TCP sockets, [`ecs`] whose address steers, and
//! [`authority`] the zone apexes (SOA, NS, NXDOMAIN versus REFUSED). Steering itself is
//! [`crate::resolver::Resolver::decide`]'s, the same call `/resolve` makes.

pub mod authority;
pub mod doh;
pub mod ecs;
pub mod handler;
pub mod listener;

pub use authority::ApexError;
pub use handler::{DnsHandler, Reply};

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

//! DNS fronts: DNS over HTTPS, classic UDP/TCP DNS with EDNS Client Subnet.
//!
//! Thin adapters over hickory-proto's wire format. [`handler`] turns one query into one
//! answer for every transport (the common query on bytes through [`wire`], everything
//! else through hickory); [`doh`] is the RFC 8484 HTTP front (and the dns-json
//! shape), [`listener`] the UDP and TCP sockets, [`rrl`] UDP response rate limiting,
//! and [`ecs`] whose address steers. The apexes (SOA, NS, NXDOMAIN versus REFUSED) and
//! ECS trust are request policy, compiled into the snapshot by [`crate::policy`];
//! steering itself is the resolver's request context, the same one `/resolve` uses.

pub mod doh;
pub mod ecs;
pub mod handler;
pub mod listener;
pub mod rrl;
pub mod udp;
pub mod wire;

pub use handler::{Answered, DnsHandler, Reply, Transport};

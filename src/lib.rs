//! httpdns: an HTTPDNS and global traffic scheduling (GSLB) server.
//!
//! One request flows one way: a front (`api` for JSON `/resolve` and `/report`, `dns`
//! for DoH and classic UDP/TCP DNS) parses its wire format and asks the
//! [`resolver::Resolver`] for a [`resolver::Request`] (the snapshot, loaded once); the
//! shared [`policy`] (signing, client IP behind trusted proxies, DNS apexes and ECS
//! trust) is applied; [`resolver::Request::for_client`] finds the client's network and
//! its geo ([`geoip`], kept by the [`answer_cache`]); the pure [`scheduler`] plans over
//! the compiled [`model`] and the live state (or the cache hands back the plan made for
//! the same client network and generation); the plan's weighted draw is the decision the
//! front renders.
//!
//! Everything the request path reads lives in one immutable [`snapshot::Snapshot`]
//! published with `arc-swap`. Live state has three writers, each the owner of its rules:
//! [`health`] (probes, rise/fall), [`speed`] (client reports) and [`state`] (drains and
//! disables, persisted and audited). [`reload`] builds and swaps new snapshots and says
//! which start-only fields need a restart. [`server`] wires listeners ([`accept`],
//! [`http`], [`tls`]) and tasks on the [`runtime`]; [`admin`] is the authenticated admin API.

pub mod accept;
pub mod admin;
pub mod answer_cache;
pub mod api;
pub mod cluster;
pub mod config;
pub mod dns;
pub mod epoch;
pub mod geoip;
pub mod health;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod policy;
pub mod reload;
pub mod resolver;
pub mod runtime;
pub mod scheduler;
pub mod server;
pub mod snapshot;
pub mod speed;
pub mod state;
pub mod tls;

pub use config::ServerConfig;
pub use server::{Server, StartError, StartOptions};

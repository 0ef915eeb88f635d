//! httpdns: an HTTPDNS and global traffic scheduling (GSLB) server.
//!
//! A request flows one way: HTTP front (`api`) → client IP → geo lookup (`geoip`) →
//! zone policy and ranking (`scheduler` over the compiled `model`) → answer. Everything
//! the request path reads lives in one immutable [`snapshot::Snapshot`] published with
//! `arc-swap`; `server` wires listeners and tasks.

pub mod admin;
pub mod api;
pub mod config;
pub mod dns;
pub mod epoch;
pub mod geoip;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod reload;
pub mod resolver;
pub mod scheduler;
pub mod server;
pub mod snapshot;
pub mod speed;
pub mod state;
pub mod tls;

pub use config::ServerConfig;
pub use server::{Server, StartError, StartOptions};

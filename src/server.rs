//! The wiring: listeners, shared state, tasks and graceful shutdown.
//!
//! `Server::start` is what `main` and the integration tests call: it loads the snapshot,
//! binds the listeners (port 0 works), spawns the tasks and returns their addresses.
//! Dropping nothing stops it; [`Server::shutdown`] does, letting requests in flight end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::config::ServerConfig;
use crate::dns::{self, ApexError, DnsHandler};
use crate::epoch::Epoch;
use crate::resolver::Resolver;
use crate::snapshot::{self, LoadError};
use crate::tls::{self, Tls, TlsError};

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("{0}")]
    Load(#[from] LoadError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Apex(#[from] ApexError),
    #[error("{0}")]
    Tls(#[from] TlsError),
}

/// A running server.
pub struct Server {
    pub public_addr: SocketAddr,
    /// Whether the public listener speaks HTTPS.
    pub public_tls: bool,
    /// Classic DNS (UDP and TCP on one address), when `dns_listen` is set.
    pub dns_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Loads everything `config` names and starts serving.
    pub async fn start(config: ServerConfig) -> Result<Self, StartError> {
        let snapshot = snapshot::load(&config)?;
        tracing::info!(
            domains = snapshot.model.domains().count(),
            zones = snapshot.model.zones.len(),
            "steering model loaded"
        );
        let resolver = Resolver::new(
            Arc::new(ArcSwap::from_pointee(snapshot)),
            Arc::new(Epoch::default()),
        );
        let state = AppState {
            resolver: resolver.clone(),
        };
        let shutdown = CancellationToken::new();
        let public = bind(config.listen).await?;
        let public_addr = public.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let dns = DnsHandler::new(resolver.clone(), &config.dns)?;
        let tls = config.tls.as_ref().map(Tls::from_config).transpose()?;
        // Bind everything before spawning anything, so a failure leaves no task behind.
        let dns_sockets = match config.dns_listen {
            Some(addr) => Some(
                dns::listener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?,
            ),
            None => None,
        };
        let dns_addr = dns_sockets.as_ref().map(|sockets| sockets.addr);
        let router = api::router(state, config.limits.max_body_bytes)
            .merge(dns::doh::router(dns.clone(), config.dns.max_query_bytes));
        let mut tasks = vec![tls::serve(public, router, tls.clone(), shutdown.clone())];
        if let (Some(tls), Some(tls_config)) = (&tls, &config.tls) {
            let interval = Duration::from_millis(tls_config.reload_interval_ms);
            tasks.push(tls.spawn_reload(interval, shutdown.clone()));
        }
        if let Some(sockets) = dns_sockets {
            tasks.extend(dns::listener::spawn(
                sockets,
                dns,
                &config.dns,
                shutdown.clone(),
            ));
            tracing::info!(dns_addr = ?dns_addr, "serving DNS over UDP and TCP");
        }
        tracing::info!(%public_addr, tls = tls.is_some(), "serving /resolve and /dns-query");
        Ok(Self {
            public_addr,
            public_tls: tls.is_some(),
            dns_addr,
            shutdown,
            tasks,
        })
    }

    /// Stops accepting, lets requests in flight finish, and waits for every task.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Waits until the server stops (after [`Server::shutdown`] from elsewhere or an error).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

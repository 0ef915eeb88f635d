//! The wiring: listeners, shared state, tasks and graceful shutdown.
//!
//! `Server::start` is what `main` and the integration tests call: it loads the snapshot,
//! binds the listeners (port 0 works), spawns the tasks and returns their addresses.
//! Dropping nothing stops it; [`Server::shutdown`] does, letting requests in flight end.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::config::ServerConfig;
use crate::epoch::Epoch;
use crate::resolver::Resolver;
use crate::snapshot::{self, LoadError};

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
}

/// A running server.
pub struct Server {
    pub public_addr: SocketAddr,
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
        let router = api::router(state, config.limits.max_body_bytes);
        let tasks = vec![serve(public, router, shutdown.clone())];
        tracing::info!(%public_addr, "serving /resolve");
        Ok(Self {
            public_addr,
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

fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
        {
            tracing::error!(%error, "listener failed");
        }
    })
}

//! The wiring: listeners, shared state, tasks, reload triggers and graceful shutdown.
//!
//! `Server::start` is what `main` and the integration tests call: it loads the snapshot
//! and the persisted overrides, binds the listeners (port 0 works), starts health
//! checks, the file watcher and SIGHUP handling, and returns the bound addresses.
//! [`Server::shutdown`] stops accepting and lets requests in flight finish.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::accept::ConnectionLimits;
use crate::admin::{self, AdminState, AdminTokens};
use crate::api::{self, AppState};
use crate::config::ServerConfig;
use crate::dns::{self, DnsHandler};
use crate::epoch::Epoch;
use crate::http::hot::HotRoutes;
use crate::http::rate_limit::RateLimit;
use crate::http::serve::HttpLimits;
use crate::reload::Reloader;
use crate::resolver::{Live, Resolver};
use crate::snapshot::{self, LoadError};
use crate::state::{StateError, StateStore};
use crate::tls::{Tls, TlsError};

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("{0}")]
    Load(#[from] LoadError),
    #[error("{0}")]
    State(#[from] StateError),
    #[error("{0}")]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("--admin-insecure-loopback needs a loopback admin address, not {0}")]
    InsecureNotLoopback(SocketAddr),
}

/// Start-time options that are not part of the config file.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// The config file, re-read on reload (none: reload re-reads zones and databases).
    pub config_path: Option<PathBuf>,
    pub admin_tokens: AdminTokens,
    /// Serve the admin API without tokens; only on a loopback address.
    pub admin_insecure_loopback: bool,
    /// Discard a corrupt or unwanted state file instead of refusing to start.
    pub reset_state: bool,
    /// Watch config, zones and IP database files and reload on change.
    pub watch_files: bool,
}

/// A running server.
pub struct Server {
    pub public_addr: SocketAddr,
    /// `None` when the admin API is disabled (no token configured).
    pub admin_addr: Option<SocketAddr>,
    /// Whether the public listener speaks HTTPS.
    pub public_tls: bool,
    /// Classic DNS (UDP and TCP on one address), when `dns_listen` is set.
    pub dns_addr: Option<SocketAddr>,
    resolver: Resolver,
    reloader: Arc<Reloader>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Loads everything `config` names and starts serving.
    pub async fn start(config: ServerConfig, options: StartOptions) -> Result<Self, StartError> {
        let admin_enabled = !options.admin_tokens.is_empty() || options.admin_insecure_loopback;
        if options.admin_tokens.is_empty()
            && options.admin_insecure_loopback
            && !config.admin_listen.ip().is_loopback()
        {
            return Err(StartError::InsecureNotLoopback(config.admin_listen));
        }
        if !admin_enabled {
            tracing::warn!(
                "admin API not started: no admin token configured (pass --admin-token-file, set HTTPDNS_ADMIN_TOKEN, or use --admin-insecure-loopback on a loopback address)"
            );
        }
        crate::metrics::install();
        let open_files = raise_open_file_limit();
        let loaded = snapshot::load(&config)?;
        tracing::info!(
            domains = loaded.model.domains().count(),
            zones = loaded.model.zones.len(),
            "steering model loaded"
        );
        let shutdown = CancellationToken::new();
        let epoch = Arc::new(Epoch::default());
        let state = match &config.cluster {
            Some(cluster) => StateStore::open_cluster(
                &config.state_dir,
                options.reset_state,
                Arc::clone(&epoch),
                cluster,
                shutdown.clone(),
            )?,
            None => StateStore::open(&config.state_dir, options.reset_state, Arc::clone(&epoch))?,
        };
        let live = Arc::new(Live::new(Arc::clone(&epoch), state, shutdown.clone()));
        live.reconcile_health(&loaded.model);
        crate::reload::warn_orphans(&live.overrides().orphans(&loaded.model), "start");
        let resolver = Resolver::new(Arc::new(ArcSwap::from_pointee(loaded)), epoch, live)
            .with_answer_cache(config.limits.answer_cache_entries);
        let reloader = Arc::new(Reloader::new(
            options.config_path.clone(),
            config.clone(),
            resolver.clone(),
        ));
        if let Some(cluster) = resolver.live().state().cluster() {
            cluster.attach_zones(crate::cluster::ZonesSink {
                config: config.clone(),
                reloader: Arc::clone(&reloader),
            });
        }

        let dns = DnsHandler::new(resolver.clone());
        let tls = config.tls.as_ref().map(Tls::from_config).transpose()?;
        // Bind everything before spawning anything, so a failure leaves no task behind.
        let public = bind(config.listen).await?;
        let public_addr = local_addr(&public, config.listen)?;
        let admin_listener = if admin_enabled {
            Some(bind(config.admin_listen).await?)
        } else {
            None
        };
        let admin_addr = admin_listener
            .as_ref()
            .map(|listener| local_addr(listener, config.admin_listen))
            .transpose()?;
        let dns_sockets = match config.dns_listen {
            Some(addr) => Some(
                dns::listener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?,
            ),
            None => None,
        };
        let dns_addr = dns_sockets.as_ref().map(|sockets| sockets.addr);

        let (public_router, public_hot) = public_routes(&resolver, &config);
        let max_connections = connection_limits_for(&config, open_files);
        tracing::info!(
            open_files,
            max_connections,
            "connection caps per HTTP listener"
        );
        let http_limits = |what| HttpLimits {
            connections: ConnectionLimits::new(
                what,
                max_connections,
                config.limits.max_connections_per_ip,
            ),
            header_read_timeout: Duration::from_millis(config.limits.header_read_timeout_ms),
            body_read_timeout: Duration::from_millis(config.limits.body_read_timeout_ms),
            idle_timeout: Duration::from_millis(config.limits.idle_timeout_ms),
        };
        let mut tasks = vec![
            crate::http::serve::serve(
                public,
                public_router,
                Some(Arc::new(public_hot)),
                tls.clone(),
                http_limits("public"),
                shutdown.clone(),
            ),
            reload_on_sighup(Arc::clone(&reloader), shutdown.clone()),
            crate::metrics::spawn_upkeep(crate::metrics::UPKEEP_INTERVAL, shutdown.clone()),
        ];
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
        if let Some(listener) = admin_listener {
            let admin_router = admin::router(AdminState {
                resolver: resolver.clone(),
                reloader: Arc::clone(&reloader),
                tokens: Arc::new(options.admin_tokens.clone()),
                insecure: options.admin_tokens.is_empty(),
                max_body_bytes: config.limits.max_body_bytes,
            });
            let admin_tls = tls
                .clone()
                .filter(|_| config.tls.as_ref().is_some_and(|t| t.admin));
            tasks.push(crate::http::serve::serve(
                listener,
                admin_router,
                None,
                admin_tls,
                http_limits("admin"),
                shutdown.clone(),
            ));
        }
        if options.watch_files {
            tasks.push(Arc::clone(&reloader).watch(shutdown.clone()));
        }
        tracing::info!(
            %public_addr,
            tls = tls.is_some(),
            runtime = ?tokio::runtime::Handle::current().runtime_flavor(),
            admin_addr = %admin_addr.map_or_else(|| "disabled".to_string(), |a| a.to_string()),
            "httpdns listening"
        );
        Ok(Self {
            public_addr,
            admin_addr,
            public_tls: tls.is_some(),
            dns_addr,
            resolver,
            reloader,
            shutdown,
            tasks,
        })
    }

    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    pub fn reloader(&self) -> &Arc<Reloader> {
        &self.reloader
    }

    /// Stops accepting, lets requests in flight finish, and waits for every task.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Cancelled when the server stops.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Raises the soft open-file limit to the hard one (connections are descriptors) and
/// returns what is now allowed.
fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((1024, 1024));
            tracing::warn!(%error, soft, "cannot raise the open-file limit");
            soft
        }
    }
}

/// Each HTTP listener's caps and timeouts, sized under the open-file limit.
fn connection_limits_for(config: &ServerConfig, open_files: u64) -> usize {
    let dns_tcp = if config.dns_listen.is_some() {
        config.dns.tcp_max_connections
    } else {
        0
    };
    let budget = config.limits.connection_budget(open_files, dns_tcp);
    if config
        .limits
        .max_connections
        .is_some_and(|wanted| wanted > budget)
    {
        tracing::warn!(
            open_files,
            max_connections = budget,
            "limits.max_connections lowered to fit under the open-file limit"
        );
    }
    budget
}

/// The per-client rate limit of the public listener: its buckets are made here, once
/// per listener (the rates are start-only).
fn public_rate_limit(resolver: &Resolver, config: &ServerConfig) -> RateLimit {
    RateLimit {
        limits: Arc::new(config.limits.client_limits()),
        resolver: resolver.clone(),
    }
}

/// `GET /resolve` and `GET /dns-query` on the lean path ([`crate::http::hot`]), in
/// front of the router, which serves everything else (and the same two routes to
/// callers that build the router alone, e.g. tests with `oneshot`).
fn public_hot_routes(
    resolver: &Resolver,
    config: &ServerConfig,
    rate_limit: RateLimit,
) -> HotRoutes {
    let app = AppState {
        resolver: resolver.clone(),
        max_body_bytes: config.limits.max_body_bytes,
    };
    let doh = dns::doh::Doh::new(
        DnsHandler::new(resolver.clone()),
        config.dns.max_query_bytes,
    );
    HotRoutes::new(rate_limit)
        .get(
            "/resolve",
            Box::new(move |peer, headers, query| api::resolve_answer(&app, peer, headers, query)),
        )
        .get(
            "/dns-query",
            Box::new(move |peer, headers, query| doh.get(peer, headers, query)),
        )
}

/// The public listener's routes: the router and, in front of it, the hot routes, sharing
/// one set of rate-limit buckets.
pub fn public_routes(resolver: &Resolver, config: &ServerConfig) -> (axum::Router, HotRoutes) {
    let rate_limit = public_rate_limit(resolver, config);
    (
        public_router_with(resolver, config, rate_limit.clone()),
        public_hot_routes(resolver, config, rate_limit),
    )
}

/// The public router alone (every public route, without the hot path in front).
pub fn public_router(resolver: &Resolver, config: &ServerConfig) -> axum::Router {
    public_routes(resolver, config).0
}

/// The public listener's routes: the JSON API (`/resolve`, `/report`, `/healthz`) and
/// DoH (`/dns-query`), both over `resolver`, behind the per-client rate limit (its
/// buckets are made here, once per listener: the rates are start-only).
fn public_router_with(
    resolver: &Resolver,
    config: &ServerConfig,
    rate_limit: RateLimit,
) -> axum::Router {
    api::router(AppState {
        resolver: resolver.clone(),
        max_body_bytes: config.limits.max_body_bytes,
    })
    .merge(dns::doh::router(
        DnsHandler::new(resolver.clone()),
        config.dns.max_query_bytes,
    ))
    .layer(axum::middleware::from_fn_with_state(
        rate_limit,
        crate::http::rate_limit::limit,
    ))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, StartError> {
    listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })
}

#[cfg(unix)]
fn reload_on_sighup(reloader: Arc<Reloader>, shutdown: CancellationToken) -> JoinHandle<()> {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload with the admin API");
            return;
        };
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = hangups.recv() => { let _ = reloader.reload("SIGHUP").await; }
            }
        }
    })
}

#[cfg(not(unix))]
fn reload_on_sighup(_reloader: Arc<Reloader>, _shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async {})
}

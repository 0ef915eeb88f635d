//! Reloads: re-read the config, zones and IP databases, validate, swap.
//!
//! Triggered by `POST /admin/reload`, SIGHUP, or a (debounced) change to a watched file.
//! The new snapshot is built on a blocking thread, off the request path, and published
//! with one `arc-swap` store; requests in flight finish on the old one. A bad file keeps
//! the old snapshot serving and the reload reports every error. Listen addresses and the
//! state directory are fixed at start: changes to them are logged and ignored.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use notify::{RecursiveMode, Watcher};
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::resolver::Resolver;
use crate::snapshot;

/// Quiet time after a file event before reloading: editors write in several steps.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// What a successful reload loaded.
#[derive(Debug, Serialize)]
pub struct ReloadSummary {
    pub epoch: u64,
    pub domains: usize,
    pub zones: usize,
}

/// How the last reload went, for the dashboard (`GET /admin/status`) and the
/// `httpdns_reload_last_success` gauge: a failed reload keeps the old config serving, so
/// the failure must stay visible until a reload succeeds.
#[derive(Debug, Clone, Serialize)]
pub struct LastReload {
    pub at_ms: u64,
    pub trigger: String,
    pub ok: bool,
    /// The epoch the reload published (successful reloads only).
    pub epoch: Option<u64>,
    pub errors: Vec<String>,
}

pub struct Reloader {
    config_path: Option<PathBuf>,
    config: Mutex<ServerConfig>,
    resolver: Resolver,
    running: tokio::sync::Mutex<()>,
    last: ArcSwapOption<LastReload>,
}

impl Reloader {
    pub fn new(config_path: Option<PathBuf>, config: ServerConfig, resolver: Resolver) -> Self {
        Self {
            config_path,
            config: Mutex::new(config),
            resolver,
            running: tokio::sync::Mutex::new(()),
            last: ArcSwapOption::empty(),
        }
    }

    /// The last reload's outcome; `None` before the first reload.
    pub fn last(&self) -> Option<Arc<LastReload>> {
        self.last.load_full()
    }

    fn record(&self, trigger: &str, epoch: Option<u64>, errors: &[String]) {
        self.last.store(Some(Arc::new(LastReload {
            at_ms: crate::epoch::now_ms(),
            trigger: trigger.to_string(),
            ok: errors.is_empty(),
            epoch,
            errors: errors.to_vec(),
        })));
    }

    fn config(&self) -> ServerConfig {
        self.config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reloads everything; on error the old snapshot keeps serving.
    pub async fn reload(&self, trigger: &str) -> Result<ReloadSummary, Vec<String>> {
        let _one_at_a_time = self.running.lock().await;
        let result = self.build().await;
        match result {
            Ok((config, built)) => {
                let summary = ReloadSummary {
                    epoch: 0,
                    domains: built.model.domains().count(),
                    zones: built.model.zones.len(),
                };
                self.resolver.live().health.reconcile(&built.model);
                self.resolver.shared_snapshot().store(Arc::new(built));
                *self.config.lock().unwrap_or_else(|p| p.into_inner()) = config;
                let epoch = self.resolver.epoch().bump();
                metrics::counter!("httpdns_reloads_total", "result" => "ok").increment(1);
                self.record(trigger, Some(epoch), &[]);
                tracing::info!(
                    trigger,
                    epoch,
                    domains = summary.domains,
                    zones = summary.zones,
                    "reloaded"
                );
                Ok(ReloadSummary { epoch, ..summary })
            }
            Err(errors) => {
                metrics::counter!("httpdns_reloads_total", "result" => "failed").increment(1);
                self.record(trigger, None, &errors);
                for error in &errors {
                    tracing::error!(trigger, %error, "reload failed; still serving the previous config");
                }
                Err(errors)
            }
        }
    }

    async fn build(&self) -> Result<(ServerConfig, snapshot::Snapshot), Vec<String>> {
        let old = self.config();
        let path = self.config_path.clone();
        tokio::task::spawn_blocking(move || {
            let mut config = match &path {
                Some(path) => ServerConfig::load(path).map_err(|e| vec![e.to_string()])?,
                None => old.clone(),
            };
            if config.listen != old.listen || config.admin_listen != old.admin_listen || config.state_dir != old.state_dir {
                tracing::warn!("listen addresses and state_dir change only on restart; keeping the running ones");
                config.listen = old.listen;
                config.admin_listen = old.admin_listen;
                config.state_dir = old.state_dir.clone();
            }
            let built = snapshot::load(&config).map_err(|e| e.messages())?;
            Ok((config, built))
        })
        .await
        .map_err(|e| vec![format!("reload task failed: {e}")])?
    }

    /// The files whose change triggers a reload.
    fn watched(&self) -> (Vec<PathBuf>, HashSet<PathBuf>) {
        let config = self.config();
        let mut files: HashSet<PathBuf> = [
            Some(config.geoip.database.clone()),
            config.geoip.asn_database.clone(),
            config.geoip.asn_carriers.clone(),
            self.config_path.clone(),
        ]
        .into_iter()
        .flatten()
        .map(|p| absolute(&p))
        .collect();
        let zones_dir = absolute(&config.zones_dir);
        let mut dirs: Vec<PathBuf> = files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        dirs.push(zones_dir.clone());
        dirs.sort();
        dirs.dedup();
        files.insert(zones_dir);
        (dirs, files)
    }

    /// Watches the config, zones directory and IP databases; reloads on change.
    pub fn watch(self: Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let (dirs, files) = self.watched();
        let zones_dir = absolute(&self.config().zones_dir);
        let relevant = move |path: &Path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".tmp") || name.starts_with('.') {
                return false;
            }
            files.contains(path)
                || (path.parent() == Some(zones_dir.as_path()) && name.ends_with(".toml"))
        };
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                if !event.kind.is_access() && event.paths.iter().any(|p| relevant(p)) {
                    let _ = tx.send(());
                }
            }
        });
        let mut watcher = match watcher {
            Ok(w) => w,
            Err(error) => {
                tracing::warn!(%error, "file watching unavailable; reload with SIGHUP or the admin API");
                return tokio::spawn(async {});
            }
        };
        for dir in &dirs {
            if let Err(error) = watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %dir.display(), %error, "cannot watch");
            }
        }
        tokio::spawn(async move {
            let _watcher = watcher;
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    event = rx.recv() => if event.is_none() { return },
                }
                // Let the burst of writes settle, then reload once.
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(DEBOUNCE) => break,
                        _ = rx.recv() => {}
                    }
                }
                let _ = self.reload("file change").await;
            }
        })
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

//! Reloads: re-read the config, zones and IP databases, validate, swap.
//!
//! Triggered by `POST /admin/reload`, SIGHUP, or a (debounced) change to a watched file.
//! The new snapshot is built on a blocking thread, off the request path, and published
//! with one `arc-swap` store; requests in flight finish on the old one. A bad file keeps
//! the old snapshot serving and the reload reports every error. Fields bound at start
//! (listen addresses, TLS, the state directory, body and DNS TCP bounds) keep their
//! running values; a reload names the ones the file changed in `restart_required`, so
//! it never reports as applied what it did not apply, and the config it keeps always
//! describes what runs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::resolver::Resolver;
use crate::snapshot;

/// Quiet time after a file event before reloading: editors write in several steps.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// What a successful reload did.
#[derive(Debug, Serialize)]
pub struct Applied {
    /// The epoch of the new snapshot.
    pub epoch: u64,
    pub domains: usize,
    pub zones: usize,
    /// Start-only fields whose new values wait for a restart (empty when none).
    pub restart_required: Vec<&'static str>,
}

/// The last reload attempt, for the admin views and for anyone waiting on one.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadStatus {
    /// Reloads tried since start (applied or failed).
    pub attempts: u64,
    /// `"applied"` or `"failed"`; `None` before the first attempt.
    pub last_result: Option<&'static str>,
    pub last_trigger: Option<String>,
    pub last_at_ms: Option<u64>,
    /// Every error of the last attempt, when it failed.
    pub errors: Vec<String>,
    /// Start-only fields the last applied reload could not apply.
    pub restart_required: Vec<&'static str>,
    /// The epoch the last applied reload published.
    pub epoch: Option<u64>,
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
    /// The config the process runs: start-only fields as bound at start.
    config: Mutex<ServerConfig>,
    resolver: Resolver,
    running: tokio::sync::Mutex<()>,
    status: tokio::sync::watch::Sender<ReloadStatus>,
}

impl Reloader {
    pub fn new(config_path: Option<PathBuf>, config: ServerConfig, resolver: Resolver) -> Self {
        Self {
            config_path,
            config: Mutex::new(config),
            resolver,
            running: tokio::sync::Mutex::new(()),
            status: tokio::sync::watch::Sender::new(ReloadStatus::default()),
        }
    }

    /// The last reload's outcome, as the status API and gauges show it; `None` before
    /// the first reload.
    pub fn last(&self) -> Option<LastReload> {
        let status = self.status.borrow();
        Some(LastReload {
            at_ms: status.last_at_ms?,
            trigger: status.last_trigger.clone().unwrap_or_default(),
            ok: status.last_result == Some("applied"),
            epoch: status
                .epoch
                .filter(|_| status.last_result == Some("applied")),
            errors: status.errors.clone(),
        })
    }

    /// The last reload attempt; `changed()` on the receiver wakes on the next one.
    pub fn status(&self) -> tokio::sync::watch::Receiver<ReloadStatus> {
        self.status.subscribe()
    }

    fn record(&self, trigger: &str, result: &Result<Applied, Vec<String>>) {
        self.status.send_modify(|status| {
            status.attempts += 1;
            status.last_trigger = Some(trigger.to_string());
            status.last_at_ms = Some(crate::epoch::now_ms());
            match result {
                Ok(applied) => {
                    status.last_result = Some("applied");
                    status.epoch = Some(applied.epoch);
                    status.errors.clear();
                    status.restart_required = applied.restart_required.clone();
                }
                Err(errors) => {
                    status.last_result = Some("failed");
                    status.errors = errors.clone();
                }
            }
        });
    }

    fn config(&self) -> ServerConfig {
        self.config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reloads everything; on error the old snapshot keeps serving.
    pub async fn reload(&self, trigger: &str) -> Result<Applied, Vec<String>> {
        let _one_at_a_time = self.running.lock().await;
        let result = self.apply(trigger).await;
        self.record(trigger, &result);
        result
    }

    async fn apply(&self, trigger: &str) -> Result<Applied, Vec<String>> {
        match self.build().await {
            Ok((config, built, restart_required)) => {
                let (domains, zones) = (built.model.domains().count(), built.model.zones.len());
                self.resolver.live().reconcile_health(&built.model);
                let orphans = self.resolver.live().overrides().orphans(&built.model);
                self.resolver.shared_snapshot().store(Arc::new(built));
                warn_orphans(&orphans, trigger);
                *self.config.lock().unwrap_or_else(|p| p.into_inner()) = config;
                let epoch = self.resolver.epoch().bump();
                metrics::counter!("httpdns_reloads_total", "result" => "ok").increment(1);
                if restart_required.is_empty() {
                    tracing::info!(trigger, epoch, domains, zones, "reloaded");
                } else {
                    tracing::warn!(
                        trigger,
                        epoch,
                        domains,
                        zones,
                        restart_required = ?restart_required,
                        "reloaded; these fields changed but apply only after a restart"
                    );
                }
                Ok(Applied {
                    epoch,
                    domains,
                    zones,
                    restart_required,
                })
            }
            Err(errors) => {
                metrics::counter!("httpdns_reloads_total", "result" => "failed").increment(1);
                for error in &errors {
                    tracing::error!(trigger, %error, "reload failed; still serving the previous config");
                }
                Err(errors)
            }
        }
    }

    /// Reads and validates the next config and snapshot, with the start-only fields
    /// pinned to the running ones (and named).
    async fn build(
        &self,
    ) -> Result<(ServerConfig, snapshot::Snapshot, Vec<&'static str>), Vec<String>> {
        let running = self.config();
        let path = self.config_path.clone();
        tokio::task::spawn_blocking(move || {
            let mut config = match &path {
                Some(path) => ServerConfig::load(path).map_err(|e| vec![e.to_string()])?,
                None => running.clone(),
            };
            let restart_required = config.keep_start_fields(&running);
            let built = snapshot::load(&config).map_err(|e| e.messages())?;
            Ok((config, built, restart_required))
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
            config.geoip.overrides.clone(),
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
        // The zones directory itself may be replaced (renamed over): its parent sees that.
        if let Some(parent) = zones_dir.parent() {
            dirs.push(parent.to_path_buf());
        }
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
        let watched_dirs: HashSet<PathBuf> = dirs.iter().cloned().collect();
        let relevant = move |path: &Path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // Kubernetes ConfigMaps (and other atomic publishers) swap a `..data` symlink
            // in the watched directory; the files themselves never change.
            if name == "..data" {
                return path.parent().is_some_and(|dir| watched_dirs.contains(dir));
            }
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
                // A directory replaced by another of the same name is a new inode: watch
                // the paths again so the new one is followed.
                for dir in &dirs {
                    let _ = watcher.unwatch(dir);
                    if let Err(error) = watcher.watch(dir, RecursiveMode::NonRecursive) {
                        tracing::warn!(dir = %dir.display(), %error, "cannot watch");
                    }
                }
            }
        })
    }
}

/// A drain or disable left with nothing to apply to (a zone renamed or removed) lets
/// traffic back into what an SRE took out: say so loudly on every reload that leaves one.
pub fn warn_orphans(orphans: &[crate::state::Orphan], trigger: &str) {
    metrics::gauge!("httpdns_orphaned_overrides").set(orphans.len() as f64);
    for orphan in orphans {
        tracing::warn!(
            trigger,
            %orphan,
            "override matches nothing in the zones files: it steers no traffic (zone or endpoint renamed or removed?)"
        );
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

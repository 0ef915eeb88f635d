//! Active health checks: probes endpoints, applies rise/fall, publishes up/down and RTT.
//!
//! One task per checked endpoint, started with a random delay inside its interval so a
//! reload does not fire every probe at once. [`HealthChecks::reconcile`] follows the
//! model: new endpoints get a task, removed ones are stopped, unchanged ones keep their
//! state. The request path reads [`HealthMap`] through `arc-swap` and per-endpoint
//! atomics; this module is the only writer. Endpoints without a check are always up.

mod probe;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::epoch::Epoch;
use crate::model::HealthCheck;
use crate::model::{IpMap, Model};

/// Weight of the newest probe in the RTT moving average.
const RTT_SMOOTHING: f64 = 0.3;

/// Live health of one endpoint.
#[derive(Debug)]
pub struct EndpointHealth {
    up: AtomicBool,
    /// Moving average of successful probe RTTs in microseconds; 0 = none yet.
    probe_rtt_us: AtomicU64,
    /// When the endpoint last went down (unix ms); 0 = never. Kept for fail-open order.
    last_down_ms: AtomicU64,
}

impl Default for EndpointHealth {
    fn default() -> Self {
        // Optimistic until `fall` probes fail: a restart must not empty the answers.
        Self {
            up: AtomicBool::new(true),
            probe_rtt_us: AtomicU64::new(0),
            last_down_ms: AtomicU64::new(0),
        }
    }
}

impl EndpointHealth {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// When the endpoint last went down (unix ms), i.e. when it was last known good;
    /// 0 if it never went down.
    pub fn last_down_ms(&self) -> u64 {
        self.last_down_ms.load(Ordering::Relaxed)
    }

    /// Smoothed probe RTT in milliseconds, if any probe succeeded.
    pub fn probe_rtt_ms(&self) -> Option<f64> {
        match self.probe_rtt_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(us as f64 / 1000.0),
        }
    }

    fn record_rtt(&self, rtt: Duration) {
        let sample = (rtt.as_micros() as f64).max(1.0);
        let previous = self.probe_rtt_us.load(Ordering::Relaxed);
        let next = if previous == 0 {
            sample
        } else {
            previous as f64 * (1.0 - RTT_SMOOTHING) + sample * RTT_SMOOTHING
        };
        self.probe_rtt_us.store(next as u64, Ordering::Relaxed);
    }
}

/// Health by endpoint IP. Endpoints absent from the map are not checked.
pub type HealthMap = IpMap<Arc<EndpointHealth>>;

struct CheckTask {
    health: Arc<EndpointHealth>,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

/// Owns the probe tasks and the published health map.
pub struct HealthChecks {
    map: ArcSwap<HealthMap>,
    tasks: Mutex<HashMap<(IpAddr, HealthCheck), CheckTask>>,
    epoch: Arc<Epoch>,
    shutdown: CancellationToken,
}

impl HealthChecks {
    pub fn new(epoch: Arc<Epoch>, shutdown: CancellationToken) -> Self {
        Self {
            map: ArcSwap::from_pointee(HealthMap::default()),
            tasks: Mutex::new(HashMap::new()),
            epoch,
            shutdown,
        }
    }

    /// The current health map (lock-free).
    pub fn snapshot(&self) -> Guard<Arc<HealthMap>> {
        self.map.load()
    }

    /// Starts checks for endpoints new in `model`, stops those gone from it, and
    /// republishes the map. Must be called from inside a tokio runtime.
    pub fn reconcile(&self, model: &Model) {
        let mut wanted: HashMap<(IpAddr, HealthCheck), Box<str>> = HashMap::new();
        for zone in &model.zones {
            for endpoint in &zone.endpoints {
                if let Some(check) = &endpoint.health_check {
                    wanted
                        .entry((endpoint.ip, check.clone()))
                        .or_insert_with(|| zone.name.clone());
                }
            }
        }
        let mut tasks = self
            .tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tasks.retain(|key, task| {
            let keep = wanted.contains_key(key);
            if !keep {
                tracing::info!(endpoint = %key.0, "health check stopped: endpoint removed");
                task.cancel.cancel();
                task.handle.abort();
            }
            keep
        });
        for (key, zone) in wanted {
            if tasks.contains_key(&key) {
                continue;
            }
            let health = Arc::new(EndpointHealth::default());
            let cancel = self.shutdown.child_token();
            let handle = tokio::spawn(run_checks(
                key.0,
                key.1.clone(),
                zone,
                Arc::clone(&health),
                Arc::clone(&self.epoch),
                cancel.clone(),
            ));
            tasks.insert(
                key,
                CheckTask {
                    health,
                    cancel,
                    handle,
                },
            );
        }
        let map: HealthMap = tasks
            .iter()
            .map(|((ip, _), task)| (*ip, Arc::clone(&task.health)))
            .collect();
        self.map.store(Arc::new(map));
    }
}

impl Drop for HealthChecks {
    fn drop(&mut self) {
        let tasks = self
            .tasks
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for task in tasks.values() {
            task.handle.abort();
        }
    }
}

/// Counts consecutive results and says when the state flips.
#[derive(Debug, Clone, Copy)]
struct RiseFall {
    rise: u32,
    fall: u32,
    successes: u32,
    failures: u32,
}

impl RiseFall {
    fn new(spec: &HealthCheck) -> Self {
        Self {
            rise: spec.rise,
            fall: spec.fall,
            successes: 0,
            failures: 0,
        }
    }

    /// Feeds one probe result; returns the new state when it changes.
    fn observe(&mut self, up_now: bool, ok: bool) -> Option<bool> {
        if ok {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
            (!up_now && self.successes >= self.rise).then_some(true)
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
            (up_now && self.failures >= self.fall).then_some(false)
        }
    }
}

async fn run_checks(
    ip: IpAddr,
    spec: HealthCheck,
    zone: Box<str>,
    health: Arc<EndpointHealth>,
    epoch: Arc<Epoch>,
    cancel: CancellationToken,
) {
    let interval = spec.interval;
    let prober = match probe::Prober::new(ip, &spec) {
        Ok(prober) => prober,
        Err(error) => {
            tracing::error!(endpoint = %ip, %zone, %error, "cannot build health check; endpoint stays up");
            return;
        }
    };
    let endpoint = ip.to_string();
    let gauge =
        metrics::gauge!("httpdns_endpoint_up", "zone" => zone.to_string(), "endpoint" => endpoint);
    gauge.set(1.0);
    let mut state = RiseFall::new(&spec);
    let mut delay = interval.mul_f64(fastrand::f64());
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        let result = prober.probe().await;
        if let Ok(rtt) = result {
            health.record_rtt(rtt);
        }
        if let Some(up) = state.observe(health.is_up(), result.is_ok()) {
            health.up.store(up, Ordering::Relaxed);
            gauge.set(if up { 1.0 } else { 0.0 });
            epoch.bump();
            match &result {
                Ok(rtt) => {
                    tracing::info!(endpoint = %ip, %zone, rise = spec.rise, rtt_ms = rtt.as_secs_f64() * 1000.0, "endpoint up")
                }
                Err(reason) => {
                    health
                        .last_down_ms
                        .store(crate::epoch::now_ms(), Ordering::Relaxed);
                    tracing::warn!(endpoint = %ip, %zone, fall = spec.fall, ?reason, "endpoint down");
                }
            }
        }
        // ±10% jitter keeps checks of many endpoints from lining up.
        delay = interval.mul_f64(0.9 + 0.2 * fastrand::f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rise: u32, fall: u32) -> HealthCheck {
        HealthCheck {
            probe: crate::model::Probe::Tcp { port: 80 },
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            rise,
            fall,
        }
    }

    #[test]
    fn goes_down_after_fall_failures_and_up_after_rise_successes() {
        let mut s = RiseFall::new(&spec(2, 3));
        assert_eq!(s.observe(true, false), None);
        assert_eq!(s.observe(true, false), None);
        assert_eq!(s.observe(true, false), Some(false));
        assert_eq!(s.observe(false, true), None);
        assert_eq!(
            s.observe(false, false),
            None,
            "a failure resets the rise count"
        );
        assert_eq!(s.observe(false, true), None);
        assert_eq!(s.observe(false, true), Some(true));
    }

    #[test]
    fn a_success_resets_the_fall_count() {
        let mut s = RiseFall::new(&spec(1, 2));
        assert_eq!(s.observe(true, false), None);
        assert_eq!(s.observe(true, true), None);
        assert_eq!(s.observe(true, false), None);
        assert_eq!(s.observe(true, false), Some(false));
    }

    #[test]
    fn probe_rtt_is_a_moving_average() {
        let h = EndpointHealth::default();
        assert_eq!(h.probe_rtt_ms(), None);
        h.record_rtt(Duration::from_millis(10));
        assert_eq!(h.probe_rtt_ms(), Some(10.0));
        h.record_rtt(Duration::from_millis(20));
        assert!((h.probe_rtt_ms().unwrap() - 13.0).abs() < 0.01);
    }
}

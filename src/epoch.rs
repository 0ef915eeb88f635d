//! The steering epoch: a number that grows whenever answers may have changed.
//!
//! Clients cache answers for their TTL; the epoch tells them when to drop that cache
//! early (a reload, a drain, a health transition). It starts at the wall clock in
//! milliseconds so it keeps growing across restarts, and each bump is at least +1.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub struct Epoch(AtomicU64);

impl Default for Epoch {
    fn default() -> Self {
        Self(AtomicU64::new(now_ms()))
    }
}

impl Epoch {
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Moves the epoch forward and returns the new value.
    pub fn bump(&self) -> u64 {
        let now = now_ms();
        let previous = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |e| {
                Some(now.max(e + 1))
            })
            .unwrap_or_else(|e| e);
        now.max(previous + 1)
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bumps_always_grow() {
        let epoch = Epoch::default();
        let mut last = epoch.current();
        for _ in 0..1000 {
            let next = epoch.bump();
            assert!(next > last);
            assert_eq!(epoch.current(), next);
            last = next;
        }
    }
}

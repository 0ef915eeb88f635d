//! The one entry point every front (JSON `/resolve`, DoH, classic DNS) asks for answers.
//!
//! [`Resolver`] holds the published snapshot, the live state and the epoch, and turns
//! (client IP, host, families) into a scheduler [`Decision`]. Fronts parse their wire
//! format, call this, and render; none of them reaches into the scheduler or the live
//! tables themselves, so every door steers the same way.

use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::Guard;

use crate::epoch::Epoch;
use crate::geoip::Geo;
use crate::scheduler::{self, Decision, Families, NoLiveState, Query};
use crate::snapshot::{SharedSnapshot, Snapshot};

/// Shared by all fronts; cheap to clone.
#[derive(Clone)]
pub struct Resolver {
    snapshot: SharedSnapshot,
    epoch: Arc<Epoch>,
}

impl Resolver {
    pub fn new(snapshot: SharedSnapshot, epoch: Arc<Epoch>) -> Self {
        Self { snapshot, epoch }
    }

    /// The snapshot to serve one request from; hold it for the whole request so every
    /// host in a batch sees the same model.
    pub fn snapshot(&self) -> Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    pub fn shared_snapshot(&self) -> &SharedSnapshot {
        &self.snapshot
    }

    pub fn epoch(&self) -> &Epoch {
        &self.epoch
    }

    /// Decides the answer for `host` (normalised: lower case, no trailing dot), or
    /// `None` when no configured domain has that name.
    pub fn decide(
        &self,
        snapshot: &Snapshot,
        host: &str,
        geo: &Geo,
        client_ip: IpAddr,
        families: Families,
    ) -> Option<Decision> {
        let domain = snapshot.model.domain(host)?;
        let query = Query {
            domain,
            geo,
            client_ip,
            families,
            seed: fastrand::u64(..),
        };
        Some(scheduler::decide(
            &snapshot.model,
            &NoLiveState,
            &query,
            &snapshot.answer_limits(),
        ))
    }
}

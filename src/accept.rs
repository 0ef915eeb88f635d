//! Accepting TCP connections: the one loop every TCP listener runs, and its bounds.
//!
//! The public and admin HTTP listeners and DNS over TCP all accept the same way: stop
//! when the server shuts down, back off on accept errors (running out of file
//! descriptors must not become a busy loop), take a slot of the listener's global cap
//! *before* accepting (so excess clients wait in the kernel's queue, not in our
//! memory), and refuse a client network that already holds its own cap (IPv4 by
//! address, IPv6 by /64: one host there owns the whole /64). What happens on a
//! connection is the caller's.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Pause after a failed accept (EMFILE and the like) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How many connections a listener holds at once, in all and per client network.
pub struct ConnectionLimits {
    /// Listener name in logs and metrics.
    what: &'static str,
    global: Arc<Semaphore>,
    max_per_client: u32,
    per_client: Mutex<HashMap<IpAddr, u32>>,
}

impl ConnectionLimits {
    pub fn new(what: &'static str, max_connections: usize, max_per_client: u32) -> Arc<Self> {
        Arc::new(Self {
            what,
            global: Arc::new(Semaphore::new(max_connections.max(1))),
            max_per_client: max_per_client.max(1),
            per_client: Mutex::new(HashMap::new()),
        })
    }

    /// Claims a place for a connection from `peer`, or `None` when its network is full.
    fn claim(
        self: &Arc<Self>,
        peer: IpAddr,
        global: OwnedSemaphorePermit,
    ) -> Option<ConnectionSlot> {
        let key = client_network(peer);
        let mut counts = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(key).or_insert(0);
        if *count >= self.max_per_client {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            limits: Some(Arc::clone(self)),
            key,
            _global: Some(global),
        })
    }

    fn release(&self, key: IpAddr) {
        let mut counts = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&key);
            }
        }
    }

    /// Connections held now by `peer`'s network (for tests and the admin view).
    pub fn held_by(&self, peer: IpAddr) -> u32 {
        let counts = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        counts.get(&client_network(peer)).copied().unwrap_or(0)
    }
}

/// The unit one client is counted by: an IPv4 address, or an IPv6 /64.
pub fn client_network(ip: IpAddr) -> IpAddr {
    crate::model::network_of(ip.to_canonical(), 32, 64)
}

/// A connection's claim on its listener's capacity; released when dropped.
pub struct ConnectionSlot {
    limits: Option<Arc<ConnectionLimits>>,
    key: IpAddr,
    _global: Option<OwnedSemaphorePermit>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Some(limits) = &self.limits {
            limits.release(self.key);
        }
    }
}

/// Accepts connections on `listener` until `shutdown`, handing each to `on_connection`
/// (which should spawn: the loop waits for nothing else) with its slot, to be held for
/// as long as the connection lives.
pub async fn accept_loop<F>(
    listener: TcpListener,
    limits: Arc<ConnectionLimits>,
    shutdown: CancellationToken,
    mut on_connection: F,
) where
    F: FnMut(TcpStream, SocketAddr, ConnectionSlot),
{
    let what = limits.what;
    let refused = metrics::counter!("httpdns_connections_refused_total", "listener" => what);
    loop {
        let global = tokio::select! {
            () = shutdown.cancelled() => return,
            permit = Arc::clone(&limits.global).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => match limits.claim(peer.ip(), global) {
                Some(slot) => on_connection(stream, peer, slot),
                None => {
                    // Closing at once frees the descriptor; the client's other
                    // connections keep working.
                    refused.increment(1);
                    tracing::debug!(%peer, listener = what, "client network at its connection cap; closing");
                    drop(stream);
                }
            },
            Err(error) => {
                tracing::warn!(%error, listener = what, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_count_by_slash_64_and_mapped_ipv4_by_address() {
        assert_eq!(
            client_network(ip("2001:db8:1:2:3:4:5:6")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(client_network(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }

    #[tokio::test]
    async fn a_client_network_is_refused_at_its_cap_and_released_on_drop() {
        let limits = ConnectionLimits::new("test", 10, 2);
        let permit = || Arc::clone(&limits.global).try_acquire_owned().unwrap();
        let a = limits.claim(ip("2001:db8::1"), permit()).unwrap();
        let _b = limits.claim(ip("2001:db8::2"), permit()).unwrap();
        assert!(
            limits.claim(ip("2001:db8::3"), permit()).is_none(),
            "same /64"
        );
        assert!(
            limits.claim(ip("2001:db8:0:1::1"), permit()).is_some(),
            "another /64"
        );
        drop(a);
        assert_eq!(limits.held_by(ip("2001:db8::9")), 1);
        assert!(limits.claim(ip("2001:db8::3"), permit()).is_some());
    }
}

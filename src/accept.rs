//! Accepting TCP connections: the one loop every TCP listener runs.
//!
//! The public and admin HTTP listeners and DNS over TCP all accept the same way: stop
//! when the server shuts down, back off on accept errors (running out of file
//! descriptors must not become a busy loop), and, where the listener bounds its
//! connections, take a slot *before* accepting so excess clients wait in the kernel's
//! queue instead of in our memory. What happens on a connection is the caller's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Pause after a failed accept (EMFILE and the like) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A connection's claim on a bounded listener's capacity; released when dropped.
pub type ConnectionSlot = Option<OwnedSemaphorePermit>;

/// Accepts connections on `listener` until `shutdown`, handing each to `on_connection`
/// (which should spawn: the loop waits for nothing else). With `slots`, at most that
/// many connections are held at once.
pub async fn accept_loop<F>(
    listener: TcpListener,
    slots: Option<Arc<Semaphore>>,
    shutdown: CancellationToken,
    what: &'static str,
    mut on_connection: F,
) where
    F: FnMut(TcpStream, SocketAddr, ConnectionSlot),
{
    loop {
        let slot = match &slots {
            None => None,
            Some(slots) => tokio::select! {
                () = shutdown.cancelled() => return,
                slot = Arc::clone(slots).acquire_owned() => match slot {
                    Ok(slot) => Some(slot),
                    Err(_) => return,
                },
            },
        };
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => on_connection(stream, peer, slot),
            Err(error) => {
                tracing::warn!(%error, listener = what, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

//! Classic DNS over UDP: one socket per worker thread, datagrams in and out in batches.
//!
//! Each worker owns a socket bound with `SO_REUSEPORT` to the one DNS address, so the
//! kernel spreads clients over the workers and no two threads share a receive queue.
//! A worker is a plain thread, not a task: it blocks in `recvmmsg` (waking for the
//! first datagram and taking every other one already queued, up to [`BATCH`]),
//! answers them all through [`DnsHandler`] and sends the answers with one `sendmmsg`.
//! Under load that is two system calls per batch instead of two (plus an epoll round)
//! per query, which is where a UDP DNS server spends most of its time. Receive and send
//! buffers are the worker's own, reused for every batch: the handler writes each answer
//! into one. The socket's receive timeout bounds how long a worker takes to notice
//! shutdown.

use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, MultiHeaders, SockFlag, SockType, SockaddrStorage,
    bind, recvmmsg, sendmmsg, setsockopt, socket, sockopt,
};
use tokio_util::sync::CancellationToken;

use super::handler::{DnsHandler, Transport};
use super::rrl::{ResponseRateLimit, Verdict};

/// Datagrams taken (and answered) per system call.
pub const BATCH: usize = 32;
/// Receive buffer per datagram: larger than any query worth answering; longer datagrams
/// are cut and then answered FORMERR.
const RECV_BYTES: usize = 4096;
/// Room reserved per answer: our largest UDP answer (`dns.udp_max_payload` is at most
/// 4096) never grows the buffer.
const SEND_BYTES: usize = 4096;
/// How long an idle worker blocks before it looks at the shutdown token again.
const SHUTDOWN_POLL: Duration = Duration::from_millis(100);

/// A UDP socket on `addr` that other sockets of this process may share
/// (`SO_REUSEPORT`): one per worker.
pub fn bind_shared(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd: OwnedFd = socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::ReusePort, &true)?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    let socket = UdpSocket::from(fd);
    socket.set_read_timeout(Some(SHUTDOWN_POLL))?;
    Ok(socket)
}

/// Serves `socket` on this thread until `shutdown`.
pub fn serve(
    socket: UdpSocket,
    handler: DnsHandler,
    rrl: Arc<ResponseRateLimit>,
    shutdown: CancellationToken,
) {
    let fd = socket.as_raw_fd();
    let mut buffers = vec![[0u8; RECV_BYTES]; BATCH];
    let mut received: Vec<(usize, SocketAddr)> = Vec::with_capacity(BATCH);
    // One batch's answers: the first `peers.len()` of `answers`, each to its peer.
    let mut answers: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(SEND_BYTES)).collect();
    let mut peers: Vec<SocketAddr> = Vec::with_capacity(BATCH);
    let mut recv_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut send_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    while !shutdown.is_cancelled() {
        received.clear();
        {
            let mut slices: Vec<[IoSliceMut<'_>; 1]> = buffers
                .iter_mut()
                .map(|buffer| [IoSliceMut::new(buffer)])
                .collect();
            match recvmmsg(
                fd,
                &mut recv_headers,
                slices.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(messages) => received
                    .extend(messages.filter_map(|m| Some((m.bytes, socket_addr(m.address?)?)))),
                // The receive timeout (time to look at the shutdown token) or a signal.
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                // ICMP errors from earlier sends surface here; they concern one client.
                Err(error) => {
                    tracing::debug!(%error, "UDP receive failed");
                    continue;
                }
            }
        }
        peers.clear();
        for (i, &(len, peer)) in received.iter().enumerate() {
            let transport = match rrl.verdict(peer.ip()) {
                Verdict::Drop => continue,
                Verdict::Slip => Transport::UdpSlip,
                Verdict::Answer => Transport::Udp,
            };
            let out = &mut answers[peers.len()];
            if handler
                .respond(&buffers[i][..len], peer.ip(), transport, out)
                .is_some()
            {
                peers.push(peer);
            }
        }
        send_all(fd, &mut send_headers, &answers[..peers.len()], &peers);
    }
}

/// Sends every answer to its peer (`answers` and `peers` pair up by index), in as few
/// system calls as the kernel allows. An answer the kernel refuses (e.g. an unreachable
/// client) is dropped; the rest still go out.
fn send_all(
    fd: i32,
    headers: &mut MultiHeaders<SockaddrStorage>,
    answers: &[Vec<u8>],
    peers: &[SocketAddr],
) {
    let mut sent_before = 0;
    while sent_before < peers.len() {
        let pending = &peers[sent_before..];
        let slices: Vec<[std::io::IoSlice<'_>; 1]> = answers[sent_before..]
            .iter()
            .map(|bytes| [std::io::IoSlice::new(bytes)])
            .collect();
        let addresses: Vec<Option<SockaddrStorage>> = pending
            .iter()
            .map(|peer| Some(SockaddrStorage::from(*peer)))
            .collect();
        let no_control: [ControlMessage<'_>; 0] = [];
        let sent = match sendmmsg(
            fd,
            headers,
            &slices,
            &addresses,
            no_control,
            MsgFlags::empty(),
        ) {
            Ok(results) => results.count(),
            Err(Errno::EINTR) => continue,
            Err(error) => {
                tracing::debug!(%error, peer = %pending[0], "UDP send failed");
                1
            }
        };
        sent_before += sent.clamp(1, pending.len());
    }
}

fn socket_addr(address: SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    address
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}

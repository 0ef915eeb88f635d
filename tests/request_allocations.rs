//! What a cached `/resolve` answer over a keep-alive HTTP/1.1 connection allocates, in
//! the whole process, per request: a count that regressions in the hot path (a new
//! owned string, a vector collected per answer) move by whole units, where a timing
//! would not see them through the noise.

mod common;

mod counting;

use std::io::{Read, Write};
use std::net::TcpStream;

use counting::process_allocations;

/// Every allocation of every thread: the server's and the client's (which allocates
/// nothing per request).
#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// Allocations per `/resolve` request, as measured on the example config (12 before the
/// epoch header was cached per thread and the fallback tiers collected inline): the
/// answer's JSON buffer, the body made of it (bytes and box), the response's header
/// map, and hyper's own per request (reading and splitting the request head, writing
/// the response). A change that adds one fails here; one that removes one should lower
/// this.
const MOST_PER_REQUEST: u64 = 9;

const REQUEST: &[u8] =
    b"GET /resolve?host=api.example.com&ip=202.96.128.86 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// Sends one request and reads its whole response into `buffer` without allocating
/// (the client shares the process's count).
fn ask(stream: &mut TcpStream, buffer: &mut [u8; 8192]) -> usize {
    stream.write_all(REQUEST).unwrap();
    let mut filled = 0;
    loop {
        let read = stream.read(&mut buffer[filled..]).unwrap();
        assert!(read > 0, "connection closed");
        filled += read;
        let Some(head_end) = buffer[..filled].windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = &buffer[..head_end];
        assert!(head.starts_with(b"HTTP/1.1 200"), "not a 200 answer");
        let length = head
            .split(|&b| b == b'\n')
            .find_map(|line| {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let value = line
                    .strip_prefix(b"content-length: ")
                    .or_else(|| line.strip_prefix(b"Content-Length: "))?;
                value.iter().try_fold(0usize, |n, &d| {
                    d.is_ascii_digit().then(|| n * 10 + usize::from(d - b'0'))
                })
            })
            .expect("a content-length");
        if filled >= head_end + 4 + length {
            return length;
        }
    }
}

#[test]
fn a_cached_resolve_answer_allocates_a_handful_of_times() {
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let running = common::start_example().await;
            address_tx.send(running.server.public_addr).unwrap();
            let _ = stop_rx.await;
        });
    });
    let address = address_rx.recv().unwrap();
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut buffer = [0u8; 8192];

    // The first answers make the plan, the geo entry, the metric series.
    for _ in 0..200 {
        ask(&mut stream, &mut buffer);
    }
    const REQUESTS: u64 = 2_000;
    let before = process_allocations();
    for _ in 0..REQUESTS {
        assert!(ask(&mut stream, &mut buffer) > 100);
    }
    let allocations = process_allocations() - before;
    let _ = stop_tx.send(());
    server.join().unwrap();

    let per_request = allocations as f64 / REQUESTS as f64;
    eprintln!("{allocations} allocations for {REQUESTS} requests: {per_request:.2} each");
    // The server's timers (metrics upkeep on the blocking pool) add a few in all, more
    // on a slow machine; one more per request would add 2,000.
    assert!(
        allocations <= MOST_PER_REQUEST * REQUESTS + 1_000,
        "{per_request:.2} allocations per request, at most {MOST_PER_REQUEST} expected"
    );
}

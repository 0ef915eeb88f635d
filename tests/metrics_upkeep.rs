//! Request-latency samples do not pile up in a server nobody scrapes: the Prometheus
//! exporter keeps every histogram sample until it is drained, and the server's upkeep
//! task ([`httpdns::metrics::spawn_upkeep`]) drains them on a timer.

mod counting;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use counting::live_bytes;
use httpdns::metrics::{RouteMetrics, spawn_upkeep};
use tokio_util::sync::CancellationToken;

/// Live bytes of the whole process: samples are recorded on the test thread and freed
/// on the runtime's.
#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

const SAMPLES: isize = 400_000;

#[test]
fn recorded_latencies_are_drained_without_a_scrape() {
    httpdns::metrics::install().expect("the recorder installs");
    let route = RouteMetrics::new("/upkeep-test");
    route.record(StatusCode::OK, Duration::from_micros(3)); // registers the status counter

    let before = live_bytes();
    for _ in 0..SAMPLES {
        route.record(StatusCode::OK, Duration::from_micros(3));
    }
    let kept = live_bytes() - before;
    // Without upkeep the exporter holds every sample (8 bytes each, and its blocks):
    // this is what grew a busy, unscraped server without bound.
    assert!(
        kept >= 8 * SAMPLES,
        "{SAMPLES} samples kept only {kept} bytes: the exporter no longer buffers samples, and this test measures nothing"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let shutdown = CancellationToken::new();
    let upkeep = {
        let _context = runtime.enter();
        spawn_upkeep(Duration::from_millis(20), shutdown.clone())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    // Drained: a tenth of it is left for the runtime and the buckets themselves.
    while live_bytes() - before > kept / 10 {
        assert!(
            Instant::now() < deadline,
            "upkeep never drained the samples: {} bytes still held",
            live_bytes() - before
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    // It keeps draining what comes later, and stops with the server.
    let before = live_bytes();
    for _ in 0..SAMPLES {
        route.record(StatusCode::OK, Duration::from_micros(3));
    }
    while live_bytes() - before > kept / 10 {
        assert!(Instant::now() < deadline, "later samples were not drained");
        std::thread::sleep(Duration::from_millis(5));
    }
    shutdown.cancel();
    runtime
        .block_on(upkeep)
        .expect("the upkeep task ends cleanly");
}

//! A Prometheus scrape does not stop the server answering: formatting every series (one
//! per domain answered, so hundreds of thousands on a large install) runs on the
//! blocking pool, not on the thread that serves requests. The test runs on a
//! current-thread runtime, like a server on one CPU: if the scrape rendered there, no
//! request could be answered between the scrape's start and its response.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Enough series that rendering takes far longer than a `/healthz` round trip.
const SERIES: usize = 200_000;

#[tokio::test]
async fn requests_are_answered_while_a_scrape_renders() {
    let running = common::start_example().await;
    for i in 0..SERIES {
        metrics::counter!("httpdns_scrape_test_total", "series" => i.to_string()).increment(1);
    }

    let headers_arrived = Arc::new(AtomicBool::new(false));
    let scrape = {
        let request = running
            .client
            .get(running.admin_url("/metrics"))
            .bearer_auth(common::ADMIN_TOKEN);
        let headers_arrived = Arc::clone(&headers_arrived);
        tokio::spawn(async move {
            let response = request.send().await.expect("scrape");
            headers_arrived.store(true, Ordering::SeqCst);
            assert_eq!(response.status(), 200);
            response.text().await.expect("scrape body")
        })
    };

    let mut answered_meanwhile = 0;
    while !headers_arrived.load(Ordering::SeqCst) {
        let status = running
            .client
            .get(running.url("/healthz"))
            .send()
            .await
            .expect("healthz")
            .status();
        assert_eq!(status, 200);
        answered_meanwhile += 1;
    }
    let text = scrape.await.expect("scrape task");
    assert!(
        text.contains(&format!("series=\"{}\"", SERIES - 1)),
        "the scrape holds every series"
    );
    // Rendering 200,000 series takes hundreds of round trips' time; a render on the
    // serving thread lets through only what was answered before it began (a few).
    assert!(
        answered_meanwhile >= 20,
        "only {answered_meanwhile} requests answered while the scrape rendered"
    );
}

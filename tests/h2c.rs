//! HTTP/2 with prior knowledge (h2c) on the public listener: many streams of one
//! connection in flight at once, as a mobile SDK's pooled connection sends them, each
//! answered whole and in the JSON shape. The listener writes answers of several
//! streams in one write (its stream is not vectored, so h2 buffers the frames); this
//! checks that nothing is lost or mixed up when it does, and that a stream still
//! waiting for its request body holds up none of the others.

mod common;

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Bytes;
use serde_json::Value;

#[tokio::test]
async fn many_streams_on_one_connection_each_get_their_own_answer() {
    let s = common::start_example().await;
    let sender = common::h2c_connect(s.server.public_addr).await;
    // Hosts with answers of different sizes (a found host, an unknown one, a batch),
    // so answers above and below h2's 256-byte chaining threshold share the buffer.
    let paths = [
        "/resolve?host=api.example.com&ip=202.96.128.86",
        "/resolve?host=nope.example.com&ip=202.96.128.86",
        "/resolve?host=api.example.com,img.example.com&ip=1.2.3.4",
        "/healthz",
    ];
    let mut streams = tokio::task::JoinSet::new();
    for n in 0..200 {
        let path = paths[n % paths.len()];
        let mut sender = sender.clone();
        let uri = format!("http://{}{path}", s.server.public_addr);
        streams.spawn(async move {
            let request = Request::get(uri).body(Empty::<Bytes>::new()).unwrap();
            let response = sender.send_request(request).await.unwrap();
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (
                path,
                status,
                serde_json::from_slice::<Value>(&body).unwrap(),
            )
        });
    }
    let mut answered = 0;
    let deadline = Duration::from_secs(30);
    while let Some(joined) = tokio::time::timeout(deadline, streams.join_next())
        .await
        .expect("every stream answered in time")
    {
        let (path, status, body) = joined.unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        match path {
            "/healthz" => assert_eq!(body["status"], "ok"),
            _ if path.contains("nope.") => {
                assert_eq!(body["answers"][0]["error"], "unknown_host", "{body}")
            }
            _ if path.contains("img.") => {
                assert_eq!(body["answers"].as_array().unwrap().len(), 2, "{body}");
                assert_eq!(body["client_ip"], "1.2.3.4");
            }
            _ => {
                assert_eq!(body["answers"][0]["zone"], "gz-telecom", "{body}");
                assert_eq!(body["client_ip"], "202.96.128.86");
            }
        }
        answered += 1;
    }
    assert_eq!(answered, 200);
}

/// A request body that arrives only when the test releases it.
struct HeldBody {
    release: Option<tokio::sync::oneshot::Receiver<Bytes>>,
}

impl http_body::Body for HeldBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        use std::future::Future;
        let Some(release) = self.release.as_mut() else {
            return std::task::Poll::Ready(None);
        };
        let polled = std::pin::Pin::new(release).poll(cx);
        match polled {
            std::task::Poll::Pending => std::task::Poll::Pending,
            std::task::Poll::Ready(body) => {
                self.release = None;
                std::task::Poll::Ready(body.ok().map(|bytes| Ok(http_body::Frame::data(bytes))))
            }
        }
    }
}

#[tokio::test]
async fn a_stream_waiting_for_its_body_holds_up_no_other_stream_and_is_answered_later() {
    let s = common::start_example().await;
    let sender = common::h2c_connect(s.server.public_addr).await;
    let base = format!("http://{}", s.server.public_addr);

    // The report's head goes out now, its body only when released: the server cannot
    // finish that stream yet and must go on serving the connection's other streams.
    let (release, held) = tokio::sync::oneshot::channel();
    let report = Request::post(format!("{base}/report"))
        .header("content-type", "application/json")
        .header("x-forwarded-for", "202.96.128.86")
        .body(
            HeldBody {
                release: Some(held),
            }
            .boxed(),
        )
        .unwrap();
    let mut report_sender = sender.clone();
    let report = tokio::spawn(async move {
        let response = report_sender.send_request(report).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice::<Value>(&body).unwrap())
    });

    for _ in 0..20 {
        let request = Request::get(format!(
            "{base}/resolve?host=api.example.com&ip=202.96.128.86"
        ))
        .body(
            Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed(),
        )
        .unwrap();
        let response = tokio::time::timeout(
            Duration::from_secs(10),
            sender.clone().send_request(request),
        )
        .await
        .expect("answered while the report waits for its body")
        .unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["answers"][0]["zone"], "gz-telecom", "{body}");
    }
    assert!(!report.is_finished(), "no answer before its body");

    let body = serde_json::json!({"host": "api.example.com", "reports": [
        {"ip": "203.0.113.10", "rtt_ms": 23, "ok": true},
        {"ip": "203.0.113.11", "ok": false}]});
    release.send(Bytes::from(body.to_string())).unwrap();
    let (status, answer) = tokio::time::timeout(Duration::from_secs(10), report)
        .await
        .expect("the report answered once its body came")
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, serde_json::json!({"accepted": 2}));
}

//! HTTP/2 with prior knowledge (h2c) on the public listener: many streams of one
//! connection in flight at once, as a mobile SDK's pooled connection sends them, each
//! answered whole and in the JSON shape. The listener writes answers of several
//! streams in one write (its stream is not vectored, so h2 buffers the frames); this
//! checks that nothing is lost or mixed up when it does.

mod common;

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;

#[tokio::test]
async fn many_streams_on_one_connection_each_get_their_own_answer() {
    let s = common::start_example().await;
    let tcp = tokio::net::TcpStream::connect(s.server.public_addr)
        .await
        .unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
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

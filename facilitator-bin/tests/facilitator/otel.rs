//! With the `otel` feature and `[log] otlp_endpoint`, spans of verify and settle reach an OTLP/HTTP
//! collector (a local one here) and are flushed at shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use crate::common::{config, post, start};
use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post as post_route;
use x402_evm::assets::TransferMethod;
use x402_tests::evm::exact::ExactHarness;
use x402_tests::wait;

type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

async fn collector() -> (String, Received) {
    let received: Received = Arc::default();
    let sink = received.clone();
    let router = Router::new().route(
        "/v1/traces",
        post_route(move |headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                let kind = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                sink.lock().unwrap().push((kind, body.to_vec()));
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, received)
}

#[tokio::test]
async fn verify_and_settle_spans_reach_the_collector() {
    let (endpoint, received) = collector().await;
    let h = ExactHarness::start().await;
    let (text, envs) = config(&h);
    // A table of its own, after the top-level keys (`auth`, …) and before the next table.
    let text = text.replacen(
        "[store]",
        &format!("[log]\notlp_endpoint = \"{endpoint}\"\n[store]"),
        1,
    );
    let mut server = start(&text, &envs);
    let buyer = h.bed.buyer(0).signer.clone();
    let req = h.requirements("0.01", TransferMethod::Eip3009).await;
    let body = serde_json::to_vec(&h.pay_v2(&buyer, &req).await).unwrap();
    let (_, v) = post(&server.url, "/verify", body.clone()).await;
    assert_eq!(v["isValid"], true, "{v}");
    let (_, s) = post(&server.url, "/settle", body).await;
    assert_eq!(s["success"], true, "{s}");
    // Shutdown flushes the batch.
    let pid = server.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let exit = tokio::task::spawn_blocking(move || server.child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    // The collector may still be handling the last export: wait until the spans are in (the
    // assertions below say what is missing if they never come).
    let exported = |received: &Received| -> Vec<u8> {
        let got = received.lock().unwrap();
        got.iter().flat_map(|(_, b)| b.iter().copied()).collect()
    };
    let has = |all: &[u8], needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    wait::poll(wait::HANG_GUARD, || async {
        let all = exported(&received);
        [&b"x402.verify"[..], b"x402.settle", b"x402-facilitator"]
            .iter()
            .all(|needle| has(&all, needle))
    })
    .await;
    let got = received.lock().unwrap().clone();
    assert!(!got.is_empty(), "no OTLP export arrived");
    assert!(
        got.iter().all(|(kind, _)| kind.contains("protobuf")),
        "{got:?}"
    );
    let all: Vec<u8> = got.into_iter().flat_map(|(_, b)| b).collect();
    let contains = |needle: &[u8]| has(&all, needle);
    assert!(contains(b"x402.verify"), "no verify span");
    assert!(contains(b"x402.settle"), "no settle span");
    assert!(contains(b"x402-facilitator"), "no service name");
}

//! The HTTP facilitator client against a real local HTTP server (axum on port 0).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use x402_core::client::FacilitatorClient;
use x402_core::wire::VerifyRequest;
use x402_core::{Facilitator, FacilitatorError, Reason};

const REQ: &str = r#"{"x402Version":2,"paymentPayload":{"x402Version":2,"accepted":{"scheme":"exact","network":"eip155:1","amount":"1","asset":"a","payTo":"b","maxTimeoutSeconds":5},"payload":{}},"paymentRequirements":{"scheme":"exact","network":"eip155:1","amount":"1","asset":"a","payTo":"b","maxTimeoutSeconds":5}}"#;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn request() -> VerifyRequest {
    VerifyRequest::from_json(REQ.as_bytes(), x402_core::json::JsonLimits::DEFAULT).unwrap()
}

#[tokio::test]
async fn reads_reasons_whatever_the_status() {
    let router = Router::new()
        .route(
            "/verify",
            post(|| async {
                (
                    StatusCode::BAD_REQUEST,
                    r#"{"isValid":false,"invalidReason":"invalid_exact_evm_signature","payer":"0xp"}"#,
                )
            }),
        )
        .route(
            "/settle",
            post(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"success":false,"errorReason":"some_future_reason","transaction":"","network":"eip155:1"}"#,
                )
            }),
        )
        .route(
            "/supported",
            get(|| async { r#"{"kinds":[{"x402Version":2,"scheme":"exact","network":"eip155:1"}]}"# }),
        );
    let client = FacilitatorClient::new(serve(router).await);
    let v = client.verify(&request()).await.unwrap();
    assert!(!v.is_valid);
    assert_eq!(
        v.invalid_reason,
        Some(Reason::from_wire("invalid_exact_evm_signature"))
    );
    let s = client.settle(&request()).await.unwrap();
    assert_eq!(
        s.error_reason,
        Some(Reason::from_wire("some_future_reason"))
    );
    assert_eq!(client.supported().await.unwrap().kinds.len(), 1);
}

#[tokio::test]
async fn non_api_bodies_and_timeouts_are_errors() {
    let router = Router::new()
        .route(
            "/verify",
            post(|| async { (StatusCode::BAD_GATEWAY, "<html>oops</html>") }),
        )
        .route(
            "/settle",
            post(|| async {
                // A facilitator slower than the client's timeout, on purpose.
                tokio::time::sleep(Duration::from_secs(5)).await;
                "{}"
            }),
        );
    let client =
        FacilitatorClient::new(serve(router).await).with_timeout(Duration::from_millis(300));
    match client.verify(&request()).await {
        Err(FacilitatorError::Http { status, body }) => {
            assert_eq!(status, 502);
            assert!(body.contains("oops"));
        }
        other => panic!("{other:?}"),
    }
    match client.settle(&request()).await {
        Err(FacilitatorError::Transport(m)) => assert!(m.contains("timed out"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Unreachable facilitator: a transport error that does not echo the URL.
    let gone = FacilitatorClient::new("http://127.0.0.1:9/secret-token")
        .with_timeout(Duration::from_millis(500));
    let err = gone.verify(&request()).await.unwrap_err();
    assert!(!err.to_string().contains("secret-token"), "{err}");
}

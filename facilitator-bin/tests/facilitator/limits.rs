//! The server's concurrency limits on the built binary against anvil: settles beyond
//! `[limits] max_settles_in_flight` are 503 with `Retry-After` and nothing is claimed or sent; one
//! client's requests beyond `per_client_concurrency` are 429 with `Retry-After`, other clients
//! unaffected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::net::{IpAddr, Ipv4Addr};

use alloy::primitives::{Address, U256};
use tokio::io::AsyncWriteExt as _;
use x402_evm::assets::TransferMethod;
use x402_tests::evm::exact::ExactHarness;
use x402_tests::wait;

use crate::common::{get, post};
use crate::slow::{addr, start_limited};

/// What must not move when a settle is refused: the facilitator's nonce (pending included:
/// nothing was even sent) and the buyer's and the seller's USDC.
async fn snapshot(h: &ExactHarness, buyer: Address) -> (u64, U256, U256) {
    (
        h.nonce_of(h.bed.facilitator().address, true).await,
        h.usdc(buyer).await,
        h.usdc(h.bed.seller().address).await,
    )
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Posts `body` to `url` + `path` from the local address `from`.
async fn post_from(from: IpAddr, url: &str, path: &str, body: &[u8]) -> reqwest::Response {
    reqwest::Client::builder()
        .local_address(from)
        .build()
        .unwrap()
        .post(format!("{url}{path}"))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_full_settle_queue_answers_503_and_sends_nothing() {
    let h = ExactHarness::start().await;
    let server = start_limited(&h, "max_settles_in_flight = 1");
    let req = h.requirements("0.01", TransferMethod::Eip3009).await;
    let (first_buyer, second_buyer) =
        (h.bed.buyer(1).signer.clone(), h.bed.buyer(2).signer.clone());
    let first = serde_json::to_vec(&h.pay_v2(&first_buyer, &req).await).unwrap();
    let second = serde_json::to_vec(&h.pay_v2(&second_buyer, &req).await).unwrap();

    // Hold the first settle in its receipt wait.
    h.set_automine(false).await;
    let url = server.url.clone();
    let held = tokio::spawn(async move { post(&url, "/settle", first).await });
    let signer = h.bed.facilitator().address;
    wait::until(
        "the first settle's transaction is in the pool",
        wait::HANG_GUARD,
        || async { h.nonce_of(signer, true).await > h.nonce_of(signer, false).await },
    )
    .await;
    let before = snapshot(&h, second_buyer.address()).await;

    let response = post_from(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        &server.url,
        "/settle",
        &second,
    )
    .await;
    assert_eq!(response.status().as_u16(), 503);
    assert!(retry_after(&response) >= 1);
    let v: serde_json::Value = response.json().await.unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("nothing was settled"),
        "{v}"
    );
    assert!(v.get("success").is_none(), "no verdict: {v}");
    assert_eq!(
        snapshot(&h, second_buyer.address()).await,
        before,
        "the refused settle moved something"
    );
    let (_, metrics) = get(&server.url, "/metrics").await;
    for needle in [
        r#"x402_limit_refusals_total{route="settle",cause="settles_in_flight"} 1"#,
        "x402_settles_in_flight 1",
    ] {
        assert!(metrics.contains(needle), "missing {needle}\n{metrics}");
    }

    h.mine().await;
    h.set_automine(true).await;
    let (status, s) = held.await.unwrap();
    assert_eq!(
        (status, &s["success"]),
        (200, &serde_json::json!(true)),
        "{s}"
    );
    // Nothing was claimed for the refused payment: it settles now that the place is free.
    let (status, s) = post(&server.url, "/settle", second).await;
    assert_eq!(
        (status, &s["success"]),
        (200, &serde_json::json!(true)),
        "{s}"
    );
    assert_eq!(
        h.usdc(second_buyer.address()).await,
        before.1 - U256::from(10_000)
    );
}

#[tokio::test]
async fn a_client_over_its_concurrency_gets_429_and_others_are_served() {
    let h = ExactHarness::start().await;
    let server = start_limited(
        &h,
        "per_client_concurrency = 1\nbody_read_timeout_ms = 120000",
    );
    let req = h.requirements("0.01", TransferMethod::Eip3009).await;
    let buyer = h.bed.buyer(3).signer.clone();
    let payment = serde_json::to_vec(&h.pay_v2(&buyer, &req).await).unwrap();
    let (me, other) = (
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
    );

    // A request from 127.0.0.1 whose body never comes holds that client's one place.
    let mut holder = tokio::net::TcpStream::connect(addr(&server)).await.unwrap();
    holder
        .write_all(
            b"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 10\r\n\r\n{",
        )
        .await
        .unwrap();
    wait::until("the held request takes the place", wait::HANG_GUARD, || {
        let (url, payment) = (server.url.clone(), payment.clone());
        async move { post_from(me, &url, "/verify", &payment).await.status() == 429 }
    })
    .await;
    let before = snapshot(&h, buyer.address()).await;
    let response = post_from(me, &server.url, "/settle", &payment).await;
    assert_eq!(response.status().as_u16(), 429);
    assert!(retry_after(&response) >= 1);
    let v: serde_json::Value = response.json().await.unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("per_client_concurrency"),
        "{v}"
    );
    assert_eq!(
        snapshot(&h, buyer.address()).await,
        before,
        "the refused settle moved something"
    );
    // Another client address is not affected.
    let response = post_from(other, &server.url, "/verify", &payment).await;
    assert_eq!(response.status().as_u16(), 200);
    let v: serde_json::Value = response.json().await.unwrap();
    assert_eq!(v["isValid"], true, "{v}");
    let (_, metrics) = get(&server.url, "/metrics").await;
    let needle = r#"x402_limit_refusals_total{route="settle",cause="client_concurrency"} 1"#;
    assert!(metrics.contains(needle), "missing {needle}\n{metrics}");

    // The held request ends (its client goes away): the place is free again.
    drop(holder);
    wait::until("the place is free again", wait::HANG_GUARD, || {
        let (url, payment) = (server.url.clone(), payment.clone());
        async move { post_from(me, &url, "/verify", &payment).await.status() == 200 }
    })
    .await;
    let (status, s) = post(&server.url, "/settle", payment).await;
    assert_eq!(
        (status, &s["success"]),
        (200, &serde_json::json!(true)),
        "{s}"
    );
    assert_eq!(h.usdc(buyer.address()).await, before.1 - U256::from(10_000));
}

//! Settlement state that survives the process: the binary killed (`SIGKILL`) between broadcast
//! and receipt, restarted on the same store, answers the payment's next settle with the original
//! transaction — never a second one (issue #11; threat-model R10, S81).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use alloy::primitives::U256;
use alloy::providers::Provider;
use x402_evm::assets::TransferMethod;
use x402_tests::evm::exact::ExactHarness;
use x402_tests::wait;

use crate::common::{config, post, start};

/// Kills the server that broadcast a settlement before its receipt, restarts it on `text` (the
/// same store), mines, and checks the payment settles once with the original transaction.
pub(crate) async fn crash_between_broadcast_and_receipt(
    h: &ExactHarness,
    text: &str,
    envs: &[(&str, String)],
) {
    let mut first = start(text, envs);
    let buyer = h.bed.buyer(0).signer.clone();
    let seller = h.bed.seller().address;
    let signer = h.bed.facilitator().address;
    let req = h.requirements("0.01", TransferMethod::Eip3009).await;
    let body = serde_json::to_vec(&h.pay_v2(&buyer, &req).await).unwrap();
    let (b0, s0) = (h.usdc(buyer.address()).await, h.usdc(seller).await);
    let n0 = h.nonce_of(signer, false).await;

    h.set_automine(false).await;
    let url = first.url.clone();
    let request = body.clone();
    let in_flight = tokio::spawn(async move { post(&url, "/settle", request).await });
    wait::until("the settlement is broadcast", wait::HANG_GUARD, || async {
        h.nonce_of(signer, true).await == n0 + 1
    })
    .await;
    // Broadcast, not mined, not answered: the process dies.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    in_flight.abort();

    let second = start(text, envs);
    // The record survived: still unresolved, the payment does not verify again.
    let (status, v) = post(&second.url, "/verify", body.clone()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["invalidReason"], "duplicate_settlement", "{v}");
    h.set_automine(true).await;
    h.mine().await;

    let (status, s) = post(&second.url, "/settle", body.clone()).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(
        s["success"], true,
        "the landed payment is answered success: {s}"
    );
    let tx = s["transaction"].as_str().unwrap().to_owned();
    let receipt = h
        .bed
        .provider()
        .get_transaction_receipt(tx.parse().unwrap())
        .await
        .unwrap()
        .expect("the answered transaction is on chain");
    assert!(receipt.status());
    assert_eq!(receipt.from, signer);
    assert_eq!(
        h.nonce_of(signer, false).await,
        n0 + 1,
        "one transaction, ever"
    );
    assert_eq!(h.usdc(buyer.address()).await, b0 - U256::from(10_000));
    assert_eq!(h.usdc(seller).await, s0 + U256::from(10_000));

    // Success is answered once; repeats name the same transaction.
    let (status, again) = post(&second.url, "/settle", body).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["success"], false, "{again}");
    assert_eq!(again["errorReason"], "duplicate_settlement", "{again}");
    assert_eq!(again["transaction"], tx.as_str());
    assert_eq!(h.nonce_of(signer, false).await, n0 + 1);
}

#[tokio::test]
async fn the_embedded_store_survives_a_kill_between_broadcast_and_receipt() {
    let h = ExactHarness::start().await;
    let (text, envs) = config(&h);
    assert!(
        text.contains("url = \"sqlite:"),
        "the default durable store: {text}"
    );
    crash_between_broadcast_and_receipt(&h, &text, &envs).await;
}

#[tokio::test]
async fn a_second_process_on_the_same_store_file_refuses_to_start() {
    let h = ExactHarness::start().await;
    let (text, envs) = config(&h);
    let _first = start(&text, &envs);
    // `--check-config` builds everything, the store included, and exits.
    let (ok, _, err) = crate::common::run(&text, &envs, &["--check-config"]);
    assert!(
        !ok,
        "a second facilitator on one SQLite file must not start: {err}"
    );
    assert!(err.contains("store"), "{err}");
}

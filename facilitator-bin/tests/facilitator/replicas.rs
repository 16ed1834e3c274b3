//! Several facilitator processes sharing one PostgreSQL store and one anvil (issue #11): one
//! settlement per payment across the fleet, crashes healed by any replica, and a store outage that
//! fails closed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::collections::{BTreeMap, BTreeSet};

use alloy::primitives::U256;
use alloy::providers::Provider;
use x402_evm::assets::TransferMethod;
use x402_tests::evm::exact::ExactHarness;
use x402_tests::postgres::PgServer;

use crate::common::{Running, config, post, start};

/// `config` with the store at `url` and the signer key `$X402_TEST_KEY` set to `key`.
fn replica_config(
    h: &ExactHarness,
    url: &str,
    key: &alloy::signers::local::PrivateKeySigner,
) -> (String, Vec<(&'static str, String)>) {
    let (text, mut envs) = config(h);
    let start = text.find("url = \"sqlite:").expect("the store line");
    let end = start + text[start..].find('\n').expect("its end");
    let text = format!(
        "{}url = \"$X402_TEST_STORE\"{}",
        &text[..start],
        &text[end..]
    );
    envs.retain(|(k, _)| *k != "X402_TEST_KEY");
    envs.push((
        "X402_TEST_KEY",
        format!("0x{}", alloy::hex::encode(key.to_bytes())),
    ));
    envs.push(("X402_TEST_STORE", url.to_owned()));
    (text, envs)
}

fn signers(h: &ExactHarness) -> Vec<alloy::signers::local::PrivateKeySigner> {
    vec![
        h.bed.facilitator().signer.clone(),
        h.bed.spare_accounts()[0].signer.clone(),
        h.bed.spare_accounts()[1].signer.clone(),
    ]
}

const PAYMENTS: usize = 100;
const COPIES: usize = 10;
/// Payments in flight at once (each with all its copies): bounds the load on a 2-core machine.
const WAVE: usize = 10;
const PRICE_UNITS: u64 = 10_000;

#[tokio::test]
async fn three_replicas_settle_each_of_100_payments_once_under_10_concurrent_copies() {
    let h = ExactHarness::start().await;
    let pg = PgServer::start();
    let keys = signers(&h);
    let replicas: Vec<Running> = keys
        .iter()
        .map(|k| {
            let (text, envs) = replica_config(&h, &pg.url(), k);
            start(&text, &envs)
        })
        .collect();
    let urls: Vec<String> = replicas.iter().map(|r| r.url.clone()).collect();
    let seller = h.bed.seller().address;
    let buyers: Vec<_> = h.bed.buyers().iter().map(|b| b.signer.clone()).collect();
    let req = h.requirements("0.01", TransferMethod::Eip3009).await;
    let s0 = h.usdc(seller).await;
    let mut n0 = Vec::new();
    for k in &keys {
        n0.push(h.nonce_of(k.address(), false).await);
    }

    // Every payment's copies, round robin over the replicas, all at once; a wave at a time.
    let mut answers: BTreeMap<usize, Vec<serde_json::Value>> = BTreeMap::new();
    // Each wave is signed just before it is sent: on a loaded machine the run may take longer
    // than an authorization's window, and an expired payment is not what this test is about.
    for w in 0..PAYMENTS.div_ceil(WAVE) {
        let mut chunk = Vec::new();
        for p in w * WAVE..((w + 1) * WAVE).min(PAYMENTS) {
            let buyer = &buyers[p % buyers.len()];
            chunk.push(serde_json::to_vec(&h.pay_v2(buyer, &req).await).unwrap());
        }
        let mut tasks = Vec::new();
        for (i, body) in chunk.iter().enumerate() {
            let p = w * WAVE + i;
            for c in 0..COPIES {
                let url = urls[(p + c) % urls.len()].clone();
                let body = body.clone();
                tasks.push(tokio::spawn(async move {
                    (p, post(&url, "/settle", body).await)
                }));
            }
        }
        for t in tasks {
            let (p, (status, s)) = t.await.unwrap();
            assert_eq!(status, 200, "payment {p}: {s}");
            answers.entry(p).or_default().push(s);
        }
    }

    for (p, list) in &answers {
        assert_eq!(list.len(), COPIES);
        let successes = list.iter().filter(|s| s["success"] == true).count();
        assert_eq!(successes, 1, "payment {p}: exactly one success: {list:#?}");
        let named: BTreeSet<&str> = list
            .iter()
            .map(|s| s["transaction"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            named.len(),
            1,
            "payment {p}: every answer names the one transaction: {list:#?}"
        );
        assert!(!named.iter().next().unwrap().is_empty(), "{list:#?}");
        for s in list.iter().filter(|s| s["success"] != true) {
            let reason = s["errorReason"].as_str().unwrap_or_default();
            assert!(
                reason == "duplicate_settlement" || reason == "settlement_pending",
                "payment {p}: {s}"
            );
        }
    }
    let distinct: BTreeSet<String> = answers
        .values()
        .flat_map(|l| {
            l.iter()
                .map(|s| s["transaction"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(distinct.len(), PAYMENTS, "one transaction per payment");

    // On chain: exactly the payments' transfers, each signer's nonces used without a gap or a
    // stuck transaction, and no transaction beyond the transfers (so none reverted).
    assert_eq!(
        h.usdc(seller).await,
        s0 + U256::from(PRICE_UNITS * PAYMENTS as u64)
    );
    let mut sent = 0;
    for (k, before) in keys.iter().zip(&n0) {
        let latest = h.nonce_of(k.address(), false).await;
        assert_eq!(latest, h.nonce_of(k.address(), true).await, "nothing stuck");
        sent += latest - before;
    }
    assert_eq!(
        sent, PAYMENTS as u64,
        "one transaction per payment, none reverted"
    );
    for tx in &distinct {
        let receipt = h
            .bed
            .provider()
            .get_transaction_receipt(tx.parse().unwrap())
            .await
            .unwrap()
            .expect("mined");
        assert!(receipt.status(), "{tx}");
    }
    drop(replicas);
}

#[tokio::test]
async fn a_replica_killed_between_broadcast_and_receipt_is_healed_through_the_shared_store() {
    let h = ExactHarness::start().await;
    let pg = PgServer::start();
    let (text, envs) = replica_config(&h, &pg.url(), &h.bed.facilitator().signer);
    crate::durable::crash_between_broadcast_and_receipt(&h, &text, &envs).await;
}

#[tokio::test]
async fn a_store_outage_fails_closed_and_service_resumes_when_it_returns() {
    let h = ExactHarness::start().await;
    let mut pg = PgServer::start();
    let (text, envs) = replica_config(&h, &pg.url(), &h.bed.facilitator().signer);
    let server = start(&text, &envs);
    let buyer = h.bed.buyer(0).signer.clone();
    let seller = h.bed.seller().address;
    let signer = h.bed.facilitator().address;
    let req = h.requirements("0.01", TransferMethod::Eip3009).await;
    let body = serde_json::to_vec(&h.pay_v2(&buyer, &req).await).unwrap();
    let (b0, s0, n0) = (
        h.usdc(buyer.address()).await,
        h.usdc(seller).await,
        h.nonce_of(signer, false).await,
    );

    pg.stop();
    let (status, s) = post(&server.url, "/settle", body.clone()).await;
    assert_eq!(status, 503, "fails closed with a clear error: {s}");
    assert!(
        s["error"]
            .as_str()
            .unwrap_or_default()
            .contains("settlement store"),
        "{s}"
    );
    assert!(
        !s.to_string().contains("postgres://"),
        "no store URL in answers: {s}"
    );
    let (status, v) = post(&server.url, "/verify", body.clone()).await;
    assert_ne!(
        v["isValid"], true,
        "no verify passes without the store: {status} {v}"
    );
    // (The config probes readiness once per server: this is its first probe.)
    let (status, ready) = crate::common::get(&server.url, "/ready").await;
    assert_eq!(status, 503, "{ready}");
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["store"]["ready"], false, "{ready}");
    assert!(!ready.to_string().contains("postgres://"), "{ready}");
    assert_eq!(h.nonce_of(signer, true).await, n0, "nothing was broadcast");
    assert_eq!(h.usdc(buyer.address()).await, b0);

    pg.start_again();
    let (status, s) = post(&server.url, "/settle", body.clone()).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["success"], true, "service resumed: {s}");
    assert_eq!(h.usdc(seller).await, s0 + U256::from(PRICE_UNITS));
    assert_eq!(h.nonce_of(signer, false).await, n0 + 1);
}

#[tokio::test]
async fn a_signer_key_sends_from_one_replica_at_a_time() {
    let h = ExactHarness::start().await;
    let pg = PgServer::start();
    let key = h.bed.facilitator().signer.clone();
    let (text, envs) = replica_config(&h, &pg.url(), &key);
    let text = text.replace(
        "receipt_timeout_ms = 15000",
        "receipt_timeout_ms = 15000\nsigner_lease_ms = 5000",
    );
    let (a, b) = (start(&text, &envs), start(&text, &envs));
    let seller = h.bed.seller().address;
    let req = h.requirements("0.01", TransferMethod::Eip3009).await;
    let first = serde_json::to_vec(&h.pay_v2(&h.bed.buyer(0).signer, &req).await).unwrap();
    let second = serde_json::to_vec(&h.pay_v2(&h.bed.buyer(1).signer, &req).await).unwrap();
    let (s0, n0) = (h.usdc(seller).await, h.nonce_of(key.address(), false).await);

    let (_, s) = post(&a.url, "/settle", first).await;
    assert_eq!(s["success"], true, "{s}");
    // The key is A's for a while: B sends nothing, and says why.
    let (status, s) = post(&b.url, "/settle", second.clone()).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["success"], false, "{s}");
    assert!(
        s["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("leased"),
        "{s}"
    );
    assert_eq!(
        h.nonce_of(key.address(), true).await,
        n0 + 1,
        "B sent nothing"
    );
    // Once A's lease lapses, B takes the key, re-reads its nonce and settles (the refused
    // attempt released its claim: the same payment).
    let settled = x402_tests::wait::poll(x402_tests::wait::HANG_GUARD, || {
        let (url, body) = (b.url.clone(), second.clone());
        async move { post(&url, "/settle", body).await.1["success"] == true }
    })
    .await;
    assert!(settled, "B takes the key over once A's lease lapses");
    assert_eq!(h.usdc(seller).await, s0 + U256::from(2 * PRICE_UNITS));
    assert_eq!(
        h.nonce_of(key.address(), false).await,
        n0 + 2,
        "contiguous nonces"
    );
    assert_eq!(
        h.nonce_of(key.address(), true).await,
        n0 + 2,
        "nothing stuck"
    );
}

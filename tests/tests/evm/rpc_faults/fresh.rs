//! Read freshness: once the facilitator has seen a block (a settlement's receipt), no read that
//! decides a payment is taken from a node behind it. A lagging node is skipped for another
//! endpoint, or the request fails as a transient RPC error — never "nonce unused" for a payment
//! that landed.

use std::sync::Arc;

use alloy::primitives::{TxHash, U256};
use alloy::providers::Provider;
use x402_core::{Facilitator as _, MemoryStore, Reason};
use x402_evm::provider::connect_checked;
use x402_tests::evm::exact::UNITS;

use super::{Proxied, SEND, assert_transient, facilitator, options};

/// The block `transaction` (a settle's answer) was mined in.
async fn mined_in(p: &Proxied, transaction: &str) -> u64 {
    let hash: TxHash = transaction.parse().unwrap();
    p.h.bed
        .provider()
        .get_transaction_receipt(hash)
        .await
        .unwrap()
        .expect("mined")
        .block_number
        .unwrap()
}

#[tokio::test]
async fn a_node_lagging_behind_a_settlement_never_makes_it_verify_or_settle_again() {
    let p = Proxied::start(1).await;
    let proxy = &p.proxies[0];
    let request = p.payment(0).await;
    let payer = p.h.bed.buyer(0).address;
    let settled = p.facilitator.settle(&request).await.unwrap();
    assert!(settled.success, "{settled:?}");
    let block = mined_in(&p, &settled.transaction).await;
    let after = p.h.snapshot(&[payer]).await;

    // The node falls back to the block before the settlement: there, the authorization is unused.
    proxy.lag_at(Some(block - 1));
    // A provider that never saw the settlement is fooled (the lag is real)…
    let naive = connect_checked(&[proxy.url()], &options(&p.h))
        .await
        .unwrap();
    let fooled = facilitator(&p.h, naive, p.pool.clone(), Arc::new(MemoryStore::new()));
    assert!(fooled.verify(&request).await.unwrap().is_valid);

    // …the facilitator's is not: reads behind what it saw fail as transient errors, whether its
    // store knows the payment or not (another facilitator's store, a lost record).
    let forgetful = facilitator(
        &p.h,
        p.provider.clone(),
        p.pool.clone(),
        Arc::new(MemoryStore::new()),
    );
    for (who, f) in [("settled it", &p.facilitator), ("forgetful", &forgetful)] {
        assert_transient(f.verify(&request).await, who);
    }
    assert_transient(forgetful.settle(&request).await, "forgetful");
    // The one that settled it answers a settle from its record before reading the chain (the
    // settle's simulation runs under the payment's claim, which the record holds).
    let again = p.facilitator.settle(&request).await.unwrap();
    x402_tests::evm::exact::assert_duplicate(&again, &settled.transaction, "settled it");
    // A block-number read behind it is refused too (it would date the confirmations wrongly).
    assert!(p.provider.get_block_number().await.is_err());

    assert_eq!(p.broadcasts(), 1, "nothing more was broadcast");
    proxy.lag_at(None);
    assert_eq!(p.h.snapshot(&[payer]).await, after, "nothing moved");

    // Caught up: the chain's answer is a verdict again.
    let v = p.facilitator.verify(&request).await.unwrap();
    assert_eq!(
        v.invalid_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{v:?}"
    );
    let v = forgetful.verify(&request).await.unwrap();
    assert_eq!(
        v.invalid_reason,
        Some(scheme_exact_evm::reason::INVALID_EXACT_EVM_NONCE_ALREADY_USED),
        "{v:?}"
    );
    assert_eq!(p.broadcasts(), 1);
}

#[tokio::test]
async fn a_lagging_endpoint_is_skipped_for_one_that_has_the_block() {
    let p = Proxied::start(2).await;
    let (first, second) = (&p.proxies[0], &p.proxies[1]);
    let request = p.payment(0).await;
    let payer = p.h.bed.buyer(0).address;
    let seller = p.h.bed.seller().address;
    let s0 = p.h.usdc(seller).await;
    let settled = p.facilitator.settle(&request).await.unwrap();
    assert!(settled.success, "{settled:?}");
    assert_eq!(first.forwarded(SEND), 1);
    let block = mined_in(&p, &settled.transaction).await;
    let after = p.h.snapshot(&[payer]).await;

    first.lag_at(Some(block - 1));
    let calls = first.forwarded("eth_call");
    let forgetful = facilitator(
        &p.h,
        p.provider.clone(),
        p.pool.clone(),
        Arc::new(MemoryStore::new()),
    );
    let v = forgetful.verify(&request).await.unwrap();
    assert_eq!(
        v.invalid_reason,
        Some(scheme_exact_evm::reason::INVALID_EXACT_EVM_NONCE_ALREADY_USED),
        "answered by the endpoint that has the block: {v:?}"
    );
    // The simulation (at `pending`) goes out in one batch with the head check: the lagging
    // endpoint may have run it, its answer was not taken (it would say "valid", above).
    assert!(
        first.forwarded("eth_call") <= calls + 1,
        "the lagging one was not asked again"
    );
    assert!(second.forwarded("eth_call") >= 1);
    let s = forgetful.settle(&request).await.unwrap();
    assert!(!s.success, "{s:?}");
    assert_eq!(
        s.error_reason,
        Some(scheme_exact_evm::reason::INVALID_EXACT_EVM_NONCE_ALREADY_USED),
        "{s:?}"
    );
    assert_eq!(p.broadcasts(), 1, "nothing more was broadcast");
    assert_eq!(p.h.snapshot(&[payer]).await, after, "nothing moved");
    assert_eq!(p.h.usdc(seller).await, s0 + U256::from(UNITS), "paid once");
}

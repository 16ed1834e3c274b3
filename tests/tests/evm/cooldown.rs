//! The payer cool-down (issue #12): a payer whose settlement reverted on chain — the facilitator
//! paid the gas — is refused `payer_throttled` at verify and settle, with nothing sent, by every
//! facilitator sharing the settlement store and after a restart, until the cool-down ends. Other
//! payers, and repeats of a payment the store has a record of, are answered as before.
//!
//! The revert is real: with anvil's automine off, the payer moves its USDC away in the same block
//! as our broadcast, ahead of it (a higher tip), after everything the facilitator checks passed.
//! The cool-down's end is the store's clock moved past it, so no test waits for wall time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use alloy::providers::Provider;
use scheme_exact_evm::{Facilitator, Policy};
use x402_core::wire::{SettleResponse, VerifyRequest};
use x402_core::{
    Facilitator as _, FacilitatorRole as _, LocalFacilitator, MemoryStore, PayerCooldown, Reason,
    Registry, SettleTimeouts, SettlementStore, ShiftedClock, StoreOptions,
};
use x402_evm::assets::TransferMethod;
use x402_tests::evm::exact::{ExactHarness, PRICE, assert_duplicate, assert_settle_refused};
use x402_tests::wait;

/// A dispatcher of `exact` over the harness's chain and signers, with `store` and `cooldown`.
fn dispatcher(
    h: &ExactHarness,
    store: Arc<dyn SettlementStore>,
    cooldown: Duration,
) -> LocalFacilitator {
    let policy = Policy {
        assets: Some(vec![h.bed.usdc()]),
        ..Policy::default()
    };
    let facilitator = Facilitator::new(
        h.network.clone(),
        h.bed.provider(),
        h.pool.clone(),
        store,
        policy,
    )
    .expect("facilitator")
    .with_payer_cooldown(cooldown);
    let mut registry = Registry::new();
    registry
        .register(
            h.network.as_str(),
            scheme_exact_evm::VERSIONS,
            facilitator.into_scheme(),
        )
        .expect("register");
    LocalFacilitator::new(registry)
}

/// Settles `request` through `f` while `payer` empties its USDC into a spare account in the same
/// block, ahead of our transaction: ours is mined reverted. The funds come back afterwards.
async fn settle_reverted(
    h: &ExactHarness,
    f: &LocalFacilitator,
    request: &VerifyRequest,
    payer: Address,
) -> SettleResponse {
    let spare = h.bed.spare_accounts()[0].address;
    let balance = h.usdc(payer).await;
    let sent_before = h.pool.stats().sent;
    h.set_automine(false).await;
    let drive = async {
        wait::until(
            "the facilitator broadcasts",
            SettleTimeouts::default().request_deadline(),
            || async { h.pool.stats().sent > sent_before },
        )
        .await;
        let drain = h
            .bed
            .usdc_contract()
            .transfer(spare, balance)
            .into_transaction_request()
            .from(payer)
            .gas_limit(100_000)
            .max_fee_per_gas(500_000_000_000)
            .max_priority_fee_per_gas(100_000_000_000);
        let _pending = h
            .bed
            .provider()
            .send_transaction(drain)
            .await
            .expect("the payer's transfer is accepted");
        h.mine().await;
    };
    let (s, ()) = tokio::join!(
        async { f.settle(request).await.expect("settle answers") },
        drive
    );
    h.set_automine(true).await;
    assert!(!s.success, "{s:?}");
    let receipt = h
        .bed
        .provider()
        .get_transaction_receipt(s.transaction.parse().expect("a transaction is named"))
        .await
        .expect("receipt")
        .expect("our transaction was mined");
    assert!(!receipt.status(), "our transaction reverted: {s:?}");
    h.bed.transfer_usdc(spare, payer, balance).await;
    s
}

/// `request`, valid on chain, is refused `payer_throttled` by `f` at verify and settle, naming
/// until when, and nothing moves or is broadcast.
async fn assert_throttled(
    h: &ExactHarness,
    f: &LocalFacilitator,
    request: &VerifyRequest,
    what: &str,
) {
    let before = h.snapshot(&[]).await;
    let v = f.verify(request).await.expect("verify answers");
    assert!(!v.is_valid, "{what}: {v:?}");
    assert_eq!(
        v.invalid_reason,
        Some(Reason::PAYER_THROTTLED),
        "{what}: {v:?}"
    );
    let message = v.invalid_message.unwrap_or_default();
    assert!(message.contains("until unix time"), "{what}: {message}");
    let s = f.settle(request).await.expect("settle answers");
    assert_settle_refused(&s, Reason::PAYER_THROTTLED, what);
    assert!(s.payer.is_some(), "{what}: the payer is named: {s:?}");
    h.assert_untouched(&before, what).await;
}

#[tokio::test]
async fn a_payer_whose_settlement_reverted_is_refused_by_every_replica_until_the_cool_down_ends() {
    let h = ExactHarness::start().await;
    let (payer, other) = (h.bed.buyer(0).signer.clone(), h.bed.buyer(1).signer.clone());
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    // Two replicas share one store, whose clock the test moves; the default cool-down.
    let clock = Arc::new(ShiftedClock::new(0));
    let store: Arc<dyn SettlementStore> = Arc::new(MemoryStore::with_options(
        StoreOptions::default(),
        clock.clone(),
    ));
    let a = dispatcher(&h, Arc::clone(&store), PayerCooldown::DEFAULT);
    let b = dispatcher(&h, Arc::clone(&store), PayerCooldown::DEFAULT);

    let first = h.pay_v2(&payer, &req).await;
    let reverted = settle_reverted(&h, &a, &first, payer.address()).await;
    assert_eq!(
        reverted.error_reason,
        Some(x402_evm::reason::INVALID_EXACT_EVM_TRANSACTION_FAILED),
        "{reverted:?}"
    );

    // The payer's next payment is valid on chain (a facilitator with a store of its own says
    // so), but both replicas refuse it and send nothing.
    let next = h.pay_v2(&payer, &req).await;
    let unrelated = dispatcher(&h, Arc::new(MemoryStore::new()), PayerCooldown::DEFAULT);
    assert!(unrelated.verify(&next).await.unwrap().is_valid);
    assert_throttled(&h, &b, &next, "replica b").await;
    assert_throttled(&h, &a, &next, "replica a").await;
    // A network with the cool-down off refuses nothing.
    let off = dispatcher(&h, Arc::clone(&store), Duration::ZERO);
    assert!(off.verify(&next).await.unwrap().is_valid);

    // The reverted payment itself is answered from its record, not as throttled.
    let before = h.snapshot(&[]).await;
    assert_duplicate(
        &b.settle(&first).await.unwrap(),
        &reverted.transaction,
        "the reverted payment again",
    );
    let v = b.verify(&first).await.unwrap();
    assert_eq!(
        v.invalid_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{v:?}"
    );
    h.assert_untouched(&before, "the reverted payment again")
        .await;

    // Another payer pays meanwhile.
    let others = h.pay_v2(&other, &req).await;
    assert!(b.verify(&others).await.unwrap().is_valid);
    let s = b.settle(&others).await.unwrap();
    assert!(s.success, "another payer is not throttled: {s:?}");

    // Once the cool-down has passed, the payer pays again.
    clock.set_shift(i64::try_from(PayerCooldown::DEFAULT.as_secs()).unwrap() + 1);
    let paid = h.usdc(payer.address()).await;
    assert!(a.verify(&next).await.unwrap().is_valid);
    let s = b.settle(&next).await.unwrap();
    assert!(s.success, "after the cool-down: {s:?}");
    assert_eq!(
        h.usdc(payer.address()).await,
        paid - req.amount.get(),
        "paid once"
    );
}

#[tokio::test]
async fn a_cool_down_survives_a_restart_on_the_sqlite_store() {
    let h = ExactHarness::start().await;
    let payer = h.bed.buyer(0).signer.clone();
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settlements.sqlite3");
    let cooldown = Duration::from_secs(600);
    let first = h.pay_v2(&payer, &req).await;
    {
        let store = x402_store::SqliteStore::open(&path, StoreOptions::default()).unwrap();
        let f = dispatcher(&h, Arc::new(store), cooldown);
        settle_reverted(&h, &f, &first, payer.address()).await;
    }
    // A new process on the same file.
    let store = x402_store::SqliteStore::open(&path, StoreOptions::default()).unwrap();
    let f = dispatcher(&h, Arc::new(store), cooldown);
    let next = h.pay_v2(&payer, &req).await;
    assert_throttled(&h, &f, &next, "after the restart").await;
    drop(f);
    // Restarted once the cool-down has passed (by the store's clock): the payer pays.
    let later = Arc::new(ShiftedClock::new(601));
    let store =
        x402_store::SqliteStore::open_with_clock(&path, StoreOptions::default(), later).unwrap();
    let f = dispatcher(&h, Arc::new(store), cooldown);
    let s = f.settle(&next).await.unwrap();
    assert!(s.success, "after the cool-down: {s:?}");
}

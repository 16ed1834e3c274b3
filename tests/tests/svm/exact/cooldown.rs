//! The payer cool-down on Solana (issue #12): a payer whose transaction landed with an error —
//! our fee payer paid its fee — is refused `payer_throttled` at verify and settle with nothing
//! sent, until the cool-down ends; other payers, and a repeat of the failed payment, are answered
//! as before. The failure is the S59 one (the buyer empties its account between our simulation
//! and our transaction); the cool-down's end is the store's clock moved past it.

use std::sync::Arc;

use scheme_exact_svm::Facilitator;
use scheme_exact_svm::instructions::TransferChecked;
use solana_keypair::Keypair;
use solana_signer::Signer;
use x402_core::{Facilitator as _, MemoryStore, PayerCooldown, Reason, ShiftedClock, StoreOptions};
use x402_tests::solana::LAMPORTS_PER_SOL;
use x402_tests::solana::exact::{SendHook, SendMode, SvmHarness, harness_policy, local, rpc};

use super::AMOUNT;

#[tokio::test]
async fn a_payer_whose_transaction_landed_with_an_error_is_refused_until_the_cool_down_ends() {
    let h = SvmHarness::start().await;
    let mint = h.bed.spl_token_mint();
    // A facilitator on the harness's proxy and fee payers whose store's clock the test moves;
    // the default cool-down.
    let clock = Arc::new(ShiftedClock::new(0));
    let store = Arc::new(MemoryStore::with_options(
        StoreOptions::default(),
        clock.clone(),
    ));
    let f = local(
        &h.network,
        Facilitator::new(
            h.network.clone(),
            rpc(h.proxy.url()),
            h.fee_payers.iter().map(Keypair::insecure_clone).collect(),
            store,
            harness_policy(),
        )
        .unwrap(),
    );
    let req = h.requirements(&mint, AMOUNT, None).await;
    let first = h.pay_v2(&h.buyer, &req).await;

    // Between our simulation and our transaction the buyer empties its account; the node skips
    // its preflight, so our transaction lands and fails.
    let sink = h.bed.new_token_holder(LAMPORTS_PER_SOL, 0).await;
    let (bed, buyer, to) = (h.bed, h.buyer.insecure_clone(), sink.pubkey());
    let drain: SendHook = Box::new(move || {
        Box::pin(async move {
            let all = bed.token_balance(&buyer.pubkey(), &mint.address).await;
            let t = TransferChecked {
                token_program: mint.token_program,
                source: mint.ata(&buyer.pubkey()),
                mint: mint.address,
                destination: mint.ata(&to),
                authority: buyer.pubkey(),
                amount: all,
                decimals: mint.decimals,
            };
            bed.send(&[t.instruction()], &buyer, &[]).await;
        })
    });
    h.proxy.set_mode(SendMode::HookFirst(Some(drain))).await;
    let failed = f.settle(&first).await.unwrap();
    h.proxy.set_mode(SendMode::Forward).await;
    assert_eq!(
        failed.error_reason,
        Some(scheme_exact_svm::reason::INVALID_EXACT_SVM_TRANSACTION_FAILED),
        "{failed:?}"
    );
    let signature: solana_signature::Signature = failed.transaction.parse().unwrap();
    let status = h.bed.rpc().get_signature_status(&signature).await.unwrap();
    assert!(
        matches!(status, Some(Err(_))),
        "landed with an error: {status:?}"
    );
    // The tokens come back to the buyer.
    let all = h.bed.token_balance(&sink.pubkey(), &mint.address).await;
    let back = TransferChecked {
        token_program: mint.token_program,
        source: mint.ata(&sink.pubkey()),
        mint: mint.address,
        destination: mint.ata(&h.buyer.pubkey()),
        authority: sink.pubkey(),
        amount: all,
        decimals: mint.decimals,
    };
    h.bed.send(&[back.instruction()], &sink, &[]).await;

    // The buyer's next payment is valid on chain (the harness's own facilitator, another store,
    // says so) but refused, and nothing is sent.
    let next = h.pay_v2(&h.buyer, &req).await;
    assert!(h.verify(&next).await.is_valid);
    let before = h.snapshot(&[mint.address], &[]).await;
    let v = f.verify(&next).await.unwrap();
    assert_eq!(v.invalid_reason, Some(Reason::PAYER_THROTTLED), "{v:?}");
    assert!(
        v.invalid_message
            .unwrap_or_default()
            .contains("until unix time"),
        "the refusal says until when"
    );
    let s = f.settle(&next).await.unwrap();
    assert_eq!(s.error_reason, Some(Reason::PAYER_THROTTLED), "{s:?}");
    assert!(s.transaction.is_empty(), "{s:?}");
    // The failed payment itself is answered from its record.
    let again = f.settle(&first).await.unwrap();
    assert_eq!(
        again.error_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{again:?}"
    );
    assert_eq!(again.transaction, failed.transaction);
    assert_eq!(
        h.snapshot(&[mint.address], &[]).await,
        before,
        "nothing sent, nothing moved"
    );
    // Another payer is not throttled.
    let other = h.bed.new_token_holder(LAMPORTS_PER_SOL, AMOUNT).await;
    assert!(
        f.verify(&h.pay_v2(&other, &req).await)
            .await
            .unwrap()
            .is_valid
    );

    // Once the cool-down has passed, the buyer pays.
    clock.set_shift(i64::try_from(PayerCooldown::DEFAULT.as_secs()).unwrap() + 1);
    let s = f.settle(&next).await.unwrap();
    assert!(s.success, "after the cool-down: {s:?}");
    assert_eq!(
        h.bed.token_balance(&h.seller.pubkey(), &mint.address).await,
        AMOUNT,
        "the seller is paid once"
    );
}

//! S57–S60: the checks that need the chain — Token-2022 extensions, signatures, a transaction
//! that lands with an error, an unknown blockhash.

use scheme_exact_svm::instructions::TransferChecked;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use x402_core::Reason;
use x402_tests::solana::exact::{MintExtension, SendMode, SvmHarness, create_extension_mint};

use super::{AMOUNT, TX_FEE, fee_payer, setup, signed};

#[tokio::test]
async fn s57_token_2022_mints_with_dangerous_extensions_are_refused() {
    let h = SvmHarness::start().await;
    let holders = [h.buyer.pubkey(), h.seller.pubkey()];
    for (what, extension) in [
        ("transfer fee", MintExtension::TransferFee(100)),
        (
            "transfer hook",
            MintExtension::TransferHook(Pubkey::new_unique()),
        ),
        (
            "permanent delegate",
            MintExtension::PermanentDelegate(Pubkey::new_unique()),
        ),
        ("non-transferable", MintExtension::NonTransferable),
    ] {
        let mint = create_extension_mint(h.bed, extension, &holders, 1_000_000).await;
        let req = h.requirements(&mint, AMOUNT, None).await;
        let request = h.pay_v2(&h.buyer, &req).await;
        h.assert_refused(
            what,
            &request,
            scheme_exact_svm::reason::UNSUPPORTED_TOKEN_EXTENSION,
            &[mint.address],
        )
        .await;
        let v = h.verify(&request).await;
        assert!(
            v.invalid_message.unwrap_or_default().contains("the mint"),
            "{what}"
        );
    }
    // A zero transfer fee is harmless and accepted.
    let zero_fee =
        create_extension_mint(h.bed, MintExtension::TransferFee(0), &holders, 1_000_000).await;
    let req = h.requirements(&zero_fee, AMOUNT, None).await;
    let v = h.verify(&h.pay_v2(&h.buyer, &req).await).await;
    assert!(v.is_valid, "{v:?}");
}

#[tokio::test]
async fn s58_the_buyer_signature_is_verified() {
    let (h, mint, req, ixs) = setup().await;
    let fp = fee_payer(&h, &req);
    let good = signed(&h, &fp, &ixs).await;
    let message = good.message.serialize();
    for (what, signature) in [
        ("zero signature", solana_signature::Signature::default()),
        ("random bytes", solana_signature::Signature::from([9u8; 64])),
        (
            "another key's signature",
            Keypair::new().sign_message(&message),
        ),
        (
            "the buyer's signature of another message",
            h.buyer.sign_message(b"something else"),
        ),
    ] {
        let mut tx = good.clone();
        tx.signatures[1] = signature;
        h.assert_refused(
            what,
            &SvmHarness::request(&req, &tx),
            scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_SIGNATURE,
            &[mint.address],
        )
        .await;
    }
}

#[tokio::test]
async fn s59_a_transaction_that_lands_with_an_error_is_a_failure_at_a_capped_cost() {
    let h = SvmHarness::start().await;
    let mint = h.bed.spl_token_mint();
    let req = h.requirements(&mint, AMOUNT, None).await;
    let request = h.pay_v2(&h.buyer, &req).await;
    assert!(h.verify(&request).await.is_valid);
    // Between the facilitator's simulation and its transaction, the buyer empties its account
    // (and the node is told to skip its own preflight, so the payment lands and fails).
    let sink = h.bed.new_token_holder(0, 0).await;
    let bed = h.bed;
    let buyer = h.buyer.insecure_clone();
    let drain: x402_tests::solana::exact::SendHook = Box::new(move || {
        Box::pin(async move {
            let all = bed.token_balance(&buyer.pubkey(), &mint.address).await;
            let t = TransferChecked {
                token_program: mint.token_program,
                source: mint.ata(&buyer.pubkey()),
                mint: mint.address,
                destination: mint.ata(&sink.pubkey()),
                authority: buyer.pubkey(),
                amount: all,
                decimals: mint.decimals,
            };
            bed.send(&[t.instruction()], &buyer, &[]).await;
        })
    });
    h.proxy.set_mode(SendMode::HookFirst(Some(drain))).await;
    let before = h.snapshot(&[mint.address], &[]).await;
    let s = h.settle(&request).await;
    assert!(!s.success, "{s:?}");
    assert_eq!(
        s.error_reason,
        Some(scheme_exact_svm::reason::INVALID_EXACT_SVM_TRANSACTION_FAILED),
        "{s:?}"
    );
    let signature: solana_signature::Signature =
        s.transaction.parse().expect("the signature, for audit");
    let status = h.bed.rpc().get_signature_status(&signature).await.unwrap();
    assert!(
        matches!(status, Some(Err(_))),
        "landed with an error: {status:?}"
    );
    assert_eq!(
        h.bed.token_balance(&h.seller.pubkey(), &mint.address).await,
        0,
        "the seller got nothing"
    );
    let after = h.snapshot(&[mint.address], &[]).await;
    let spent: u64 =
        before.fee_payer_sol.iter().sum::<u64>() - after.fee_payer_sol.iter().sum::<u64>();
    assert_eq!(spent, TX_FEE, "the fee payer lost exactly the (capped) fee");
    let again = h.settle(&request).await;
    assert_eq!(again.error_reason, Some(Reason::DUPLICATE_SETTLEMENT));
    assert_eq!(again.transaction, s.transaction);
}

#[tokio::test]
async fn s60_an_unknown_blockhash_fails_simulation() {
    let (h, mint, req, ixs) = setup().await;
    let fp = fee_payer(&h, &req);
    let tx = scheme_exact_svm::buyer::sign_partially(
        &fp,
        &ixs,
        solana_sdk::hash::Hash::new_from_array([7; 32]),
        &[&h.buyer],
    )
    .unwrap();
    h.assert_refused(
        "unknown blockhash",
        &SvmHarness::request(&req, &tx),
        scheme_exact_svm::reason::TRANSACTION_SIMULATION_FAILED,
        &[mint.address],
    )
    .await;
}

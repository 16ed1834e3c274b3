//! S52 by value: the priority fee a payment asks the fee payer for stays below what the payment
//! is worth (`scheme_exact_svm::facilitator::priority`), besides the absolute cap. A fee above it
//! is refused by verify and settle with nothing sent; one at it lands, costing the fee payer
//! exactly the two signatures and that fee.

use scheme_exact_svm::facilitator::priority::NANO_PER_LAMPORT;
use scheme_exact_svm::instructions::{set_compute_unit_limit, set_compute_unit_price};
use scheme_exact_svm::{Policy, reason};
use solana_instruction::Instruction;
use solana_signer::Signer;
use x402_tests::solana::SvmTestBed;
use x402_tests::solana::exact::{SendMode, SvmHarness, harness_policy};

use super::{AMOUNT, fee_payer, signed};

/// `ixs` with a compute budget of `limit` units at `micro_lamports` each.
fn with_budget(ixs: &[Instruction], limit: u32, micro_lamports: u64) -> Vec<Instruction> {
    let mut v = ixs.to_vec();
    v[0] = set_compute_unit_limit(limit);
    v[1] = set_compute_unit_price(micro_lamports);
    v
}

#[tokio::test]
async fn s52_the_priority_fee_stays_below_the_payments_value() {
    // The bed's mint valued like the built-in stablecoins, 1 lamport per atomic unit: a payment
    // of AMOUNT (1,000) units may carry 1,000 lamports of priority fee — far below the absolute
    // cap of 100,000 — and not one more.
    let mint = SvmTestBed::shared().await.spl_token_mint();
    let mut policy = harness_policy();
    policy
        .priority_fee_valuations
        .insert(mint.address, NANO_PER_LAMPORT);
    assert!(policy.max_priority_fee_lamports > AMOUNT);
    let h = SvmHarness::start_with(policy, SendMode::Forward).await;
    let req = h.requirements(&mint, AMOUNT, None).await;
    let fp = fee_payer(&h, &req);
    let ixs = h.plan(&mint, &req).instructions(&h.buyer.pubkey());
    // 100,000 compute units at 10,010 µ-lamports: 1,001 lamports.
    let over = signed(&h, &fp, &with_budget(&ixs, 100_000, 10_010)).await;
    h.assert_refused(
        "1,001 lamports of priority fee on a 1,000-unit payment",
        &SvmHarness::request(&req, &over),
        reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_COMPUTE_PRICE_INSTRUCTION_TOO_HIGH,
        &[mint.address],
    )
    .await;
    // 100,000 compute units at 10,000 µ-lamports: 1,000 lamports, the payment's worth.
    let at = signed(&h, &fp, &with_budget(&ixs, 100_000, 10_000)).await;
    let request = SvmHarness::request(&req, &at);
    let v = h.verify(&request).await;
    assert!(v.is_valid, "{v:?}");
    let before = h.snapshot(&[mint.address], &[]).await;
    let s = h.settle(&request).await;
    assert!(s.success, "{s:?}");
    let after = h.snapshot(&[mint.address], &[]).await;
    let spent: u64 = before
        .fee_payer_sol
        .iter()
        .zip(&after.fee_payer_sol)
        .map(|(b, a)| b - a)
        .sum();
    assert_eq!(spent, 2 * 5_000 + AMOUNT, "two signatures and the fee");
    assert_eq!(
        h.bed.token_balance(&h.seller.pubkey(), &mint.address).await,
        AMOUNT
    );
}

#[tokio::test]
async fn s52_a_mint_without_a_valuation_gets_only_the_floor() {
    // The default policy values only the built-in stablecoins; the bed's mint gets the floor,
    // 1 lamport: what the official clients' price of 1 µ-lamport costs, and nothing more.
    let policy = harness_policy();
    assert_eq!(policy.priority_fee_floor_lamports, 1);
    let h = SvmHarness::start_with(policy, SendMode::Forward).await;
    let mint = h.bed.spl_token_mint();
    assert!(
        !Policy::default()
            .priority_fee_valuations
            .contains_key(&mint.address)
    );
    let req = h.requirements(&mint, AMOUNT, None).await;
    let fp = fee_payer(&h, &req);
    let ixs = h.plan(&mint, &req).instructions(&h.buyer.pubkey());
    // 20,000 compute units at 100 µ-lamports: 2 lamports.
    let over = signed(&h, &fp, &with_budget(&ixs, 20_000, 100)).await;
    h.assert_refused(
        "2 lamports of priority fee in a mint without a valuation",
        &SvmHarness::request(&req, &over),
        reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_COMPUTE_PRICE_INSTRUCTION_TOO_HIGH,
        &[mint.address],
    )
    .await;
    // The reference client's own budget (20,000 units at 1 µ-lamport, 1 lamport) verifies.
    let v = h.verify(&h.pay_v2(&h.buyer, &req).await).await;
    assert!(v.is_valid, "{v:?}");
}

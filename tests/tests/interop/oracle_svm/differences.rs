//! Where we answer differently from the official facilitator, on purpose (docs/reasons.md, "Where
//! we answer differently"): payments it accepts and we refuse, by a rule of threat-model.md it
//! does not apply (or applies only when configured). Each is asserted both ways, so the list
//! cannot go stale: the day the official facilitator refuses one too, this test names it.

use scheme_exact_svm::instructions::{
    MEMO_PROGRAM, set_compute_unit_limit, set_compute_unit_price,
};
use scheme_exact_svm::reason as svm;
use serde_json::Value;
use solana_instruction::{AccountMeta, Instruction};
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer as _;
use solana_transaction::versioned::VersionedTransaction;
use x402_core::wire::PaymentRequirementsV2;
use x402_core::{Amount, Reason};
use x402_tests::solana::exact::SvmHarness;

use super::{AMOUNT, Mechanism, Oracle, bed_mints, our_settle, our_verify};

const M: Mechanism = Mechanism::V2SplToken;

fn request(requirements: &PaymentRequirementsV2, tx: &VersionedTransaction) -> Value {
    let payload = scheme_exact_svm::payload::ExactSvmPayload::of(tx)
        .unwrap()
        .to_raw()
        .unwrap();
    M.request(requirements, payload)
}

/// A memo instruction naming `signer` as a signing account.
fn signed_memo(signer: &Pubkey) -> Instruction {
    Instruction::new_with_bytes(
        MEMO_PROGRAM,
        b"x402",
        vec![AccountMeta::new_readonly(*signer, true)],
    )
}

#[tokio::test]
async fn where_we_answer_differently_the_official_facilitator_accepts() {
    let h = SvmHarness::start().await;
    let mut oracle = Oracle::start(&h).await;
    let (mint, _) = M.mints(&h);
    let req = h.requirements(&mint, AMOUNT, None).await;
    let plan = h.plan(&mint, &req);
    let (fp, buyer) = (plan.fee_payer, h.buyer.pubkey());
    // Room for a signed memo's logging: the official client's 20,000 units are too few.
    let roomy = || {
        let mut ixs = plan.instructions(&buyer);
        ixs[0] = set_compute_unit_limit(200_000);
        ixs
    };
    let mut cases: Vec<(&str, Value, Reason)> = Vec::new();

    let mut ixs = roomy();
    ixs.push(signed_memo(&fp));
    let tx = h.transaction(&fp, &ixs, &[&h.buyer]).await;
    cases.push((
        "S49: a memo names the fee payer",
        request(&req, &tx),
        svm::FEE_PAYER_IN_INSTRUCTION_ACCOUNTS,
    ));

    let third = Keypair::new();
    let mut ixs = roomy();
    ixs.push(signed_memo(&third.pubkey()));
    let tx = h.transaction(&fp, &ixs, &[&h.buyer, &third]).await;
    cases.push((
        "S53: a third signer",
        request(&req, &tx),
        svm::TOO_MANY_SIGNATURES,
    ));

    let mut ixs = plan.instructions(&buyer);
    ixs[0] = set_compute_unit_limit(300_000);
    let tx = h.transaction(&fp, &ixs, &[&h.buyer]).await;
    cases.push((
        "S52: 300,000 compute units (our cap: 200,000)",
        request(&req, &tx),
        svm::INVALID_EXACT_SVM_PAYLOAD_COMPUTE_LIMIT_TOO_HIGH,
    ));

    let mut ixs = roomy();
    ixs[1] = set_compute_unit_price(1_000_000);
    let tx = h.transaction(&fp, &ixs, &[&h.buyer]).await;
    cases.push((
        "S52: a priority fee of 200,000 lamports (our cap: 100,000)",
        request(&req, &tx),
        svm::INVALID_EXACT_SVM_PAYLOAD_PRIORITY_FEE_TOO_HIGH,
    ));

    let mut ixs = roomy();
    ixs[1] = set_compute_unit_price(100);
    let tx = h.transaction(&fp, &ixs, &[&h.buyer]).await;
    cases.push((
        "S52: a priority fee of 20 lamports on a payment in a mint without a valuation (our cap: \
         the 1-lamport floor)",
        request(&req, &tx),
        svm::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_COMPUTE_PRICE_INSTRUCTION_TOO_HIGH,
    ));

    let mut ixs = plan.instructions(&buyer);
    ixs[2]
        .accounts
        .push(AccountMeta::new_readonly(Pubkey::new_unique(), false));
    let tx = h.transaction(&fp, &ixs, &[&h.buyer]).await;
    cases.push((
        "S48/S49: TransferChecked with a fifth account",
        request(&req, &tx),
        svm::INVALID_EXACT_SVM_PAYLOAD_NO_TRANSFER_INSTRUCTION,
    ));

    let zero_req = PaymentRequirementsV2 {
        amount: Amount::from(0u64),
        ..req.clone()
    };
    let mut zero = plan.clone();
    zero.amount = 0;
    let tx = h
        .transaction(&fp, &zero.instructions(&buyer), &[&h.buyer])
        .await;
    cases.push((
        "S4: requirements of 0, a transfer of 0",
        request(&zero_req, &tx),
        Reason::INVALID_PAYMENT_REQUIREMENTS,
    ));

    let mints = bed_mints(&h);
    for (name, request, ours_reason) in cases {
        let before = h.snapshot(&mints, &[]).await;
        let theirs = oracle.verify(&request).await;
        assert!(
            theirs.is_valid,
            "{name}: the official facilitator refuses it now ({theirs:?}): move it to the agreed \
             variants and off docs/reasons.md's list"
        );
        let ours = our_verify(&h, &request).await;
        assert_eq!(
            ours.invalid_reason,
            Some(ours_reason.clone()),
            "{name}: {ours:?}"
        );
        let settled = our_settle(&h, &request).await;
        assert_eq!(
            settled.error_reason,
            Some(ours_reason),
            "{name}: {settled:?}"
        );
        assert_eq!(
            h.snapshot(&mints, &[]).await,
            before,
            "{name}: something moved"
        );
    }
}

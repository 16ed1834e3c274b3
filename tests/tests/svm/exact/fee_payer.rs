//! S48, S49, S53, S54, S62: the fee payer is only ever account 0, never an authority, source,
//! instruction account or extra signer, and its signature never leaves before settle.

use scheme_exact_svm::instructions::{LIGHTHOUSE_PROGRAM, TransferChecked};
use solana_instruction::{AccountMeta, Instruction};
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use x402_tests::solana::LAMPORTS_PER_SOL;
use x402_tests::solana::exact::SvmHarness;

use super::{AMOUNT, fee_payer, refuse_all, setup, signed};

#[tokio::test]
async fn s48_fee_payer_as_transfer_authority_or_source() {
    let (h, mint, req, _) = setup().await;
    let fp = fee_payer(&h, &req);
    let fp_key = h.fee_payers.iter().find(|k| k.pubkey() == fp).unwrap();
    let plan = h.plan(&mint, &req);
    // The fee payer as the authority of a transfer from its own account.
    let tx = h.transaction(&fp, &plan.instructions(&fp), &[]).await;
    h.assert_refused(
        "authority = fee payer",
        &SvmHarness::request(&req, &tx),
        scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_FEE_PAYER_TRANSFERRING_FUNDS,
        &[mint.address],
    )
    .await;
    // The fee payer's own token accounts (its ATA, and another account it owns), each with the
    // buyer approved as delegate: the buyer signs, the facilitator's tokens would move.
    let authority = h.bed.mint_authority();
    let program = mint.token_program;
    let fp_ata = mint.ata(&fp);
    let other = Keypair::new();
    let rent = h
        .bed
        .rpc()
        .get_minimum_balance_for_rent_exemption(165)
        .await
        .unwrap();
    let setup = vec![
        spl_associated_token_account_interface::instruction::create_associated_token_account(
            &authority.pubkey(),
            &fp,
            &mint.address,
            &program,
        ),
        solana_system_interface::instruction::create_account(
            &authority.pubkey(),
            &other.pubkey(),
            rent,
            165,
            &program,
        ),
        spl_token_interface::instruction::initialize_account3(
            &program,
            &other.pubkey(),
            &mint.address,
            &fp,
        )
        .unwrap(),
    ];
    let mut funded = setup;
    for account in [fp_ata, other.pubkey()] {
        funded.push(
            spl_token_interface::instruction::mint_to(
                &program,
                &mint.address,
                &account,
                &authority.pubkey(),
                &[],
                50_000,
            )
            .unwrap(),
        );
        funded.push(
            spl_token_interface::instruction::approve(
                &program,
                &account,
                &h.buyer.pubkey(),
                &fp,
                &[],
                50_000,
            )
            .unwrap(),
        );
    }
    h.bed.send(&funded, authority, &[&other, fp_key]).await;
    for (what, source) in [
        ("source = fee payer's ATA", fp_ata),
        ("source = a fee payer's account", other.pubkey()),
    ] {
        let mut ixs = plan.instructions(&h.buyer.pubkey());
        ixs[2] = TransferChecked {
            source,
            ..plan.transfer(&h.buyer.pubkey())
        }
        .instruction();
        let tx = signed(&h, &fp, &ixs).await;
        h.assert_refused(
            what,
            &SvmHarness::request(&req, &tx),
            scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_FEE_PAYER_TRANSFERRING_FUNDS,
            &[mint.address],
        )
        .await;
        let balance = h
            .bed
            .rpc()
            .get_token_account_balance(&source)
            .await
            .unwrap();
        assert_eq!(
            balance.amount, "50000",
            "{what}: the fee payer's tokens moved"
        );
    }
}

#[tokio::test]
async fn s49_fee_payer_in_any_instruction_accounts() {
    let (h, mint, req, ixs) = setup().await;
    let fp = fee_payer(&h, &req);
    let other_fp = h
        .fee_payers
        .iter()
        .map(Keypair::pubkey)
        .find(|k| *k != fp)
        .unwrap();
    let mut in_memo = ixs.clone();
    in_memo[3]
        .accounts
        .push(AccountMeta::new_readonly(fp, false));
    let mut other_in_memo = ixs.clone();
    other_in_memo[3]
        .accounts
        .push(AccountMeta::new_readonly(other_fp, false));
    let mut in_lighthouse = ixs.clone();
    in_lighthouse.push(Instruction::new_with_bytes(
        LIGHTHOUSE_PROGRAM,
        &[0],
        vec![AccountMeta::new_readonly(fp, false)],
    ));
    let mut in_transfer = ixs.clone();
    in_transfer[2]
        .accounts
        .push(AccountMeta::new_readonly(fp, false));
    let reason = scheme_exact_svm::reason::FEE_PAYER_IN_INSTRUCTION_ACCOUNTS;
    refuse_all(
        &h,
        &mint,
        &req,
        vec![
            ("fee payer in the memo", in_memo, reason.clone()),
            (
                "the other fee payer in the memo",
                other_in_memo,
                reason.clone(),
            ),
            (
                "fee payer in a Lighthouse instruction",
                in_lighthouse,
                reason.clone(),
            ),
            (
                "fee payer as an extra transfer account",
                in_transfer,
                reason,
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn s53_extra_signers_are_refused() {
    let (h, mint, req, mut ixs) = setup().await;
    let fp = fee_payer(&h, &req);
    let extra = Keypair::new();
    ixs[3]
        .accounts
        .push(AccountMeta::new_readonly(extra.pubkey(), true));
    let tx = h.transaction(&fp, &ixs, &[&h.buyer, &extra]).await;
    assert_eq!(tx.message.header().num_required_signatures, 3);
    h.assert_refused(
        "a third signer",
        &SvmHarness::request(&req, &tx),
        scheme_exact_svm::reason::TOO_MANY_SIGNATURES,
        &[mint.address],
    )
    .await;
}

#[tokio::test]
async fn s54_fee_payer_not_ours_or_not_account_zero() {
    let (h, mint, req, ixs) = setup().await;
    let fp = fee_payer(&h, &req);
    let other_fp = h
        .fee_payers
        .iter()
        .map(Keypair::pubkey)
        .find(|k| *k != fp)
        .unwrap();
    let with_fee_payer = |k: Pubkey| {
        let mut r = req.clone();
        r.extra = Some(
            serde_json::value::to_raw_value(&serde_json::json!({"feePayer": k.to_string()}))
                .unwrap(),
        );
        r
    };
    let stranger = Pubkey::new_unique();
    let tx = signed(&h, &stranger, &ixs).await;
    h.assert_refused(
        "feePayer not ours",
        &SvmHarness::request(&with_fee_payer(stranger), &tx),
        scheme_exact_svm::reason::FEE_PAYER_NOT_MANAGED_BY_FACILITATOR,
        &[mint.address],
    )
    .await;
    // The buyer pays the fee and lists our key as a second signer.
    let mut ours_as_signer = ixs.clone();
    ours_as_signer[3]
        .accounts
        .push(AccountMeta::new_readonly(fp, true));
    let tx = h
        .transaction(&h.buyer.pubkey(), &ours_as_signer, &[&h.buyer])
        .await;
    h.assert_refused(
        "account 0 is the buyer",
        &SvmHarness::request(&req, &tx),
        scheme_exact_svm::reason::FEE_PAYER_MISMATCH,
        &[mint.address],
    )
    .await;
    // extra.feePayer names our other key.
    let tx = signed(&h, &fp, &ixs).await;
    h.assert_refused(
        "extra.feePayer is our other key",
        &SvmHarness::request(&with_fee_payer(other_fp), &tx),
        scheme_exact_svm::reason::FEE_PAYER_MISMATCH,
        &[mint.address],
    )
    .await;
}

#[tokio::test]
async fn s62_no_co_signed_bytes_leave_before_settle() {
    let h = SvmHarness::start().await;
    let mint = h.bed.spl_token_mint();
    let req = h.requirements(&mint, AMOUNT, None).await;
    let fp = fee_payer(&h, &req);
    let fp_key = h.fee_payers.iter().find(|k| k.pubkey() == fp).unwrap();
    // A valid payment and one whose simulation fails (the buyer holds no tokens).
    let broke = h.bed.new_token_holder(LAMPORTS_PER_SOL, 0).await;
    for (what, buyer, valid) in [
        ("valid", &h.buyer, true),
        ("failing simulation", &broke, false),
    ] {
        let request = h.pay_v2(buyer, &req).await;
        let x402_core::wire::PaymentPayload::V2(p) = &request.payment_payload else {
            unreachable!()
        };
        let tx: scheme_exact_svm::payload::ExactSvmPayload =
            serde_json::from_str(p.payload.get()).unwrap();
        let decoded = scheme_exact_svm::payload::decode_transaction(&tx.transaction).unwrap();
        let co_signature = fp_key.sign_message(&decoded.message_bytes).to_string();
        let v = h.verify(&request).await;
        assert_eq!(v.is_valid, valid, "{what}: {v:?}");
        let text = serde_json::to_string(&v).unwrap();
        assert!(
            !text.contains(&co_signature),
            "{what}: the verify response leaks the co-signature"
        );
        assert!(
            !text.contains(&tx.transaction[..40]),
            "{what}: the verify response carries the transaction"
        );
        if !valid {
            assert_eq!(
                v.invalid_reason,
                Some(scheme_exact_svm::reason::TRANSACTION_SIMULATION_FAILED)
            );
            let s = h.settle(&request).await;
            let text = serde_json::to_string(&s).unwrap();
            assert!(
                !text.contains(&co_signature),
                "{what}: the settle response leaks it"
            );
        }
    }
    assert_eq!(h.proxy.sends(), 0);
    assert!(
        h.store.is_empty(),
        "verify claims nothing; a refused settle releases its claim"
    );
}

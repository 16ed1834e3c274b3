//! S50, S51, S52, S55, S56, S61 and malformed payloads: the instruction layout (three required
//! instructions, then up to four Lighthouse or Memo ones), the compute-budget caps, durable
//! nonces, lookup tables and memo rules.
//!
//! The Lighthouse program is not on solana-test-validator and no build of it ships in a package
//! registry, so a payment carrying Lighthouse guards cannot land here: these tests show that every
//! layout the reference accepts passes the offline checks and reaches simulation (which then
//! fails, nothing sent); the scheme's unit tests (`layout_tests`) verify and settle those layouts
//! against a scripted chain.

use scheme_exact_svm::instructions::{
    COMPUTE_BUDGET_PROGRAM, associated_token_address, memo, set_compute_unit_limit,
    set_compute_unit_price,
};
use solana_instruction::{AccountMeta, Instruction};
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use x402_core::Reason;
use x402_core::wire::PaymentRequirementsV2;
use x402_tests::solana::exact::{BUYER_TOKENS, SvmHarness, request_v2};
use x402_tests::solana::{LAMPORTS_PER_SOL, TestMint, lighthouse};

use super::{AMOUNT, fee_payer, refuse_all, setup, signed};

#[tokio::test]
async fn s50_disallowed_instructions_and_shapes() {
    let (h, mint, req, ixs) = setup().await;
    let fp = fee_payer(&h, &req);
    let buyer = h.buyer.pubkey();
    let program = mint.token_program;
    let buyer_ata = mint.ata(&buyer);
    let at = |n: usize, extra: Instruction| {
        let mut v = ixs.clone();
        v.insert(n, extra);
        v
    };
    let replace = |n: usize, extra: Instruction| {
        let mut v = ixs.clone();
        v[n] = extra;
        v
    };
    let system_transfer = solana_system_interface::instruction::transfer(&fp, &buyer, 1_000_000);
    let create_ata = spl_associated_token_account_interface::instruction::create_associated_token_account_idempotent(
        &fp, &buyer, &mint.address, &program,
    );
    let approve = spl_token_interface::instruction::approve(
        &program,
        &buyer_ata,
        &Pubkey::new_unique(),
        &buyer,
        &[],
        AMOUNT,
    )
    .unwrap();
    let plain_transfer = spl_token_interface::instruction::transfer(
        &program,
        &buyer_ata,
        &mint.ata(&h.seller.pubkey()),
        &buyer,
        &[],
        AMOUNT,
    )
    .unwrap();
    let close =
        spl_token_interface::instruction::close_account(&program, &buyer_ata, &buyer, &buyer, &[])
            .unwrap();
    let heap = Instruction::new_with_bytes(COMPUTE_BUDGET_PROGRAM, &[1, 0, 0, 1, 0], vec![]);
    let mut not_token = ixs[2].clone();
    not_token.program_id = scheme_exact_svm::instructions::MEMO_PROGRAM;
    let reordered = vec![
        ixs[2].clone(),
        ixs[0].clone(),
        ixs[1].clone(),
        ixs[3].clone(),
    ];
    let mut eight = ixs.clone();
    eight.extend([memo(b"a"), memo(b"b"), memo(b"c"), memo(b"d")]);
    let mut sixth = ixs.clone();
    sixth.extend([memo(b"a"), system_transfer.clone()]);
    refuse_all(
        &h,
        &mint,
        &req,
        vec![
            (
                "system transfer from the fee payer",
                at(3, system_transfer.clone()),
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_FOURTH_INSTRUCTION,
            ),
            (
                "create ATA funded by the fee payer",
                at(3, create_ata),
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_FOURTH_INSTRUCTION,
            ),
            (
                "close account",
                at(4, close),
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_FIFTH_INSTRUCTION,
            ),
            (
                "sixth instruction",
                sixth,
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_SIXTH_INSTRUCTION,
            ),
            (
                "second TransferChecked",
                at(3, ixs[2].clone()),
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_FOURTH_INSTRUCTION,
            ),
            (
                "RequestHeapFrame",
                at(3, heap),
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_FOURTH_INSTRUCTION,
            ),
            (
                "Approve instead of the transfer",
                replace(2, approve),
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_NO_TRANSFER_INSTRUCTION,
            ),
            (
                "plain Transfer",
                replace(2, plain_transfer),
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_NO_TRANSFER_INSTRUCTION,
            ),
            (
                "TransferChecked data on another program",
                replace(2, not_token),
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_NO_TRANSFER_INSTRUCTION,
            ),
            (
                "reordered",
                reordered,
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_COMPUTE_LIMIT_INSTRUCTION,
            ),
            (
                "two instructions",
                ixs[..2].to_vec(),
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_LENGTH,
            ),
            (
                "eight instructions",
                eight,
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_LENGTH,
            ),
        ],
    )
    .await;
}

/// The guards a wallet adds around a payment of `AMOUNT` from `buyer`'s account of `mint`: its SOL
/// stays above a floor, its tokens drop by at most the price, and the seller's account exists.
fn guards(h: &SvmHarness, mint: &TestMint) -> [Instruction; 3] {
    let buyer = h.buyer.pubkey();
    [
        lighthouse::lamports_at_least(&buyer, LAMPORTS_PER_SOL / 2),
        lighthouse::tokens_at_least(&mint.ata(&buyer), BUYER_TOKENS - AMOUNT),
        lighthouse::lamports_at_least(&mint.ata(&h.seller.pubkey()), 1),
    ]
}

/// S50: one, two and three Lighthouse guards, with the memo first (the wallet appends its guards
/// to the reference client's transaction) or last, or without a memo — 4 to 7 instructions — pass
/// every offline check: verify and settle both go on to simulate, which fails because the program
/// is not on this validator (as the reference's facilitator would answer), and nothing is sent.
#[tokio::test]
async fn s50_lighthouse_guards_pass_the_layout_checks_up_to_simulation() {
    let (h, mint, req, ixs) = setup().await;
    assert!(
        h.bed.rpc().get_account(&lighthouse::PROGRAM).await.is_err(),
        "Lighthouse is deployed on the test validator now: settle these payments instead"
    );
    let fp = fee_payer(&h, &req);
    let guards = guards(&h, &mint);
    let required = &ixs[..3];
    let memo_ix = &ixs[3];
    for n in 1..=3 {
        let g = &guards[..n];
        let layouts: [(&str, Vec<Instruction>); 3] = [
            (
                "memo, then guards",
                [required, std::slice::from_ref(memo_ix), g].concat(),
            ),
            (
                "guards, then memo",
                [required, g, std::slice::from_ref(memo_ix)].concat(),
            ),
            ("guards, no memo", [required, g].concat()),
        ];
        for (layout, v) in layouts {
            let what = format!("{n} guards: {layout}");
            let tx = signed(&h, &fp, &v).await;
            let request = SvmHarness::request(&req, &tx);
            let before = h.snapshot(&[mint.address], &[]).await;
            let (simulated, _) = h.proxy.simulations();
            let verdict = h.verify(&request).await;
            assert!(!verdict.is_valid, "{what}: {verdict:?}");
            assert_eq!(
                verdict.invalid_reason,
                Some(scheme_exact_svm::reason::TRANSACTION_SIMULATION_FAILED),
                "{what}: refused before simulation: {verdict:?}"
            );
            assert!(
                verdict
                    .invalid_message
                    .as_deref()
                    .is_some_and(|m| m.contains("program that does not exist")),
                "{what}: the simulation failed for another reason: {verdict:?}"
            );
            assert_eq!(
                h.proxy.simulations().0,
                simulated + 1,
                "{what}: verify simulated once"
            );
            let s = h.settle(&request).await;
            assert!(!s.success, "{what}: {s:?}");
            assert_eq!(
                s.error_reason,
                Some(scheme_exact_svm::reason::TRANSACTION_SIMULATION_FAILED),
                "{what}: {s:?}"
            );
            assert!(s.transaction.is_empty(), "{what}: {s:?}");
            let after = h.snapshot(&[mint.address], &[]).await;
            assert_eq!(after.sends, 0, "{what}: sent");
            assert_eq!(after, before, "{what}: balances moved");
        }
    }
    // The same payment without guards settles: only the missing program stood in the way.
    let tx = signed(&h, &fp, &ixs).await;
    let s = h.settle(&SvmHarness::request(&req, &tx)).await;
    assert!(s.success, "{s:?}");
}

/// S49, S50: with Lighthouse guards, what the reference refuses is refused by verify and settle
/// with its reason and nothing is sent — eight instructions, an unknown program in each optional
/// position, a guard over a fee payer (ours: `fee_payer_in_instruction_accounts`).
#[tokio::test]
async fn s50_lighthouse_layouts_the_reference_refuses() {
    let (h, mint, req, ixs) = setup().await;
    let fp = fee_payer(&h, &req);
    let other_fp = h
        .fee_payers
        .iter()
        .map(Keypair::pubkey)
        .find(|k| *k != fp)
        .unwrap();
    let guards = guards(&h, &mint);
    let buyer = h.buyer.pubkey();
    // An instruction of a program outside the allow-list: the buyer paying the seller in SOL.
    let unknown = solana_system_interface::instruction::transfer(&buyer, &h.seller.pubkey(), 1);
    let with = |optional: &[Instruction]| [&ixs[..], optional].concat();
    let mut eight = with(&guards);
    eight.push(lighthouse::lamports_at_least(&buyer, 1));
    refuse_all(
        &h,
        &mint,
        &req,
        vec![
            (
                "eight instructions",
                eight,
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_LENGTH,
            ),
            (
                "unknown fourth, guards and memo after",
                [
                    &ixs[..3],
                    std::slice::from_ref(&unknown),
                    &guards[..2],
                    &ixs[3..],
                ]
                .concat(),
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_FOURTH_INSTRUCTION,
            ),
            (
                "unknown fifth",
                with(&[unknown.clone(), guards[0].clone()]),
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_FIFTH_INSTRUCTION,
            ),
            (
                "unknown sixth",
                with(&[guards[0].clone(), unknown.clone(), guards[1].clone()]),
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_SIXTH_INSTRUCTION,
            ),
            (
                "unknown seventh",
                with(&[guards[0].clone(), guards[1].clone(), unknown.clone()]),
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_SEVENTH_INSTRUCTION,
            ),
            (
                "a guard over the fee payer's SOL",
                with(&[guards[0].clone(), lighthouse::lamports_at_least(&fp, 1)]),
                scheme_exact_svm::reason::FEE_PAYER_IN_INSTRUCTION_ACCOUNTS,
            ),
            (
                "a guard over the other fee payer's SOL, seventh",
                with(&[
                    guards[0].clone(),
                    guards[1].clone(),
                    lighthouse::lamports_at_least(&other_fp, 1),
                ]),
                scheme_exact_svm::reason::FEE_PAYER_IN_INSTRUCTION_ACCOUNTS,
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn s51_the_destination_account_must_already_exist() {
    let (h, mint, req, _) = setup().await;
    let fp = fee_payer(&h, &req);
    let fresh = Pubkey::new_unique();
    let fresh_req = PaymentRequirementsV2 {
        pay_to: fresh.to_string(),
        ..req.clone()
    };
    let plan = h.plan(&mint, &fresh_req);
    let ixs = plan.instructions(&h.buyer.pubkey());
    let tx = signed(&h, &fp, &ixs).await;
    // As the reference answers it (its simulation fails): the transfer cannot execute.
    h.assert_refused(
        "no destination account",
        &SvmHarness::request(&fresh_req, &tx),
        scheme_exact_svm::reason::TRANSACTION_SIMULATION_FAILED,
        &[mint.address],
    )
    .await;
    for (what, funder, at, reason) in [
        (
            "create funded by the fee payer first",
            fp,
            2,
            scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_NO_TRANSFER_INSTRUCTION,
        ),
        (
            "create funded by the fee payer after",
            fp,
            3,
            scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_FOURTH_INSTRUCTION,
        ),
        (
            "create funded by the buyer",
            h.buyer.pubkey(),
            3,
            scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_FOURTH_INSTRUCTION,
        ),
    ] {
        let mut v = ixs.clone();
        v.insert(
            at,
            spl_associated_token_account_interface::instruction::create_associated_token_account_idempotent(
                &funder, &fresh, &mint.address, &mint.token_program,
            ),
        );
        let tx = signed(&h, &fp, &v).await;
        h.assert_refused(
            what,
            &SvmHarness::request(&fresh_req, &tx),
            reason,
            &[mint.address],
        )
        .await;
    }
    assert_eq!(
        h.bed
            .sol_balance(&associated_token_address(
                &fresh,
                &mint.address,
                &mint.token_program
            ))
            .await,
        0
    );
}

#[tokio::test]
async fn s52_compute_budget_griefing() {
    let (h, mint, req, ixs) = setup().await;
    let with = |limit: u32, price: u64| {
        let mut v = ixs.clone();
        v[0] = set_compute_unit_limit(limit);
        v[1] = set_compute_unit_price(price);
        v
    };
    let mut limit_with_account = ixs.clone();
    limit_with_account[0]
        .accounts
        .push(AccountMeta::new_readonly(Pubkey::new_unique(), false));
    let mut twice = ixs.clone();
    twice.insert(3, set_compute_unit_price(1));
    refuse_all(
        &h,
        &mint,
        &req,
        vec![
            (
                "price above 5 lamports/CU",
                with(20_000, 5_000_001),
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_COMPUTE_PRICE_INSTRUCTION_TOO_HIGH,
            ),
            (
                "limit 1.4M",
                with(1_400_000, 1),
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_COMPUTE_LIMIT_TOO_HIGH,
            ),
            (
                "200k CU at the maximum price",
                with(200_000, 5_000_000),
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_PRIORITY_FEE_TOO_HIGH,
            ),
            (
                "price instruction twice",
                twice,
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_FOURTH_INSTRUCTION,
            ),
            (
                "limit instruction with an account",
                limit_with_account,
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_COMPUTE_LIMIT_INSTRUCTION,
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn s55_durable_nonce_transactions_are_refused() {
    let (h, mint, req, ixs) = setup().await;
    let advance = solana_system_interface::instruction::advance_nonce_account(
        &Pubkey::new_unique(),
        &h.buyer.pubkey(),
    );
    let mut first = ixs.clone();
    first.insert(0, advance.clone());
    let mut last = ixs.clone();
    last.push(advance);
    refuse_all(
        &h,
        &mint,
        &req,
        vec![
            // The positional rule refuses them first, with the reference's strings.
            (
                "AdvanceNonceAccount first",
                first,
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_COMPUTE_LIMIT_INSTRUCTION,
            ),
            (
                "AdvanceNonceAccount last",
                last,
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_FIFTH_INSTRUCTION,
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn s56_address_lookup_tables_are_refused() {
    let (h, mint, req, ixs) = setup().await;
    let fp = fee_payer(&h, &req);
    let tx = signed(&h, &fp, &ixs).await;
    let solana_transaction::VersionedMessage::V0(mut message) = tx.message else {
        panic!("v0")
    };
    let static_keys = u8::try_from(message.account_keys.len()).unwrap();
    message
        .address_table_lookups
        .push(solana_sdk::message::v0::MessageAddressTableLookup {
            account_key: Pubkey::new_unique(),
            writable_indexes: vec![],
            readonly_indexes: vec![0],
        });
    // The memo names the looked-up account.
    message.instructions[3].accounts.push(static_keys);
    let tx = scheme_exact_svm::buyer::sign_message(
        solana_transaction::VersionedMessage::V0(message),
        &[&h.buyer],
    )
    .unwrap();
    h.assert_refused(
        "a lookup table",
        &SvmHarness::request(&req, &tx),
        scheme_exact_svm::reason::ADDRESS_LOOKUP_TABLES_NOT_SUPPORTED,
        &[mint.address],
    )
    .await;
}

#[tokio::test]
async fn s61_memo_rules() {
    let h = SvmHarness::start().await;
    let mint = h.bed.spl_token_mint();
    let req = h.requirements(&mint, AMOUNT, Some("inv-1")).await;
    let ixs = h.plan(&mint, &req).instructions(&h.buyer.pubkey());
    assert_eq!(ixs[3].data, b"inv-1");
    let fp = fee_payer(&h, &req);
    let tx = signed(&h, &fp, &ixs).await;
    assert!(
        h.verify(&SvmHarness::request(&req, &tx)).await.is_valid,
        "the right memo"
    );
    let mut two = ixs.clone();
    two.push(memo(b"inv-1"));
    let mut other = ixs.clone();
    other[3] = memo(b"inv-2");
    let mut binary = ixs.clone();
    binary[3] = memo(&[0xff, 0xfe, 0x00]);
    refuse_all(
        &h,
        &mint,
        &req,
        vec![
            (
                "no memo",
                ixs[..3].to_vec(),
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_MEMO_COUNT,
            ),
            (
                "two memos",
                two,
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_MEMO_COUNT,
            ),
            (
                "another memo",
                other,
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_MEMO_MISMATCH,
            ),
            (
                "non-UTF-8 memo",
                binary,
                scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_MEMO_MISMATCH,
            ),
        ],
    )
    .await;
    let long = PaymentRequirementsV2 {
        extra: Some(
            serde_json::value::to_raw_value(
                &serde_json::json!({"feePayer": fp.to_string(), "memo": "m".repeat(257)}),
            )
            .unwrap(),
        ),
        ..req.clone()
    };
    h.assert_refused(
        "a memo over 256 bytes",
        &SvmHarness::request(&long, &tx),
        Reason::INVALID_PAYMENT_REQUIREMENTS,
        &[mint.address],
    )
    .await;
}

#[tokio::test]
async fn malformed_payloads_are_answers_never_panics() {
    let (h, mint, req, _) = setup().await;
    let undecodable =
        scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_COULD_NOT_BE_DECODED;
    let big = "A".repeat(4000);
    for (what, payload) in [
        ("empty", serde_json::json!({"transaction": ""})),
        ("not base64", serde_json::json!({"transaction": "%%%%"})),
        (
            "url-safe base64",
            serde_json::json!({"transaction": "AQ-_"}),
        ),
        (
            "four zero bytes",
            serde_json::json!({"transaction": "AAAAAA=="}),
        ),
        ("oversized", serde_json::json!({"transaction": big})),
        ("a number", serde_json::json!({"transaction": 5})),
        ("no transaction", serde_json::json!({})),
        ("an array", serde_json::json!([])),
    ] {
        let request = request_v2(&req, serde_json::value::to_raw_value(&payload).unwrap());
        h.assert_refused(what, &request, undecodable.clone(), &[mint.address])
            .await;
    }
}

/// S4: requirements asking for 0, paid for 0 by the buyer's own client: a transfer of nothing that
/// costs our fee and that anyone could repeat. Refused before any chain call; nothing is sent.
#[tokio::test]
async fn s4_a_zero_price_is_refused() {
    let (h, mint, req, _) = setup().await;
    let zero = PaymentRequirementsV2 {
        amount: 0u64.into(),
        ..req.clone()
    };
    let request = h.pay_v2(&h.buyer, &zero).await;
    h.assert_refused(
        "a price of 0",
        &request,
        Reason::INVALID_PAYMENT_REQUIREMENTS,
        &[mint.address],
    )
    .await;
}

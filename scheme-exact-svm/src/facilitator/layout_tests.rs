//! The instruction layout (module docs of `inspect`): every layout the reference's 2.27
//! facilitator accepts — up to four Lighthouse or Memo instructions after the transfer in v2,
//! three in v1, in any order — passes the offline checks and verifies and settles against the
//! scripted chain; everything else is refused with the reference's reason, and an optional
//! instruction that names a fee payer with ours. The transactions are the x402-spec §6.3 vector's
//! (same keys, mint and blockhash) with Lighthouse assertions built as a wallet adds them.
#![cfg(feature = "buyer")] // the transactions are signed with the buyer role

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use solana_instruction::{AccountMeta, Instruction};
use solana_keypair::Keypair;
use solana_message::Hash;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use x402_core::wire::VerifyRequest;
use x402_core::{FacilitatorRole, MemoryStore, Network, PaymentContext, Reason};

use super::fake_chain::{Chain, mint_data, token_account_data, token_program_account};
use super::tests::{FEE_PAYER, PAY_TO, client, fee_payer, good_extra, requirements, v1, v2};
use super::{Facilitator, Policy};
use crate::buyer::{BuyerOptions, PaymentPlan, sign_partially};
use crate::instructions::{
    COMPUTE_BUDGET_PROGRAM, LIGHTHOUSE_PROGRAM, SYSTEM_PROGRAM, TOKEN_PROGRAM, USDC_DEVNET, memo,
    set_compute_unit_price,
};
use crate::payload::encode_transaction;
use crate::reason;
use crate::rpc::Rpc;

/// The second fee payer of the test facilitator (`tests::facilitator` has the same two).
fn other_fee_payer() -> Keypair {
    Keypair::new_from_array([9; 32])
}

/// Lighthouse instructions as wallets add them: assertions over the buyer's own accounts (the
/// borsh encoding of the program's instructions: discriminator, log level, assertion).
mod lighthouse {
    use super::*;

    const MEMORY_WRITE: u8 = 0;
    const ASSERT_ACCOUNT_INFO: u8 = 5;
    const ASSERT_TOKEN_ACCOUNT: u8 = 9;
    const LOG_SILENT: u8 = 0;
    /// `AccountInfoAssertion::Lamports`.
    const LAMPORTS: u8 = 0;
    /// `TokenAccountAssertion::Amount`.
    const AMOUNT: u8 = 2;
    /// `IntegerOperator::GreaterThanOrEqual`.
    const AT_LEAST: u8 = 4;

    fn assertion(kind: u8, target: Pubkey, field: u8, value: u64) -> Instruction {
        let mut data = vec![kind, LOG_SILENT, field];
        data.extend_from_slice(&value.to_le_bytes());
        data.push(AT_LEAST);
        Instruction::new_with_bytes(
            LIGHTHOUSE_PROGRAM,
            &data,
            vec![AccountMeta::new_readonly(target, false)],
        )
    }

    /// `AssertAccountInfo`: `target` keeps at least `lamports` (a wallet's guard on its SOL).
    pub(super) fn lamports_at_least(target: Pubkey, lamports: u64) -> Instruction {
        assertion(ASSERT_ACCOUNT_INFO, target, LAMPORTS, lamports)
    }

    /// `AssertTokenAccount`: the token account `target` keeps at least `amount`.
    pub(super) fn tokens_at_least(target: Pubkey, amount: u64) -> Instruction {
        assertion(ASSERT_TOKEN_ACCOUNT, target, AMOUNT, amount)
    }

    /// A `MemoryWrite` paid by `payer` (the instruction that moves lamports: the rent of its
    /// memory account, drawn from the payer it names as a signer).
    pub(super) fn memory_write(payer: Pubkey, source: Pubkey) -> Instruction {
        let (memory, bump) =
            Pubkey::find_program_address(&[b"memory", payer.as_ref(), &[0]], &LIGHTHOUSE_PROGRAM);
        Instruction::new_with_bytes(
            LIGHTHOUSE_PROGRAM,
            &[MEMORY_WRITE, 0, bump, 0, 0],
            vec![
                AccountMeta::new_readonly(LIGHTHOUSE_PROGRAM, false),
                AccountMeta::new_readonly(SYSTEM_PROGRAM, false),
                AccountMeta::new(payer, true),
                AccountMeta::new(memory, false),
                AccountMeta::new_readonly(source, false),
            ],
        )
    }
}

fn plan() -> PaymentPlan {
    PaymentPlan {
        fee_payer: fee_payer().pubkey(),
        token_program: TOKEN_PROGRAM,
        mint: USDC_DEVNET,
        decimals: 6,
        pay_to: PAY_TO.parse().unwrap(),
        amount: 1000,
        memo: b"0123456789abcdef0123456789abcdef".to_vec(),
        options: BuyerOptions::default(),
    }
}

/// The three required instructions of the vector.
fn required() -> Vec<Instruction> {
    let mut ixs = plan().instructions(&client().pubkey());
    ixs.truncate(3);
    ixs
}

/// The vector's memo.
fn the_memo() -> Instruction {
    memo(&plan().memo)
}

/// The four Lighthouse guards a wallet could add around the payment.
fn guards() -> [Instruction; 4] {
    let buyer = client().pubkey();
    let source = plan().transfer(&buyer).source;
    [
        lighthouse::lamports_at_least(buyer, 1_000_000),
        lighthouse::tokens_at_least(source, 999_000),
        lighthouse::lamports_at_least(source, 2_039_280),
        lighthouse::tokens_at_least(source, 0),
    ]
}

/// `optional` written as letters: `L` the next guard, `M` the memo.
fn optional(layout: &str) -> Vec<Instruction> {
    let mut guards = guards().into_iter();
    layout
        .chars()
        .map(|c| match c {
            'L' => guards.next().expect("at most four guards"),
            'M' => the_memo(),
            _ => panic!("{layout}: L or M"),
        })
        .collect()
}

/// The vector's required instructions then `optional`, signed by the buyer.
fn transaction(optional: &[Instruction]) -> String {
    let mut ixs = required();
    ixs.extend_from_slice(optional);
    let tx = sign_partially(
        &fee_payer().pubkey(),
        &ixs,
        Hash::new_from_array([1; 32]),
        &[&client()],
    )
    .unwrap();
    encode_transaction(&tx).unwrap()
}

fn memo_extra(memo: &str) -> String {
    format!(r#"{{"feePayer":"{FEE_PAYER}","memo":"{memo}"}}"#)
}

fn request(optional: &[Instruction]) -> VerifyRequest {
    v2(
        &requirements("1000", PAY_TO, &good_extra()),
        &transaction(optional),
    )
}

fn facilitator(url: &str) -> Facilitator {
    Facilitator::new(
        Network::parse(super::tests::DEVNET).unwrap(),
        Rpc::new(&[url.to_owned()], Duration::from_secs(5)).unwrap(),
        vec![fee_payer(), other_fee_payer()],
        Arc::new(MemoryStore::new()),
        Policy {
            poll_interval: Duration::from_millis(10),
            resend_interval: Duration::from_millis(30),
            confirm_timeout: Duration::from_secs(2),
            ..Policy::default()
        },
    )
    .unwrap()
}

/// A facilitator whose RPC is never reached (the offline checks only).
fn offline() -> Facilitator {
    facilitator("http://127.0.0.1:1")
}

fn outcome(f: &Facilitator, request: &VerifyRequest) -> Result<(), Reason> {
    let ctx = PaymentContext::of(request).unwrap();
    f.inspect(&ctx).map(|_| ()).map_err(|r| r.rejection.reason)
}

#[test]
fn every_layout_the_reference_accepts_passes_the_offline_checks() {
    let f = offline();
    // No memo asked for: Lighthouse and memos in any order and mix, up to four after the
    // transfer (several memos too: the reference counts them only for `extra.memo`).
    for layout in [
        "", "M", "L", "LM", "ML", "LL", "LLM", "MLL", "LML", "LLL", "LLLM", "MLLL", "LMLL", "LLML",
        "LLLL", "MM", "MMMM", "LMLM",
    ] {
        assert_eq!(
            outcome(&f, &request(&optional(layout))),
            Ok(()),
            "v2 {layout:?}"
        );
        let v1_ok = layout.len() <= 3;
        let v1 = outcome(&f, &v1(&transaction(&optional(layout))));
        if v1_ok {
            assert_eq!(v1, Ok(()), "v1 {layout:?}");
        } else {
            assert_eq!(
                v1,
                Err(reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_LENGTH),
                "v1 stops at six instructions: {layout:?}"
            );
        }
    }
    // A memo asked for: exactly one, wherever it stands among the guards.
    let asked = requirements(
        "1000",
        PAY_TO,
        &memo_extra("0123456789abcdef0123456789abcdef"),
    );
    for layout in ["M", "LM", "ML", "LLM", "LML", "MLL", "LLLM", "MLLL", "LLML"] {
        let request = v2(&asked, &transaction(&optional(layout)));
        assert_eq!(outcome(&f, &request), Ok(()), "memo asked, {layout:?}");
    }
    for (layout, why) in [
        ("LLLL", reason::INVALID_EXACT_SVM_PAYLOAD_MEMO_COUNT),
        ("LL", reason::INVALID_EXACT_SVM_PAYLOAD_MEMO_COUNT),
        ("MLLM", reason::INVALID_EXACT_SVM_PAYLOAD_MEMO_COUNT),
    ] {
        let request = v2(&asked, &transaction(&optional(layout)));
        assert_eq!(outcome(&f, &request), Err(why), "memo asked, {layout:?}");
    }
}

#[test]
fn every_other_layout_is_refused_with_the_references_reason() {
    let f = offline();
    let fp = fee_payer().pubkey();
    let buyer = client().pubkey();
    let unknown = || Instruction::new_with_bytes(Pubkey::new_unique(), &[1, 2, 3], vec![]);
    let at = |layout: &str, n: usize, ix: Instruction| {
        let mut v = optional(layout);
        v.insert(n, ix);
        v
    };
    let mut eight = optional("LLLL");
    eight.push(the_memo());
    let cases: Vec<(&str, Vec<Instruction>, Reason)> = vec![
        (
            "eight instructions",
            eight,
            reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_LENGTH,
        ),
        (
            "nine instructions",
            optional("MLLLL").into_iter().chain([the_memo()]).collect(),
            reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_LENGTH,
        ),
        (
            "unknown fourth",
            at("LLM", 0, unknown()),
            reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_FOURTH_INSTRUCTION,
        ),
        (
            "unknown fifth",
            at("LLM", 1, unknown()),
            reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_FIFTH_INSTRUCTION,
        ),
        (
            "unknown sixth",
            at("LLM", 2, unknown()),
            reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_SIXTH_INSTRUCTION,
        ),
        (
            "unknown seventh",
            at("LLM", 3, unknown()),
            reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_SEVENTH_INSTRUCTION,
        ),
        (
            "a compute-budget instruction seventh",
            at("MLL", 3, set_compute_unit_price(1)),
            reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_SEVENTH_INSTRUCTION,
        ),
        (
            "a second transfer seventh",
            at("LML", 3, required()[2].clone()),
            reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_SEVENTH_INSTRUCTION,
        ),
        (
            "an unknown program naming the fee payer fifth",
            at(
                "L",
                1,
                Instruction::new_with_bytes(
                    COMPUTE_BUDGET_PROGRAM,
                    &[1],
                    vec![AccountMeta::new(fp, true)],
                ),
            ),
            reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_FIFTH_INSTRUCTION,
        ),
        (
            "a guard over the fee payer's lamports",
            at("LLM", 3, lighthouse::lamports_at_least(fp, 1)),
            reason::FEE_PAYER_IN_INSTRUCTION_ACCOUNTS,
        ),
        (
            "a guard over the other fee payer's lamports",
            at(
                "M",
                0,
                lighthouse::lamports_at_least(other_fee_payer().pubkey(), 1),
            ),
            reason::FEE_PAYER_IN_INSTRUCTION_ACCOUNTS,
        ),
        (
            "a memory write paid by the fee payer",
            at("M", 1, lighthouse::memory_write(fp, buyer)),
            reason::FEE_PAYER_IN_INSTRUCTION_ACCOUNTS,
        ),
        (
            "a memory write reading the fee payer",
            at("M", 1, lighthouse::memory_write(buyer, fp)),
            reason::FEE_PAYER_IN_INSTRUCTION_ACCOUNTS,
        ),
        (
            "a memo naming the fee payer after the guards",
            at("LLL", 3, {
                let mut m = the_memo();
                m.accounts.push(AccountMeta::new_readonly(fp, false));
                m
            }),
            reason::FEE_PAYER_IN_INSTRUCTION_ACCOUNTS,
        ),
    ];
    for (what, optional, why) in cases {
        assert_eq!(outcome(&f, &request(&optional)), Err(why), "{what}");
    }
    // A memory write the buyer pays moves only the buyer's lamports: the reference accepts it.
    assert_eq!(
        outcome(
            &f,
            &request(&at("M", 0, lighthouse::memory_write(buyer, buyer)))
        ),
        Ok(())
    );
}

/// A chain where the vector's mint, destination and source exist.
fn chain() -> Arc<Chain> {
    let pay_to: Pubkey = PAY_TO.parse().unwrap();
    Chain::new(vec![
        token_program_account(&mint_data(6)),
        token_program_account(&token_account_data(&USDC_DEVNET, &pay_to, 0)),
        token_program_account(&token_account_data(
            &USDC_DEVNET,
            &client().pubkey(),
            1_000_000,
        )),
    ])
}

#[tokio::test]
async fn one_two_and_three_guards_with_and_without_a_memo_verify_and_settle() {
    for layout in ["L", "LL", "LLL", "LM", "LLM", "LLLM", "ML", "MLLL", "LMLL"] {
        let chain = chain();
        let f = facilitator(&chain.endpoint(false));
        let request = request(&optional(layout));
        let ctx = PaymentContext::of(&request).unwrap();
        let v = FacilitatorRole::verify(&f, &ctx).await.unwrap();
        assert_eq!(v.result, Ok(()), "{layout}: verify");
        assert_eq!(
            v.payer.as_deref(),
            Some(client().pubkey().to_string().as_str())
        );
        let s = FacilitatorRole::settle(&f, &ctx).await.unwrap();
        assert_eq!(s.result, Ok(()), "{layout}: settle");
        assert!(s.transaction.is_some(), "{layout}");
        assert_eq!(chain.sends.load(Ordering::SeqCst), 1, "{layout}: one send");
        assert_eq!(chain.called("simulateTransaction"), 2, "{layout}");
    }
}

#[tokio::test]
async fn a_refused_layout_is_refused_by_settle_and_nothing_is_sent() {
    let fp = fee_payer().pubkey();
    let mut eight = optional("LLLL");
    eight.push(the_memo());
    let mut unknown_seventh = optional("LLM");
    unknown_seventh.push(Instruction::new_with_bytes(
        Pubkey::new_unique(),
        &[0],
        vec![],
    ));
    let mut guard_on_fee_payer = optional("LM");
    guard_on_fee_payer.push(lighthouse::lamports_at_least(fp, 1));
    for (what, optional, why) in [
        (
            "eight instructions",
            eight,
            reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_LENGTH,
        ),
        (
            "unknown seventh",
            unknown_seventh,
            reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_SEVENTH_INSTRUCTION,
        ),
        (
            "a guard over the fee payer",
            guard_on_fee_payer,
            reason::FEE_PAYER_IN_INSTRUCTION_ACCOUNTS,
        ),
    ] {
        let chain = chain();
        let f = facilitator(&chain.endpoint(false));
        let request = request(&optional);
        let ctx = PaymentContext::of(&request).unwrap();
        let v = FacilitatorRole::verify(&f, &ctx).await.unwrap();
        assert_eq!(v.result.map_err(|r| r.reason), Err(why.clone()), "{what}");
        let s = FacilitatorRole::settle(&f, &ctx).await.unwrap();
        assert_eq!(s.result.map_err(|r| r.reason), Err(why), "{what}");
        assert_eq!(s.transaction, None, "{what}");
        assert!(
            chain.calls.lock().unwrap().is_empty(),
            "{what}: no RPC call"
        );
    }
}

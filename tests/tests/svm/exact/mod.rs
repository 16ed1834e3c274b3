//! `exact` on Solana on the shared solana-test-validator:
//!
//! * `payments` — the buyer's transaction → verify → settle moves exactly the amount for v1 and
//!   v2 under SPL Token and Token-2022; at most once however many settles race; RPC fallback;
//!   the configuration builder's start-up checks; `/supported`, signers and status.
//! * `bounds` — bounded confirmation: a definite failure once the blockhash expires, pending at
//!   the time bound (threat-model R14).
//! * `durable` — the settlement store: a pending settlement reconciled from the chain and its
//!   success delivered once (R10), verify refusing a recorded payment (S78), nothing sent before
//!   the intent is written ahead (S81).
//! * `cooldown` — a payer whose transaction landed with an error refused `payer_throttled` until
//!   its cool-down ends.
//! * `replicas` — two facilitators sharing one PostgreSQL store and the fee payers: one payment
//!   sent 20 times across both lands once (S25).
//! * `fee_payer`, `layout`, `chain` — fee-payer safety (threat-model S48–S62): each attack is
//!   refused by verify and by settle with its reason, and nothing moved and nothing was sent (the
//!   fee payers' SOL, the buyer's and seller's tokens, the proxy's send count) — except S59, where
//!   a transaction that lands with an error costs exactly its capped fee.
//! * `priority` — the priority fee stays below the payment's value (S52 by value).
//! * `endpoints` — the send's preflight at `processed` (S74); an endpoint that failed serves our
//!   chain again (genesis hash) before it is used.
//!
//! `bounds` sorts first in the binary on purpose: its expiry test waits for a blockhash to expire
//! (about a minute of validator time) while the other tests run beside it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bounds;
mod chain;
mod cooldown;
mod durable;
mod endpoints;
mod fee_payer;
mod layout;
mod payments;
mod priority;
mod replicas;

use solana_instruction::Instruction;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;
use x402_core::Reason;
use x402_core::wire::PaymentRequirementsV2;
use x402_tests::solana::TestMint;
use x402_tests::solana::exact::SvmHarness;

pub(crate) const AMOUNT: u64 = 1_000;
/// Two signatures at 5000 lamports plus the priority fee of 20,000 CU at 1 µ-lamport.
pub(crate) const TX_FEE: u64 = 10_001;

/// A harness, the SPL Token mint, requirements for it and the reference client's instructions.
pub(crate) async fn setup() -> (
    SvmHarness,
    TestMint,
    PaymentRequirementsV2,
    Vec<Instruction>,
) {
    let h = SvmHarness::start().await;
    let mint = h.bed.spl_token_mint();
    let req = h.requirements(&mint, AMOUNT, None).await;
    let ixs = h.plan(&mint, &req).instructions(&h.buyer.pubkey());
    (h, mint, req, ixs)
}

pub(crate) fn fee_payer(h: &SvmHarness, req: &PaymentRequirementsV2) -> Pubkey {
    h.plan(&h.bed.spl_token_mint(), req).fee_payer
}

pub(crate) async fn signed(
    h: &SvmHarness,
    fee_payer: &Pubkey,
    ixs: &[Instruction],
) -> VersionedTransaction {
    h.transaction(fee_payer, ixs, &[&h.buyer]).await
}

/// Checks each `(what, instructions, reason)` paid by the advertised fee payer.
pub(crate) async fn refuse_all(
    h: &SvmHarness,
    mint: &TestMint,
    req: &PaymentRequirementsV2,
    cases: Vec<(&str, Vec<Instruction>, Reason)>,
) {
    let fp = fee_payer(h, req);
    for (what, ixs, reason) in cases {
        let tx = signed(h, &fp, &ixs).await;
        h.assert_refused(
            what,
            &SvmHarness::request(req, &tx),
            reason,
            &[mint.address],
        )
        .await;
    }
}

//! The offline checks, in order, first failure wins. Steps 1–16 are the reference's
//! (x402-spec §3.4; the TypeScript 2.27 facilitator's layout and reason strings); the others are
//! the fee-payer safety rules of threat-model S48–S58 the references leave out. Every index is
//! taken from a message that already sanitized, and read with `get`, so malformed input is a
//! reason, never a panic.
//!
//! # The layout
//!
//! | position | instruction |
//! |---|---|
//! | 0 | ComputeBudget `SetComputeUnitLimit`, no accounts |
//! | 1 | ComputeBudget `SetComputeUnitPrice`, no accounts |
//! | 2 | `TransferChecked` on SPL Token or Token-2022, exactly its four accounts |
//! | 3–6 | optional: each one Lighthouse (`L2TExMFK…`, the assertions wallets append) or Memo |
//!
//! So 3 to 7 instructions in v2; v1 stops at 6, as the reference's v1 facilitator does. The
//! optional instructions come in any order and mix (a memo need not be last, Lighthouse need not
//! follow it: wallets insert theirs where they like). Memos are counted only when `extra.memo` is
//! set: then exactly one, with exactly its bytes. Nothing else is allowed anywhere: a second
//! compute-budget or transfer instruction, an ATA creation, a system instruction.
//!
//! No optional instruction can touch the fee payer: none may name it (S49, whatever its role,
//! even a read-only assertion target), and a program can read, write or debit only the accounts an
//! instruction names, so the fee payer pays the fees and nothing else. Lighthouse's assertions only
//! read; its memory writes draw rent from a payer they name as a signer, so from the buyer (or
//! another signer the policy admits, S53), never from the fee payer.
//!
//! # The checks
//!
//! | step | check | reason |
//! |---|---|---|
//! | 1 | scheme `exact` | `invalid_exact_svm_unsupported_scheme` |
//! | 2 | network | `invalid_exact_svm_network_mismatch` |
//! | 3 | `extra.feePayer` is a string | `invalid_exact_svm_payload_missing_fee_payer` |
//! | 4 | it is one of our fee payers | `invalid_exact_svm_fee_payer_not_managed_by_facilitator` |
//! | – | asset allowed, requirements readable, amount > 0 | `unsupported_asset`, `invalid_payment_requirements` |
//! | 5 | decodes (≤ 1232 bytes, canonical, sanitizes) | `…_transaction_could_not_be_decoded` |
//! | S53 | at most `max_signatures` signers | `invalid_exact_svm_payload_excessive_signers` |
//! | S54 | account 0 is `extra.feePayer` | `invalid_exact_svm_fee_payer_mismatch` |
//! | S58 | every non-fee-payer signature verifies | `invalid_exact_svm_payload_signature_invalid` |
//! | S56 | no address lookup tables | `invalid_exact_svm_smart_wallet_alt_resolution_not_available` |
//! | 6 | 3–7 instructions (v1: 3–6) | `…_transaction_instructions_length` |
//! | 7 | ix 0 `SetComputeUnitLimit`, ≤ cap | `…_compute_limit_instruction(_too_high)` |
//! | 8, S52 | ix 1 `SetComputeUnitPrice`, ≤ cap; priority fee ≤ cap, then ≤ the payment's value (`priority`) | `…_compute_price_instruction(_too_high)`, `…_priority_fee_too_high`, by value `…_compute_price_instruction_too_high` |
//! | 9–10 | ix 2 `TransferChecked` on Token / Token-2022 | `…_no_transfer_instruction` |
//! | 11, S48 | authority / source not ours | `…_transaction_fee_payer_transferring_funds` |
//! | 12–14 | mint, destination = ATA(payTo), amount exactly | `…_mint_mismatch`, `…_recipient_mismatch`, `…_amount_mismatch` |
//! | 15 | ix 3–6 Lighthouse or Memo only | `…_unknown_{fourth,fifth,sixth,seventh}_instruction` |
//! | S55 | no `AdvanceNonceAccount` (already refused by 7 and 15) | `invalid_exact_svm_payload_durable_nonce` |
//! | S49 | no fee payer in any instruction's accounts | `invalid_exact_svm_smart_wallet_fee_payer_not_isolated` |
//! | – | transfer has exactly its 4 accounts | `…_no_transfer_instruction` |
//! | 16 | memo count and bytes | `…_memo_count`, `…_memo_mismatch` |
//! | – | the transfer authority signs (else the transfer fails on chain) | `invalid_exact_svm_transaction_simulation_failed` |
//!
//! Where a step of ours and one of the reference's both apply, they run in the reference's order
//! (its signature check right after the fee-payer check, its positional rule before anything we
//! add), so one payload gets one answer from both; docs/reasons.md lists where we answer
//! differently and why.

use solana_message::compiled_instruction::CompiledInstruction;
use solana_pubkey::Pubkey;
use solana_transaction::versioned::VersionedTransaction;
use x402_core::{Network, PaymentContext, PaymentId, Reason, Rejection, X402Version};

use super::{Policy, Refusal};
use crate::instructions::{
    COMPUTE_BUDGET_PROGRAM, LIGHTHOUSE_PROGRAM, MAX_MEMO_BYTES, MEMO_PROGRAM, TransferChecked,
    associated_token_address_remembered, is_advance_nonce, is_token_program,
    parse_compute_unit_limit, parse_compute_unit_price, parse_transfer_checked,
    priority_fee_lamports,
};
use crate::payload::{self, DecodedTransaction};
use crate::{Extra, SCHEME};

/// The kind of this scheme's payment identities ([`Inspection::payment_id`]).
pub(crate) use crate::payload::PAYMENT_KIND;

/// The instructions every payment has: the two compute-budget instructions and the transfer.
const REQUIRED_INSTRUCTIONS: usize = 3;

/// The most instructions a payment of `version` may have: the reference's v2 facilitator allows
/// four optional ones after the transfer, its v1 facilitator three.
fn max_instructions(version: X402Version) -> usize {
    match version {
        X402Version::V1 => 6,
        X402Version::V2 => 7,
    }
}

/// The reason for an instruction of an unknown program at `position` (from 0), as the reference
/// names them.
fn unknown_instruction(position: usize) -> Reason {
    match position {
        3 => crate::reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_FOURTH_INSTRUCTION,
        4 => crate::reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_FIFTH_INSTRUCTION,
        5 => crate::reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_SIXTH_INSTRUCTION,
        6 => crate::reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_SEVENTH_INSTRUCTION,
        _ => crate::reason::INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_OPTIONAL_INSTRUCTION,
    }
}

/// A payment that passed the offline checks.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The transaction as the buyer signed it (fee-payer slot not yet filled).
    pub tx: VersionedTransaction,
    /// The serialized message.
    pub message_bytes: Vec<u8>,
    /// The fee payer (account 0, one of ours).
    pub fee_payer: Pubkey,
    /// The transfer.
    pub transfer: TransferChecked,
    /// The recipient wallet.
    pub pay_to: Pubkey,
    /// The compute-unit limit.
    pub compute_unit_limit: u32,
    /// The compute-unit price in micro-lamports.
    pub compute_unit_price: u64,
}

impl Inspection {
    /// The payer: the transfer authority.
    pub fn payer(&self) -> Pubkey {
        self.transfer.authority
    }

    /// The payment identity: the SHA-256 of the message bytes on `network` (so a v1 and a v2
    /// settle of one transaction, or two encodings of it, are one payment).
    pub fn payment_id(&self, network: &Network) -> PaymentId {
        crate::payload::payment_id(network, &self.message_bytes)
    }
}

fn reject(reason: Reason) -> Rejection {
    Rejection::new(reason)
}

fn reject_with(reason: Reason, message: impl Into<String>) -> Rejection {
    Rejection::with_message(reason, message)
}

/// Runs the offline checks (see the module documentation) for a facilitator on `network` whose
/// fee payers are `fee_payers`.
pub fn inspect(
    ctx: &PaymentContext<'_>,
    network: &Network,
    fee_payers: &[Pubkey],
    policy: &Policy,
) -> Result<Inspection, Refusal> {
    let refuse = |rejection: Rejection| Refusal {
        payer: None,
        rejection,
    };
    let req = &ctx.requirements;
    if ctx.payload.scheme != SCHEME || req.scheme != SCHEME {
        return Err(refuse(reject(
            crate::reason::INVALID_EXACT_SVM_UNSUPPORTED_SCHEME,
        )));
    }
    if !ctx.network_matches() || req.network != *network {
        return Err(refuse(reject(
            crate::reason::INVALID_EXACT_SVM_NETWORK_MISMATCH,
        )));
    }
    let extra = Extra::read(req).map_err(refuse)?;
    let Some(fee_payer) = extra.fee_payer.as_deref() else {
        return Err(refuse(reject(
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_MISSING_FEE_PAYER,
        )));
    };
    let fee_payer = match fee_payer.parse::<Pubkey>() {
        Ok(k) if fee_payers.contains(&k) => k,
        _ => {
            return Err(refuse(reject(
                crate::reason::FEE_PAYER_NOT_MANAGED_BY_FACILITATOR,
            )));
        }
    };
    let bad_requirements = |what: &str| {
        refuse(reject_with(
            Reason::INVALID_PAYMENT_REQUIREMENTS,
            format!("{what} is not a base58 public key"),
        ))
    };
    let asset: Pubkey = req.asset.parse().map_err(|_| bad_requirements("asset"))?;
    if let Some(allowed) = &policy.assets
        && !allowed.contains(&asset)
    {
        return Err(refuse(reject_with(
            Reason::UNSUPPORTED_ASSET,
            format!("mint {asset} is not accepted on {network}"),
        )));
    }
    let pay_to: Pubkey = req.pay_to.parse().map_err(|_| bad_requirements("payTo"))?;
    // A transfer of nothing still costs our fee, and anyone could repeat it (threat-model S4).
    if req.amount.is_zero() {
        return Err(refuse(reject_with(
            Reason::INVALID_PAYMENT_REQUIREMENTS,
            "exact moves a positive amount; the requirements ask for 0",
        )));
    }
    if extra
        .memo
        .as_ref()
        .is_some_and(|m| m.len() > MAX_MEMO_BYTES)
    {
        return Err(refuse(reject_with(
            Reason::INVALID_PAYMENT_REQUIREMENTS,
            format!("extra.memo is longer than {MAX_MEMO_BYTES} bytes"),
        )));
    }
    let decoded = payload::parse(ctx.payload.payload)
        .and_then(|p| payload::decode_transaction(&p.transaction))
        .map_err(refuse)?;
    let payer_hint = payer_hint(&decoded);
    check_transaction(
        decoded,
        fee_payer,
        fee_payers,
        policy,
        Expected {
            asset,
            pay_to,
            amount: req.amount.to_u64(),
            memo: extra.required_memo(),
            max_instructions: max_instructions(ctx.payload.version),
        },
    )
    .map_err(|rejection| Refusal {
        payer: payer_hint.map(|p| p.to_string()),
        rejection,
    })
}

/// What the requirements ask of the transaction.
struct Expected<'a> {
    asset: Pubkey,
    pay_to: Pubkey,
    amount: Option<u64>,
    memo: Option<&'a str>,
    /// The most instructions the protocol version allows.
    max_instructions: usize,
}

/// The payer a payload names, read without verifying it: the transfer authority of its
/// transaction, when it decodes.
pub(super) fn payer_of(raw: &serde_json::value::RawValue) -> Option<Pubkey> {
    let decoded = payload::parse(raw)
        .and_then(|p| payload::decode_transaction(&p.transaction))
        .ok()?;
    payer_hint(&decoded)
}

/// The authority (account 3) of the first token-program instruction, as the reference reports
/// the payer.
fn payer_hint(d: &DecodedTransaction) -> Option<Pubkey> {
    let keys = d.tx.message.static_account_keys();
    d.tx.message.instructions().iter().find_map(|ix| {
        let program = keys.get(usize::from(ix.program_id_index))?;
        if !is_token_program(program) {
            return None;
        }
        keys.get(usize::from(*ix.accounts.get(3)?)).copied()
    })
}

fn program_of<'k>(keys: &'k [Pubkey], ix: &CompiledInstruction) -> Option<&'k Pubkey> {
    keys.get(usize::from(ix.program_id_index))
}

fn account_of(keys: &[Pubkey], ix: &CompiledInstruction, n: usize) -> Option<Pubkey> {
    ix.accounts
        .get(n)
        .and_then(|i| keys.get(usize::from(*i)))
        .copied()
}

fn check_transaction(
    decoded: DecodedTransaction,
    fee_payer: Pubkey,
    fee_payers: &[Pubkey],
    policy: &Policy,
    expected: Expected<'_>,
) -> Result<Inspection, Rejection> {
    let message = &decoded.tx.message;
    let keys = message.static_account_keys();
    let ixs = message.instructions();
    let signers = message.header().num_required_signatures;
    if signers > policy.max_signatures {
        return Err(reject_with(
            crate::reason::TOO_MANY_SIGNATURES,
            format!(
                "{signers} signatures required, at most {}",
                policy.max_signatures
            ),
        ));
    }
    if keys.first() != Some(&fee_payer) {
        return Err(reject_with(
            crate::reason::FEE_PAYER_MISMATCH,
            "account 0 (the fee payer) is not extra.feePayer",
        ));
    }
    // Signers are static keys, so this needs no lookup table; at most `max_signatures - 1`
    // signatures to check.
    verify_signatures(&decoded)?;
    if message
        .address_table_lookups()
        .is_some_and(|l| !l.is_empty())
    {
        return Err(reject(crate::reason::ADDRESS_LOOKUP_TABLES_NOT_SUPPORTED));
    }
    if !(REQUIRED_INSTRUCTIONS..=expected.max_instructions).contains(&ixs.len()) {
        return Err(reject(
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_LENGTH,
        ));
    }
    let compute = |n: usize| {
        ixs.get(n)
            .filter(|ix| program_of(keys, ix) == Some(&COMPUTE_BUDGET_PROGRAM))
            .filter(|ix| ix.accounts.is_empty())
    };
    let limit = compute(0)
        .and_then(|ix| parse_compute_unit_limit(&ix.data))
        .ok_or_else(|| {
            reject(crate::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_COMPUTE_LIMIT_INSTRUCTION)
        })?;
    if limit > policy.max_compute_unit_limit {
        return Err(reject_with(
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_COMPUTE_LIMIT_TOO_HIGH,
            format!(
                "{limit} compute units, at most {}",
                policy.max_compute_unit_limit
            ),
        ));
    }
    let price = compute(1)
        .and_then(|ix| parse_compute_unit_price(&ix.data))
        .ok_or_else(|| {
            reject(crate::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_COMPUTE_PRICE_INSTRUCTION)
        })?;
    if price > policy.max_compute_unit_price {
        return Err(reject(
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_COMPUTE_PRICE_INSTRUCTION_TOO_HIGH,
        ));
    }
    // Absolute (ours, S52), then relative to the payment's value (`priority`): a price too high
    // for what this payment is worth is answered with the reference's code for a price too high.
    let fee = priority_fee_lamports(limit, price);
    if fee > policy.max_priority_fee_lamports {
        return Err(reject_with(
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_PRIORITY_FEE_TOO_HIGH,
            format!(
                "priority fee {fee} lamports, at most {}",
                policy.max_priority_fee_lamports
            ),
        ));
    }
    let cap = super::priority::priority_fee_cap(
        &policy.priority_fee_valuations,
        &expected.asset,
        expected.amount,
        policy.priority_fee_floor_lamports,
        policy.max_priority_fee_lamports,
    );
    if fee > cap {
        return Err(reject_with(
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_COMPUTE_PRICE_INSTRUCTION_TOO_HIGH,
            format!(
                "{price} micro-lamports per compute unit: a priority fee of {fee} lamports, at most {cap} for this payment's value"
            ),
        ));
    }
    let transfer_ix = ixs
        .get(2)
        .ok_or_else(|| reject(crate::reason::INVALID_EXACT_SVM_PAYLOAD_NO_TRANSFER_INSTRUCTION))?;
    let transfer = read_transfer(keys, transfer_ix)
        .ok_or_else(|| reject(crate::reason::INVALID_EXACT_SVM_PAYLOAD_NO_TRANSFER_INSTRUCTION))?;
    let own_ata = |k: &Pubkey| {
        associated_token_address_remembered(k, &transfer.mint, &transfer.token_program)
            == transfer.source
    };
    if fee_payers.contains(&transfer.authority)
        || fee_payers.contains(&transfer.source)
        || fee_payers.iter().any(own_ata)
    {
        return Err(reject(
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_FEE_PAYER_TRANSFERRING_FUNDS,
        ));
    }
    if transfer.mint != expected.asset {
        return Err(reject(
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_MINT_MISMATCH,
        ));
    }
    let destination = associated_token_address_remembered(
        &expected.pay_to,
        &expected.asset,
        &transfer.token_program,
    );
    if transfer.destination != destination {
        return Err(reject(
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_RECIPIENT_MISMATCH,
        ));
    }
    if expected.amount != Some(transfer.amount) {
        return Err(reject(
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_AMOUNT_MISMATCH,
        ));
    }
    // The optional instructions: Lighthouse or Memo, in any order and mix.
    for (n, ix) in ixs.iter().enumerate().skip(REQUIRED_INSTRUCTIONS) {
        let program = program_of(keys, ix);
        if program != Some(&LIGHTHOUSE_PROGRAM) && program != Some(&MEMO_PROGRAM) {
            return Err(reject(unknown_instruction(n)));
        }
    }
    // The positional rule above already refuses every AdvanceNonceAccount (it is neither a
    // compute-budget, token, Lighthouse nor Memo instruction); this keeps S55 if it is relaxed.
    if ixs
        .iter()
        .any(|ix| program_of(keys, ix).is_some_and(|p| is_advance_nonce(p, &ix.data)))
    {
        return Err(reject(
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_DURABLE_NONCE,
        ));
    }
    // Every instruction, the optional ones included: a Lighthouse assertion over the fee payer,
    // even read-only, is refused like any other mention of it.
    let uses_fee_payer = ixs.iter().any(|ix| {
        ix.accounts
            .iter()
            .filter_map(|i| keys.get(usize::from(*i)))
            .any(|k| fee_payers.contains(k))
    });
    if uses_fee_payer {
        return Err(reject(crate::reason::FEE_PAYER_IN_INSTRUCTION_ACCOUNTS));
    }
    if transfer_ix.accounts.len() != 4 {
        return Err(reject_with(
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_NO_TRANSFER_INSTRUCTION,
            "TransferChecked must have exactly its four accounts (no multisig, no extra accounts)",
        ));
    }
    if let Some(memo) = expected.memo {
        let memos: Vec<&CompiledInstruction> = ixs
            .iter()
            .skip(REQUIRED_INSTRUCTIONS)
            .filter(|ix| program_of(keys, ix) == Some(&MEMO_PROGRAM))
            .collect();
        let [only] = memos.as_slice() else {
            return Err(reject(crate::reason::INVALID_EXACT_SVM_PAYLOAD_MEMO_COUNT));
        };
        if only.data != memo.as_bytes() {
            return Err(reject(
                crate::reason::INVALID_EXACT_SVM_PAYLOAD_MEMO_MISMATCH,
            ));
        }
    }
    // The transfer would fail on chain without its authority's signature: the reference finds
    // that by simulating, and answers so.
    let authority_index = keys.iter().position(|k| *k == transfer.authority);
    if !authority_index.is_some_and(|i| i > 0 && i < usize::from(signers)) {
        return Err(reject_with(
            crate::reason::TRANSACTION_SIMULATION_FAILED,
            "the transfer authority does not sign the transaction",
        ));
    }
    Ok(Inspection {
        fee_payer,
        transfer,
        pay_to: expected.pay_to,
        compute_unit_limit: limit,
        compute_unit_price: price,
        message_bytes: decoded.message_bytes,
        tx: decoded.tx,
    })
}

/// Reads ix 2 as a `TransferChecked` on a token program with at least its four accounts.
fn read_transfer(keys: &[Pubkey], ix: &CompiledInstruction) -> Option<TransferChecked> {
    let token_program = *program_of(keys, ix).filter(|p| is_token_program(p))?;
    let (amount, decimals) = parse_transfer_checked(&ix.data)?;
    Some(TransferChecked {
        token_program,
        source: account_of(keys, ix, 0)?,
        mint: account_of(keys, ix, 1)?,
        destination: account_of(keys, ix, 2)?,
        authority: account_of(keys, ix, 3)?,
        amount,
        decimals,
    })
}

/// Verifies every signature except the fee payer's (slot 0, which we fill) over the message.
fn verify_signatures(d: &DecodedTransaction) -> Result<(), Rejection> {
    let keys = d.tx.message.static_account_keys();
    for (i, (signature, key)) in d.tx.signatures.iter().zip(keys).enumerate().skip(1) {
        if !signature.verify(key.as_ref(), &d.message_bytes) {
            return Err(reject_with(
                crate::reason::INVALID_EXACT_SVM_PAYLOAD_SIGNATURE,
                format!("signature {i} (of {key}) does not verify"),
            ));
        }
    }
    Ok(())
}

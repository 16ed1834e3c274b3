//! The x402-spec §6.3 vector through the offline checks: it decodes and passes them, the fee
//! payer's signature over it is the one the spec gives, and its negative variants fail with
//! their reasons. No RPC is needed.
#![cfg(feature = "buyer")] // the tests sign with the buyer role

use std::sync::Arc;

use solana_keypair::Keypair;
use solana_message::{Hash, VersionedMessage};
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use x402_core::json::JsonLimits;
use x402_core::wire::VerifyRequest;
use x402_core::{MemoryStore, Network, PaymentContext, Reason};

use super::{Facilitator, Policy, VECTOR_TRANSACTION};
use crate::buyer::{BuyerOptions, PaymentPlan, sign_message, sign_partially};
use crate::instructions::{TOKEN_PROGRAM, USDC_DEVNET, set_compute_unit_price};
use crate::payload::{decode_transaction, encode_transaction};
use crate::rpc::Rpc;

pub(super) const DEVNET: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
pub(super) const CLIENT: &str = "AKnL4NNf3DGWZJS6cPknBuEGnVsV4A4m5tgebLHaRSZ9";
pub(super) const FEE_PAYER: &str = "9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu";
pub(super) const PAY_TO: &str = "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse";
pub(super) const CO_SIGNED: &str =
    "wcLUXZnV9Q3hUsdPV7bmJdtT98N3Er2gnosc9twdF8c2XMwURTMouakdQVH8nBZpTx861NGdunkiALKzNnqVpKN";

pub(super) fn client() -> Keypair {
    Keypair::new_from_array([1; 32])
}

pub(super) fn fee_payer() -> Keypair {
    Keypair::new_from_array([2; 32])
}

pub(super) fn facilitator() -> Facilitator {
    let rpc = Rpc::new(
        &["http://127.0.0.1:1".into()],
        std::time::Duration::from_secs(1),
    )
    .unwrap();
    Facilitator::new(
        Network::parse(DEVNET).unwrap(),
        rpc,
        vec![fee_payer(), Keypair::new_from_array([9; 32])],
        Arc::new(MemoryStore::new()),
        Policy::default(),
    )
    .unwrap()
}

pub(super) fn requirements(amount: &str, pay_to: &str, extra: &str) -> String {
    format!(
        r#"{{"scheme":"exact","network":"{DEVNET}","amount":"{amount}","asset":"{USDC_DEVNET}","payTo":"{pay_to}","maxTimeoutSeconds":60,"extra":{extra}}}"#
    )
}

pub(super) fn good_extra() -> String {
    format!(r#"{{"feePayer":"{FEE_PAYER}"}}"#)
}

pub(super) fn v2(req: &str, tx: &str) -> VerifyRequest {
    let body = format!(
        r#"{{"x402Version":2,"paymentPayload":{{"x402Version":2,"accepted":{req},"payload":{{"transaction":"{tx}"}}}},"paymentRequirements":{req}}}"#
    );
    VerifyRequest::from_json(body.as_bytes(), JsonLimits::DEFAULT).unwrap()
}

pub(super) fn v1(tx: &str) -> VerifyRequest {
    let req = format!(
        r#"{{"scheme":"exact","network":"solana-devnet","maxAmountRequired":"1000","resource":"https://x.test/","description":"","mimeType":"","payTo":"{PAY_TO}","maxTimeoutSeconds":60,"asset":"{USDC_DEVNET}","extra":{}}}"#,
        good_extra()
    );
    let body = format!(
        r#"{{"x402Version":1,"paymentPayload":{{"x402Version":1,"scheme":"exact","network":"solana-devnet","payload":{{"transaction":"{tx}"}}}},"paymentRequirements":{req}}}"#
    );
    VerifyRequest::from_json(body.as_bytes(), JsonLimits::DEFAULT).unwrap()
}

fn reason_of(f: &Facilitator, request: &VerifyRequest) -> Reason {
    let ctx = PaymentContext::of(request).unwrap();
    f.inspect(&ctx).expect_err("refused").rejection.reason
}

/// The vector's message with instruction `n`'s data replaced, signed again by the client.
fn with_ix_data(n: usize, data: Vec<u8>) -> String {
    let mut tx = decode_transaction(VECTOR_TRANSACTION).unwrap().tx;
    let VersionedMessage::V0(m) = &mut tx.message else {
        panic!("the vector is v0")
    };
    m.instructions[n].data = data;
    let signed = sign_message(tx.message, &[&client()]).unwrap();
    encode_transaction(&signed).unwrap()
}

#[test]
fn the_vector_passes_every_offline_check_and_co_signs_to_the_spec_signature() {
    let f = facilitator();
    let request = v2(
        &requirements("1000", PAY_TO, &good_extra()),
        VECTOR_TRANSACTION,
    );
    let ctx = PaymentContext::of(&request).unwrap();
    let i = f.inspect(&ctx).expect("valid");
    assert_eq!(i.payer().to_string(), CLIENT);
    assert_eq!(i.fee_payer.to_string(), FEE_PAYER);
    assert_eq!(i.transfer.amount, 1000);
    assert_eq!(i.transfer.decimals, 6);
    assert_eq!(i.transfer.token_program, TOKEN_PROGRAM);
    assert_eq!(
        i.transfer.source.to_string(),
        "H1AviagU5Y17z77v1F9qZPJ9kCbCsL4ewiZABNfGYoRs"
    );
    assert_eq!(
        i.transfer.destination.to_string(),
        "6ndWAgFxMAVLobD8WrdBj5w41GrDeJYiQX91nNSrwkZp"
    );
    assert_eq!((i.compute_unit_limit, i.compute_unit_price), (20_000, 1));
    let co_signed = f.co_sign(&i).unwrap();
    assert_eq!(co_signed.signatures[0].to_string(), CO_SIGNED);
    // v1 carries the same transaction: the same payment identity.
    let v1_request = v1(VECTOR_TRANSACTION);
    let v1_ctx = PaymentContext::of(&v1_request).unwrap();
    let i1 = f.inspect(&v1_ctx).expect("valid as v1");
    assert_eq!(i1.payment_id(f.network()), i.payment_id(f.network()));
    // Our own builder produces the vector's bytes from the same inputs.
    let plan = PaymentPlan {
        fee_payer: fee_payer().pubkey(),
        token_program: TOKEN_PROGRAM,
        mint: USDC_DEVNET,
        decimals: 6,
        pay_to: PAY_TO.parse().unwrap(),
        amount: 1000,
        memo: b"0123456789abcdef0123456789abcdef".to_vec(),
        options: BuyerOptions::default(),
    };
    let built = sign_partially(
        &plan.fee_payer,
        &plan.instructions(&client().pubkey()),
        Hash::new_from_array([1; 32]),
        &[&client()],
    )
    .unwrap();
    assert_eq!(encode_transaction(&built).unwrap(), VECTOR_TRANSACTION);
}

#[test]
fn the_vector_negative_variants_fail_with_their_reasons() {
    let f = facilitator();
    let req = requirements("1000", PAY_TO, &good_extra());
    let price = with_ix_data(1, set_compute_unit_price(5_000_001).data);
    let other_pay_to = Pubkey::new_unique().to_string();
    let mut transfer = vec![12];
    transfer.extend_from_slice(&999u64.to_le_bytes());
    transfer.push(6);
    let amount_999 = with_ix_data(2, transfer);
    // The fee payer as the transfer authority (it would have to co-sign as itself).
    let plan = PaymentPlan {
        fee_payer: fee_payer().pubkey(),
        token_program: TOKEN_PROGRAM,
        mint: USDC_DEVNET,
        decimals: 6,
        pay_to: PAY_TO.parse().unwrap(),
        amount: 1000,
        memo: b"m".to_vec(),
        options: BuyerOptions::default(),
    };
    let authority = sign_partially(
        &plan.fee_payer,
        &plan.instructions(&plan.fee_payer),
        Hash::new_from_array([1; 32]),
        &[],
    )
    .unwrap();
    let authority = encode_transaction(&authority).unwrap();
    let mut bad_sig = decode_transaction(VECTOR_TRANSACTION).unwrap().tx;
    bad_sig.signatures[1] = solana_signature::Signature::from([7; 64]);
    let bad_sig = encode_transaction(&bad_sig).unwrap();
    let cases: Vec<(&str, VerifyRequest, Reason)> = vec![
        (
            "price 5_000_001",
            v2(&req, &price),
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_COMPUTE_PRICE_INSTRUCTION_TOO_HIGH,
        ),
        (
            "payTo changed",
            v2(
                &requirements("1000", &other_pay_to, &good_extra()),
                VECTOR_TRANSACTION,
            ),
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_RECIPIENT_MISMATCH,
        ),
        (
            "transfer of 999",
            v2(&req, &amount_999),
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_AMOUNT_MISMATCH,
        ),
        (
            "requirement of 999",
            v2(
                &requirements("999", PAY_TO, &good_extra()),
                VECTOR_TRANSACTION,
            ),
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_AMOUNT_MISMATCH,
        ),
        (
            "fee payer as authority",
            v2(&req, &authority),
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_FEE_PAYER_TRANSFERRING_FUNDS,
        ),
        (
            "memo x",
            v2(
                &requirements(
                    "1000",
                    PAY_TO,
                    &format!(r#"{{"feePayer":"{FEE_PAYER}","memo":"x"}}"#),
                ),
                VECTOR_TRANSACTION,
            ),
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_MEMO_MISMATCH,
        ),
        (
            "no feePayer",
            v2(&requirements("1000", PAY_TO, "{}"), VECTOR_TRANSACTION),
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_MISSING_FEE_PAYER,
        ),
        (
            "feePayer not ours",
            v2(
                &requirements("1000", PAY_TO, &format!(r#"{{"feePayer":"{PAY_TO}"}}"#)),
                VECTOR_TRANSACTION,
            ),
            crate::reason::FEE_PAYER_NOT_MANAGED_BY_FACILITATOR,
        ),
        (
            "our other fee payer named",
            v2(
                &requirements(
                    "1000",
                    PAY_TO,
                    &format!(
                        r#"{{"feePayer":"{}"}}"#,
                        Keypair::new_from_array([9; 32]).pubkey()
                    ),
                ),
                VECTOR_TRANSACTION,
            ),
            crate::reason::FEE_PAYER_MISMATCH,
        ),
        (
            "buyer signature forged",
            v2(&req, &bad_sig),
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_SIGNATURE,
        ),
        (
            "not base64",
            v2(&req, "AgAA*"),
            crate::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_COULD_NOT_BE_DECODED,
        ),
    ];
    for (what, request, reason) in cases {
        assert_eq!(reason_of(&f, &request), reason, "{what}");
    }
}

//! EIP-3009's own cases: the token's EIP-712 domain in the requirements (S15), re-encodings of
//! one authorization settling once (S22–S24), copies in the mempool (S31), a token that
//! succeeds without transferring (S32), a smart wallet flipping after simulation (S34), ERC-6492
//! wrappers (S35).

use std::sync::Arc;

use alloy::primitives::{Address, Bytes, TxHash, U256};
use alloy::providers::Provider as _;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use scheme_exact_evm::Policy;
use serde_json::{Value, json};
use x402_core::wire::{PaymentRequirementsV2, VerifyRequest, to_raw};
use x402_core::{Facilitator as _, Reason, SettleTimeouts};
use x402_evm::abi::eip3009::TransferWithAuthorization;
use x402_evm::assets::TransferMethod;
use x402_tests::evm::exact::{
    ExactHarness, PRICE, UNITS, assert_duplicate, assert_settle_refused, eip3009_signed,
    eip3009_with_signature, payload_of, random_b256, request_v1, request_v2,
};
use x402_tests::evm::x402::{
    self as contracts, ERC6492_MAGIC, IWalletFactory, high_s_twin, set_signatures_disabled,
    sign_eip712,
};
use x402_tests::evm::{USDC_NAME, USDC_VERSION, usdc_domain};
use x402_tests::wait;

use super::state::front_run_tx;

async fn setup() -> (ExactHarness, PaymentRequirementsV2, PrivateKeySigner) {
    let h = ExactHarness::start().await;
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let buyer = h.bed.buyer(0).signer.clone();
    (h, req, buyer)
}

/// A v2 request carrying `message` signed by `key` under the bed USDC's domain.
fn signed(
    h: &ExactHarness,
    req: &PaymentRequirementsV2,
    key: &PrivateKeySigner,
    message: &TransferWithAuthorization,
) -> VerifyRequest {
    request_v2(req, eip3009_signed(key, message, &h.usdc_domain()))
}

/// `buyer`'s authorization for `req`, its signature, and the v2 request carrying both.
fn authorization(
    h: &ExactHarness,
    req: &PaymentRequirementsV2,
    buyer: &PrivateKeySigner,
) -> (TransferWithAuthorization, Bytes, VerifyRequest) {
    let message = h.eip3009_message(buyer.address(), req);
    let signature = sign_eip712(buyer, &message, &h.usdc_domain());
    let request = request_v2(req, eip3009_with_signature(&message, signature.clone()));
    (message, signature, request)
}

/// A v2 request in which `buyer` pays the price in `asset` (listed or not), signed over that
/// token's domain.
async fn signed_for_asset(
    h: &ExactHarness,
    buyer: &PrivateKeySigner,
    asset: Address,
) -> VerifyRequest {
    let req = PaymentRequirementsV2 {
        asset: asset.to_checksum(None),
        ..h.requirements(PRICE, TransferMethod::Eip3009).await
    };
    let message = h.eip3009_message(buyer.address(), &req);
    let domain = usdc_domain(h.bed.chain_id(), asset);
    request_v2(&req, eip3009_signed(buyer, &message, &domain))
}

#[tokio::test]
async fn s15_spoofed_or_missing_eip712_domain() {
    let (h, req, buyer) = setup().await;
    let with_extra = |extra: Option<Value>| PaymentRequirementsV2 {
        extra: extra.map(|e| to_raw(&e).unwrap()),
        ..req.clone()
    };
    // The buyer signs what the (spoofed) requirements say: the digest passes our check, the token
    // refuses it, and the diagnosis names the field.
    for (extra, reason) in [
        (
            json!({"name": "USDC", "version": USDC_VERSION}),
            scheme_exact_evm::reason::INVALID_EXACT_EVM_TOKEN_NAME_MISMATCH,
        ),
        (
            json!({"name": USDC_NAME, "version": "1"}),
            scheme_exact_evm::reason::INVALID_EXACT_EVM_TOKEN_VERSION_MISMATCH,
        ),
    ] {
        let spoofed = with_extra(Some(extra.clone()));
        let request = h.pay_v2(&buyer, &spoofed).await;
        h.assert_refused(&request, reason, &[buyer.address()], &extra.to_string())
            .await;
    }
    // The buyer signed the token's real domain, the requirements carry another one.
    let real = h.pay_v2(&buyer, &req).await;
    h.assert_valid(&real, "control").await;
    let spoofed = with_extra(Some(json!({"name": "USDC", "version": USDC_VERSION})));
    h.assert_refused(
        &request_v2(&spoofed, payload_of(&real)),
        scheme_exact_evm::reason::INVALID_EXACT_EVM_SIGNATURE,
        &[buyer.address()],
        "real signature, spoofed extra",
    )
    .await;
    // Missing name or version.
    for extra in [
        None,
        Some(json!({})),
        Some(json!({"version": USDC_VERSION})),
        Some(json!({"name": USDC_NAME})),
        Some(json!({"name": USDC_NAME, "version": null})),
    ] {
        let missing = with_extra(extra.clone());
        h.assert_refused(
            &request_v2(&missing, payload_of(&real)),
            scheme_exact_evm::reason::INVALID_EXACT_EVM_MISSING_EIP712_DOMAIN,
            &[buyer.address()],
            &format!("extra {extra:?}"),
        )
        .await;
    }
    // An unreadable extra is the seller's error.
    h.assert_refused(
        &request_v2(
            &with_extra(Some(json!({"name": 5, "version": USDC_VERSION}))),
            payload_of(&real),
        ),
        Reason::INVALID_PAYMENT_REQUIREMENTS,
        &[buyer.address()],
        "extra.name is a number",
    )
    .await;
}

/// The same authorization written in every way a client could: all verify, so only the payment
/// identity (chain, token, from, nonce) can keep them from settling twice.
fn re_encodings(
    h: &ExactHarness,
    req: &PaymentRequirementsV2,
    message: &TransferWithAuthorization,
    signature: &Bytes,
) -> Vec<(&'static str, VerifyRequest)> {
    let canonical = eip3009_with_signature(message, signature.clone());
    let hex = |b: &[u8]| alloy::primitives::hex::encode(b);
    let mut v01 = signature.to_vec();
    v01[64] -= 27;
    let reversed = format!(
        r#"{{"authorization":{{"nonce":"0x{}","validBefore":"{}","validAfter":"{}","value":"{}","to":"{}","from":"{}"}},"signature":"0x{}"}}"#,
        hex(message.nonce.as_slice()),
        message.validBefore,
        message.validAfter,
        message.value,
        message.to.to_checksum(None),
        message.from.to_checksum(None),
        hex(signature),
    );
    let lower = format!(
        r#"{{"signature":"0x{}","authorization":{{"from":"{:#x}","to":"{:#x}","value":"{}","validAfter":"{}","validBefore":"{}","nonce":"0x{}"}}}}"#,
        hex(signature),
        message.from,
        message.to,
        message.value,
        message.validAfter,
        message.validBefore,
        hex(message.nonce.as_slice()),
    );
    let upper = format!(
        r#"{{"signature":"0x{}","authorization":{{"from":"0x{}","to":"0x{}","value":"{}","validAfter":"{}","validBefore":"{}","nonce":"0x{}"}}}}"#,
        hex(signature).to_uppercase(),
        hex(message.from.as_slice()).to_uppercase(),
        hex(message.to.as_slice()).to_uppercase(),
        message.value,
        message.validAfter,
        message.validBefore,
        hex(message.nonce.as_slice()).to_uppercase(),
    );
    let raw = |s: String| serde_json::value::RawValue::from_string(s).unwrap();
    let lower_req = PaymentRequirementsV2 {
        asset: format!("{:#x}", h.bed.usdc()),
        pay_to: format!("{:#x}", h.bed.seller().address),
        ..req.clone()
    };
    vec![
        ("canonical v2", request_v2(req, canonical.clone())),
        ("v1 envelope", request_v1(req, canonical.clone())),
        ("reversed key order", request_v2(req, raw(reversed))),
        ("lower-case addresses", request_v2(req, raw(lower))),
        ("upper-case hex", request_v2(req, raw(upper))),
        (
            "v as 0/1",
            request_v2(req, eip3009_with_signature(message, v01.into())),
        ),
        ("lower-case requirements", request_v2(&lower_req, canonical)),
    ]
}

#[tokio::test]
async fn s22_s24_concurrent_settles_of_re_encoded_authorization_settle_once() {
    let h = Arc::new(ExactHarness::start().await);
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let buyer = h.bed.buyer(1).signer.clone();
    let message = h.eip3009_message(buyer.address(), &req);
    let signature = sign_eip712(&buyer, &message, &h.usdc_domain());
    let variants = re_encodings(&h, &req, &message, &signature);
    let winner = h
        .assert_variants_settle_once(buyer.address(), &variants, 3, Some(1))
        .await;

    // Sequential re-submissions in forms that do not verify on their own: each is still the
    // same payment, and is answered with the recorded transaction.
    let after = h.snapshot(&[buyer.address()]).await;
    let (r, s, v) = (&signature[..32], &signature[32..64], signature[64]);
    let compact = {
        let mut vs = s.to_vec();
        if v == 28 {
            vs[0] |= 0x80;
        }
        [r, &vs].concat()
    };
    let wrapped = contracts::erc6492_wrap(
        Address::repeat_byte(0x42),
        &Bytes::from(vec![1, 2, 3]),
        &signature,
    );
    for (what, sig) in [
        ("high-s", high_s_twin(&signature)),
        ("EIP-2098 compact", Bytes::from(compact)),
        ("ERC-6492 wrapped", wrapped),
    ] {
        let request = request_v2(&req, eip3009_with_signature(&message, sig));
        let v = h.verify_json(&request).await;
        assert!(!v.is_valid, "{what}: {v:?}");
        assert_duplicate(&h.settle_json(&request).await, &winner, what);
    }
    h.assert_untouched(&after, "re-submissions").await;
}

/// Sends (without waiting for it to be mined) a transaction from `from` that uses `message` with
/// a tip far above what the facilitator may pay (so a block orders it first); returns its hash.
async fn send_high_tip_copy(
    h: &ExactHarness,
    from: Address,
    message: &TransferWithAuthorization,
    signature: &Bytes,
) -> TxHash {
    let tx = front_run_tx(h, from, message, signature)
        .gas_limit(200_000)
        .max_fee_per_gas(500_000_000_000)
        .max_priority_fee_per_gas(100_000_000_000);
    *h.bed
        .provider()
        .send_transaction(tx)
        .await
        .unwrap()
        .tx_hash()
}

#[tokio::test]
async fn s31_mempool_copies_before_and_after_our_broadcast() {
    let (h, req, buyer) = setup().await;
    let h = Arc::new(h);
    let third = h.bed.spare_accounts()[0].address;
    let provider = h.bed.provider();
    let seller = h.bed.seller().address;
    h.set_automine(false).await;

    // A copy already waiting in the mempool: verification reads pending state, sees the nonce
    // taken and sends nothing.
    let (message, signature, request) = authorization(&h, &req, &buyer);
    let before = h.snapshot(&[buyer.address()]).await;
    let first_copy = send_high_tip_copy(&h, third, &message, &signature).await;
    let s = h.facilitator.settle(&request).await.unwrap();
    assert_settle_refused(
        &s,
        scheme_exact_evm::reason::INVALID_EXACT_EVM_NONCE_ALREADY_USED,
        "a copy is pending",
    );
    assert_eq!(h.pool.stats().sent, 0);
    h.mine().await;
    let landed = provider
        .get_transaction_receipt(first_copy)
        .await
        .unwrap()
        .expect("the copy was mined");
    assert!(landed.status());
    let after_first = h.snapshot(&[buyer.address()]).await;
    assert_eq!(after_first.signer_nonces, before.signer_nonces);
    assert_eq!(after_first.usdc[0].1, before.usdc[0].1 + U256::from(UNITS));

    // A copy of our broadcast with a higher tip lands first in the same block: our transaction
    // reverts, the settle reports failure with our own hash, the payment moved once.
    let (message, signature, request) = authorization(&h, &req, &buyer);
    let settling = {
        let (h, request) = (h.clone(), request.clone());
        tokio::spawn(async move { h.facilitator.settle(&request).await.unwrap() })
    };
    // Hang guard: a settle answers by the server's request deadline at the latest (the
    // harness's receipt bound is the default answer bound); one that has neither broadcast nor
    // answered by then is hung.
    wait::until(
        "the facilitator broadcasts or answers",
        SettleTimeouts::default().request_deadline(),
        || async { h.pool.stats().sent > 0 || settling.is_finished() },
    )
    .await;
    if h.pool.stats().sent == 0 {
        panic!("settle returned before broadcasting: {:?}", settling.await);
    }
    let copy_hash = send_high_tip_copy(&h, third, &message, &signature).await;
    h.mine().await;
    let s = settling.await.unwrap();
    h.set_automine(true).await;
    assert!(!s.success, "{s:?}");
    assert_eq!(
        s.error_reason,
        Some(scheme_exact_evm::reason::INVALID_EXACT_EVM_NONCE_ALREADY_USED),
        "{s:?}"
    );
    assert_ne!(s.transaction, format!("{copy_hash:#x}"));
    let ours = provider
        .get_transaction_receipt(s.transaction.parse().unwrap())
        .await
        .unwrap()
        .expect("our receipt");
    assert!(!ours.status(), "our transaction reverted");
    assert!(ours.gas_used <= Policy::default().gas_limit_eip3009);
    let copy = provider
        .get_transaction_receipt(copy_hash)
        .await
        .unwrap()
        .expect("the copy was mined");
    assert!(copy.status());
    assert_eq!(copy.block_number, ours.block_number, "same block");
    let after = h.snapshot(&[buyer.address()]).await;
    assert_eq!(after.signer_nonces[0], after_first.signer_nonces[0] + 1);
    assert_eq!(
        h.usdc(seller).await,
        after_first.usdc[0].1 + U256::from(UNITS),
        "paid once"
    );
    // The recorded failure answers any retry.
    assert_duplicate(&h.settle_json(&request).await, &s.transaction, "retry");
}

#[tokio::test]
async fn s32_token_that_succeeds_without_transferring() {
    // A listed "token" whose every call succeeds and emits nothing (runtime code STOP): the
    // simulation cannot tell, the receipt check does.
    let h = ExactHarness::start().await;
    let hollow = Address::repeat_byte(0x5a);
    let _: Value = h
        .bed
        .provider()
        .raw_request("anvil_setCode".into(), (hollow, "0x00"))
        .await
        .unwrap();
    let f = h.facilitator_listing(hollow);
    let buyer = h.bed.buyer(0).signer.clone();
    let request = signed_for_asset(&h, &buyer, hollow).await;
    let before = h.snapshot(&[buyer.address()]).await;
    let s = f.settle(&request).await.unwrap();
    assert!(!s.success, "{s:?}");
    assert_eq!(
        s.error_reason,
        Some(x402_evm::reason::TRANSFER_NOT_OBSERVED),
        "{s:?}"
    );
    assert_eq!(s.transaction.len(), 66, "the transaction sent is named");
    let after = h.snapshot(&[buyer.address()]).await;
    assert_eq!(after.usdc, before.usdc, "no USDC moved");
    assert_eq!(after.signer_nonces[0], before.signer_nonces[0] + 1);
    // The same payload cannot be "settled" again and again (issue #773).
    let again = f.settle(&request).await.unwrap();
    assert_duplicate(&again, &s.transaction, "second attempt");
    h.assert_untouched(&after, "second attempt").await;
}

#[tokio::test]
async fn s34_smart_wallet_flips_after_simulation_costs_one_capped_revert() {
    let h = ExactHarness::start().await;
    let (wallet, owner) = h.funded_wallet().await;
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let request = signed(&h, &req, &owner, &h.eip3009_message(wallet, &req));
    let flip = set_signatures_disabled(&h.bed, wallet, owner.address(), true);
    let (f, before, s) = h
        .settle_racing_the_send(flip, "flip", &request, &[wallet])
        .await;
    assert!(!s.success, "{s:?}");
    assert_eq!(
        s.error_reason,
        Some(x402_evm::reason::INVALID_EXACT_EVM_TRANSACTION_FAILED),
        "{s:?}"
    );
    let receipt = h
        .bed
        .provider()
        .get_transaction_receipt(s.transaction.parse().unwrap())
        .await
        .unwrap()
        .expect("our receipt");
    assert!(!receipt.status());
    assert!(receipt.gas_used <= Policy::default().gas_limit_eip3009_contract);
    let after = h.snapshot(&[wallet]).await;
    assert_eq!(after.usdc, before.usdc, "nothing moved");
    assert_eq!(after.signer_nonces[0], before.signer_nonces[0] + 1);
    // The failed attempt is recorded: no automatic second attempt at the facilitator's cost.
    let again = f.settle(&request).await.unwrap();
    assert_duplicate(&again, &s.transaction, "second attempt");
    h.assert_untouched(&after, "second attempt").await;
}

#[tokio::test]
async fn s35_garbage_and_forged_erc6492_wrappers() {
    let h = ExactHarness::start().await;
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let buyer = h.bed.buyer(0).signer.clone();
    let message = h.eip3009_message(buyer.address(), &req);
    let good = sign_eip712(&buyer, &message, &h.usdc_domain());
    let magic = ERC6492_MAGIC;
    for (what, sig) in [
        (
            "junk before the magic",
            [&[7u8; 10][..], magic.as_slice()].concat(),
        ),
        ("magic only", magic.to_vec()),
        (
            "EOA signature then magic",
            [&good[..], magic.as_slice()].concat(),
        ),
    ] {
        h.assert_refused(
            &request_v2(&req, eip3009_with_signature(&message, sig.into())),
            scheme_exact_evm::reason::INVALID_EXACT_EVM_FAILED_TO_PARSE_SIGNATURE,
            &[buyer.address()],
            what,
        )
        .await;
    }
    // A deployed wallet with a garbage wrapper.
    let (wallet, _owner) = h.funded_wallet().await;
    let wallet_message = h.eip3009_message(wallet, &req);
    let junk = [&[9u8; 40][..], magic.as_slice()].concat();
    h.assert_refused(
        &request_v2(&req, eip3009_with_signature(&wallet_message, junk.into())),
        scheme_exact_evm::reason::INVALID_EXACT_EVM_FAILED_TO_PARSE_SIGNATURE,
        &[wallet],
        "deployed wallet, junk wrapper",
    )
    .await;

    // A well-formed wrapper through an allow-listed factory that deploys the victim's wallet,
    // around a signature by somebody else: the simulation refuses, nothing is deployed or sent.
    let factory = contracts::deploy_wallet_factory(&h.bed).await;
    let f = h.fresh_facilitator(
        Policy {
            erc6492_factories: vec![factory],
            ..Policy::default()
        },
        x402_core::system_clock(),
    );
    let victim = PrivateKeySigner::random();
    let attacker = PrivateKeySigner::random();
    let salt = random_b256();
    let counterfactual = contracts::wallet_factory(&h.bed, factory)
        .predict(victim.address(), salt)
        .call()
        .await
        .unwrap();
    h.bed.mint_usdc(counterfactual, U256::from(UNITS)).await;
    let message = h.eip3009_message(counterfactual, &req);
    for (what, deploy_owner) in [
        ("victim's wallet, attacker's signature", victim.address()),
        ("attacker's wallet deployed instead", attacker.address()),
    ] {
        let deploy = IWalletFactory::deployCall {
            owner: deploy_owner,
            salt,
        }
        .abi_encode();
        let sig = contracts::erc6492_wrap(
            factory,
            &deploy.into(),
            &sign_eip712(&attacker, &message, &h.usdc_domain()),
        );
        let request = request_v2(&req, eip3009_with_signature(&message, sig));
        let before = h.snapshot(&[counterfactual]).await;
        let v = f.verify(&request).await.unwrap();
        assert_eq!(
            v.invalid_reason,
            Some(scheme_exact_evm::reason::INVALID_EXACT_EVM_TRANSACTION_SIMULATION_FAILED),
            "{what}: {v:?}"
        );
        let s = f.settle(&request).await.unwrap();
        assert!(!s.success);
        assert_eq!(
            s.error_reason,
            Some(scheme_exact_evm::reason::INVALID_EXACT_EVM_TRANSACTION_SIMULATION_FAILED),
            "{what}: {s:?}"
        );
        h.assert_untouched(&before, what).await;
        assert!(
            h.bed
                .provider()
                .get_code_at(counterfactual)
                .await
                .unwrap()
                .is_empty(),
            "{what}: nothing deployed"
        );
    }
}

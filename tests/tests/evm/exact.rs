//! `exact` on EVM end to end on anvil with Circle's FiatTokenV2_2: sign → verify → settle moves
//! exactly the amount, for v1 and v2, EIP-3009 and Permit2, EOAs and smart wallets; and at most
//! once, however many settles race.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use alloy::primitives::{Address, B256, Bytes, U256, b256};
use alloy::providers::Provider as _;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use scheme_exact_evm::{Facilitator, Policy};
use x402_core::wire::{PaymentRequirementsV2, Raw};
use x402_core::{Reason, UnixTime};
use x402_evm::assets::TransferMethod;
use x402_tests::evm::PERMIT2_ADDRESS;
use x402_tests::evm::exact::{
    CODELESS, ExactHarness, PRICE, UNITS, assert_duplicate, eip3009_with_signature, request_v2,
    settle_all,
};
use x402_tests::evm::x402::{self as contracts, IWalletFactory};

async fn assert_paid_once(
    h: &ExactHarness,
    buyer: Address,
    before_buyer: U256,
    before_seller: U256,
) {
    assert_eq!(h.usdc(buyer).await, before_buyer - U256::from(UNITS));
    assert_eq!(
        h.usdc(h.bed.seller().address).await,
        before_seller + U256::from(UNITS)
    );
}

#[tokio::test]
async fn v1_and_v2_eip3009_pay_exactly() {
    let h = ExactHarness::start().await;
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let buyer = h.bed.buyer(0).signer.clone();
    for (version, request, network) in [
        ("v1", h.pay_v1(&buyer, &req).await, "base-sepolia"),
        ("v2", h.pay_v2(&buyer, &req).await, "eip155:84532"),
    ] {
        let (b0, s0) = (
            h.usdc(buyer.address()).await,
            h.usdc(h.bed.seller().address).await,
        );
        let v = h.verify_json(&request).await;
        assert!(v.is_valid, "{version}: {v:?}");
        assert_eq!(
            v.payer.as_deref(),
            Some(buyer.address().to_checksum(None).as_str())
        );
        let s = h.settle_json(&request).await;
        assert!(s.success, "{version}: {s:?}");
        assert_eq!(s.network, network, "{version}");
        assert_eq!(
            s.payer.as_deref(),
            Some(buyer.address().to_checksum(None).as_str())
        );
        assert_eq!(
            s.transaction.len(),
            66,
            "{version}: tx hash {:?}",
            s.transaction
        );
        assert_paid_once(&h, buyer.address(), b0, s0).await;
    }
}

/// `permit2 = false`: a Permit2 payment that would verify is refused at verify and settle before
/// any chain call, and nothing moves; EIP-3009 is served as before.
#[tokio::test]
async fn permit2_off_refuses_permit2_payments() {
    let h = ExactHarness::start_with(
        1,
        Policy {
            permit2: false,
            ..Policy::default()
        },
    )
    .await;
    let buyer = h.bed.buyer(1).signer.clone();
    h.bed
        .approve_usdc(buyer.address(), PERMIT2_ADDRESS, U256::MAX)
        .await;
    let permit2 = h
        .pay_v2(
            &buyer,
            &h.requirements(PRICE, TransferMethod::Permit2).await,
        )
        .await;
    let watch = [buyer.address(), h.bed.seller().address];
    h.assert_refused(
        &permit2,
        Reason::UNSUPPORTED_PAYLOAD_TYPE,
        &watch,
        "Permit2 with permit2 = false",
    )
    .await;
    let eip3009 = h
        .pay_v2(
            &buyer,
            &h.requirements(PRICE, TransferMethod::Eip3009).await,
        )
        .await;
    h.assert_valid(&eip3009, "EIP-3009 with permit2 = false")
        .await;
}

/// A payment's ECDSA signature may come with `v` 0/1 or in EIP-2098's 64-byte form, EIP-3009 and
/// Permit2 alike: each verifies and settles (sent in the form the contract reads) and moves the
/// price.
#[tokio::test]
async fn signatures_in_every_ecdsa_form_settle() {
    let h = ExactHarness::start().await;
    let buyer = h.bed.buyer(1).signer.clone();
    h.bed
        .approve_usdc(buyer.address(), PERMIT2_ADDRESS, U256::MAX)
        .await;
    let forms: [(&str, SignatureForm); 2] = [
        ("v 0/1", |sig| {
            let mut s = sig.to_vec();
            s[64] -= 27;
            s
        }),
        ("EIP-2098 compact", |sig| {
            let mut s = sig[..64].to_vec();
            s[32] |= (sig[64] - 27) << 7;
            s
        }),
    ];
    for (method, (form_name, form)) in [TransferMethod::Eip3009, TransferMethod::Permit2]
        .into_iter()
        .flat_map(|m| forms.map(|f| (m, f)))
    {
        let what = format!("{method:?}, {form_name}");
        let req = h.requirements(PRICE, method).await;
        let request = with_signature(&h.pay_v2(&buyer, &req).await, form);
        let seller = h.bed.seller().address;
        let (b0, s0) = (h.usdc(buyer.address()).await, h.usdc(seller).await);
        let v = h.verify_json(&request).await;
        assert!(v.is_valid, "{what}: {v:?}");
        let s = h.settle_json(&request).await;
        assert!(s.success, "{what}: {s:?}");
        assert_eq!(
            h.usdc(buyer.address()).await,
            b0 - U256::from(UNITS),
            "{what}"
        );
        assert_eq!(h.usdc(seller).await, s0 + U256::from(UNITS), "{what}");
    }
}

/// A rewrite of a 65-byte signature into another form.
type SignatureForm = fn(&[u8]) -> Vec<u8>;

/// `request` with its payload's signature rewritten by `form`.
fn with_signature(
    request: &x402_core::wire::VerifyRequest,
    form: SignatureForm,
) -> x402_core::wire::VerifyRequest {
    let mut request = request.clone();
    let x402_core::wire::PaymentPayload::V2(p) = &mut request.payment_payload else {
        panic!("a v2 payload")
    };
    let mut payload: serde_json::Value = serde_json::from_str(p.payload.get()).unwrap();
    let hex_sig = payload["signature"]
        .as_str()
        .unwrap()
        .trim_start_matches("0x");
    let sig = hex::decode(hex_sig).unwrap();
    assert_eq!(sig.len(), 65, "the buyer signs 65 bytes, v 27/28");
    payload["signature"] = format!("0x{}", hex::encode(form(&sig))).into();
    p.payload = x402_core::wire::to_raw(&payload).unwrap();
    request
}

#[tokio::test]
async fn v2_permit2_pays_exactly() {
    let h = ExactHarness::start().await;
    let req = h.requirements(PRICE, TransferMethod::Permit2).await;
    assert!(
        req.extra
            .as_ref()
            .unwrap()
            .get()
            .contains("\"assetTransferMethod\":\"permit2\"")
    );
    let buyer = h.bed.buyer(1).signer.clone();
    // Without an allowance to Permit2 the payment is refused, and nothing moves.
    let request = h.pay_v2(&buyer, &req).await;
    let nonces = h.signer_nonces().await;
    let v = h.verify_json(&request).await;
    assert_eq!(
        v.invalid_reason,
        Some(x402_evm::reason::PERMIT2_ALLOWANCE_REQUIRED),
        "{v:?}"
    );
    let s = h.settle_json(&request).await;
    assert_eq!(
        s.error_reason,
        Some(x402_evm::reason::PERMIT2_ALLOWANCE_REQUIRED),
        "{s:?}"
    );
    assert_eq!(h.signer_nonces().await, nonces, "nothing broadcast");

    h.bed
        .approve_usdc(buyer.address(), PERMIT2_ADDRESS, U256::MAX)
        .await;
    let (b0, s0) = (
        h.usdc(buyer.address()).await,
        h.usdc(h.bed.seller().address).await,
    );
    let v = h.verify_json(&request).await;
    assert!(v.is_valid, "{v:?}");
    let s = h.settle_json(&request).await;
    assert!(s.success, "{s:?}");
    assert_paid_once(&h, buyer.address(), b0, s0).await;
    // The same Permit2 authorization again: recorded outcome, never a second success.
    assert_duplicate(&h.settle_json(&request).await, &s.transaction, "again");
    assert_paid_once(&h, buyer.address(), b0, s0).await;
}

#[tokio::test]
async fn fifty_concurrent_settles_of_one_payload_settle_once() {
    let h = Arc::new(ExactHarness::start().await);
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let buyer = h.bed.buyer(2).signer.clone();
    let request = h.pay_v2(&buyer, &req).await;
    let (b0, s0) = (
        h.usdc(buyer.address()).await,
        h.usdc(h.bed.seller().address).await,
    );
    let mut successes = 0;
    let mut duplicates = 0;
    for s in settle_all(&h, vec![request; 50]).await {
        if s.success {
            successes += 1;
        } else {
            assert_eq!(s.error_reason, Some(Reason::DUPLICATE_SETTLEMENT), "{s:?}");
            duplicates += 1;
        }
    }
    assert_eq!((successes, duplicates), (1, 49));
    assert_paid_once(&h, buyer.address(), b0, s0).await;
    assert_eq!(h.pool.stats().sent, 1, "one broadcast");
}

#[tokio::test]
async fn two_hundred_distinct_settles_over_four_signers() {
    let h = Arc::new(ExactHarness::start_with(4, Policy::default()).await);
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let buyers: Vec<PrivateKeySigner> = h.bed.buyers().iter().map(|b| b.signer.clone()).collect();
    let mut requests = Vec::new();
    for i in 0..200 {
        requests.push(h.pay_v2(&buyers[i % buyers.len()], &req).await);
    }
    let seller0 = h.usdc(h.bed.seller().address).await;
    for s in settle_all(&h, requests).await {
        assert!(s.success, "{s:?}");
    }
    assert_eq!(
        h.usdc(h.bed.seller().address).await,
        seller0 + U256::from(200 * UNITS)
    );
    let stats = h.pool.stats();
    assert_eq!(stats.sent, 200);
    assert_eq!(stats.nonce_conflicts, 0, "{stats:?}");
}

/// Signs an EIP-3009 authorization for `wallet` with its owner's key (the wallet's EIP-1271
/// check accepts the owner's ECDSA signature over the digest) and passes the signature through
/// `wrap`.
fn wallet_payload(
    h: &ExactHarness,
    req: &PaymentRequirementsV2,
    wallet: Address,
    owner: &PrivateKeySigner,
    wrap: impl FnOnce(Bytes) -> Bytes,
) -> Raw {
    let msg = h.eip3009_message(wallet, req);
    let sig = contracts::sign_eip712(owner, &msg, &h.usdc_domain());
    eip3009_with_signature(&msg, wrap(sig))
}

#[tokio::test]
async fn deployed_erc1271_wallet_pays() {
    let h = ExactHarness::start().await;
    let owner = PrivateKeySigner::random();
    let factory = contracts::deploy_wallet_factory(&h.bed).await;
    let wallet = contracts::deploy_wallet(&h.bed, factory, owner.address(), B256::ZERO).await;
    h.bed.mint_usdc(wallet, U256::from(UNITS)).await;
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let request = request_v2(&req, wallet_payload(&h, &req, wallet, &owner, |s| s));
    let v = h.verify_json(&request).await;
    assert!(v.is_valid, "{v:?}");
    let s = h.settle_json(&request).await;
    assert!(s.success, "{s:?}");
    assert_eq!(h.usdc(wallet).await, U256::ZERO);
    // A signature by anyone but the owner is refused.
    let stranger = PrivateKeySigner::random();
    h.bed.mint_usdc(wallet, U256::from(UNITS)).await;
    let forged = request_v2(&req, wallet_payload(&h, &req, wallet, &stranger, |s| s));
    let v = h.verify_json(&forged).await;
    assert_eq!(
        v.invalid_reason,
        Some(scheme_exact_evm::reason::INVALID_EXACT_EVM_SIGNATURE),
        "{v:?}"
    );
}

#[tokio::test]
async fn undeployed_erc6492_wallet_pays_only_through_an_allowed_factory() {
    // Not allow-listed: refused, nothing broadcast.
    let h = ExactHarness::start().await;
    let owner = PrivateKeySigner::random();
    let factory = contracts::deploy_wallet_factory(&h.bed).await;
    let salt = b256!("0x0000000000000000000000000000000000000000000000000000000000000042");
    let wallet = contracts::wallet_factory(&h.bed, factory)
        .predict(owner.address(), salt)
        .call()
        .await
        .unwrap();
    h.bed.mint_usdc(wallet, U256::from(UNITS)).await;
    let deploy = IWalletFactory::deployCall {
        owner: owner.address(),
        salt,
    }
    .abi_encode();
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let wrap = |sig| contracts::erc6492_wrap(factory, &deploy.clone().into(), &sig);
    let request = request_v2(&req, wallet_payload(&h, &req, wallet, &owner, wrap));
    let nonces = h.signer_nonces().await;
    let s = h.settle_json(&request).await;
    assert_eq!(
        s.error_reason,
        Some(scheme_exact_evm::reason::EIP6492_FACTORY_NOT_ALLOWED),
        "{s:?}"
    );
    assert_eq!(h.signer_nonces().await, nonces);
    assert_eq!(h.usdc(wallet).await, U256::from(UNITS));

    // Allow-listed: deployed and paid in one transaction.
    let h2 = ExactHarness::start_with(
        1,
        Policy {
            erc6492_factories: vec![factory],
            ..Policy::default()
        },
    )
    .await;
    // Fresh bed, same deterministic addresses: deploy the factory again at the same address.
    assert_eq!(contracts::deploy_wallet_factory(&h2.bed).await, factory);
    h2.bed.mint_usdc(wallet, U256::from(UNITS)).await;
    let req = h2.requirements(PRICE, TransferMethod::Eip3009).await;

    // Allow-listed, but the factory call reverts (a selector the factory does not have): the
    // failed deployment is named, nothing is sent.
    let broken = |sig| {
        contracts::erc6492_wrap(
            factory,
            &Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef]),
            &sig,
        )
    };
    let request = request_v2(&req, wallet_payload(&h2, &req, wallet, &owner, broken));
    let nonces = h2.signer_nonces().await;
    let v = h2.verify_json(&request).await;
    assert_eq!(
        v.invalid_reason,
        Some(scheme_exact_evm::reason::SMART_WALLET_DEPLOYMENT_FAILED),
        "{v:?}"
    );
    let s = h2.settle_json(&request).await;
    assert_eq!(
        s.error_reason,
        Some(scheme_exact_evm::reason::SMART_WALLET_DEPLOYMENT_FAILED),
        "{s:?}"
    );
    assert_eq!(h2.signer_nonces().await, nonces);
    assert_eq!(h2.usdc(wallet).await, U256::from(UNITS));

    let request = request_v2(&req, wallet_payload(&h2, &req, wallet, &owner, wrap));
    let v = h2.verify_json(&request).await;
    assert!(v.is_valid, "{v:?}");
    let s = h2.settle_json(&request).await;
    assert!(s.success, "{s:?}");
    assert_eq!(h2.usdc(wallet).await, U256::ZERO);
    assert!(
        !h2.bed
            .provider()
            .get_code_at(wallet)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn vector_a_checks_out_with_the_clock_pinned() {
    const VECTOR_A: &str = r#"{"x402Version":2,"accepted":{"scheme":"exact","network":"eip155:84532","amount":"10000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","maxTimeoutSeconds":60,"extra":{"name":"USDC","version":"2"}},"payload":{"signature":"0xdc53a4a579de989368a0fae2ef2172ff2f474b4297013f865d171239f17ef4c3157b4b4030f1bebc53d55ace15c2377dff501a60e1e56c291f1000d6e78f082f1b","authorization":{"from":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","to":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","value":"10000","validAfter":"1740672089","validBefore":"1740672154","nonce":"0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480"}}}"#;
    let h = ExactHarness::start().await;
    let payload = x402_core::wire::PaymentPayload::from_json(
        VECTOR_A.as_bytes(),
        x402_core::json::JsonLimits::DEFAULT,
    )
    .unwrap();
    let x402_core::wire::PaymentPayload::V2(p) = &payload else {
        panic!()
    };
    let request = x402_core::wire::VerifyRequest::new(
        payload.clone(),
        x402_core::wire::PaymentRequirements::V2(p.accepted.clone()),
    );
    let base_sepolia_usdc = CODELESS;
    let facilitator = |clock: fn() -> UnixTime| {
        Facilitator::new(
            h.network.clone(),
            h.bed.provider(),
            h.pool.clone(),
            h.store.clone(),
            Policy {
                assets: Some(vec![base_sepolia_usdc]),
                ..Policy::default()
            },
        )
        .unwrap()
        .with_clock(Arc::new(clock))
    };
    let check = |f: Facilitator| async {
        let scheme = x402_core::FacilitatorRole::into_scheme(f);
        let ctx = x402_core::PaymentContext::of(&request).unwrap();
        scheme.verify(&ctx).await.unwrap()
    };
    // Real time: the vector's window is long past.
    let now = check(facilitator(UnixTime::now)).await;
    assert_eq!(
        now.result.unwrap_err().reason,
        scheme_exact_evm::reason::INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_BEFORE
    );
    // Inside the window every off-chain check passes (domain, digest, signer, recipient, time,
    // amount); then the facilitator finds no contract at Base Sepolia's USDC address on anvil.
    fn pinned() -> UnixTime {
        UnixTime(1_740_672_100)
    }
    assert!(
        h.bed
            .provider()
            .get_code_at(base_sepolia_usdc)
            .await
            .unwrap()
            .is_empty()
    );
    let inside = check(facilitator(pinned)).await;
    assert_eq!(
        inside.payer.as_deref(),
        Some("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
    );
    assert_eq!(
        inside.result.unwrap_err().reason,
        x402_evm::reason::ASSET_NOT_DEPLOYED_CONTRACT
    );
}

#[tokio::test]
async fn the_answer_deadline_bounds_the_receipt_wait_and_sending() {
    use std::time::Duration;
    use x402_core::SettleTimeouts;
    let h = ExactHarness::start().await;
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let buyer = h.bed.buyer(0).signer.clone();
    let seller = h.bed.seller().address;
    let (b0, s0) = (h.usdc(buyer.address()).await, h.usdc(seller).await);

    // Out of time before sending: nothing is broadcast, and the payment can be settled later.
    let request = h.pay_v2(&buyer, &req).await;
    let body = serde_json::to_vec(&request).unwrap();
    let hurried = h
        .facilitator
        .clone()
        .with_timeouts(SettleTimeouts::new(Duration::ZERO));
    let s = hurried
        .settle_json(&body, x402_core::json::JsonLimits::DEFAULT)
        .await
        .unwrap();
    assert_eq!(
        s.error_reason,
        Some(Reason::UNEXPECTED_SETTLE_ERROR),
        "{s:?}"
    );
    assert!(s.transaction.is_empty(), "{s:?}");
    assert_eq!(h.pool.stats().sent, 0, "nothing was broadcast");
    assert_eq!(h.usdc(buyer.address()).await, b0);

    // Sent, never mined within the answer bound (the receipt bound is longer): pending with the
    // transaction hash, then mined, and a retry names the same transaction.
    h.set_automine(false).await;
    let patient = h
        .facilitator
        .clone()
        .with_timeouts(SettleTimeouts::new(Duration::from_secs(2)));
    let s = patient
        .settle_json(&body, x402_core::json::JsonLimits::DEFAULT)
        .await
        .unwrap();
    assert_eq!(s.error_reason, Some(Reason::SETTLEMENT_PENDING), "{s:?}");
    assert_eq!(s.transaction.len(), 66, "{s:?}");
    assert_eq!(h.pool.stats().sent, 1);
    h.set_automine(true).await;
    h.mine().await;
    assert_paid_once(&h, buyer.address(), b0, s0).await;
    // The retry reconciles the pending record from the chain: success with the same
    // transaction, once; later repeats are duplicates naming it.
    let again = h.settle_json(&request).await;
    assert!(again.success, "{again:?}");
    assert_eq!(again.transaction, s.transaction);
    let third = h.settle_json(&request).await;
    assert_eq!(
        third.error_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{third:?}"
    );
    assert_eq!(third.transaction, s.transaction);
    assert_eq!(h.pool.stats().sent, 1, "never sent twice");
}

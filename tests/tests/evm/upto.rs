//! `upto` on EVM on anvil with Circle's FiatTokenV2_2 and our upto proxy at its canonical address:
//! authorize a maximum, settle the actual usage, at most once, only by the named facilitator.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use alloy::primitives::{Address, U256, address};
use alloy::signers::local::PrivateKeySigner;
use scheme_upto_evm::{Buyer, Facilitator, Policy, Seller, charge};
use x402_core::wire::{PaymentRequirementsV2, VerifyRequest};
use x402_core::{
    Amount, BuyerRole as _, Facilitator as _, FacilitatorRole as _, LocalFacilitator, Price,
    PriceRequest, Reason, Registry, SellerRole as _, UnixTime, X402Version,
};
use x402_evm::assets::{AssetTable, TransferMethod};
use x402_tests::evm::PERMIT2_ADDRESS;
use x402_tests::evm::exact::{ExactHarness, request_v2, usdc_info};

/// An exact harness plus an upto facilitator sharing its signer pool and settlement store.
struct Upto {
    h: ExactHarness,
    upto: LocalFacilitator,
}

fn upto_facilitator(
    h: &ExactHarness,
    assets: Vec<Address>,
    clock: fn() -> UnixTime,
) -> LocalFacilitator {
    let f = Facilitator::new(
        h.network.clone(),
        h.bed.provider(),
        h.pool.clone(),
        h.store.clone(),
        Policy {
            assets: Some(assets),
            ..Policy::default()
        },
    )
    .unwrap()
    .with_clock(Arc::new(clock));
    let mut registry = Registry::new();
    registry
        .register(h.network.as_str(), &[X402Version::V2], f.into_scheme())
        .unwrap();
    LocalFacilitator::new(registry)
}

impl Upto {
    async fn start() -> Self {
        let h = ExactHarness::start().await;
        let upto = upto_facilitator(&h, vec![h.bed.usdc()], UnixTime::now);
        for b in h.bed.buyers() {
            h.bed
                .approve_usdc(b.address, PERMIT2_ADDRESS, U256::MAX)
                .await;
        }
        Self { h, upto }
    }

    /// Requirements for a maximum of `price` USDC, with `facilitatorAddress` from `/supported`.
    async fn requirements(&self, price: &str) -> PaymentRequirementsV2 {
        let supported = self.upto.supported().await.unwrap();
        let kind = supported
            .kinds
            .into_iter()
            .find(|k| k.scheme == "upto")
            .unwrap();
        let mut assets = AssetTable::empty();
        assets.insert(
            self.h.network.clone(),
            usdc_info(self.h.bed.usdc(), TransferMethod::Permit2),
        );
        Seller::new(assets)
            .requirements(&PriceRequest {
                network: self.h.network.clone(),
                price: Price::Decimal(price.into()),
                pay_to: self.h.bed.seller().address.to_checksum(None),
                asset: None,
                max_timeout_seconds: Some(120),
                facilitator_kind: Some(kind),
            })
            .await
            .unwrap()
    }

    async fn authorize(
        &self,
        buyer: &PrivateKeySigner,
        req: &PaymentRequirementsV2,
    ) -> VerifyRequest {
        let view = x402_core::wire::PaymentRequirements::V2(req.clone());
        let payload = Buyer::new(Arc::new(buyer.clone()))
            .sign(&view.view().unwrap())
            .await
            .unwrap();
        request_v2(req, payload)
    }

    /// The settle request for `actual` units of an authorization (the seller's own requirements
    /// with the charged amount; the buyer's `accepted` untouched).
    fn settle_request(
        authorized: &VerifyRequest,
        actual: u64,
        bypass_seller_check: bool,
    ) -> VerifyRequest {
        let x402_core::wire::PaymentRequirements::V2(max) = &authorized.payment_requirements else {
            panic!("v2")
        };
        let charged = if bypass_seller_check {
            PaymentRequirementsV2 {
                amount: Amount::from(actual),
                ..max.clone()
            }
        } else {
            charge(max, Amount::from(actual)).unwrap()
        };
        VerifyRequest::new(
            authorized.payment_payload.clone(),
            x402_core::wire::PaymentRequirements::V2(charged),
        )
    }

    async fn balances(&self, buyer: Address) -> (U256, U256) {
        (
            self.h.usdc(buyer).await,
            self.h.usdc(self.h.bed.seller().address).await,
        )
    }
}

#[tokio::test]
async fn settles_the_actual_amount_once() {
    let t = Upto::start().await;
    let buyer = t.h.bed.buyer(0).signer.clone();
    let req = t.requirements("1.00").await;
    assert_eq!(req.amount, Amount::from(1_000_000));
    let extra = req.extra.as_ref().unwrap().get();
    assert!(
        extra.contains(&t.h.bed.facilitator().address.to_checksum(None)),
        "{extra}"
    );
    let auth = t.authorize(&buyer, &req).await;
    let v = t.upto.verify(&auth).await.unwrap();
    assert!(v.is_valid, "{v:?}");

    let (b0, s0) = t.balances(buyer.address()).await;
    let s = t
        .upto
        .settle(&Upto::settle_request(&auth, 370_000, false))
        .await
        .unwrap();
    assert!(s.success, "{s:?}");
    assert_eq!(s.amount, Some(Amount::from(370_000)));
    assert_eq!(
        serde_json::to_value(&s).unwrap()["amount"],
        serde_json::json!("370000")
    );
    assert_eq!(
        t.balances(buyer.address()).await,
        (b0 - U256::from(370_000), s0 + U256::from(370_000))
    );

    // The same authorization again, for any amount: refused, nothing moves, nothing sent.
    let nonces = t.h.signer_nonces().await;
    for amount in [370_000, 10, 1_000_000] {
        let again = t
            .upto
            .settle(&Upto::settle_request(&auth, amount, false))
            .await
            .unwrap();
        assert!(!again.success);
        assert_eq!(
            again.error_reason,
            Some(Reason::DUPLICATE_SETTLEMENT),
            "{again:?}"
        );
    }
    assert_eq!(t.h.signer_nonces().await, nonces);
    assert_eq!(
        t.balances(buyer.address()).await,
        (b0 - U256::from(370_000), s0 + U256::from(370_000))
    );
}

#[tokio::test]
async fn more_than_the_maximum_is_refused_with_nothing_sent() {
    let t = Upto::start().await;
    let buyer = t.h.bed.buyer(1).signer.clone();
    let req = t.requirements("1.00").await;
    let auth = t.authorize(&buyer, &req).await;
    // The seller-side helper refuses it already...
    let x402_core::wire::PaymentRequirements::V2(max) = &auth.payment_requirements else {
        panic!()
    };
    assert!(charge(max, Amount::from(1_010_000)).is_err());
    // ...and so does the facilitator when a seller asks anyway.
    let (b0, s0) = t.balances(buyer.address()).await;
    let nonces = t.h.signer_nonces().await;
    let s = t
        .upto
        .settle(&Upto::settle_request(&auth, 1_010_000, true))
        .await
        .unwrap();
    assert_eq!(
        s.error_reason,
        Some(scheme_upto_evm::reason::INVALID_UPTO_EVM_PAYLOAD_SETTLEMENT_EXCEEDS_AMOUNT),
        "{s:?}"
    );
    assert_eq!(t.h.signer_nonces().await, nonces);
    assert_eq!(t.balances(buyer.address()).await, (b0, s0));
    // The authorization is still good for an allowed amount afterwards.
    let ok = t
        .upto
        .settle(&Upto::settle_request(&auth, 1_000_000, false))
        .await
        .unwrap();
    assert!(ok.success, "{ok:?}");
}

#[tokio::test]
async fn a_zero_settle_consumes_the_authorization() {
    let t = Upto::start().await;
    let buyer = t.h.bed.buyer(2).signer.clone();
    let req = t.requirements("1.00").await;
    let auth = t.authorize(&buyer, &req).await;
    let (b0, s0) = t.balances(buyer.address()).await;
    let nonces = t.h.signer_nonces().await;
    let zero = t
        .upto
        .settle(&Upto::settle_request(&auth, 0, false))
        .await
        .unwrap();
    assert!(zero.success, "{zero:?}");
    assert_eq!(zero.transaction, "");
    assert_eq!(zero.amount, Some(Amount::ZERO));
    assert_eq!(
        t.h.signer_nonces().await,
        nonces,
        "a zero settle sends nothing"
    );
    // The consumed authorization no longer verifies (the record, not the chain, says so).
    let v = t.upto.verify(&auth).await.unwrap();
    assert_eq!(
        v.invalid_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{v:?}"
    );
    let later = t
        .upto
        .settle(&Upto::settle_request(&auth, 500_000, false))
        .await
        .unwrap();
    assert!(!later.success);
    assert_eq!(
        later.error_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{later:?}"
    );
    assert_eq!(t.h.signer_nonces().await, nonces);
    assert_eq!(t.balances(buyer.address()).await, (b0, s0));
}

#[tokio::test]
async fn witness_naming_another_facilitator_is_refused() {
    let t = Upto::start().await;
    let buyer = t.h.bed.buyer(3).signer.clone();
    let mut req = t.requirements("1.00").await;
    let other = address!("0x00000000000000000000000000000000000000f1");
    let extra = req.extra.as_ref().unwrap().get().replace(
        &t.h.bed.facilitator().address.to_checksum(None),
        &other.to_checksum(None),
    );
    req.extra = Some(serde_json::value::RawValue::from_string(extra).unwrap());
    let auth = t.authorize(&buyer, &req).await;
    let (b0, s0) = t.balances(buyer.address()).await;
    let nonces = t.h.signer_nonces().await;
    let v = t.upto.verify(&auth).await.unwrap();
    assert_eq!(
        v.invalid_reason,
        Some(scheme_upto_evm::reason::UPTO_FACILITATOR_MISMATCH),
        "{v:?}"
    );
    let s = t
        .upto
        .settle(&Upto::settle_request(&auth, 100, false))
        .await
        .unwrap();
    assert_eq!(
        s.error_reason,
        Some(scheme_upto_evm::reason::UPTO_FACILITATOR_MISMATCH),
        "{s:?}"
    );
    assert_eq!(t.h.signer_nonces().await, nonces);
    assert_eq!(t.balances(buyer.address()).await, (b0, s0));
}

#[tokio::test]
async fn expired_and_not_yet_valid_authorizations_are_refused() {
    fn much_later() -> UnixTime {
        UnixTime(UnixTime::now().0 + 100_000)
    }
    fn much_earlier() -> UnixTime {
        UnixTime(UnixTime::now().0 - 100_000)
    }
    let t = Upto::start().await;
    let buyer = t.h.bed.buyer(4).signer.clone();
    let req = t.requirements("1.00").await;
    let auth = t.authorize(&buyer, &req).await;
    let nonces = t.h.signer_nonces().await;
    for (clock, reason) in [
        (
            much_later as fn() -> UnixTime,
            x402_evm::reason::PERMIT2_DEADLINE_EXPIRED,
        ),
        (much_earlier, x402_evm::reason::PERMIT2_NOT_YET_VALID),
    ] {
        let f = upto_facilitator(&t.h, vec![t.h.bed.usdc()], clock);
        let v = f.verify(&auth).await.unwrap();
        assert_eq!(v.invalid_reason, Some(reason.clone()), "{v:?}");
        let s = f
            .settle(&Upto::settle_request(&auth, 1, false))
            .await
            .unwrap();
        assert_eq!(s.error_reason, Some(reason), "{s:?}");
    }
    assert_eq!(t.h.signer_nonces().await, nonces);
}

#[tokio::test]
async fn vector_c_checks_out_with_the_clock_pinned() {
    const VECTOR_C_PAYLOAD: &str = r#"{"signature":"0x3433d762a5ee8e40a33a489a4ad695af362e5054e1e0e7a8f6599c21d38e536c23f8ebc6800c001e0d9ca2b44850892d62e5e861c0799dabbb9a2f638692c45c1c","permit2Authorization":{"from":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","permitted":{"token":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","amount":"5000000"},"spender":"0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002","nonce":"110117680976134290040645500446194905769275902069351365960831693135107775870080","deadline":"1740672154","witness":{"to":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","facilitator":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","validAfter":"1740672089"}}}"#;
    fn pinned() -> UnixTime {
        UnixTime(1_740_672_100)
    }
    let h = ExactHarness::start().await;
    // The vector's facilitator is anvil account #1: the bed's facilitator signer.
    assert_eq!(
        h.bed.facilitator().address,
        address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
    );
    let usdc = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
    let req = PaymentRequirementsV2 {
        scheme: "upto".into(),
        network: "eip155:84532".into(),
        amount: Amount::from(5_000_000),
        asset: usdc.to_checksum(None),
        pay_to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into(),
        max_timeout_seconds: 300,
        extra: None,
    };
    let payload = serde_json::value::RawValue::from_string(VECTOR_C_PAYLOAD.into()).unwrap();
    let request = request_v2(&req, payload);
    // In real time the vector is long expired.
    let now = upto_facilitator(&h, vec![usdc], UnixTime::now);
    assert_eq!(
        now.verify(&request).await.unwrap().invalid_reason,
        Some(x402_evm::reason::PERMIT2_DEADLINE_EXPIRED)
    );
    // Inside its window every check up to the signature passes (spender, recipient, witness
    // facilitator, time, amount, token, the digest's signer); only then does the facilitator
    // find that Base Sepolia's USDC address holds no contract on anvil.
    let inside = upto_facilitator(&h, vec![usdc], pinned);
    let v = inside.verify(&request).await.unwrap();
    assert_eq!(
        v.payer.as_deref(),
        Some("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
    );
    assert_eq!(
        v.invalid_reason,
        Some(x402_evm::reason::ASSET_NOT_DEPLOYED_CONTRACT),
        "{v:?}"
    );
    // One changed signature byte fails at the signature step instead.
    let bad = VECTOR_C_PAYLOAD.replace("0x3433d762", "0x3433d763");
    let bad = request_v2(&req, serde_json::value::RawValue::from_string(bad).unwrap());
    assert_eq!(
        inside.verify(&bad).await.unwrap().invalid_reason,
        Some(x402_evm::reason::INVALID_PERMIT2_SIGNATURE)
    );
}

#[tokio::test]
async fn permit2_nonces_are_one_space_with_exact() {
    use scheme_exact_evm::payload::{ExactEvmPayload, Permit2Payload};
    use x402_evm::abi::permit2_exact;
    use x402_evm::addresses::EXACT_PERMIT2_PROXY;
    use x402_evm::eip712::permit2_domain;

    let t = Upto::start().await;
    let buyer = t.h.bed.buyer(0).signer.clone();
    let req = t.requirements("1.00").await;
    let auth = t.authorize(&buyer, &req).await;
    // Consume the upto authorization without moving anything (a zero charge).
    assert!(
        t.upto
            .settle(&Upto::settle_request(&auth, 0, false))
            .await
            .unwrap()
            .success
    );
    let x402_core::wire::PaymentPayload::V2(p) = &auth.payment_payload else {
        panic!()
    };
    let upto = scheme_upto_evm::payload::parse(&p.payload).unwrap();

    // An exact Permit2 payment by the same owner with the same Permit2 nonce: the store already
    // holds that identity, so it is refused before anything is sent.
    let exact_req = t.h.requirements("0.01", TransferMethod::Permit2).await;
    let now = UnixTime::now().0;
    let message = permit2_exact::PermitWitnessTransferFrom {
        permitted: permit2_exact::TokenPermissions {
            token: t.h.bed.usdc(),
            amount: exact_req.amount.get(),
        },
        spender: EXACT_PERMIT2_PROXY,
        nonce: upto.nonce,
        deadline: U256::from(now + 120),
        witness: permit2_exact::Witness {
            to: t.h.bed.seller().address,
            validAfter: U256::from(now - 600),
        },
    };
    let signature =
        x402_tests::evm::x402::sign_eip712(&buyer, &message, &permit2_domain(t.h.bed.chain_id()));
    let payload = scheme_exact_evm::payload::to_json(&ExactEvmPayload::Permit2(Permit2Payload {
        signature,
        from: buyer.address(),
        token: t.h.bed.usdc(),
        amount: exact_req.amount.get(),
        spender: EXACT_PERMIT2_PROXY,
        nonce: upto.nonce,
        deadline: message.deadline,
        witness_to: t.h.bed.seller().address,
        valid_after: message.witness.validAfter,
    }))
    .unwrap();
    let exact = request_v2(&exact_req, payload);
    // On chain the nonce is unspent, but the store holds the identity upto consumed: neither
    // verification (threat-model S78) nor settlement passes.
    let v = t.h.facilitator.verify(&exact).await.unwrap();
    assert_eq!(
        v.invalid_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{v:?}"
    );
    let (b0, s0) = t.balances(buyer.address()).await;
    let nonces = t.h.signer_nonces().await;
    let s = t.h.facilitator.settle(&exact).await.unwrap();
    assert_eq!(s.error_reason, Some(Reason::DUPLICATE_SETTLEMENT), "{s:?}");
    assert_eq!(t.h.signer_nonces().await, nonces);
    assert_eq!(t.balances(buyer.address()).await, (b0, s0));
}

/// `request` with its payload edited by `edit` (a JSON value of the scheme payload).
fn edited(request: &VerifyRequest, edit: impl FnOnce(&mut serde_json::Value)) -> VerifyRequest {
    let x402_core::wire::PaymentPayload::V2(p) = &request.payment_payload else {
        panic!("v2")
    };
    let mut payload: serde_json::Value = serde_json::from_str(p.payload.get()).unwrap();
    edit(&mut payload);
    let mut p = p.clone();
    p.payload = serde_json::value::to_raw_value(&payload).unwrap();
    VerifyRequest::new(
        x402_core::wire::PaymentPayload::V2(p),
        request.payment_requirements.clone(),
    )
}

#[tokio::test]
async fn a_zero_settle_authenticates_a_contract_payer() {
    // A smart wallet pays: its owner signs the Permit2 digest (which does not name the owner),
    // the payload names the wallet, and the wallet vouches for the signature (EIP-1271).
    let t = Upto::start().await;
    let (wallet, owner) = t.h.funded_wallet().await;
    x402_tests::evm::x402::wallet_approves_permit2(&t.h.bed, wallet, owner.address()).await;
    t.h.bed.mint_usdc(wallet, U256::from(500_000)).await;
    let req = t.requirements("0.50").await;
    let genuine = edited(&t.authorize(&owner, &req).await, |p| {
        p["permit2Authorization"]["from"] = wallet.to_checksum(None).into();
    });
    let v = t.upto.verify(&genuine).await.unwrap();
    assert!(v.is_valid, "{v:?}");
    // Someone else's garbage signature on the same authorization: a zero charge sends nothing,
    // so it is never simulated, yet it must not consume the wallet's authorization.
    let forged = edited(&genuine, |p| {
        p["signature"] = format!("0x{}", "5a".repeat(65)).into();
    });
    let (b0, s0) = t.balances(wallet).await;
    let nonces = t.h.signer_nonces().await;
    let zero = t
        .upto
        .settle(&Upto::settle_request(&forged, 0, false))
        .await
        .unwrap();
    assert!(!zero.success, "{zero:?}");
    assert_eq!(
        zero.error_reason,
        Some(x402_evm::reason::INVALID_PERMIT2_SIGNATURE),
        "{zero:?}"
    );
    assert_eq!(t.h.signer_nonces().await, nonces, "nothing was sent");
    assert_eq!(t.balances(wallet).await, (b0, s0));
    // The genuine authorization is untouched: it still verifies and settles its charge.
    let v = t.upto.verify(&genuine).await.unwrap();
    assert!(v.is_valid, "{v:?}");
    let paid = t
        .upto
        .settle(&Upto::settle_request(&genuine, 200_000, false))
        .await
        .unwrap();
    assert!(paid.success, "{paid:?}");
    assert_eq!(
        t.balances(wallet).await,
        (b0 - U256::from(200_000), s0 + U256::from(200_000))
    );
}

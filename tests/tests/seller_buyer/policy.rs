//! Payments the buyer's policy or its schemes refuse are never sent.

use alloy::primitives::U256;
use x402_buyer::{Buyer, Error, Policy};
use x402_core::header::PAYMENT_REQUIRED;
use x402_core::wire::{PaymentRequiredV2, PaymentRequirementsV2, ResourceInfo};
use x402_core::{Amount, BuyerRole as _, NetworkPattern, Registry, X402Version};
use x402_tests::e2e::{EXACT_UNITS, Shop, buyer_for};

#[tokio::test]
async fn policy_refusals_send_no_payment() {
    let shop = Shop::start().await;
    let b0 = shop.h.bed.buyer(0).clone();
    let before = shop.usdc(b0.address).await;
    let refused = |e: Error, what: &str| match e {
        Error::NoAcceptableOption(reasons) => {
            assert!(reasons.iter().any(|r| r.contains(what)), "{reasons:?}")
        }
        other => panic!("expected a policy refusal, got {other}"),
    };

    let cheap = buyer_for(
        &shop.h,
        &b0.signer,
        Policy {
            max_per_request: Some("0.005".into()),
            ..Policy::default()
        },
    );
    refused(
        cheap.get(&shop.at("/joke")).await.unwrap_err(),
        "more than the maximum of 0.005 USDC per request",
    );
    let elsewhere = buyer_for(
        &shop.h,
        &b0.signer,
        Policy {
            networks: vec![NetworkPattern::parse("eip155:8453").unwrap()],
            ..Policy::default()
        },
    );
    refused(
        elsewhere.get(&shop.at("/joke")).await.unwrap_err(),
        "is not allowed",
    );
    let usdc = Policy {
        assets: vec![x402_tests::e2e::usdc_asset(&shop.h)],
        ..Policy::default()
    };
    let blind = Buyer::new(reqwest::Client::new(), Registry::new(), usdc);
    refused(
        blind.get(&shop.at("/joke")).await.unwrap_err(),
        "no scheme is registered",
    );
    let unknown_asset = Buyer::new(
        reqwest::Client::new(),
        registry_of(&b0.signer),
        Policy::default(),
    );
    refused(
        unknown_asset.get(&shop.at("/joke")).await.unwrap_err(),
        "decimals cannot be checked",
    );
    assert_eq!(shop.counting.calls(), (0, 0), "no payment was sent");
    assert_eq!(shop.usdc(b0.address).await, before);

    // A total budget: the first payment fits, the second does not.
    let budget = buyer_for(
        &shop.h,
        &b0.signer,
        Policy {
            max_total: Some("0.015".into()),
            ..Policy::default()
        },
    );
    assert_eq!(
        budget
            .get(&shop.at("/joke"))
            .await
            .unwrap()
            .response
            .status(),
        200
    );
    refused(
        budget.get(&shop.at("/joke")).await.unwrap_err(),
        "already spent",
    );
    assert_eq!(shop.counting.calls(), (1, 1));
    assert_eq!(
        shop.usdc(b0.address).await,
        before - U256::from(EXACT_UNITS)
    );
}

/// A seller whose 402 names the bed's USDC without its EIP-712 domain (`extra`): the buyer must
/// refuse to sign rather than guess, and nothing counts against its budget.

#[tokio::test]
async fn requirements_without_domain_data_are_refused() {
    let shop = Shop::start().await;
    let b0 = shop.h.bed.buyer(0).clone();
    let doc = PaymentRequiredV2 {
        x402_version: X402Version::V2,
        error: None,
        resource: ResourceInfo::new("http://127.0.0.1/odd"),
        accepts: vec![PaymentRequirementsV2 {
            scheme: "exact".into(),
            network: shop.h.network.to_string(),
            amount: Amount::from(EXACT_UNITS),
            asset: shop.h.bed.usdc().to_checksum(None),
            pay_to: shop.h.bed.seller().address.to_checksum(None),
            max_timeout_seconds: 60,
            extra: None,
        }],
        extensions: None,
    };
    let header = x402_core::header::encode(&doc).unwrap();
    let odd = axum::Router::new().route(
        "/odd",
        axum::routing::get(move || {
            let header = header.clone();
            async move {
                (
                    axum::http::StatusCode::PAYMENT_REQUIRED,
                    [(PAYMENT_REQUIRED, header)],
                    "{}",
                )
            }
        }),
    );
    let url = x402_tests::e2e::serve(odd).await;
    let buyer = buyer_for(&shop.h, &b0.signer, Policy::default());
    match buyer.get(&format!("{url}/odd")).await.unwrap_err() {
        Error::Sign(e) => assert!(e.to_string().contains("EIP-712"), "{e}"),
        other => panic!("expected a refusal to sign, got {other}"),
    }
    assert_eq!(
        buyer.spent(&shop.h.network, &shop.h.bed.usdc().to_string()),
        Amount::ZERO
    );
}

fn registry_of(signer: &alloy::signers::local::PrivateKeySigner) -> Registry {
    let mut r = Registry::new();
    r.register(
        scheme_exact_evm::ANY_NETWORK,
        scheme_exact_evm::VERSIONS,
        scheme_exact_evm::Buyer::new(std::sync::Arc::new(signer.clone())).into_scheme(),
    )
    .unwrap();
    r
}

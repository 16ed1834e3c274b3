//! The shipped hook over HTTP against anvil with real USDC: `[hooks.deny_list]` refuses a listed
//! payer and a listed recipient at verify and at settle with nothing sent, and a payer taken off
//! the file pays once the file is reloaded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::path::Path;
use std::time::Duration;

use alloy::primitives::U256;
use x402_evm::assets::TransferMethod;
use x402_tests::evm::exact::{ExactHarness, PRICE, UNITS};

use crate::common::{config, post, run, start};

/// Replaces the deny-list file atomically (write a new file, rename it over), as an operator
/// should, then waits past the reload interval.
async fn write_list(path: &Path, text: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, text).unwrap();
    std::fs::rename(&next, path).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// An `upto` authorization of up to 1 USDC from `buyer` (Permit2, already approved).
async fn upto_payment(
    h: &ExactHarness,
    url: &str,
    buyer: &alloy::signers::local::PrivateKeySigner,
) -> x402_core::wire::VerifyRequest {
    use std::sync::Arc;
    use x402_core::{BuyerRole as _, SellerRole as _};
    let (_, supported) = crate::common::get(url, "/supported").await;
    let supported: x402_core::wire::SupportedResponse = serde_json::from_str(&supported).unwrap();
    let kind = supported
        .kinds
        .into_iter()
        .find(|k| k.scheme == "upto")
        .unwrap();
    let mut assets = x402_evm::assets::AssetTable::empty();
    assets.insert(
        h.network.clone(),
        x402_tests::evm::exact::usdc_info(h.bed.usdc(), TransferMethod::Permit2),
    );
    let max = scheme_upto_evm::Seller::new(assets)
        .requirements(&x402_core::PriceRequest {
            network: h.network.clone(),
            price: x402_core::Price::Decimal("1.00".into()),
            pay_to: h.bed.seller().address.to_checksum(None),
            asset: None,
            max_timeout_seconds: Some(120),
            facilitator_kind: Some(kind),
        })
        .await
        .unwrap();
    let view = x402_core::wire::PaymentRequirements::V2(max.clone());
    let payload = scheme_upto_evm::Buyer::new(Arc::new(buyer.clone()))
        .sign(&view.view().unwrap())
        .await
        .unwrap();
    x402_tests::evm::exact::request_v2(&max, payload)
}

#[tokio::test]
async fn the_deny_list_refuses_payer_and_recipient_and_reloads() {
    let h = ExactHarness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("deny.txt");
    let buyer = h.bed.buyer(0).signer.clone();
    let other = h.bed.buyer(1).signer.clone();
    let seller = h.bed.seller().address;
    // Listed in lower case: the payload names the payer checksummed, and they still match.
    std::fs::write(
        &list,
        format!(
            "# sanctioned payers\n{}\n",
            buyer.address().to_string().to_lowercase()
        ),
    )
    .unwrap();
    let (mut text, envs) = config(&h);
    text.push_str(&format!(
        "[hooks.deny_list]\npath = {:?}\nreload_interval_ms = 50\n",
        list.display().to_string()
    ));
    let server = start(&text, &envs);
    let url = server.url.clone();

    // A listed payer: refused at verify and at settle with the hook's reason, the payer named;
    // nothing moves and the facilitator broadcasts nothing.
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let denied = serde_json::to_vec(&h.pay_v2(&buyer, &req).await).unwrap();
    h.bed
        .approve_usdc(buyer.address(), x402_tests::evm::PERMIT2_ADDRESS, U256::MAX)
        .await;
    let permit2 = h.requirements(PRICE, TransferMethod::Permit2).await;
    let denied_permit2 = serde_json::to_vec(&h.pay_v2(&buyer, &permit2).await).unwrap();
    let denied_upto = serde_json::to_vec(&upto_payment(&h, &url, &buyer).await).unwrap();
    let before = h.snapshot(&[buyer.address(), other.address()]).await;
    let (status, v) = post(&url, "/verify", denied.clone()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["isValid"], false, "{v}");
    assert_eq!(v["invalidReason"], "payer_denied", "{v}");
    assert_eq!(v["payer"], buyer.address().to_checksum(None), "{v}");
    let (status, s) = post(&url, "/settle", denied.clone()).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["success"], false, "{s}");
    assert_eq!(s["errorReason"], "payer_denied", "{s}");
    assert_eq!(s["transaction"], "", "{s}");
    assert_eq!(s["network"], h.network.as_str(), "{s}");
    // The v1 form of a payment is screened alike.
    let denied_v1 = serde_json::to_vec(&h.pay_v1(&buyer, &req).await).unwrap();
    let (_, s) = post(&url, "/settle", denied_v1).await;
    assert_eq!(s["errorReason"], "payer_denied", "{s}");
    // Whatever the scheme and transfer method: exact by Permit2, upto.
    for body in [denied_permit2, denied_upto] {
        for route in ["/verify", "/settle"] {
            let (_, a) = post(&url, route, body.clone()).await;
            let reason = if route == "/verify" {
                &a["invalidReason"]
            } else {
                &a["errorReason"]
            };
            assert_eq!(reason, "payer_denied", "{route}: {a}");
            assert_eq!(a["payer"], buyer.address().to_checksum(None), "{a}");
        }
    }
    h.assert_untouched(&before, "a denied payer").await;

    // Another payer is served meanwhile (the screen is per payer, not the route).
    let fine = serde_json::to_vec(&h.pay_v2(&other, &req).await).unwrap();
    let (_, v) = post(&url, "/verify", fine).await;
    assert_eq!(v["isValid"], true, "{v}");

    // The seller's wallet listed (in upper-case hex): a recipient refused, whoever pays.
    write_list(
        &list,
        &format!("0x{}\n", alloy::hex::encode_upper(seller.as_slice())),
    )
    .await;
    let to_denied = serde_json::to_vec(&h.pay_v2(&other, &req).await).unwrap();
    let before = h.snapshot(&[buyer.address(), other.address()]).await;
    let (_, v) = post(&url, "/verify", to_denied.clone()).await;
    assert_eq!(v["invalidReason"], "recipient_denied", "{v}");
    let (_, s) = post(&url, "/settle", to_denied).await;
    assert_eq!(s["success"], false, "{s}");
    assert_eq!(s["errorReason"], "recipient_denied", "{s}");
    assert_eq!(s["transaction"], "", "{s}");
    h.assert_untouched(&before, "a denied recipient").await;

    // The file emptied: the payment refused before now pays (the very same signed payment).
    write_list(&list, "# nobody\n").await;
    let (buyer_before, seller_before) = (h.usdc(buyer.address()).await, h.usdc(seller).await);
    let (_, v) = post(&url, "/verify", denied.clone()).await;
    assert_eq!(v["isValid"], true, "{v}");
    let (_, s) = post(&url, "/settle", denied).await;
    assert_eq!(s["success"], true, "{s}");
    assert_eq!(
        h.usdc(buyer.address()).await,
        buyer_before - U256::from(UNITS)
    );
    assert_eq!(h.usdc(seller).await, seller_before + U256::from(UNITS));

    // A bad line on reload keeps the last good list (here: nobody listed).
    write_list(&list, "not an address\n").await;
    let again = serde_json::to_vec(&h.pay_v2(&buyer, &req).await).unwrap();
    let (_, v) = post(&url, "/verify", again).await;
    assert_eq!(v["isValid"], true, "{v}");

    let (_, metrics) = crate::common::get(&url, "/metrics").await;
    for needle in [
        r#"x402_requests_total{route="verify",scheme="exact",network="eip155:84532",outcome="invalid",reason="payer_denied"} 2"#,
        r#"x402_requests_total{route="settle",scheme="upto",network="eip155:84532",outcome="failed",reason="payer_denied"} 1"#,
        r#"x402_requests_total{route="settle",scheme="exact",network="eip155:84532",outcome="failed",reason="recipient_denied"} 1"#,
    ] {
        assert!(metrics.contains(needle), "missing {needle}\n{metrics}");
    }
}

#[tokio::test]
async fn a_missing_or_bad_deny_list_stops_start_up() {
    let h = ExactHarness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (base, envs) = config(&h);
    let missing = dir.path().join("absent.txt");
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "0x209693Bc6afc0C5328bA36FaF03C514EF312287C\n0x1234\n").unwrap();
    for (path, needle) in [(&missing, "absent.txt"), (&bad, "line 2")] {
        let text = format!(
            "{base}[hooks.deny_list]\npath = {:?}\n",
            path.display().to_string()
        );
        let (ok, _, err) = run(&text, &envs, &["--check-config"]);
        assert!(!ok, "{err}");
        assert!(err.contains("hooks.deny_list"), "{err}");
        assert!(err.contains(needle), "{err}");
    }
}

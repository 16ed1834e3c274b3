//! The bazaar end to end on anvil: a seller declares discovery metadata on a route, our buyer
//! pays it through our facilitator, the facilitator's catalogue lists the resource under its
//! route template with the settled price, and `x402 discover` prints it. Nothing is listed
//! before a payment settles, and a refused payment lists nothing.

use std::sync::Arc;

use alloy::primitives::U256;
use axum::routing::get;
use serde_json::json;
use x402_buyer::Policy;
use x402_core::client::{FacilitatorClient, ListResources};
use x402_core::extension::ExtensionConfig;
use x402_core::extension::bazaar::Bazaar;
use x402_core::extension::discovery::build_bazaar;
use x402_core::{Amount, Price};
use x402_evm::assets::TransferMethod;
use x402_seller::{Accept, Route};
use x402_tests::e2e::{Counting, EXACT_UNITS, buyer_for, evm_seller, serve, serve_facilitator};
use x402_tests::evm::exact::ExactHarness;

#[tokio::test]
async fn a_paid_route_declaring_the_bazaar_is_listed_and_discovered() {
    let h = ExactHarness::start().await;
    let bazaar = build_bazaar(&ExtensionConfig {
        options: json!({}),
        store: h.store.clone(),
        clock: x402_core::system_clock(),
    })
    .unwrap();
    let facilitator_url = serve_facilitator(h.facilitator.clone().with_extension(bazaar)).await;
    let client = FacilitatorClient::new(facilitator_url.clone());
    let counting = Arc::new(Counting::new(Arc::new(FacilitatorClient::new(
        facilitator_url.clone(),
    ))));
    let seller = evm_seller(&h, counting.clone(), TransferMethod::Eip3009);
    let route = Route::new()
        .description("Weather for a city")
        .accept(
            Accept::new(
                "exact",
                h.network.clone(),
                h.bed.seller().address.to_checksum(None),
                Price::Atomic(Amount::from(EXACT_UNITS)),
            )
            .max_timeout_seconds(120),
        )
        .extension(
            Bazaar::query()
                .input_example(json!({"units": "metric"}))
                .input_schema(json!({"properties": {"units": {"type": "string"}}}))
                .output_example(json!({"temperature": 21})),
        );
    let paywall = seller.paywall(route).unwrap();
    let app = axum::Router::new().route(
        "/weather/{city}",
        get(|| async { r#"{"temperature":21}"# }).layer(paywall),
    );
    let shop = serve(app).await;

    // Nothing is listed before a payment settles.
    let empty = client
        .list_resources(&ListResources::default())
        .await
        .unwrap();
    assert_eq!((empty.items.len(), empty.pagination.total), (0, 0));

    // A refused payment (the buyer's policy caps below the price: nothing signed) lists nothing.
    let b0 = h.bed.buyer(0);
    let stingy = buyer_for(
        &h,
        &b0.signer,
        Policy {
            max_per_request: Some("0.001".into()),
            ..Policy::default()
        },
    );
    if let Ok(p) = stingy.get(&format!("{shop}/weather/paris")).await {
        assert!(p.payment.is_none(), "the policy refuses to pay");
        assert_eq!(p.response.status(), 402);
    }
    assert_eq!(counting.calls(), (0, 0));
    let still = client
        .list_resources(&ListResources::default())
        .await
        .unwrap();
    assert_eq!(still.pagination.total, 0);

    // The buyer pays; the seller is paid once.
    let seller_address = h.bed.seller().address;
    let before = h.bed.usdc_balance(seller_address).await;
    let buyer = buyer_for(&h, &b0.signer, Policy::default());
    let paid = buyer
        .get(&format!("{shop}/weather/paris?units=metric"))
        .await
        .unwrap();
    assert_eq!(paid.response.status(), 200);
    assert_eq!(counting.calls(), (1, 1));
    assert_eq!(
        h.bed.usdc_balance(seller_address).await,
        before + U256::from(EXACT_UNITS)
    );

    // The catalogue lists it under the route template, with the settled requirement.
    let list = client
        .list_resources(&ListResources::default())
        .await
        .unwrap();
    assert_eq!(list.pagination.total, 1);
    let item = &list.items[0];
    assert_eq!(item.resource, format!("{shop}/weather/:city"));
    assert_eq!(item.kind, "http");
    assert_eq!(item.description.as_deref(), Some("Weather for a city"));
    let accepts = item.accepts().unwrap();
    assert_eq!(accepts.len(), 1);
    assert_eq!(accepts[0].network_text(), h.network.as_str());
    let declared: serde_json::Value =
        serde_json::from_str(item.extensions.as_ref().unwrap().get()).unwrap();
    assert_eq!(declared["bazaar"]["info"]["input"]["method"], "GET");
    assert_eq!(
        declared["bazaar"]["info"]["input"]["pathParams"],
        json!({"city": "paris"})
    );
    assert_eq!(declared["bazaar"]["routeTemplate"], "/weather/:city");

    // A second payment for another city renews the one entry.
    buyer.get(&format!("{shop}/weather/oslo")).await.unwrap();
    let again = client
        .list_resources(&ListResources::default())
        .await
        .unwrap();
    assert_eq!(again.pagination.total, 1);

    // `x402 discover` prints it.
    let asset = format!("{}:{}:6:USDC", h.network, h.bed.usdc().to_checksum(None));
    let args: Vec<String> = ["discover", &facilitator_url, "--asset", &asset]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = x402_buyer::cli::run(&args, &|_| None, &mut out, &mut err).await;
    let (out, err) = (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    );
    assert_eq!(exit, x402_buyer::cli::Exit::Success, "{err}");
    let line = out
        .lines()
        .find(|l| l.contains("/weather/:city"))
        .unwrap_or_else(|| panic!("listed: {out}"));
    assert!(line.contains("0.01 USDC (exact)"), "{line}");
    assert!(line.contains(h.network.as_str()), "{line}");
    assert!(line.contains("Weather for a city"), "{line}");
}

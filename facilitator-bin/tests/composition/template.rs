//! The template scheme crate, linked by the `template` feature alone, paid end to end through the
//! real server: the promise of docs/writing-a-scheme.md (a new crate, one feature, one `use`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::sync::Arc;

use facilitator_bin::config::Config;
use facilitator_bin::metrics::Metrics;
use facilitator_bin::server::{self, AppState};
use scheme_template::{Buyer, Ledger, Seller};
use x402_core::wire::{PaymentPayload, PaymentPayloadV2, PaymentRequirements, VerifyRequest};
use x402_core::{Amount, BuyerRole, Network, Price, PriceRequest, SellerRole, X402Version};

async fn post(url: &str, path: &str, body: &VerifyRequest) -> serde_json::Value {
    let response = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn template_scheme_pays_end_to_end_over_http() {
    let network = Network::parse("toy:local").unwrap();
    let buyer = Buyer::random();
    let pay_to = Buyer::random().account();

    // The config file: the toy network and the buyer's opening balance.
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let text = format!(
        r#"
listen = "127.0.0.1:0"
auth = "none"
[store]
url = "memory"
[networks."toy:local".schemes.exact]
balances = {{ "{buyer}" = "1000" }}
"#,
        buyer = buyer.account()
    );
    std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
    let config = Config::load(file.path().to_str().unwrap(), &|_| None).unwrap();

    // The real server, in process, on a free port.
    let (facilitator, plan) = facilitator_bin::build(&config).await.unwrap();
    assert_eq!(plan.len(), 1);
    assert_eq!(
        (plan[0].scheme.as_str(), plan[0].network.as_str()),
        ("exact", "toy:local")
    );
    let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(
        facilitator,
        Arc::new(Metrics::default()),
        config.limits.clone(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(server::serve(listener, state, async {
        let _ = stopped.await;
    }));

    let supported: serde_json::Value = reqwest::get(format!("{url}/supported"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds = supported["kinds"].as_array().unwrap();
    assert!(
        kinds.iter().any(|k| k["scheme"] == "exact"
            && k["network"] == "toy:local"
            && k["x402Version"] == 2),
        "{supported}"
    );

    // The seller prices, the buyer signs.
    let request = PriceRequest {
        network: network.clone(),
        price: Price::Decimal("2.50".into()),
        pay_to: pay_to.to_string(),
        asset: None,
        max_timeout_seconds: None,
        facilitator_kind: None,
    };
    let requirements = Seller.requirements(&request).await.unwrap();
    let wire = PaymentRequirements::V2(requirements.clone());
    let payload = buyer.sign(&wire.view().unwrap()).await.unwrap();
    let body = VerifyRequest::new(
        PaymentPayload::V2(PaymentPayloadV2 {
            x402_version: X402Version::V2,
            resource: None,
            accepted: requirements,
            payload,
            extensions: None,
        }),
        wire,
    );

    let ledger = Ledger::of(&network).expect("the facilitator opened the ledger");
    let balances = || (ledger.balance(&buyer.account()), ledger.balance(&pay_to));
    let payer = buyer.account().to_string();

    let verified = post(&url, "/verify", &body).await;
    assert_eq!(verified["isValid"], true, "{verified}");
    assert_eq!(verified["payer"], payer.as_str());
    assert_eq!(balances(), (Amount::from(1000), Amount::ZERO));

    let settled = post(&url, "/settle", &body).await;
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(settled["network"], "toy:local");
    assert_eq!(settled["payer"], payer.as_str());
    let tx = settled["transaction"].as_str().unwrap();
    assert!(!tx.is_empty(), "{settled}");
    assert_eq!(balances(), (Amount::from(750), Amount::from(250)));

    // At most once: the replay is refused and moves nothing.
    let again = post(&url, "/settle", &body).await;
    assert_eq!(again["success"], false, "{again}");
    assert_eq!(again["errorReason"], "duplicate_settlement", "{again}");
    assert_eq!(again["payer"], payer.as_str());
    assert_eq!(balances(), (Amount::from(750), Amount::from(250)));

    let _ = stop.send(());
    served.await.unwrap().unwrap();
}

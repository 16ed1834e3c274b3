//! End to end: our facilitator (the facilitator-bin router over HTTP, exact v1/v2 and upto v2 on
//! the EVM bed), our axum seller behind the `x402-seller` layer, and buyers built with
//! `x402-buyer`.

pub mod approval;
mod node;
mod shop;
pub mod sponsor;

pub use node::{NodeScript, NodeSession};

pub use shop::{
    Counting, EXACT_UNITS, ICON_URL, SERVICE_NAME, Shop, UPTO_MAX_UNITS, UPTO_USED_UNITS,
    buyer_for, evm_seller, usdc_asset,
};

use std::sync::Arc;

use x402_core::LocalFacilitator;

/// Serves `facilitator` over HTTP on a free port with the facilitator binary's router; returns the
/// base URL. The server lives as long as the test's runtime.
pub async fn serve_facilitator(facilitator: LocalFacilitator) -> String {
    let limits = facilitator_bin::config::Limits::default();
    // As the binary builds it: settles answer within the limits' bound.
    let facilitator = match facilitator.timeouts() {
        Some(_) => facilitator,
        None => facilitator.with_timeouts(limits.timeouts()),
    };
    let state = facilitator_bin::server::AppState::new(
        facilitator,
        Arc::new(facilitator_bin::metrics::Metrics::default()),
        limits,
    );
    serve(facilitator_bin::server::router(state)).await
}

/// Serves an axum router on a free loopback port; returns `http://127.0.0.1:PORT`.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    format!("http://{addr}")
}

/// Asks `url` for its v2 requirements and signs the first with `signer` (exact), returning the
/// `PAYMENT-SIGNATURE` value and the requirement signed; `tamper` may rewrite `accepted` first.
pub async fn sign_first(
    url: &str,
    signer: &alloy::signers::local::PrivateKeySigner,
    tamper: impl FnOnce(&mut x402_core::wire::PaymentRequirementsV2),
) -> String {
    use x402_core::BuyerRole as _;
    use x402_core::wire::{PaymentPayload, PaymentPayloadV2, PaymentRequirements};
    let response = reqwest::get(url).await.expect("get");
    assert_eq!(response.status().as_u16(), 402, "{url} asks for payment");
    let x402_core::wire::PaymentRequired::V2(required) =
        x402_buyer::read_402(response).await.expect("402")
    else {
        panic!("a v2 402")
    };
    let mut accepted = required.accepts[0].clone();
    let requirements = PaymentRequirements::V2(accepted.clone());
    let payload = scheme_exact_evm::Buyer::new(Arc::new(signer.clone()))
        .sign(&requirements.view().expect("view"))
        .await
        .expect("sign");
    tamper(&mut accepted);
    let document = PaymentPayload::V2(PaymentPayloadV2 {
        x402_version: x402_core::X402Version::V2,
        resource: Some(required.resource),
        accepted,
        payload,
        extensions: None,
    });
    x402_core::header::encode(&document).expect("encode")
}

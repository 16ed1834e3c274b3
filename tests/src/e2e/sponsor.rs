//! A seller whose Permit2 routes declare `eip2612GasSponsoring` (gas-sponsored Permit2
//! approval): `/exact` (exact, Permit2) and `/upto` (charging [`UPTO_USED_UNITS`] of
//! [`UPTO_MAX_UNITS`]) declare it, `/unsponsored` (exact, Permit2) does not.

use axum::Extension;
use axum::routing::get;
use x402_core::{Amount, Price};
use x402_evm::assets::TransferMethod;
use x402_evm::sponsor::{EIP2612_GAS_SPONSORING, eip2612_declaration};
use x402_seller::{Accept, Charge, RawExtension, Route};

use super::shop::{EXACT_UNITS, Shop, UPTO_MAX_UNITS, UPTO_USED_UNITS, evm_seller};

/// Serves the seller through the shop's facilitator; returns its base URL.
pub async fn sponsoring_seller(shop: &Shop) -> String {
    let h = &shop.h;
    let seller = evm_seller(h, shop.counting.clone(), TransferMethod::Permit2);
    let pay_to = h.bed.seller().address.to_checksum(None);
    let accept = |scheme: &str, units: u64| {
        Accept::new(
            scheme,
            h.network.clone(),
            pay_to.clone(),
            Price::Atomic(Amount::from(units)),
        )
        .max_timeout_seconds(120)
    };
    let sponsored = || RawExtension::new(EIP2612_GAS_SPONSORING, eip2612_declaration());
    let paywall = |route: Route| seller.paywall(route).expect("paywall");
    let router = axum::Router::new()
        .route(
            "/exact",
            get(|| async { "exact, sponsored" }).layer(paywall(
                Route::new()
                    .accept(accept("exact", EXACT_UNITS))
                    .extension(sponsored()),
            )),
        )
        .route(
            "/upto",
            get(|| async {
                (
                    Extension(Charge(Amount::from(UPTO_USED_UNITS))),
                    "upto, sponsored",
                )
            })
            .layer(paywall(
                Route::new()
                    .accept(accept("upto", UPTO_MAX_UNITS))
                    .extension(sponsored()),
            )),
        )
        .route(
            "/unsponsored",
            get(|| async { "never" })
                .layer(paywall(Route::new().accept(accept("exact", EXACT_UNITS)))),
        );
    super::serve(router).await
}

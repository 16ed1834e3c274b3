//! A seller on the EVM bed: routes for every scheme and failure mode, paid through our
//! facilitator over HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use async_trait::async_trait;
use axum::Extension;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use x402_buyer::{Buyer, KnownAsset, Policy};
use x402_core::client::FacilitatorClient;
use x402_core::wire::{
    SettleRequest, SettleResponse, SupportedResponse, VerifyRequest, VerifyResponse,
};
use x402_core::{
    Amount, BuyerRole as _, Facilitator, FacilitatorError, FacilitatorRole as _, LocalFacilitator,
    Network, Price, Registry, SellerRole as _, X402Version,
};
use x402_evm::assets::{AssetTable, TransferMethod};
use x402_seller::{Accept, Charge, Route, Seller, SettleTiming, SettlementOverrides};

use crate::evm::PERMIT2_ADDRESS;
use crate::evm::exact::{ExactHarness, usdc_info};

/// Counts the calls a seller makes to its facilitator.
pub struct Counting {
    inner: Arc<dyn Facilitator>,
    /// `/verify` calls.
    pub verifies: AtomicUsize,
    /// `/settle` calls.
    pub settles: AtomicUsize,
}

impl std::fmt::Debug for Counting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counting")
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

impl Counting {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Facilitator>) -> Self {
        Self {
            inner,
            verifies: AtomicUsize::new(0),
            settles: AtomicUsize::new(0),
        }
    }

    /// (verifies, settles) so far.
    pub fn calls(&self) -> (usize, usize) {
        (
            self.verifies.load(Ordering::SeqCst),
            self.settles.load(Ordering::SeqCst),
        )
    }
}

#[async_trait]
impl Facilitator for Counting {
    async fn verify(&self, request: &VerifyRequest) -> Result<VerifyResponse, FacilitatorError> {
        self.verifies.fetch_add(1, Ordering::SeqCst);
        self.inner.verify(request).await
    }
    async fn settle(&self, request: &SettleRequest) -> Result<SettleResponse, FacilitatorError> {
        self.settles.fetch_add(1, Ordering::SeqCst);
        self.inner.settle(request).await
    }
    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        self.inner.supported().await
    }
}

/// The bed's USDC as a buyer's known asset.
pub fn usdc_asset(h: &ExactHarness) -> KnownAsset {
    KnownAsset {
        network: h.network.clone(),
        address: h.bed.usdc().to_checksum(None),
        decimals: 6,
        symbol: "USDC".into(),
    }
}

/// A buyer paying with `signer` (exact v1/v2 and upto v2 on `eip155:*`) under `policy`; the bed's
/// USDC is added to the policy's known assets.
pub fn buyer_for(h: &ExactHarness, signer: &PrivateKeySigner, mut policy: Policy) -> Buyer {
    let signer = Arc::new(signer.clone());
    let mut schemes = Registry::new();
    schemes
        .register(
            scheme_exact_evm::ANY_NETWORK,
            scheme_exact_evm::VERSIONS,
            scheme_exact_evm::Buyer::new(signer.clone()).into_scheme(),
        )
        .expect("register exact");
    schemes
        .register(
            scheme_upto_evm::ANY_NETWORK,
            scheme_upto_evm::VERSIONS,
            scheme_upto_evm::Buyer::new(signer).into_scheme(),
        )
        .expect("register upto");
    policy.assets.push(usdc_asset(h));
    Buyer::new(reqwest::Client::new(), schemes, policy)
}

/// The bed, our facilitator over HTTP, and a seller with one route per case.
#[derive(Debug)]
pub struct Shop {
    /// The chain and its `exact` facilitator parts.
    pub h: Arc<ExactHarness>,
    /// The seller's view of the facilitator (counts calls).
    pub counting: Arc<Counting>,
    /// The facilitator's base URL.
    pub facilitator_url: String,
    /// The seller's base URL.
    pub url: String,
}

/// The route prices, in USDC base units.
pub const EXACT_UNITS: u64 = 10_000;
/// The maximum of the `upto` route.
pub const UPTO_MAX_UNITS: u64 = 50_000;
/// What the `upto` handler charges.
pub const UPTO_USED_UNITS: u64 = 20_000;
/// The `serviceName` of the exact routes' resource.
pub const SERVICE_NAME: &str = "x402 jokes";
/// The `iconUrl` of the exact routes' resource.
pub const ICON_URL: &str = "https://jokes.example/icon.png";

impl Shop {
    /// Starts everything; every buyer has approved Permit2 for its USDC.
    pub async fn start() -> Self {
        let h = Arc::new(ExactHarness::start().await);
        for b in h.bed.buyers() {
            h.bed
                .approve_usdc(b.address, PERMIT2_ADDRESS, U256::MAX)
                .await;
        }
        let facilitator_url = serve_local(&h).await;
        let counting = Arc::new(Counting::new(Arc::new(FacilitatorClient::new(
            facilitator_url.clone(),
        ))));
        let url = super::serve(router(&h, counting.clone())).await;
        Self {
            h,
            counting,
            facilitator_url,
            url,
        }
    }

    /// `path` on the seller.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The USDC of `who`.
    pub async fn usdc(&self, who: Address) -> U256 {
        self.h.usdc(who).await
    }
}

/// Our facilitator (exact v1/v2, upto v2) over HTTP.
async fn serve_local(h: &ExactHarness) -> String {
    let policy = |assets| scheme_upto_evm::Policy {
        assets: Some(assets),
        ..scheme_upto_evm::Policy::default()
    };
    let upto = scheme_upto_evm::Facilitator::new(
        h.network.clone(),
        h.bed.provider(),
        h.pool.clone(),
        h.store.clone(),
        policy(vec![h.bed.usdc()]),
    )
    .expect("upto facilitator");
    let mut registry = h.facilitator.registry().clone();
    registry
        .register(h.network.as_str(), &[X402Version::V2], upto.into_scheme())
        .expect("register upto");
    super::serve_facilitator(LocalFacilitator::new(registry)).await
}

/// A seller of `exact` (paid by `method`) and `upto` in the bed's USDC through `facilitator`.
pub fn evm_seller(h: &ExactHarness, facilitator: Arc<Counting>, method: TransferMethod) -> Seller {
    let mut exact_assets = AssetTable::empty();
    exact_assets.insert(h.network.clone(), usdc_info(h.bed.usdc(), method));
    let mut upto_assets = AssetTable::empty();
    upto_assets.insert(
        h.network.clone(),
        usdc_info(h.bed.usdc(), TransferMethod::Permit2),
    );
    let mut schemes = Registry::new();
    schemes
        .register(
            scheme_exact_evm::ANY_NETWORK,
            scheme_exact_evm::VERSIONS,
            scheme_exact_evm::Seller::new(exact_assets).into_scheme(),
        )
        .expect("register exact");
    schemes
        .register(
            scheme_upto_evm::ANY_NETWORK,
            scheme_upto_evm::VERSIONS,
            scheme_upto_evm::Seller::new(upto_assets).into_scheme(),
        )
        .expect("register upto");
    Seller::new(facilitator, schemes)
}

fn exact(h: &ExactHarness, units: u64) -> Accept {
    Accept::new(
        "exact",
        h.network.clone(),
        h.bed.seller().address.to_checksum(None),
        Price::Atomic(Amount::from(units)),
    )
    .max_timeout_seconds(120)
}

fn router(h: &Arc<ExactHarness>, facilitator: Arc<Counting>) -> axum::Router {
    let eip3009 = evm_seller(h, facilitator.clone(), TransferMethod::Eip3009);
    let permit2 = evm_seller(h, facilitator, TransferMethod::Permit2);
    let network: Network = h.network.clone();
    let pay_to = h.bed.seller().address.to_checksum(None);
    let paywall = |s: &Seller, route: Route| s.paywall(route).expect("paywall");
    let exact_route = || {
        Route::new()
            .description("a paid joke")
            .service_name(SERVICE_NAME)
            .tags(["jokes", "x402"])
            .icon_url(ICON_URL)
            .accept(exact(h, EXACT_UNITS))
    };

    let upto_route = {
        let (network, pay_to) = (network.clone(), pay_to.clone());
        move || {
            Route::new().accept(
                Accept::new(
                    "upto",
                    network.clone(),
                    pay_to.clone(),
                    Price::Atomic(Amount::from(UPTO_MAX_UNITS)),
                )
                .max_timeout_seconds(120),
            )
        }
    };
    let dynamic = Route::new().accept(
        Accept::dynamic("exact", network, pay_to, |parts| {
            let units = parts
                .uri
                .query()
                .and_then(|q| q.strip_prefix("units="))
                .ok_or("the query must be units=N")?;
            units
                .parse::<u64>()
                .map(|u| Price::Atomic(Amount::from(u)))
                .map_err(|e| e.to_string())
        })
        .max_timeout_seconds(120),
    );
    let drain_bed = h.clone();
    axum::Router::new()
        .route(
            "/joke",
            get(|| async { "why did the buyer pay? it was exact" })
                .layer(paywall(&eip3009, exact_route())),
        )
        .route(
            "/v1-only",
            get(|| async { "v1 content" }).layer(paywall(
                &eip3009,
                exact_route().versions(&[X402Version::V1]),
            )),
        )
        .route(
            "/permit2",
            get(|| async { "paid through permit2" }).layer(paywall(&permit2, exact_route())),
        )
        .route(
            "/upto",
            get(|| async {
                (
                    Extension(Charge(Amount::from(UPTO_USED_UNITS))),
                    "metered content",
                )
            })
            .layer(paywall(&eip3009, upto_route())),
        )
        .route(
            "/upto-percent",
            get(|| async { (SettlementOverrides::amount("40%"), "metered by percent") })
                .layer(paywall(&eip3009, upto_route())),
        )
        .route(
            "/upto-price",
            get(|| async { (SettlementOverrides::amount("$0.015"), "metered by price") })
                .layer(paywall(&eip3009, upto_route())),
        )
        .route(
            "/upto-greedy",
            get(|| async { (SettlementOverrides::amount("$1"), "metered greedily") })
                .layer(paywall(&eip3009, upto_route())),
        )
        .route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "handler broke") })
                .layer(paywall(&eip3009, exact_route())),
        )
        .route(
            "/drain",
            get(move |headers: HeaderMap| {
                let h = drain_bed.clone();
                async move {
                    // The buyer empties its wallet while the handler runs: settlement must fail.
                    let buyer: Address = headers["x-drain"].to_str().unwrap().parse().unwrap();
                    let all = h.usdc(buyer).await;
                    h.bed
                        .transfer_usdc(buyer, h.bed.deployer().address, all)
                        .await;
                    "secret that must not leak"
                }
            })
            .layer(paywall(&eip3009, exact_route())),
        )
        .route(
            "/before",
            get(|| async { "settled first" }).layer(paywall(
                &eip3009,
                exact_route().settle(SettleTiming::BeforeHandler),
            )),
        )
        .route(
            "/dynamic",
            get(|| async { "priced per request" }).layer(paywall(&eip3009, dynamic)),
        )
}

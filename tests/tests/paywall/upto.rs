//! `upto` from the browser on anvil: the page signs the Permit2 witness transfer for the maximum
//! bound to the facilitator the offer names (as scheme-upto-evm's buyer does), the handler charges
//! less, and the seller's balance moves by the charge. A wallet without a Permit2 allowance is
//! asked to approve on a route that does not sponsor the approval, and pays on one that declares
//! `eip2612GasSponsoring`: the page signs an EIP-2612 permit for Permit2 in the token's domain
//! beside the witness transfer, and the facilitator settles both in one transaction.

use std::sync::Arc;

use alloy::dyn_abi::TypedData;
use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolStruct as _;
use axum::Extension;
use axum::routing::get;
use serde_json::{Value, json};
use x402_core::client::FacilitatorClient;
use x402_core::{Amount, Price, Registry, SellerRole as _, X402Version};
use x402_evm::abi::eip2612::IEip2612Token;
use x402_evm::abi::permit2_upto;
use x402_evm::addresses::UPTO_PERMIT2_PROXY;
use x402_evm::assets::{AssetTable, TransferMethod};
use x402_evm::eip712::permit2_domain;
use x402_evm::sponsor::{EIP2612_GAS_SPONSORING, eip2612_declaration};
use x402_seller::{Accept, Charge, PaywallConfig, RawExtension, Route, Seller, SellerOptions};
use x402_tests::chromium::{Browser, Page, TestWallet};
use x402_tests::e2e::{Counting, Shop, serve};
use x402_tests::evm::PERMIT2_ADDRESS;
use x402_tests::evm::exact::usdc_info;

use crate::{MAX_TIMEOUT, SECRET, Shots, pay};

/// The most a request may cost: 0.05 USDC.
const MAX: u64 = 50_000;
/// What the handler charges: 0.02 USDC.
const USED: u64 = 20_000;

struct UptoStand {
    shop: Shop,
    counting: Arc<Counting>,
    url: String,
    browser: Browser,
    shots: Shots,
}

async fn start() -> UptoStand {
    let shop = Shop::start().await;
    let h = &shop.h;
    let counting = Arc::new(Counting::new(Arc::new(FacilitatorClient::new(
        shop.facilitator_url.clone(),
    ))));
    let mut assets = AssetTable::empty();
    assets.insert(
        h.network.clone(),
        usdc_info(h.bed.usdc(), TransferMethod::Permit2),
    );
    let mut schemes = Registry::new();
    schemes
        .register(
            scheme_upto_evm::ANY_NETWORK,
            scheme_upto_evm::VERSIONS,
            scheme_upto_evm::Seller::new(assets).into_scheme(),
        )
        .unwrap();
    let options = SellerOptions {
        paywall: PaywallConfig::new()
            .app_name("Weather Pro")
            .testnet(true)
            .asset(
                h.network.as_str(),
                h.bed.usdc().to_checksum(None),
                "USDC",
                6,
            ),
        ..SellerOptions::default()
    };
    let seller = Seller::with_options(counting.clone(), schemes, options);
    let route = Route::new()
        .description("Hourly forecasts, charged by the hour")
        .versions(&[X402Version::V2])
        .accept(
            Accept::new(
                "upto",
                h.network.clone(),
                h.bed.seller().address.to_checksum(None),
                Price::Atomic(Amount::from(MAX)),
            )
            .max_timeout_seconds(MAX_TIMEOUT),
        );
    let metered = || async {
        (
            Extension(Charge(Amount::from(USED))),
            axum::Json(json!({ "forecast": SECRET })),
        )
    };
    let sponsored = RawExtension::new(EIP2612_GAS_SPONSORING, eip2612_declaration());
    let router = axum::Router::new()
        .route(
            "/hourly",
            get(metered).layer(seller.paywall(route.clone()).unwrap()),
        )
        .route(
            "/hourly-sponsored",
            get(metered).layer(seller.paywall(route.extension(sponsored)).unwrap()),
        );
    let url = serve(router).await;
    UptoStand {
        shop,
        counting,
        url,
        browser: Browser::start().await,
        shots: Shots::new(),
    }
}

impl UptoStand {
    async fn open(&self, path: &str, signer: PrivateKeySigner) -> (Page, TestWallet) {
        let (page, events) = self.browser.page().await;
        let bed = &self.shop.h.bed;
        let wallet = TestWallet::install(
            &page,
            events,
            signer,
            bed.chain_id(),
            bed.endpoint().to_owned(),
        )
        .await;
        page.goto(&format!("{}{path}", self.url)).await;
        page.wait_for("document.getElementById('pay-button') !== null")
            .await;
        let table = page
            .eval("document.querySelector('table').textContent")
            .await;
        let table = table.as_str().unwrap();
        assert!(
            table.contains("at most 0.05 USDC") && table.contains("upto"),
            "{table}"
        );
        (page, wallet)
    }

    /// The offer's `extra.facilitatorAddress`, as the page got it.
    async fn facilitator(page: &Page) -> String {
        let v = page
            .eval(
                "JSON.parse(document.getElementById('x402-data').textContent)\
                 .required.accepts[0].extra.facilitatorAddress",
            )
            .await;
        v.as_str().expect("a facilitator address").to_owned()
    }

    async fn allowance(&self, who: Address) -> U256 {
        let bed = &self.shop.h.bed;
        IEip2612Token::new(bed.usdc(), bed.provider())
            .allowance(who, PERMIT2_ADDRESS)
            .call()
            .await
            .unwrap()
    }
}

fn lower(v: &Value) -> String {
    v.as_str().unwrap().to_lowercase()
}

fn num(v: &Value) -> u64 {
    v.as_str().unwrap().parse().unwrap()
}

/// Checks that `typed` is the upto witness transfer the Rust buyer signs for these values.
fn assert_upto_witness(
    typed: &Value,
    chain_id: u64,
    payer: Address,
    pay_to: Address,
    facilitator: &str,
) {
    assert_eq!(typed["primaryType"], "PermitWitnessTransferFrom");
    let m = &typed["message"];
    assert_eq!(
        lower(&m["spender"]),
        UPTO_PERMIT2_PROXY.to_string().to_lowercase()
    );
    assert_eq!(m["permitted"]["amount"], MAX.to_string());
    assert_eq!(
        lower(&m["witness"]["to"]),
        pay_to.to_string().to_lowercase()
    );
    assert_eq!(
        lower(&m["witness"]["facilitator"]),
        facilitator.to_lowercase()
    );
    assert_eq!(
        num(&m["deadline"]) - num(&m["witness"]["validAfter"]),
        600 + MAX_TIMEOUT
    );
    let page_hash = serde_json::from_value::<TypedData>(typed.clone())
        .unwrap()
        .eip712_signing_hash()
        .unwrap();
    let ours = permit2_upto::PermitWitnessTransferFrom {
        permitted: permit2_upto::TokenPermissions {
            token: m["permitted"]["token"].as_str().unwrap().parse().unwrap(),
            amount: U256::from(MAX),
        },
        spender: UPTO_PERMIT2_PROXY,
        nonce: m["nonce"].as_str().unwrap().parse().unwrap(),
        deadline: U256::from(num(&m["deadline"])),
        witness: permit2_upto::Witness {
            to: pay_to,
            facilitator: facilitator.parse().unwrap(),
            validAfter: U256::from(num(&m["witness"]["validAfter"])),
        },
    }
    .eip712_signing_hash(&permit2_domain(chain_id));
    assert_eq!(page_hash, ours);
    assert_eq!(lower(&m["from"]), payer.to_string().to_lowercase());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upto_pays_the_charge_of_a_permit2_witness_for_the_maximum() {
    let stand = start().await;
    let h = &stand.shop.h;
    // Shop::start approved Permit2 for every bed buyer
    let buyer = h.bed.buyer(0).clone();
    let seller = h.bed.seller().address;
    let (buyer_before, seller_before) = (h.usdc(buyer.address).await, h.usdc(seller).await);
    let (page, wallet) = stand.open("/hourly", buyer.signer.clone()).await;
    stand.shots.take(&page, "upto-unpaid.png").await;

    let (class, message) = pay(&page).await;
    assert_eq!(class, "ok", "{message}");
    assert!(
        message.contains("Paid 0.02 USDC of at most 0.05 USDC"),
        "{message}"
    );
    let shown = page
        .eval("document.querySelector('#content pre').textContent")
        .await;
    assert!(shown.as_str().unwrap().contains(SECRET));
    stand.shots.take(&page, "upto-paid.png").await;

    // the charge moved, not the maximum
    assert_eq!(h.usdc(buyer.address).await, buyer_before - U256::from(USED));
    assert_eq!(h.usdc(seller).await, seller_before + U256::from(USED));
    assert_eq!(stand.counting.calls(), (1, 1));

    let facilitator = UptoStand::facilitator(&page).await;
    let signed = wallet.signed_typed_data();
    let [typed] = signed.as_slice() else {
        panic!("one signature: {signed:?}")
    };
    assert_upto_witness(typed, h.bed.chain_id(), buyer.address, seller, &facilitator);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_allowance_upto_asks_for_approval_unless_the_seller_sponsors_it() {
    let stand = start().await;
    let h = &stand.shop.h;
    // a fresh wallet: USDC, no ETH, no allowance to Permit2
    let fresh = PrivateKeySigner::random();
    h.bed.mint_usdc(fresh.address(), U256::from(MAX)).await;
    let seller = h.bed.seller().address;
    let seller_before = h.usdc(seller).await;

    // not sponsored: the page asks for the approval and signs nothing
    let (page, wallet) = stand.open("/hourly", fresh.clone()).await;
    let (class, message) = pay(&page).await;
    assert_eq!(class, "error", "{message}");
    assert!(message.contains("has not approved Permit2"), "{message}");
    assert!(wallet.signed_typed_data().is_empty());
    assert_eq!(stand.counting.calls(), (0, 0));

    // sponsored: an EIP-2612 permit for Permit2 rides along, one settlement grants and pays
    let (page, wallet) = stand.open("/hourly-sponsored", fresh.clone()).await;
    let (class, message) = pay(&page).await;
    assert_eq!(class, "ok", "{message}");
    assert!(
        message.contains("Paid 0.02 USDC of at most 0.05 USDC"),
        "{message}"
    );
    assert_eq!(h.usdc(fresh.address()).await, U256::from(MAX - USED));
    assert_eq!(h.usdc(seller).await, seller_before + U256::from(USED));
    assert_eq!(stand.counting.calls(), (1, 1));
    // the permit granted exactly the maximum, of which the charge was spent
    assert_eq!(
        stand.allowance(fresh.address()).await,
        U256::from(MAX - USED)
    );

    let signed = wallet.signed_typed_data();
    let [permit, witness] = signed.as_slice() else {
        panic!("two signatures: {signed:?}")
    };
    assert_eq!(permit["primaryType"], "Permit");
    assert_eq!(permit["domain"]["name"], "USD Coin");
    assert_eq!(permit["domain"]["version"], "2");
    let p = &permit["message"];
    assert_eq!(
        lower(&p["owner"]),
        fresh.address().to_string().to_lowercase()
    );
    assert_eq!(
        lower(&p["spender"]),
        PERMIT2_ADDRESS.to_string().to_lowercase()
    );
    assert_eq!(p["value"], MAX.to_string());
    assert_eq!(p["nonce"], "0");
    assert_eq!(p["deadline"], witness["message"]["deadline"]);
    let facilitator = UptoStand::facilitator(&page).await;
    assert_upto_witness(
        witness,
        h.bed.chain_id(),
        fresh.address(),
        seller,
        &facilitator,
    );
}

//! The seller's browser paywall in a real headless Chromium (Debian's `chromium`, driven over
//! DevTools): a test wallet injected as `window.ethereum` signs with a test key exactly the typed
//! data the page built (EIP-3009, or a Permit2 witness transfer once Permit2 is approved); the
//! page pays on anvil with Circle's USDC through our facilitator and shows the paid content, or a
//! readable error when the payment is refused (nothing moves then); `upto` and the sponsored
//! Permit2 approval on anvil, and `exact` on Solana through a Wallet Standard wallet (`svm`).
//! The screenshots of the docs (docs/paywall/) are written by these tests:
//! `X402_PAYWALL_SCREENSHOTS=docs/paywall` (relative to the workspace) puts them there,
//! otherwise into a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod svm;
mod upto;

use std::path::PathBuf;
use std::sync::Arc;

use alloy::dyn_abi::TypedData;
use alloy::primitives::U256;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolStruct as _;
use axum::routing::get;
use serde_json::{Value, json};
use x402_core::client::FacilitatorClient;
use x402_core::{Amount, LocalFacilitator, Price, Registry, SellerRole as _, X402Version};
use x402_evm::abi::eip3009::TransferWithAuthorization;
use x402_evm::addresses::EXACT_PERMIT2_PROXY;
use x402_evm::assets::{AssetTable, TransferMethod};
use x402_evm::eip712::eip3009_domain;
use x402_seller::{Accept, PaywallConfig, Route, Seller, SellerOptions};
use x402_tests::chromium::{Browser, Page, TestWallet};
use x402_tests::e2e::{Counting, serve, serve_facilitator};
use x402_tests::evm::PERMIT2_ADDRESS;
use x402_tests::evm::exact::{ExactHarness, usdc_info};

/// The price: 0.01 USDC.
const PRICE: u64 = 10_000;
/// What the route's handler answers.
const SECRET: &str = "tomorrow: sunny, 24 degrees";
/// The route's description, with markup that must show as text.
const DESCRIPTION: &str = "Tomorrow's forecast for <your city>";
/// A paid HTML resource, with a script that must not run where the paywall shows it.
const ARTICLE: &str = "<h2>The paid article</h2><p>Every word of it.</p>\
<script>document.body.dataset.ran = 'yes'</script>";
/// The route's payment window.
const MAX_TIMEOUT: u64 = 120;

struct Stand {
    h: Arc<ExactHarness>,
    counting: Arc<Counting>,
    url: String,
    browser: Browser,
    shots: Shots,
}

/// Where screenshots go.
struct Shots {
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Shots {
    fn new() -> Self {
        match std::env::var_os("X402_PAYWALL_SCREENSHOTS") {
            Some(dir) => {
                // a relative directory is the workspace's (cargo runs tests in the package's)
                let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join(dir);
                std::fs::create_dir_all(&dir).expect("screenshot dir");
                Self { dir, _temp: None }
            }
            None => {
                let temp = tempfile::tempdir().expect("temp dir");
                Self {
                    dir: temp.path().to_owned(),
                    _temp: Some(temp),
                }
            }
        }
    }

    async fn take(&self, page: &Page, name: &str) {
        let png = page.screenshot().await;
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
        std::fs::write(self.dir.join(name), png).expect("write screenshot");
    }
}

async fn start() -> Stand {
    let h = Arc::new(ExactHarness::start().await);
    let facilitator_url =
        serve_facilitator(LocalFacilitator::new(h.facilitator.registry().clone())).await;
    let counting = Arc::new(Counting::new(Arc::new(FacilitatorClient::new(
        facilitator_url,
    ))));
    let seller_for = |method| {
        let mut assets = AssetTable::empty();
        assets.insert(h.network.clone(), usdc_info(h.bed.usdc(), method));
        let mut schemes = Registry::new();
        schemes
            .register(
                scheme_exact_evm::ANY_NETWORK,
                scheme_exact_evm::VERSIONS,
                scheme_exact_evm::Seller::new(assets).into_scheme(),
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
        Seller::with_options(counting.clone(), schemes, options)
    };
    let route = Route::new()
        .description(DESCRIPTION)
        .versions(&[X402Version::V2])
        .accept(
            Accept::new(
                "exact",
                h.network.clone(),
                h.bed.seller().address.to_checksum(None),
                Price::Atomic(Amount::from(PRICE)),
            )
            .max_timeout_seconds(MAX_TIMEOUT),
        );
    let forecast = || async { axum::Json(json!({ "forecast": SECRET })) };
    let router = axum::Router::new()
        .route(
            "/forecast",
            get(forecast).layer(
                seller_for(TransferMethod::Eip3009)
                    .paywall(route.clone())
                    .unwrap(),
            ),
        )
        .route(
            "/forecast-permit2",
            get(forecast).layer(
                seller_for(TransferMethod::Permit2)
                    .paywall(route.clone())
                    .unwrap(),
            ),
        )
        .route(
            "/article",
            get(|| async { axum::response::Html(ARTICLE) }).layer(
                seller_for(TransferMethod::Eip3009)
                    .paywall(route.clone().mime_type("text/html"))
                    .unwrap(),
            ),
        )
        .route(
            "/forecast-v1",
            get(forecast).layer(
                seller_for(TransferMethod::Eip3009)
                    .paywall(route.versions(&[X402Version::V1]))
                    .unwrap(),
            ),
        );
    let url = serve(router).await;
    Stand {
        h,
        counting,
        url,
        browser: Browser::start().await,
        shots: Shots::new(),
    }
}

/// Opens the paywall at `path` with a wallet of `signer` and checks what it shows before paying.
async fn open(stand: &Stand, path: &str, signer: PrivateKeySigner) -> (Page, TestWallet) {
    let (page, events) = stand.browser.page().await;
    let wallet = TestWallet::install(
        &page,
        events,
        signer,
        stand.h.bed.chain_id(),
        stand.h.bed.endpoint().to_owned(),
    )
    .await;
    page.goto(&format!("{}{path}", stand.url)).await;
    // the script ran (the policy allows it) and offers the wallet
    page.wait_for("document.getElementById('pay-button') !== null")
        .await;
    let text = |sel: &str| format!("document.querySelector({sel:?}).textContent");
    assert_eq!(page.eval(&text("h1")).await, "Weather Pro");
    assert_eq!(page.eval(&text(".what")).await, DESCRIPTION);
    assert!(
        page.eval(&text("table"))
            .await
            .as_str()
            .unwrap()
            .contains("0.01 USDC"),
        "the price shows in token units"
    );
    assert!(
        page.eval(&text(".testnet"))
            .await
            .as_str()
            .unwrap()
            .contains("Test network")
    );
    assert_eq!(page.eval(&text("#content")).await, "");
    (page, wallet)
}

/// Clicks the pay button and waits for the outcome; returns (class, message).
async fn pay(page: &Page) -> (String, String) {
    page.eval(
        "document.getElementById('status').replaceChildren(); \
         document.getElementById('pay-button').click()",
    )
    .await;
    let class = page
        .wait_for(
            "(() => { const p = document.querySelector('#status p.ok, #status p.error'); \
             return p && p.className; })()",
        )
        .await;
    let message = page
        .eval("document.querySelector('#status p').textContent")
        .await;
    (
        class.as_str().unwrap().to_owned(),
        message.as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_paywall_pays_from_the_browser_wallet() {
    let stand = start().await;
    let buyer = stand.h.bed.buyer(0).clone();
    let seller = stand.h.bed.seller().address;
    let (buyer_before, seller_before) = (
        stand.h.usdc(buyer.address).await,
        stand.h.usdc(seller).await,
    );
    // a browser's unpaid request: the page, under a policy allowing only its own script and style
    let unpaid = reqwest::Client::new()
        .get(format!("{}/forecast", stand.url))
        .header("accept", "text/html")
        .header("user-agent", "Mozilla/5.0")
        .send()
        .await
        .unwrap();
    assert_eq!(unpaid.status(), 402);
    let csp = unpaid.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'sha256-"),
        "{csp}"
    );
    assert!(csp.contains("connect-src 'self'"), "{csp}");

    let (page, wallet) = open(&stand, "/forecast", buyer.signer.clone()).await;
    stand.shots.take(&page, "unpaid.png").await;
    assert_eq!(
        stand.counting.calls(),
        (0, 0),
        "opening the page pays nothing"
    );

    let (class, message) = pay(&page).await;
    assert_eq!(class, "ok", "{message}");
    assert!(message.contains("Paid 0.01 USDC"), "{message}");
    assert!(message.contains("Transaction 0x"), "{message}");
    let shown = page
        .eval("document.querySelector('#content pre').textContent")
        .await;
    let shown: Value = serde_json::from_str(shown.as_str().unwrap()).unwrap();
    assert_eq!(shown, json!({ "forecast": SECRET }));
    stand.shots.take(&page, "paid.png").await;

    // the money moved once, by the price
    assert_eq!(
        stand.h.usdc(buyer.address).await,
        buyer_before - U256::from(PRICE)
    );
    assert_eq!(
        stand.h.usdc(seller).await,
        seller_before + U256::from(PRICE)
    );
    assert_eq!(stand.counting.calls(), (1, 1));

    // what the wallet was asked to sign is the EIP-3009 authorization of the offer
    let methods: Vec<String> = wallet.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(
        methods,
        ["eth_requestAccounts", "eth_chainId", "eth_signTypedData_v4"]
    );
    let signed = wallet.signed_typed_data();
    let [typed] = signed.as_slice() else {
        panic!("one signature: {signed:?}")
    };
    assert_eq!(typed["primaryType"], "TransferWithAuthorization");
    assert_eq!(typed["domain"]["name"], "USD Coin");
    assert_eq!(typed["domain"]["version"], "2");
    assert_eq!(typed["domain"]["chainId"], stand.h.bed.chain_id());
    let lower = |v: &Value| v.as_str().unwrap().to_lowercase();
    assert_eq!(
        lower(&typed["domain"]["verifyingContract"]),
        stand.h.bed.usdc().to_string().to_lowercase()
    );
    let m = &typed["message"];
    assert_eq!(lower(&m["from"]), buyer.address.to_string().to_lowercase());
    assert_eq!(lower(&m["to"]), seller.to_string().to_lowercase());
    assert_eq!(m["value"], PRICE.to_string());
    let num = |v: &Value| v.as_str().unwrap().parse::<u64>().unwrap();
    assert_eq!(
        num(&m["validBefore"]) - num(&m["validAfter"]),
        600 + MAX_TIMEOUT
    );
    let nonce = m["nonce"].as_str().unwrap();
    assert!(nonce.starts_with("0x") && nonce.len() == 66, "{nonce}");
    assert_ne!(nonce, format!("0x{}", "0".repeat(64)));
    // the page's typed data hashes as the Rust buyer's EIP-3009 struct with the same values
    let page_hash = serde_json::from_value::<TypedData>(typed.clone())
        .unwrap()
        .eip712_signing_hash()
        .unwrap();
    let ours = TransferWithAuthorization {
        from: buyer.address,
        to: seller,
        value: U256::from(PRICE),
        validAfter: U256::from(num(&m["validAfter"])),
        validBefore: U256::from(num(&m["validBefore"])),
        nonce: nonce.parse().unwrap(),
    }
    .eip712_signing_hash(&eip3009_domain(
        "USD Coin",
        "2",
        stand.h.bed.chain_id(),
        stand.h.bed.usdc(),
    ));
    assert_eq!(page_hash, ours);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_payment_shows_a_readable_error_and_moves_nothing() {
    let stand = start().await;
    // a wallet without USDC
    let broke = PrivateKeySigner::random();
    let seller = stand.h.bed.seller().address;
    let seller_before = stand.h.usdc(seller).await;
    assert_eq!(stand.h.usdc(broke.address()).await, U256::ZERO);
    let (page, wallet) = open(&stand, "/forecast", broke.clone()).await;
    // the wallet is on Ethereum mainnet: the page switches it to the offer's chain first
    wallet.start_on(1);

    let (class, message) = pay(&page).await;
    assert_eq!(class, "error", "{message}");
    assert!(
        message.contains("does not hold enough"),
        "a readable reason: {message}"
    );
    assert!(
        message.contains("invalid_exact_evm_insufficient_balance"),
        "{message}"
    );
    assert_eq!(
        page.eval("document.querySelector('#content').textContent")
            .await,
        ""
    );
    assert_eq!(
        page.eval("document.getElementById('pay-button') !== null")
            .await,
        true,
        "the buyer can try again"
    );
    stand.shots.take(&page, "refused.png").await;

    // switched, signed, verified, refused: nothing settled, nothing moved
    let methods: Vec<String> = wallet.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(
        methods,
        [
            "eth_requestAccounts",
            "eth_chainId",
            "wallet_switchEthereumChain",
            "eth_signTypedData_v4"
        ]
    );
    assert_eq!(wallet.signed_typed_data().len(), 1);
    assert_eq!(stand.counting.calls(), (1, 0));
    assert_eq!(stand.h.usdc(seller).await, seller_before);
    assert_eq!(stand.h.usdc(broke.address()).await, U256::ZERO);

    // a route the page cannot pay (x402 v1 only) says so instead of offering the wallet
    let (page, _events) = stand.browser.page().await;
    page.goto(&format!("{}/forecast-v1", stand.url)).await;
    let said = page
        .wait_for(
            "(() => { const t = document.getElementById('pay').textContent; \
             return t.includes('version 1') && t; })()",
        )
        .await;
    assert!(
        said.as_str().unwrap().contains("Pay with an x402 client"),
        "{said}"
    );
    assert_eq!(
        page.eval("document.getElementById('pay-button') === null")
            .await,
        true
    );

    // a browser without a wallet is told so
    page.goto(&format!("{}/forecast", stand.url)).await;
    page.wait_for("document.getElementById('pay').textContent.includes('No browser wallet found')")
        .await;
    assert_eq!(
        page.eval("document.getElementById('pay-button') === null")
            .await,
        true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permit2_pays_once_approved_and_asks_for_the_approval_first() {
    let stand = start().await;
    let buyer = stand.h.bed.buyer(1).clone();
    let seller = stand.h.bed.seller().address;
    let (buyer_before, seller_before) = (
        stand.h.usdc(buyer.address).await,
        stand.h.usdc(seller).await,
    );
    let (page, wallet) = open(&stand, "/forecast-permit2", buyer.signer.clone()).await;

    // no allowance yet: the page says so and asks for nothing to be signed
    let (class, message) = pay(&page).await;
    assert_eq!(class, "error", "{message}");
    assert!(message.contains("has not approved Permit2"), "{message}");
    assert!(wallet.signed_typed_data().is_empty());
    assert_eq!(stand.counting.calls(), (0, 0));
    assert_eq!(stand.h.usdc(buyer.address).await, buyer_before);

    // approved: the same button pays through the proxy
    stand
        .h
        .bed
        .approve_usdc(buyer.address, PERMIT2_ADDRESS, U256::MAX)
        .await;
    let (class, message) = pay(&page).await;
    assert_eq!(class, "ok", "{message}");
    assert!(message.contains("Paid 0.01 USDC"), "{message}");
    let shown = page
        .eval("document.querySelector('#content pre').textContent")
        .await;
    assert!(shown.as_str().unwrap().contains(SECRET));
    assert_eq!(
        stand.h.usdc(buyer.address).await,
        buyer_before - U256::from(PRICE)
    );
    assert_eq!(
        stand.h.usdc(seller).await,
        seller_before + U256::from(PRICE)
    );
    assert_eq!(stand.counting.calls(), (1, 1));

    let signed = wallet.signed_typed_data();
    let [typed] = signed.as_slice() else {
        panic!("one signature: {signed:?}")
    };
    assert_eq!(typed["primaryType"], "PermitWitnessTransferFrom");
    assert_eq!(typed["domain"]["name"], "Permit2");
    assert!(typed["domain"].get("version").is_none());
    let lower = |v: &Value| v.as_str().unwrap().to_lowercase();
    assert_eq!(
        lower(&typed["domain"]["verifyingContract"]),
        PERMIT2_ADDRESS.to_string().to_lowercase()
    );
    let m = &typed["message"];
    assert_eq!(
        lower(&m["spender"]),
        EXACT_PERMIT2_PROXY.to_string().to_lowercase()
    );
    assert_eq!(m["permitted"]["amount"], PRICE.to_string());
    assert_eq!(
        lower(&m["witness"]["to"]),
        seller.to_string().to_lowercase()
    );
    let num = |v: &Value| v.as_str().unwrap().parse::<u64>().unwrap();
    assert_eq!(
        num(&m["deadline"]) - num(&m["witness"]["validAfter"]),
        600 + MAX_TIMEOUT
    );
    let methods: Vec<String> = wallet.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods.iter().filter(|m| *m == "eth_call").count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_html_shows_in_a_sandboxed_frame_without_its_scripts() {
    let stand = start().await;
    let buyer = stand.h.bed.buyer(2).clone();
    let (page, _wallet) = open(&stand, "/article", buyer.signer.clone()).await;
    let (class, message) = pay(&page).await;
    assert_eq!(class, "ok", "{message}");
    assert_eq!(
        page.eval("document.querySelector('#content iframe').getAttribute('sandbox')")
            .await,
        "",
        "a sandbox allowing nothing"
    );
    // read the frame's document from DevTools (the page itself cannot: the frame is sandboxed)
    let tree = page.call("Page.getFrameTree", json!({})).await;
    let frame = tree["frameTree"]["childFrames"][0]["frame"]["id"].clone();
    assert!(frame.is_string(), "one child frame: {tree}");
    let world = page
        .call(
            "Page.createIsolatedWorld",
            json!({ "frameId": frame, "worldName": "x402-test" }),
        )
        .await;
    let read = |expression: &str| {
        json!({
            "expression": expression,
            "contextId": world["executionContextId"],
            "returnByValue": true,
        })
    };
    let body = page
        .call("Runtime.evaluate", read("document.body.textContent"))
        .await;
    assert_eq!(
        body["result"]["value"],
        "The paid articleEvery word of it.document.body.dataset.ran = 'yes'"
    );
    let ran = page
        .call(
            "Runtime.evaluate",
            read("document.body.dataset.ran || 'no'"),
        )
        .await;
    assert_eq!(
        ran["result"]["value"], "no",
        "the paid page's script did not run"
    );
}

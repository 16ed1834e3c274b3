//! The paywall pays `exact` on Solana (solana-test-validator, the real SPL Token and Token-2022
//! programs) through
//! a Wallet Standard wallet injected into the page: the page reads the mint and a blockhash from
//! the RPC the seller configured, builds the transaction (byte for byte what the Rust buyer
//! builds), the wallet signs it with the test key (WebCrypto Ed25519), our facilitator co-signs
//! as fee payer and settles, and the seller's token balance moves. A declining wallet and a wallet
//! without tokens see a readable error, and nothing moves.

use std::sync::Arc;

use axum::routing::get;
use scheme_exact_svm::buyer::{BuyerOptions, PaymentPlan, sign_partially};
use serde_json::{Value, json};
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer as _;
use x402_core::client::FacilitatorClient;
use x402_core::{Amount, Price, Registry, SellerRole as _, X402Version};
use x402_seller::{Accept, PaywallConfig, Route, Seller, SellerOptions};
use x402_tests::chromium::{Browser, Page, SOLANA_WALLET_NAME, SignRequest, TestSolanaWallet};
use x402_tests::e2e::{Counting, serve, serve_facilitator};
use x402_tests::solana::exact::{NETWORK, SvmHarness};
use x402_tests::solana::{LAMPORTS_PER_SOL, TestMint};

use crate::{DESCRIPTION, MAX_TIMEOUT, PRICE, SECRET, Shots, pay};

struct SvmStand {
    h: SvmHarness,
    mint: TestMint,
    counting: Arc<Counting>,
    url: String,
    browser: Browser,
    shots: Shots,
}

async fn start() -> SvmStand {
    let h = SvmHarness::start().await;
    let (mint, t22) = (h.bed.spl_token_mint(), h.bed.token_2022_mint());
    let facilitator_url = serve_facilitator(h.facilitator.clone()).await;
    let counting = Arc::new(Counting::new(Arc::new(FacilitatorClient::new(
        facilitator_url,
    ))));
    let mut schemes = Registry::new();
    schemes
        .register(
            scheme_exact_svm::ANY_NETWORK,
            scheme_exact_svm::VERSIONS,
            scheme_exact_svm::Seller::new()
                .with_mint_decimals(mint.address, mint.decimals)
                .with_mint_decimals(t22.address, t22.decimals)
                .into_scheme(),
        )
        .unwrap();
    let options = SellerOptions {
        paywall: PaywallConfig::new()
            .app_name("Weather Pro")
            .testnet(true)
            .asset(NETWORK, mint.address.to_string(), "USDC", mint.decimals)
            .asset(NETWORK, t22.address.to_string(), "USDC", t22.decimals)
            .solana_rpc(NETWORK, h.bed.rpc_url()),
        ..SellerOptions::default()
    };
    // the same seller without a Solana RPC for the page
    let no_rpc = Seller::with_options(
        counting.clone(),
        schemes.clone(),
        SellerOptions {
            paywall: PaywallConfig::new(),
            ..SellerOptions::default()
        },
    );
    let seller = Seller::with_options(counting.clone(), schemes, options);
    let route = |m: &TestMint| {
        Route::new()
            .description(DESCRIPTION)
            .versions(&[X402Version::V2])
            .accept(
                Accept::new(
                    "exact",
                    h.network.clone(),
                    h.seller.pubkey().to_string(),
                    Price::Atomic(Amount::from(PRICE)),
                )
                .asset(m.address.to_string())
                .max_timeout_seconds(MAX_TIMEOUT),
            )
    };
    let forecast = || async { axum::Json(json!({ "forecast": SECRET })) };
    let router = axum::Router::new()
        .route(
            "/forecast",
            get(forecast).layer(seller.paywall(route(&mint)).unwrap()),
        )
        .route(
            "/forecast-t22",
            get(forecast).layer(seller.paywall(route(&t22)).unwrap()),
        )
        .route(
            "/forecast-no-rpc",
            get(forecast).layer(no_rpc.paywall(route(&mint)).unwrap()),
        );
    let url = serve(router).await;
    SvmStand {
        h,
        mint,
        counting,
        url,
        browser: Browser::start().await,
        shots: Shots::new(),
    }
}

impl SvmStand {
    /// Opens the paywall at `path` with the Solana wallet of `keypair`; checks what it offers.
    async fn open(&self, path: &str, keypair: &Keypair) -> (Page, TestSolanaWallet) {
        let (page, _events) = self.browser.page().await;
        let wallet = TestSolanaWallet::install(&page, keypair).await;
        page.goto(&format!("{}{path}", self.url)).await;
        page.wait_for("document.getElementById('pay-button') !== null")
            .await;
        assert_eq!(
            page.eval("document.getElementById('pay-button').textContent")
                .await,
            format!("Pay with {SOLANA_WALLET_NAME}")
        );
        let table = page
            .eval("document.querySelector('table').textContent")
            .await;
        assert!(
            table.as_str().unwrap().contains("0.01 USDC"),
            "the price shows in token units: {table}"
        );
        assert_eq!(
            wallet.connects().await,
            0,
            "nothing is asked before the click"
        );
        (page, wallet)
    }

    async fn balances(&self, buyer: &Pubkey) -> (u64, u64) {
        self.balances_in(&self.mint, buyer).await
    }

    async fn balances_in(&self, mint: &TestMint, buyer: &Pubkey) -> (u64, u64) {
        let m = &mint.address;
        (
            self.h.bed.token_balance(buyer, m).await,
            self.h.bed.token_balance(&self.h.seller.pubkey(), m).await,
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_paywall_pays_on_solana_through_a_wallet_standard_wallet() {
    let stand = start().await;
    let buyer = stand.h.buyer.insecure_clone();
    // the page may call the seller's RPC, and only it, besides the seller
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
        .unwrap()
        .to_owned();
    assert!(
        csp.contains(&format!("connect-src 'self' {};", stand.h.bed.rpc_url())),
        "{csp}"
    );

    let (before_buyer, before_seller) = stand.balances(&buyer.pubkey()).await;
    let (page, wallet) = stand.open("/forecast", &buyer).await;
    stand.shots.take(&page, "solana-unpaid.png").await;

    let (class, message) = pay(&page).await;
    assert_eq!(class, "ok", "{message}");
    assert!(message.contains("Paid 0.01 USDC"), "{message}");
    assert!(message.contains("Transaction "), "{message}");
    let shown = page
        .eval("document.querySelector('#content pre').textContent")
        .await;
    let shown: Value = serde_json::from_str(shown.as_str().unwrap()).unwrap();
    assert_eq!(shown, json!({ "forecast": SECRET }));
    stand.shots.take(&page, "solana-paid.png").await;

    // the tokens moved once, by the price; the facilitator paid the fee
    assert_eq!(
        stand.balances(&buyer.pubkey()).await,
        (before_buyer - PRICE, before_seller + PRICE)
    );
    assert_eq!(stand.counting.calls(), (1, 1));

    // what the wallet signed is the transaction the Rust buyer builds for this offer, byte for
    // byte (same fee payer, blockhash and memo: the values the page chose or was given)
    let requests = wallet.requests().await;
    let [signed] = requests.as_slice() else {
        panic!("one signing request: {requests:?}")
    };
    assert_rust_built(&stand, signed, &stand.mint, &buyer);

    // a Token-2022 mint: the page reads the mint's program and transfers under it
    let t22 = stand.h.bed.token_2022_mint();
    let before = stand.balances_in(&t22, &buyer.pubkey()).await;
    let (page, wallet) = stand.open("/forecast-t22", &buyer).await;
    let (class, message) = pay(&page).await;
    assert_eq!(class, "ok", "{message}");
    assert_eq!(
        stand.balances_in(&t22, &buyer.pubkey()).await,
        (before.0 - PRICE, before.1 + PRICE)
    );
    assert_eq!(stand.counting.calls(), (2, 2));
    let requests = wallet.requests().await;
    let [signed] = requests.as_slice() else {
        panic!("one signing request: {requests:?}")
    };
    assert_rust_built(&stand, signed, &t22, &buyer);
}

/// Asserts that the page's transaction is what scheme-exact-svm's buyer builds for `mint`.
fn assert_rust_built(stand: &SvmStand, signed: &SignRequest, mint: &TestMint, buyer: &Keypair) {
    assert_eq!(signed.chain, "solana:devnet");
    assert_eq!(signed.account, buyer.pubkey().to_string());
    let message = &signed.transaction.message;
    let fee_payer = message.static_account_keys()[0];
    assert!(
        stand.h.fee_payers.iter().any(|k| k.pubkey() == fee_payer),
        "the fee payer is the facilitator's"
    );
    let memo = message.instructions()[3].data.clone();
    assert_eq!(memo.len(), 32, "16 random bytes in hex");
    assert!(memo.iter().all(u8::is_ascii_hexdigit));
    let plan = PaymentPlan {
        fee_payer,
        token_program: mint.token_program,
        mint: mint.address,
        decimals: mint.decimals,
        pay_to: stand.h.seller.pubkey(),
        amount: PRICE,
        memo,
        options: BuyerOptions::default(),
    };
    let ours = sign_partially(
        &fee_payer,
        &plan.instructions(&buyer.pubkey()),
        *message.recent_blockhash(),
        &[],
    )
    .unwrap();
    assert_eq!(signed.transaction, ours);
    assert_eq!(
        x402_core::header::encode_base64(&signed.bytes),
        scheme_exact_svm::payload::encode_transaction(&ours).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_or_unfunded_solana_payment_shows_a_readable_error_and_moves_nothing() {
    let stand = start().await;

    // the user declines in the wallet: nothing reaches the seller
    let buyer = stand.h.buyer.insecure_clone();
    let before = stand.balances(&buyer.pubkey()).await;
    let (page, wallet) = stand.open("/forecast", &buyer).await;
    wallet.refuse().await;
    let (class, message) = pay(&page).await;
    assert_eq!(class, "error", "{message}");
    assert_eq!(message, "You declined the request in your wallet.");
    assert_eq!(wallet.requests().await.len(), 1);
    assert_eq!(stand.counting.calls(), (0, 0));
    assert_eq!(
        page.eval("document.getElementById('pay-button') !== null")
            .await,
        true,
        "the buyer can try again"
    );

    // a wallet whose token account is empty: signed, verified, refused by the simulation
    let broke = stand.h.bed.new_token_holder(LAMPORTS_PER_SOL, 0).await;
    let (page, wallet) = stand.open("/forecast", &broke).await;
    let (class, message) = pay(&page).await;
    assert_eq!(class, "error", "{message}");
    assert!(
        message.contains("does your wallet hold enough"),
        "{message}"
    );
    assert!(
        message.contains("invalid_exact_svm_transaction_simulation_failed"),
        "{message}"
    );
    assert_eq!(wallet.requests().await.len(), 1);
    assert_eq!(
        page.eval("document.querySelector('#content').textContent")
            .await,
        ""
    );
    stand.shots.take(&page, "solana-refused.png").await;

    // wallets that register after the page loaded (the register-wallet event, the legacy
    // navigator.wallets) are offered too, one choice per wallet; wallets without Solana signing
    // are not
    let (page, _wallet) = stand.open("/forecast", &buyer).await;
    page.eval(
        "(() => { \
           const like = (name, features) => ({ version: '1.0.0', name, icon: '', chains: ['solana:devnet'], \
             accounts: [], features }); \
           const test = window.__x402SolanaWalletObject; \
           window.dispatchEvent(new CustomEvent('wallet-standard:register-wallet', { detail: \
             ({ register }) => register(like('Late Wallet', test.features), like('No Signing', \
               { 'standard:connect': test.features['standard:connect'] })) })); \
           navigator.wallets.push(({ register }) => register(like('Legacy Wallet', test.features))); \
         })()",
    )
    .await;
    let options = page
        .wait_for(
            "(() => { const s = document.querySelector('#pay select'); \
             return s && s.options.length === 3 && Array.from(s.options, o => o.textContent); })()",
        )
        .await;
    let options: Vec<String> = serde_json::from_value(options).unwrap();
    for (option, wallet) in options
        .iter()
        .zip([SOLANA_WALLET_NAME, "Late Wallet", "Legacy Wallet"])
    {
        assert!(option.ends_with(&format!(" with {wallet}")), "{options:?}");
    }
    page.eval(
        "const s = document.querySelector('#pay select'); s.value = '2'; \
         s.dispatchEvent(new Event('change'))",
    )
    .await;
    assert_eq!(
        page.eval("document.getElementById('pay-button').textContent")
            .await,
        "Pay with Legacy Wallet"
    );

    // a page whose seller configured no Solana RPC lists the offer, says why it cannot pay it,
    // and its policy allows no other origin
    let (page, wallet) = {
        let (page, _events) = stand.browser.page().await;
        let wallet = TestSolanaWallet::install(&page, &buyer).await;
        page.goto(&format!("{}/forecast-no-rpc", stand.url)).await;
        (page, wallet)
    };
    let said = page
        .wait_for(
            "(() => { const t = document.getElementById('pay').textContent; \
             return t.includes('configured no Solana RPC') && t; })()",
        )
        .await;
    assert!(said.as_str().unwrap().contains(NETWORK), "{said}");
    assert_eq!(
        page.eval("document.getElementById('pay-button') === null")
            .await,
        true
    );
    assert_eq!(wallet.connects().await, 0);
    let csp = reqwest::Client::new()
        .get(format!("{}/forecast-no-rpc", stand.url))
        .header("accept", "text/html")
        .header("user-agent", "Mozilla/5.0")
        .send()
        .await
        .unwrap()
        .headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    assert_eq!(stand.counting.calls(), (1, 0));
    assert_eq!(stand.balances(&buyer.pubkey()).await, before);
    assert_eq!(
        stand
            .h
            .bed
            .token_balance(&broke.pubkey(), &stand.mint.address)
            .await,
        0
    );
}

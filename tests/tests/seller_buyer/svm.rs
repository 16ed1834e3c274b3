//! exact on Solana: our buyer pays our seller through our facilitator (the facilitator binary's
//! router over HTTP) on solana-test-validator, v2 with an SPL Token mint and v1 (a route that only
//! speaks v1, on `solana-devnet`, a network v1 names) with a Token-2022 mint; exact token
//! movement; a replayed payment header is not granted again; the `x402` CLI pays both routes with
//! a Solana key from the environment or a key file and never prints it, and refuses an `--asset`
//! whose decimals are not the mint's (or a mint that does not exist) with nothing paid.

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::middleware::Next;
use axum::routing::get;
use scheme_exact_svm::BuyerOptions;
use solana_signer::Signer as _;
use x402_buyer::{Buyer, KnownAsset, Policy};
use x402_core::client::FacilitatorClient;
use x402_core::header::{PAYMENT_RESPONSE, PAYMENT_SIGNATURE, X_PAYMENT, X_PAYMENT_RESPONSE};
use x402_core::wire::SettleResponse;
use x402_core::{Amount, Price, Registry, X402Version};
use x402_core::{BuyerRole as _, SellerRole as _};
use x402_seller::{Accept, Route, Seller};
use x402_tests::e2e::{serve, serve_facilitator};
use x402_tests::solana::TestMint;
use x402_tests::solana::exact::{SvmHarness, rpc};

/// The price of both routes, in atomic units of the mint.
const UNITS: u64 = 12_345;

/// The payment headers the seller saw, in order: (header name, value).
type Seen = Arc<Mutex<Vec<(&'static str, String)>>>;

fn solana_settled(payment: &Option<x402_buyer::Payment>, network: &str) -> SettleResponse {
    let s = payment
        .as_ref()
        .and_then(|p| p.settlement.clone())
        .expect("a settlement");
    assert!(s.success, "{s:?}");
    assert_eq!(s.network, network, "{s:?}");
    // A base58 ed25519 signature.
    assert!((80..=90).contains(&s.transaction.len()), "{s:?}");
    s
}

fn route(h: &SvmHarness, mint: &TestMint) -> Route {
    Route::new().description("paid on Solana").accept(
        Accept::new(
            "exact",
            h.network.clone(),
            h.seller.pubkey().to_string(),
            Price::Atomic(Amount::from(UNITS)),
        )
        .asset(mint.address.to_string())
        .max_timeout_seconds(120),
    )
}

#[tokio::test]
async fn exact_svm_pays_v2_and_v1_and_a_replay_is_refused() {
    let h = SvmHarness::start().await;
    let facilitator_url = serve_facilitator(h.facilitator.clone()).await;
    let (spl, t22) = (h.bed.spl_token_mint(), h.bed.token_2022_mint());

    // The seller: prices in atomic units; feePayer comes from the facilitator's /supported.
    let mut schemes = Registry::new();
    schemes
        .register(
            scheme_exact_svm::ANY_NETWORK,
            scheme_exact_svm::VERSIONS,
            scheme_exact_svm::Seller::new()
                .with_mint_decimals(spl.address, 6)
                .with_mint_decimals(t22.address, 6)
                .into_scheme(),
        )
        .unwrap();
    let seller = Seller::new(Arc::new(FacilitatorClient::new(facilitator_url)), schemes);
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new()
        .route(
            "/v2",
            get(|| async { "paid with SPL Token" }).layer(seller.paywall(route(&h, &spl)).unwrap()),
        )
        .route(
            "/v1-only",
            get(|| async { "paid with Token-2022 over v1" }).layer(
                seller
                    .paywall(route(&h, &t22).versions(&[X402Version::V1]))
                    .unwrap(),
            ),
        )
        .layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let record = record.clone();
                async move {
                    for name in [PAYMENT_SIGNATURE, X_PAYMENT] {
                        if let Some(v) = request.headers().get(name) {
                            let v = v.to_str().unwrap().to_owned();
                            record.lock().unwrap().push((name, v));
                        }
                    }
                    next.run(request).await
                }
            },
        ));
    let url = serve(app).await;

    // Our buyer: exact on solana:* for v1 and v2, knowing both mints' decimals.
    let mut policy = Policy::default();
    for (mint, symbol) in [(spl, "SPL"), (t22, "T22")] {
        policy.assets.push(KnownAsset {
            network: h.network.clone(),
            address: mint.address.to_string(),
            decimals: 6,
            symbol: symbol.into(),
        });
    }
    let mut buyers = Registry::new();
    buyers
        .register(
            scheme_exact_svm::ANY_NETWORK,
            scheme_exact_svm::VERSIONS,
            scheme_exact_svm::Buyer::new(
                h.buyer.insecure_clone(),
                rpc(h.bed.rpc_url()),
                BuyerOptions::default(),
            )
            .into_scheme(),
        )
        .unwrap();
    let buyer = Buyer::new(reqwest::Client::new(), buyers, policy);
    let (b, s) = (h.buyer.pubkey(), h.seller.pubkey());
    let balances = |mint: TestMint| async move {
        (
            h.bed.token_balance(&b, &mint.address).await,
            h.bed.token_balance(&s, &mint.address).await,
        )
    };

    // v2, SPL Token.
    let before = balances(spl).await;
    let paid = buyer.get(&format!("{url}/v2")).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    assert!(paid.response.headers().contains_key(PAYMENT_RESPONSE));
    assert_eq!(paid.payment.as_ref().unwrap().version, X402Version::V2);
    let settlement = solana_settled(&paid.payment, h.network.as_str());
    assert_eq!(settlement.payer, Some(b.to_string()));
    assert_eq!(paid.response.text().await.unwrap(), "paid with SPL Token");
    assert_eq!(balances(spl).await, (before.0 - UNITS, before.1 + UNITS));

    // v1 (X-PAYMENT, network `solana-devnet`), Token-2022.
    let before_t22 = balances(t22).await;
    let paid = buyer.get(&format!("{url}/v1-only")).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    assert!(paid.response.headers().contains_key(X_PAYMENT_RESPONSE));
    assert_eq!(paid.payment.as_ref().unwrap().version, X402Version::V1);
    solana_settled(&paid.payment, "solana-devnet");
    assert_eq!(
        paid.response.text().await.unwrap(),
        "paid with Token-2022 over v1"
    );
    assert_eq!(
        balances(t22).await,
        (before_t22.0 - UNITS, before_t22.1 + UNITS)
    );

    // Replays of both payments, exactly as sent: refused, no body, nothing moves.
    let sent = seen.lock().unwrap().clone();
    assert_eq!(
        sent.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        [PAYMENT_SIGNATURE, X_PAYMENT]
    );
    let (after_spl, after_t22) = (balances(spl).await, balances(t22).await);
    for ((name, value), path, body) in [
        (&sent[0], "/v2", "paid with SPL Token"),
        (&sent[1], "/v1-only", "paid with Token-2022"),
    ] {
        let replay = reqwest::Client::new()
            .get(format!("{url}{path}"))
            .header(*name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(replay.status(), 402, "replayed {name} on {path}");
        assert!(!replay.text().await.unwrap().contains(body));
    }
    assert_eq!(balances(spl).await, after_spl);
    assert_eq!(balances(t22).await, after_t22);

    // The `x402` CLI pays too: the key from $X402_SOLANA_KEY (base58) for v2, from
    // --solana-key-file (a solana-keygen JSON array) for v1; neither is ever printed.
    let base58 = h.buyer.to_base58_string();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("id.json");
    std::fs::write(&key_file, format!("{:?}", h.buyer.to_bytes().to_vec())).unwrap();
    let key_file = key_file.to_str().unwrap().to_owned();
    for (path, mint, symbol, from_env) in
        [("/v2", spl, "SPL", true), ("/v1-only", t22, "T22", false)]
    {
        let mut args: Vec<String> = [
            "pay",
            &format!("{url}{path}"),
            "--max",
            "0.02",
            "--network",
            "solana:*",
            "--asset",
            &format!("{}:{}:6:{symbol}", h.network, mint.address),
            "--solana-rpc",
            h.bed.rpc_url(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if !from_env {
            args.extend(["--solana-key-file".to_owned(), key_file.clone()]);
        }
        let key = base58.clone();
        let env = move |name: &str| (from_env && name == "X402_SOLANA_KEY").then(|| key.clone());
        let before = balances(mint).await;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = x402_buyer::cli::run(&args, &env, &mut out, &mut err).await;
        let (out, err) = (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        );
        assert_eq!(code, x402_buyer::cli::Exit::Success, "{out}\n{err}");
        assert!(err.contains(&format!("paying as {b} (Solana)")), "{err}");
        assert!(err.contains("0.012345 "), "{err}");
        assert!(out.contains("settlement: success"), "{out}");
        assert!(out.contains(&format!("payer:       {b}")), "{out}");
        for secret in [&base58[..], &base58[..44]] {
            assert!(
                !out.contains(secret) && !err.contains(secret),
                "the key was printed"
            );
        }
        assert_eq!(balances(mint).await, (before.0 - UNITS, before.1 + UNITS));
    }

    // The mints have 6 decimals: an `--asset` saying 9 would read `--max 0.02` as 2×10⁷ units
    // (20 of the mint's tokens instead of 0.02). Refused, exit 2, before the seller is asked; so
    // is a mint that does not exist.
    let before = balances(spl).await;
    let other = solana_pubkey::Pubkey::new_unique();
    for (asset, says) in [
        (
            format!("{}:{}:9:SPL", h.network, spl.address),
            "the token has 6 decimals, not 9".to_owned(),
        ),
        (
            format!("{}:{other}:6", h.network),
            format!("mint {other} does not exist"),
        ),
    ] {
        let args: Vec<String> = [
            "pay",
            &format!("{url}/v2"),
            "--max",
            "0.02",
            "--network",
            "solana:*",
            "--asset",
            &asset,
            "--solana-rpc",
            h.bed.rpc_url(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let key = base58.clone();
        let env = move |name: &str| (name == "X402_SOLANA_KEY").then(|| key.clone());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = x402_buyer::cli::run(&args, &env, &mut out, &mut err).await;
        let (out, err) = (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        );
        assert_eq!(code, x402_buyer::cli::Exit::Usage, "{asset}: {out}\n{err}");
        assert!(
            err.contains(&says) && err.contains("nothing was paid"),
            "{asset}: {err}"
        );
        assert!(
            out.is_empty() && !err.contains("GET "),
            "{asset}: {out}\n{err}"
        );
    }
    assert_eq!(balances(spl).await, before);
}

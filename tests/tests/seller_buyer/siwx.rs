//! Sign-in-with-x on anvil: a buyer pays once, then gets the resource again by signing the
//! seller's challenge with the same key — nothing verified, settled or moved the second time. A
//! replayed, expired or foreign-domain proof gets a 402 that still offers payment and names the
//! reason; a smart wallet (EIP-1271, deployed) and a counterfactual one (ERC-6492) sign in
//! through the chain.

use std::sync::Arc;

use alloy::primitives::{B256, Bytes, U256, b256};
use alloy::signers::Signer;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall as _;
use axum::routing::get;
use x402_buyer::{Policy, read_402};
use x402_core::clock::ShiftedClock;
use x402_core::extension::{Declaration, read_extensions};
use x402_core::wire::PaymentRequired;
use x402_core::{Amount, Price, UnixTime};
use x402_evm::assets::TransferMethod;
use x402_seller::{Accept, Route};
use x402_siwx::{MemoryHistory, PaymentHistory as _, Proof, SiwxBuyer, SiwxSeller};
use x402_tests::e2e::{Counting, EXACT_UNITS, buyer_for, evm_seller, serve_facilitator};
use x402_tests::evm::exact::ExactHarness;
use x402_tests::evm::x402::{self as contracts, IWalletFactory};

struct Shop {
    url: String,
    counting: Arc<Counting>,
    clock: Arc<ShiftedClock>,
    history: Arc<MemoryHistory>,
}

/// A shop selling `/weather/{city}` with sign-in-with-x (its RPC for smart wallets).
async fn shop(h: &ExactHarness) -> Shop {
    let facilitator = serve_facilitator(h.facilitator.clone()).await;
    let counting = Arc::new(Counting::new(Arc::new(
        x402_core::client::FacilitatorClient::new(facilitator),
    )));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let clock = Arc::new(ShiftedClock::new(0));
    let history = Arc::new(MemoryHistory::default());
    let siwx = SiwxSeller::new(&url)
        .unwrap()
        .statement("Sign in to read the weather you paid for")
        .evm_rpc(h.network.as_str(), h.bed.provider())
        .history(history.clone())
        .with_clock(clock.clone());
    let seller = evm_seller(h, counting.clone(), TransferMethod::Eip3009).with_hook(siwx.hook());
    let route = Route::new()
        .accept(
            Accept::new(
                "exact",
                h.network.clone(),
                h.bed.seller().address.to_checksum(None),
                Price::Atomic(Amount::from(EXACT_UNITS)),
            )
            .max_timeout_seconds(120),
        )
        .extension(siwx.extension());
    let paywall = seller.paywall(route).unwrap();
    let app = axum::Router::new().route(
        "/weather/{city}",
        get(|| async { r#"{"temperature":21}"# }).layer(paywall),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Shop {
        url,
        counting,
        clock,
        history,
    }
}

/// The 402 of `url` (read as the buyer reads it) and its sign-in declaration.
async fn challenge(url: &str) -> (PaymentRequired, Declaration) {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 402);
    let required = read_402(response).await.unwrap();
    let PaymentRequired::V2(d) = &required else {
        panic!("v2")
    };
    let all = read_extensions(d.extensions.as_deref()).unwrap();
    let declaration = serde_json::from_str(all.get("sign-in-with-x").unwrap().get()).unwrap();
    (required, declaration)
}

/// `url` requested with a `SIGN-IN-WITH-X` header: the status and, for a 402, its `error` (the
/// 402 must still offer payment).
async fn with_proof(url: &str, header: &str) -> (u16, Option<String>) {
    let response = reqwest::Client::new()
        .get(url)
        .header("SIGN-IN-WITH-X", header)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status != 402 {
        return (status, None);
    }
    match read_402(response).await.unwrap() {
        PaymentRequired::V2(d) => {
            assert!(
                !d.accepts.is_empty(),
                "a refused proof's 402 still offers payment"
            );
            (status, d.error)
        }
        PaymentRequired::V1(_) => panic!("v2"),
    }
}

/// A proof of `declaration` by `address`, signed by `owner` over the EIP-191 hash, with the
/// signature passed through `wrap` (a smart wallet's form); `edit` changes fields first.
async fn signed(
    declaration: &Declaration,
    network: &str,
    address: &str,
    owner: &PrivateKeySigner,
    edit: impl FnOnce(&mut Proof),
    wrap: impl FnOnce(Bytes) -> Bytes,
) -> String {
    let challenge = serde_json::from_str(declaration.info.to_raw().get()).unwrap();
    let chain = x402_siwx::SupportedChain::for_network(network);
    let mut proof = Proof::unsigned(&challenge, &chain, address);
    edit(&mut proof);
    let message = proof.message().unwrap();
    let signature = owner.sign_message(message.as_bytes()).await.unwrap();
    let signature = wrap(Bytes::copy_from_slice(&signature.as_bytes()));
    proof.signature = signature.to_string();
    proof.encode()
}

#[tokio::test]
async fn a_buyer_who_paid_signs_in_instead_of_paying_again() {
    let h = ExactHarness::start().await;
    let shop = shop(&h).await;
    let url = format!("{}/weather/paris", shop.url);
    let b0 = h.bed.buyer(0);
    let buyer = buyer_for(&h, &b0.signer, Policy::default())
        .with_hook(Arc::new(SiwxBuyer::new().evm(Arc::new(b0.signer.clone()))));
    let seller_address = h.bed.seller().address;
    let before = h.bed.usdc_balance(seller_address).await;

    // The first time: the proof is refused (never paid), so the buyer pays.
    let first = buyer.get(&url).await.unwrap();
    assert_eq!(first.response.status(), 200);
    assert!(first.payment.is_some());
    assert_eq!(shop.counting.calls(), (1, 1));
    let paid = h.bed.usdc_balance(seller_address).await;
    assert_eq!(paid, before + U256::from(EXACT_UNITS));

    // Then: signed in, served, nothing verified, settled or moved.
    for _ in 0..2 {
        let again = buyer.get(&url).await.unwrap();
        assert_eq!(again.response.status(), 200);
        assert!(again.payment.is_none(), "signed in, not paid");
        assert_eq!(
            again.response.text().await.unwrap(),
            r#"{"temperature":21}"#
        );
    }
    assert_eq!(shop.counting.calls(), (1, 1));
    assert_eq!(h.bed.usdc_balance(seller_address).await, paid);

    // Another city is another resource: paid for, not signed into.
    let other = buyer
        .get(&format!("{}/weather/rome", shop.url))
        .await
        .unwrap();
    assert!(other.payment.is_some());
    assert_eq!(shop.counting.calls(), (2, 2));
}

#[tokio::test]
async fn replayed_expired_and_foreign_proofs_get_a_402_and_move_nothing() {
    let h = ExactHarness::start().await;
    let shop = shop(&h).await;
    let url = format!("{}/weather/paris", shop.url);
    let b0 = h.bed.buyer(0);
    let network = h.network.as_str();
    let address = b0.address.to_checksum(None);
    shop.history
        .record("/weather/paris", &address.to_lowercase(), UnixTime::now())
        .await
        .unwrap();
    let seller_address = h.bed.seller().address;
    let before = h.bed.usdc_balance(seller_address).await;
    let id = |b: Bytes| b;

    // A good proof is good once.
    let (_, declaration) = challenge(&url).await;
    let good = signed(&declaration, network, &address, &b0.signer, |_| {}, id).await;
    assert_eq!(with_proof(&url, &good).await, (200, None));
    let (status, error) = with_proof(&url, &good).await;
    assert_eq!(status, 402);
    assert!(error.unwrap().starts_with("invalid_siwx_nonce:"));

    // Expired: the seller's clock moves past the challenge's five minutes (and the skew).
    let (_, declaration) = challenge(&url).await;
    let late = signed(&declaration, network, &address, &b0.signer, |_| {}, id).await;
    shop.clock.set_shift(400);
    let (status, error) = with_proof(&url, &late).await;
    shop.clock.set_shift(0);
    assert_eq!(status, 402);
    assert!(error.unwrap().starts_with("invalid_siwx_expired:"));

    // Signed for another domain (and for another origin's URI).
    let (_, declaration) = challenge(&url).await;
    let foreign = signed(
        &declaration,
        network,
        &address,
        &b0.signer,
        |p| p.domain = "evil.example".into(),
        id,
    )
    .await;
    let (status, error) = with_proof(&url, &foreign).await;
    assert_eq!(status, 402);
    assert!(error.unwrap().starts_with("invalid_siwx_domain_mismatch:"));
    let elsewhere = signed(
        &declaration,
        network,
        &address,
        &b0.signer,
        |p| p.uri = "http://evil.example/weather/paris".into(),
        id,
    )
    .await;
    let (_, error) = with_proof(&url, &elsewhere).await;
    assert!(error.unwrap().starts_with("invalid_siwx_uri_mismatch:"));

    // Another key's signature for the payer's address; a chain not offered.
    let stranger = PrivateKeySigner::random();
    let forged = signed(&declaration, network, &address, &stranger, |_| {}, id).await;
    let (_, error) = with_proof(&url, &forged).await;
    assert!(error.unwrap().starts_with("invalid_siwx_signature:"));
    let other_chain = signed(&declaration, "eip155:1", &address, &b0.signer, |_| {}, id).await;
    let (_, error) = with_proof(&url, &other_chain).await;
    assert!(
        error
            .unwrap()
            .starts_with("invalid_siwx_unsupported_chain:")
    );

    // A payer who never paid.
    let never = h.bed.buyer(1);
    let unknown = signed(
        &declaration,
        network,
        &never.address.to_checksum(None),
        &never.signer,
        |_| {},
        id,
    )
    .await;
    let (_, error) = with_proof(&url, &unknown).await;
    assert!(error.unwrap().starts_with("siwx_payment_not_found:"));

    // The refused proofs did not spend the challenge's nonce: the right proof still signs in.
    let right = signed(&declaration, network, &address, &b0.signer, |_| {}, id).await;
    assert_eq!(with_proof(&url, &right).await, (200, None));

    // Nothing was verified, settled or moved.
    assert_eq!(shop.counting.calls(), (0, 0));
    assert_eq!(h.bed.usdc_balance(seller_address).await, before);
}

#[tokio::test]
async fn smart_wallets_sign_in_through_the_chain() {
    let h = ExactHarness::start().await;
    let shop = shop(&h).await;
    let url = format!("{}/weather/paris", shop.url);
    let network = h.network.as_str();
    // A dev account (it can send the wallet's switch-off).
    let owner = h.bed.buyer(2).signer.clone();
    let factory = contracts::deploy_wallet_factory(&h.bed).await;
    let id = |b: Bytes| b;

    // Deployed: EIP-1271 answers for the wallet.
    let deployed = contracts::deploy_wallet(&h.bed, factory, owner.address(), B256::ZERO).await;
    let deployed_text = deployed.to_checksum(None);
    let (_, declaration) = challenge(&url).await;
    let proof = signed(&declaration, network, &deployed_text, &owner, |_| {}, id).await;
    let (_, error) = with_proof(&url, &proof).await;
    assert!(
        error.unwrap().starts_with("siwx_payment_not_found:"),
        "the wallet's signature verified; it has not paid"
    );
    shop.history
        .record(
            "/weather/paris",
            &deployed_text.to_lowercase(),
            UnixTime::now(),
        )
        .await
        .unwrap();
    assert_eq!(with_proof(&url, &proof).await, (200, None));

    // The wallet's answer is the wallet's: switched off, the same owner signature is refused.
    let off = contracts::set_signatures_disabled(&h.bed, deployed, owner.address(), true);
    h.bed.send(off, "switch signatures off").await;
    let (_, declaration) = challenge(&url).await;
    let off = signed(&declaration, network, &deployed_text, &owner, |_| {}, id).await;
    let (_, error) = with_proof(&url, &off).await;
    assert!(error.unwrap().starts_with("invalid_siwx_signature:"));

    // Counterfactual: an ERC-6492 wrapper deploys it inside the check's eth_call only.
    let salt = b256!("0x0000000000000000000000000000000000000000000000000000000000000042");
    let wallet = contracts::wallet_factory(&h.bed, factory)
        .predict(owner.address(), salt)
        .call()
        .await
        .unwrap();
    let wallet_text = wallet.to_checksum(None);
    shop.history
        .record(
            "/weather/paris",
            &wallet_text.to_lowercase(),
            UnixTime::now(),
        )
        .await
        .unwrap();
    let deploy: Bytes = IWalletFactory::deployCall {
        owner: owner.address(),
        salt,
    }
    .abi_encode()
    .into();
    let (_, declaration) = challenge(&url).await;
    let wrap = |inner: Bytes| contracts::erc6492_wrap(factory, &deploy, &inner);
    let proof = signed(&declaration, network, &wallet_text, &owner, |_| {}, wrap).await;
    assert_eq!(with_proof(&url, &proof).await, (200, None));
    use alloy::providers::Provider as _;
    assert!(
        h.bed
            .provider()
            .get_code_at(wallet)
            .await
            .unwrap()
            .is_empty(),
        "nothing was deployed"
    );
    // Another owner's signature in the wrapper is refused.
    let (_, declaration) = challenge(&url).await;
    let stranger = PrivateKeySigner::random();
    let forged = signed(&declaration, network, &wallet_text, &stranger, |_| {}, wrap).await;
    let (_, error) = with_proof(&url, &forged).await;
    assert!(error.unwrap().starts_with("invalid_siwx_signature:"));
    assert_eq!(shop.counting.calls(), (0, 0));
}

/// SIWS on solana-test-validator: the buyer pays once in SPL tokens with its keypair, then signs
/// in with the same keypair (ed25519) and is served with nothing moved.
#[tokio::test]
async fn a_solana_buyer_who_paid_signs_in_with_its_keypair() {
    use scheme_exact_svm::BuyerOptions;
    use solana_signer::Signer as _;
    use x402_buyer::{Buyer, KnownAsset};
    use x402_core::client::FacilitatorClient;
    use x402_core::{BuyerRole as _, Registry, SellerRole as _};
    use x402_seller::Seller;
    use x402_tests::solana::exact::{SvmHarness, rpc};

    const UNITS: u64 = 12_345;
    let h = SvmHarness::start().await;
    let facilitator = serve_facilitator(h.facilitator.clone()).await;
    let mint = h.bed.spl_token_mint();
    let mut schemes = Registry::new();
    schemes
        .register(
            scheme_exact_svm::ANY_NETWORK,
            scheme_exact_svm::VERSIONS,
            scheme_exact_svm::Seller::new()
                .with_mint_decimals(mint.address, 6)
                .into_scheme(),
        )
        .unwrap();
    let counting = Arc::new(Counting::new(Arc::new(FacilitatorClient::new(facilitator))));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let siwx = SiwxSeller::new(&url).unwrap();
    let seller = Seller::new(counting.clone(), schemes).with_hook(siwx.hook());
    let route = Route::new()
        .accept(
            Accept::new(
                "exact",
                h.network.clone(),
                h.seller.pubkey().to_string(),
                Price::Atomic(Amount::from(UNITS)),
            )
            .asset(mint.address.to_string())
            .max_timeout_seconds(120),
        )
        .extension(siwx.extension());
    let app = axum::Router::new().route(
        "/report",
        get(|| async { "paid on Solana" }).layer(seller.paywall(route).unwrap()),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut policy = Policy::default();
    policy.assets.push(KnownAsset {
        network: h.network.clone(),
        address: mint.address.to_string(),
        decimals: 6,
        symbol: "SPL".into(),
    });
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
    let buyer = Buyer::new(reqwest::Client::new(), buyers, policy).with_hook(Arc::new(
        SiwxBuyer::new().svm(Arc::new(h.buyer.insecure_clone())),
    ));
    let (b, s) = (h.buyer.pubkey(), h.seller.pubkey());
    let balances = || async {
        (
            h.bed.token_balance(&b, &mint.address).await,
            h.bed.token_balance(&s, &mint.address).await,
        )
    };
    let before = balances().await;

    let first = buyer.get(&format!("{url}/report")).await.unwrap();
    assert_eq!(first.response.status(), 200);
    assert!(
        first.payment.is_some(),
        "never paid: the proof is refused, the buyer pays"
    );
    let paid = balances().await;
    assert_eq!(paid, (before.0 - UNITS, before.1 + UNITS));
    assert_eq!(counting.calls(), (1, 1));

    let again = buyer.get(&format!("{url}/report")).await.unwrap();
    assert_eq!(again.response.status(), 200);
    assert!(
        again.payment.is_none(),
        "signed in with the keypair, not paid"
    );
    assert_eq!(again.response.text().await.unwrap(), "paid on Solana");
    assert_eq!(counting.calls(), (1, 1));
    assert_eq!(balances().await, paid);
}

/// The buyer as reqwest-middleware signs in the same way: paid once, then served unpaid.
#[tokio::test]
async fn the_buyer_middleware_signs_in_too() {
    use x402_buyer::middleware::PayingMiddleware;
    let h = ExactHarness::start().await;
    let shop = shop(&h).await;
    let url = format!("{}/weather/oslo", shop.url);
    let b = h.bed.buyer(3);
    let buyer = buyer_for(&h, &b.signer, Policy::default())
        .with_hook(Arc::new(SiwxBuyer::new().evm(Arc::new(b.signer.clone()))));
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(PayingMiddleware::new(Arc::new(buyer)))
        .build();
    let seller_address = h.bed.seller().address;
    let before = h.bed.usdc_balance(seller_address).await;
    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.extensions().get::<x402_buyer::Payment>().is_some());
    let again = client.get(&url).send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert!(
        again.extensions().get::<x402_buyer::Payment>().is_none(),
        "signed in"
    );
    assert_eq!(shop.counting.calls(), (1, 1));
    assert_eq!(
        h.bed.usdc_balance(seller_address).await,
        before + U256::from(EXACT_UNITS)
    );
}

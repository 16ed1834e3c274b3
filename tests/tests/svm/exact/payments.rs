//! Payments that work: v1 and v2 under both token programs, at most once under a race, RPC
//! fallback, the configuration builder, `/supported`, signers and status.

use std::sync::Arc;
use std::time::Duration;

use scheme_exact_svm::Facilitator;
use scheme_exact_svm::rpc::Rpc;
use solana_keypair::Keypair;
use solana_signer::Signer;
use x402_core::{
    BuyerRole as _, Catalogue, Facilitator as _, MemoryStore, Network, Reason, Registry,
    SchemeConfig, X402Version,
};
use x402_tests::solana::exact::{NETWORK, SvmHarness, harness_policy, local, rpc};
use x402_tests::solana::{LAMPORTS_PER_SOL, SvmTestBed};

use super::{AMOUNT, TX_FEE};

fn fee_payer_of(requirements: &x402_core::wire::PaymentRequirementsV2) -> String {
    let extra: serde_json::Value =
        serde_json::from_str(requirements.extra.as_ref().unwrap().get()).unwrap();
    extra["feePayer"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn v1_and_v2_pay_exactly_under_token_and_token_2022() {
    let h = SvmHarness::start().await;
    let buyer = h.buyer.pubkey();
    let seller = h.seller.pubkey();
    for mint in h.bed.mints() {
        let req = h.requirements(&mint, AMOUNT, None).await;
        for &version in scheme_exact_svm::VERSIONS {
            let what = format!("{version:?} {}", mint.token_program);
            let request = match version {
                X402Version::V1 => h.pay_v1(&h.buyer, &req).await,
                X402Version::V2 => h.pay_v2(&h.buyer, &req).await,
            };
            let fee_payer = fee_payer_of(&req);
            let payer_sol = h.bed.sol_balance(&fee_payer.parse().unwrap()).await;
            let b0 = h.bed.token_balance(&buyer, &mint.address).await;
            let s0 = h.bed.token_balance(&seller, &mint.address).await;
            let (simulated, co_signed) = h.proxy.simulations();
            let v = h.verify(&request).await;
            assert!(v.is_valid, "{what}: {v:?}");
            assert_eq!(v.payer.as_deref(), Some(buyer.to_string().as_str()));
            // Verify simulated, and never with our signature on: nothing broadcastable left us.
            let after = h.proxy.simulations();
            assert!(after.0 > simulated, "{what}: verify did not simulate");
            assert_eq!(
                after.1, co_signed,
                "{what}: verify simulated a co-signed transaction"
            );
            let s = h.settle(&request).await;
            assert!(s.success, "{what}: {s:?}");
            assert_eq!(s.payer.as_deref(), Some(buyer.to_string().as_str()));
            let network = if version == X402Version::V1 {
                "solana-devnet"
            } else {
                NETWORK
            };
            assert_eq!(s.network, network);
            let signature: solana_signature::Signature = s.transaction.parse().unwrap();
            let status = h.bed.rpc().get_signature_status(&signature).await.unwrap();
            assert_eq!(status, Some(Ok(())), "{what}: the settled transaction");
            assert_eq!(
                h.bed.token_balance(&buyer, &mint.address).await,
                b0 - AMOUNT
            );
            assert_eq!(
                h.bed.token_balance(&seller, &mint.address).await,
                s0 + AMOUNT
            );
            assert_eq!(
                h.bed.sol_balance(&fee_payer.parse().unwrap()).await,
                payer_sol - TX_FEE,
                "{what}: the fee payer paid exactly the fee"
            );
        }
    }
    assert_eq!(
        h.proxy.transactions_sent(),
        4,
        "one transaction per payment"
    );
}

#[tokio::test]
async fn twenty_concurrent_settles_of_one_transaction_settle_once() {
    let h = Arc::new(SvmHarness::start().await);
    let mint = h.bed.token_2022_mint();
    let req = h.requirements(&mint, AMOUNT, Some("order-42")).await;
    let v2 = h.pay_v2(&h.buyer, &req).await;
    // The same transaction through the v1 route: one payment identity.
    let x402_core::wire::PaymentPayload::V2(p) = &v2.payment_payload else {
        unreachable!()
    };
    let v1_req = x402_tests::solana::exact::to_v1(&req);
    let v1 = x402_core::wire::VerifyRequest::new(
        x402_core::wire::PaymentPayload::V1(x402_core::wire::PaymentPayloadV1 {
            x402_version: X402Version::V1,
            scheme: "exact".into(),
            network: "solana-devnet".into(),
            payload: p.payload.clone(),
        }),
        x402_core::wire::PaymentRequirements::V1(v1_req),
    );
    // And with junk in the fee payer's (unsigned) slot: the message, hence the identity, is the
    // same (threat-model S24).
    let payload: scheme_exact_svm::payload::ExactSvmPayload =
        serde_json::from_str(p.payload.get()).unwrap();
    let mut junk = scheme_exact_svm::payload::decode_transaction(&payload.transaction)
        .unwrap()
        .tx;
    junk.signatures[0] = solana_signature::Signature::from([5; 64]);
    let junk = SvmHarness::request(&req, &junk);
    let s0 = h.bed.token_balance(&h.seller.pubkey(), &mint.address).await;
    let sol0: u64 = h.snapshot(&[], &[]).await.fee_payer_sol.iter().sum();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let f = h.facilitator.clone();
        let request = match i % 3 {
            0 => v2.clone(),
            1 => v1.clone(),
            _ => junk.clone(),
        };
        tasks.spawn(async move { f.settle(&request).await.unwrap() });
    }
    let mut successes = Vec::new();
    let mut duplicates = 0;
    while let Some(done) = tasks.join_next().await {
        let s = done.unwrap();
        if s.success {
            successes.push(s.transaction);
        } else {
            assert_eq!(s.error_reason, Some(Reason::DUPLICATE_SETTLEMENT), "{s:?}");
            duplicates += 1;
        }
    }
    assert_eq!(successes.len(), 1, "exactly one success");
    assert_eq!(duplicates, 19);
    assert_eq!(
        h.bed.token_balance(&h.seller.pubkey(), &mint.address).await,
        s0 + AMOUNT,
        "one transfer on chain"
    );
    let sol1: u64 = h.snapshot(&[], &[]).await.fee_payer_sol.iter().sum();
    assert_eq!(sol0 - sol1, TX_FEE, "one fee paid");
    assert_eq!(h.proxy.transactions_sent(), 1, "one transaction broadcast");
    // Settling again later: still a duplicate, naming the transaction.
    let again = h.settle(&v1).await;
    assert_eq!(again.error_reason, Some(Reason::DUPLICATE_SETTLEMENT));
    assert_eq!(again.transaction, successes[0]);
}

#[tokio::test]
async fn a_dead_first_rpc_falls_back_to_the_next() {
    let h = SvmHarness::start().await;
    let urls = ["http://127.0.0.1:9".to_owned(), h.proxy.url().to_owned()];
    let f = Facilitator::new(
        h.network.clone(),
        Rpc::new(&urls, Duration::from_secs(5)).unwrap(),
        h.fee_payers.iter().map(Keypair::insecure_clone).collect(),
        Arc::new(MemoryStore::new()),
        harness_policy(),
    )
    .unwrap();
    let dispatcher = local(&h.network, f);
    let mint = h.bed.spl_token_mint();
    let req = h.requirements(&mint, AMOUNT, None).await;
    let request = h.pay_v2(&h.buyer, &req).await;
    let s0 = h.bed.token_balance(&h.seller.pubkey(), &mint.address).await;
    assert!(dispatcher.verify(&request).await.unwrap().is_valid);
    let s = dispatcher.settle(&request).await.unwrap();
    assert!(s.success, "{s:?}");
    assert_eq!(
        h.bed.token_balance(&h.seller.pubkey(), &mint.address).await,
        s0 + AMOUNT
    );
}

#[tokio::test]
async fn supported_signers_and_status() {
    let h = SvmHarness::start().await;
    let ours: Vec<String> = h
        .fee_payers
        .iter()
        .map(|k| k.pubkey().to_string())
        .collect();
    let supported = h.facilitator.supported().await.unwrap();
    let networks: Vec<(X402Version, &str)> = supported
        .kinds
        .iter()
        .map(|k| (k.x402_version, k.network.as_str()))
        .collect();
    assert!(
        networks.contains(&(X402Version::V1, "solana-devnet")),
        "{networks:?}"
    );
    assert!(
        networks.contains(&(X402Version::V2, NETWORK)),
        "{networks:?}"
    );
    let mut advertised = std::collections::BTreeSet::new();
    for _ in 0..4 {
        for kind in h.facilitator.supported().await.unwrap().kinds {
            let extra: serde_json::Value = serde_json::from_str(kind.extra.unwrap().get()).unwrap();
            let fee_payer = extra["feePayer"].as_str().unwrap().to_owned();
            assert!(ours.contains(&fee_payer));
            advertised.insert(fee_payer);
        }
    }
    assert_eq!(
        advertised.len(),
        2,
        "both fee payers are advertised in turn"
    );
    assert_eq!(supported.signers["solana:*"], ours);
    let scheme = h
        .facilitator
        .registry()
        .lookup(X402Version::V2, "exact", &h.network)
        .unwrap();
    let status = scheme.status(&h.network).await.unwrap().unwrap();
    assert_eq!(status.signers.len(), 2);
    for s in &status.signers {
        assert!(s.funded, "{s:?}");
        assert_eq!(s.balance.to_u64(), Some(LAMPORTS_PER_SOL));
    }
}

#[tokio::test]
async fn the_config_builder_checks_the_chain_and_the_fee_payers() {
    let bed = SvmTestBed::shared().await;
    let genesis = bed.rpc().get_genesis_hash().await.unwrap().to_string();
    let local_network = Network::parse(&format!("solana:{}", &genesis[..32])).unwrap();
    let funded = Keypair::new();
    bed.airdrop(&funded.pubkey(), LAMPORTS_PER_SOL).await;
    let json_key = serde_json::to_string(&funded.to_bytes().to_vec()).unwrap();
    let options = |keys: Vec<String>, extra: serde_json::Value| {
        let mut o = serde_json::json!({
            "rpc_urls": [bed.rpc_url()],
            "signer_keys": keys,
            "min_signer_balance": "1000000",
            "assets": bed.mints().iter().map(|m| m.address.to_string()).collect::<Vec<_>>(),
        });
        o.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        o
    };
    let descriptor = Catalogue::linked().unwrap().get("exact-solana").unwrap();
    let build = |network: &Network, options: serde_json::Value| {
        (descriptor.build)(SchemeConfig::new(network.clone(), options))
    };
    // Good: the local chain under its own CAIP-2 id, a key in JSON-array form.
    let scheme = build(
        &local_network,
        options(vec![json_key.clone()], serde_json::json!({})),
    )
    .await
    .expect("builds");
    assert_eq!(
        scheme.signers(&local_network),
        vec![funded.pubkey().to_string()]
    );
    // The same RPC named as devnet: refused, naming the genesis hash.
    let devnet = Network::parse(NETWORK).unwrap();
    let e = build(
        &devnet,
        options(vec![json_key.clone()], serde_json::json!({})),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("genesis") && e.contains(&genesis), "{e}");
    // An unfunded fee payer (base58 form): refused.
    let empty = Keypair::new();
    let e = build(
        &local_network,
        options(vec![empty.to_base58_string()], serde_json::json!({})),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(&empty.pubkey().to_string()) && e.contains("lamports"),
        "{e}"
    );
    assert!(!e.contains(&empty.to_base58_string()));
    // Unknown keys and bad values: refused, naming the key.
    let e = build(
        &local_network,
        options(vec![json_key.clone()], serde_json::json!({"max_cu": 1})),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("max_cu"), "{e}");
    let e = build(
        &local_network,
        options(vec!["nope".into()], serde_json::json!({})),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("signer_keys[0]"), "{e}");
    // A registry built from the catalogue settles a payment on the local chain (v2).
    let mut registry = Registry::new();
    registry
        .register_descriptor(
            descriptor,
            SchemeConfig::new(
                local_network.clone(),
                options(vec![json_key], serde_json::json!({})),
            ),
        )
        .await
        .unwrap();
    let dispatcher = x402_core::LocalFacilitator::new(registry);
    let kinds = dispatcher.supported().await.unwrap().kinds;
    assert_eq!(
        kinds.len(),
        1,
        "v1 has no name for a local chain: {kinds:?}"
    );
    let seller = bed.new_token_holder(0, 0).await;
    let buyer = bed.new_token_holder(LAMPORTS_PER_SOL, 1_000_000).await;
    let mint = bed.spl_token_mint();
    let req = scheme_exact_svm::Seller::new()
        .with_rpc(rpc(bed.rpc_url()))
        .requirements_with_memo(
            &x402_core::PriceRequest {
                network: local_network.clone(),
                price: x402_core::Price::Decimal("0.5".into()),
                pay_to: seller.pubkey().to_string(),
                asset: Some(mint.address.to_string()),
                max_timeout_seconds: None,
                facilitator_kind: kinds.into_iter().next(),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        req.amount.to_u64(),
        Some(500_000),
        "0.5 at 6 decimals read from chain"
    );
    let reqs = x402_core::wire::PaymentRequirements::V2(req.clone());
    let payload = scheme_exact_svm::Buyer::new(
        buyer.insecure_clone(),
        rpc(bed.rpc_url()),
        Default::default(),
    )
    .sign(&reqs.view().unwrap())
    .await
    .unwrap();
    let request = x402_tests::solana::exact::request_v2(&req, payload);
    let s = dispatcher.settle(&request).await.unwrap();
    assert!(s.success, "{s:?}");
    assert_eq!(
        bed.token_balance(&seller.pubkey(), &mint.address).await,
        500_000
    );
}

#[tokio::test]
async fn n_payments_with_funds_for_one_settle_one() {
    // Threat-model S27: three distinct payments of 600,000 from a buyer holding 1,000,000.
    let h = Arc::new(SvmHarness::start().await);
    let mint = h.bed.spl_token_mint();
    let req = h.requirements(&mint, 600_000, None).await;
    let mut requests = Vec::new();
    for _ in 0..3 {
        requests.push(h.pay_v2(&h.buyer, &req).await);
    }
    for r in &requests {
        assert!(h.verify(r).await.is_valid, "each one alone is valid");
    }
    let sol0: u64 = h.snapshot(&[], &[]).await.fee_payer_sol.iter().sum();
    let mut tasks = tokio::task::JoinSet::new();
    for request in requests {
        let f = h.facilitator.clone();
        tasks.spawn(async move { f.settle(&request).await.unwrap() });
    }
    let mut reasons = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let s = done.unwrap();
        reasons.push(if s.success { None } else { s.error_reason });
    }
    assert_eq!(
        reasons.iter().filter(|r| r.is_none()).count(),
        1,
        "{reasons:?}"
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| **r == Some(scheme_exact_svm::reason::TRANSACTION_SIMULATION_FAILED))
            .count(),
        2,
        "{reasons:?}"
    );
    assert_eq!(h.proxy.transactions_sent(), 1, "the others were never sent");
    let sol1: u64 = h.snapshot(&[], &[]).await.fee_payer_sol.iter().sum();
    assert_eq!(sol0 - sol1, TX_FEE, "one fee paid");
    assert_eq!(
        h.bed.token_balance(&h.seller.pubkey(), &mint.address).await,
        600_000
    );
}

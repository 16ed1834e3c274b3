//! Sign-in-with-x against the official `@x402/extensions` package (`tests/interop/siwx.mjs`):
//! its client signs our seller's challenges (SIWE with a viem account, SIWS with an ed25519
//! keypair) and our seller grants them; our buyer hook signs with the same keys and its server
//! checks accept our headers (a header signed for another domain is refused by both); its seller
//! declares the same challenge shape as ours for the same origin and networks. Over HTTP on
//! anvil, its fetch wrapper signs in to our seller (a buyer who paid before) with nothing paid.

use std::sync::Arc;

use alloy::primitives::B256;
use alloy::signers::local::PrivateKeySigner;
use serde_json::{Value, json};
use x402_core::UnixTime;
use x402_core::extension::Declaration;
use x402_siwx::{PaymentHistory as _, Proof, SiwxBuyer, SiwxSeller, reason};
use x402_tests::e2e::NodeScript;

const ORIGIN: &str = "http://shop.example:8080";
const PATH: &str = "/weather/paris";
const EVM: &str = "eip155:84532";
const SVM: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";

#[tokio::test]
async fn sign_in_with_x_interoperates_with_the_official_package() {
    let url = format!("{ORIGIN}{PATH}");
    let key = B256::repeat_byte(0x42);
    let signer = PrivateKeySigner::from_bytes(&key).unwrap();
    let seed = [7u8; 32];
    let keypair = solana_keypair::Keypair::new_from_array(seed);
    let history = Arc::new(x402_siwx::MemoryHistory::default());
    let seller = SiwxSeller::new(ORIGIN)
        .unwrap()
        .statement("Sign in")
        .history(history.clone());
    let evm_address = x402_siwx::evm::address(&(Arc::new(signer.clone()) as _));
    let svm_address = x402_siwx::svm::address(&keypair);
    for payer in [evm_address.to_lowercase(), svm_address.clone()] {
        history.record(PATH, &payer, UnixTime::now()).await.unwrap();
    }
    let declare = || seller.extension().declaration(PATH, &[EVM, SVM]);
    let as_json = |d: &Declaration| -> Value { serde_json::from_str(&d.to_json()).unwrap() };

    // Ours, signed by our buyer hook with the same keys.
    let buyer = SiwxBuyer::new()
        .evm(Arc::new(signer.clone()))
        .svm(Arc::new(keypair.insecure_clone()));
    let ours_evm = buyer.proof_for(&declare(), &url, &[EVM]).await.unwrap();
    let ours_svm = buyer.proof_for(&declare(), &url, &[SVM]).await.unwrap();
    // Signed (validly) for another domain: their check must refuse it.
    let mut foreign = Proof::decode(&ours_evm).unwrap();
    foreign.domain = "evil.example".into();
    let message = foreign.message().unwrap();
    foreign.signature = x402_siwx::evm::sign(&(Arc::new(signer.clone()) as _), &message)
        .await
        .unwrap();

    let to_sign = [(declare(), "eip155:"), (declare(), "solana:")];
    let input = json!({
        "url": url,
        "origin": ORIGIN,
        "networks": [EVM, SVM],
        "evmKey": key.to_string(),
        "solanaSeed": hex::encode(seed),
        "toSign": to_sign.iter().map(|(d, f)| json!({"declaration": as_json(d), "family": f})).collect::<Vec<_>>(),
        "toJudge": [ours_evm, ours_svm, foreign.encode()],
    });
    let lines = NodeScript::new("siwx.mjs")
        .run(&[], &[("SIWX_INPUT", input.to_string())])
        .await;
    let answer: Value = serde_json::from_str(lines.last().expect("one JSON line")).unwrap();
    assert_eq!(answer["evm"], evm_address.as_str());
    assert_eq!(answer["svm"], svm_address.as_str());

    // Their client's proofs pass our seller — once each.
    for (i, payer) in [(0, &evm_address), (1, &svm_address)] {
        let header = answer["theirs"][i].as_str().unwrap();
        assert_eq!(
            &seller.verify(header, PATH).await.unwrap(),
            payer,
            "their proof {i}"
        );
        let replay = seller.verify(header, PATH).await.unwrap_err();
        assert_eq!(replay.reason, reason::NONCE);
    }

    // Ours pass theirs; the foreign-domain one does not.
    let judged = &answer["judged"];
    assert_eq!(
        judged[0],
        json!({"valid": true, "reason": null, "payer": evm_address})
    );
    assert_eq!(
        judged[1],
        json!({"valid": true, "reason": null, "payer": svm_address})
    );
    assert_eq!(judged[2]["valid"], false);
    assert_eq!(judged[2]["reason"], "invalid_siwx_domain_mismatch");

    // Their declaration and ours: the same challenge shape for the same origin and networks.
    let theirs = &answer["declared"];
    let ours = as_json(&declare());
    assert_eq!(theirs["schema"], ours["schema"]);
    assert_eq!(theirs["supportedChains"], ours["supportedChains"]);
    for member in ["domain", "uri", "version", "resources"] {
        assert_eq!(theirs["info"][member], ours["info"][member], "{member}");
    }
    for member in ["nonce", "issuedAt"] {
        let (a, b) = (
            theirs["info"][member].as_str().unwrap(),
            ours["info"][member].as_str().unwrap(),
        );
        assert_eq!(a.len(), b.len(), "{member}: {a} / {b}");
    }
}

/// The official fetch wrapper signs in to our seller over HTTP (anvil): a payer on record is
/// served twice (each time with a fresh challenge), nothing verified, settled or moved; an
/// address with no payment on record gets the 402.
#[tokio::test]
async fn the_official_fetch_wrapper_signs_in_to_our_seller() {
    use axum::routing::get;
    use x402_core::{Amount, Price};
    use x402_evm::assets::TransferMethod;
    use x402_seller::{Accept, Route};
    use x402_tests::e2e::{Counting, EXACT_UNITS, evm_seller, serve_facilitator};
    use x402_tests::evm::exact::ExactHarness;

    let h = ExactHarness::start().await;
    let facilitator = serve_facilitator(h.facilitator.clone()).await;
    let counting = Arc::new(Counting::new(Arc::new(
        x402_core::client::FacilitatorClient::new(facilitator),
    )));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let history = Arc::new(x402_siwx::MemoryHistory::default());
    let siwx = SiwxSeller::new(&origin).unwrap().history(history.clone());
    let seller = evm_seller(&h, counting.clone(), TransferMethod::Eip3009).with_hook(siwx.hook());
    let route = Route::new()
        .accept(Accept::new(
            "exact",
            h.network.clone(),
            h.bed.seller().address.to_checksum(None),
            Price::Atomic(Amount::from(EXACT_UNITS)),
        ))
        .extension(siwx.extension());
    let app = axum::Router::new().route(
        "/report",
        get(|| async { "the report" }).layer(seller.paywall(route).unwrap()),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let url = format!("{origin}/report");
    let seller_address = h.bed.seller().address;
    let before = h.bed.usdc_balance(seller_address).await;

    let payer = h.bed.buyer(0);
    let key = format!("0x{}", hex::encode(payer.signer.to_bytes()));
    let run = |key: String| {
        let url = url.clone();
        async move {
            let lines = NodeScript::new("siwx-fetch.mjs")
                .run(&[], &[("SIWX_KEY", key), ("SIWX_URL", url)])
                .await;
            serde_json::from_str::<Value>(lines.last().expect("one JSON line")).unwrap()
        }
    };
    // Not on record yet: their wrapper's proof is refused, the 402 stands (it does not pay).
    let refused = run(key.clone()).await;
    assert_eq!(refused["statuses"], json!([402, 402]));
    history
        .record(
            "/report",
            &payer.address.to_checksum(None).to_lowercase(),
            UnixTime::now(),
        )
        .await
        .unwrap();
    let answer = run(key).await;
    assert_eq!(answer["address"], payer.address.to_checksum(None));
    assert_eq!(answer["statuses"], json!([200, 200]));
    assert_eq!(answer["body"], "the report");
    assert_eq!(counting.calls(), (0, 0));
    assert_eq!(h.bed.usdc_balance(seller_address).await, before);
}

//! The payment-identifier extension against the official `@x402/extensions` package
//! (`tests/interop/payment_id.mjs`): our declarations are byte for byte theirs and pass their
//! validators; our echoes (the buyer's id) are extracted and validated by theirs; their ids and
//! their client's echo of our declaration are read by ours; the id rule agrees on edge cases.

use serde_json::{Value, json};
use x402_core::extension::JsonObject;
use x402_core::extension::payment_id::{self, PAYMENT_IDENTIFIER, PaymentId};
use x402_tests::e2e::NodeScript;

const IDS: &[&str] = &[
    "pay_0123456789abcdef",
    "0123456789abcdef",
    "0123456789abcde",
    "pay_0123456789abcdef_-XYZ",
    "pay_0123456789abcdé",
    "pay 0123456789abcdef",
    "pay_0123456789abcdef!",
    "pay_../0123456789abcdef",
    "",
];

fn payload(extensions: Value) -> Value {
    json!({"x402Version": 2, "resource": {"url": "https://shop.example/a"},
        "accepted": {"scheme": "exact", "network": "eip155:84532", "amount": "1000",
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            "payTo": "0x00000000000000000000000000000000000000b0", "maxTimeoutSeconds": 60},
        "payload": {}, "extensions": extensions})
}

#[tokio::test]
async fn payment_identifier_interoperates_with_the_official_package() {
    let declarations: Vec<Value> = [
        payment_id::declaration(false),
        payment_id::declaration(true),
    ]
    .iter()
    .map(|d| serde_json::from_str(&d.to_json()).unwrap())
    .collect();
    // Our buyer's echo (the declaration with a fresh id), and negatives.
    let id = payment_id::generate_id();
    let echo = payment_id::with_id(&payment_id::declaration(true).to_raw(), &id).unwrap();
    let echo: Value = serde_json::from_str(&echo.to_json()).unwrap();
    let mut long = echo.clone();
    long["info"]["id"] = json!("x".repeat(129));
    let payloads = vec![
        payload(json!({PAYMENT_IDENTIFIER: echo})),
        payload(json!({PAYMENT_IDENTIFIER: long})),
        payload(json!({PAYMENT_IDENTIFIER: declarations[1]})),
        payload(json!({})),
    ];
    let input = json!({"declarations": declarations, "payloads": payloads, "ids": IDS});
    let lines = NodeScript::new("payment_id.mjs")
        .run(&[], &[("PAYID_INPUT", input.to_string())])
        .await;
    let line = lines.last().expect("one JSON line");
    let answer: Value = serde_json::from_str(line).unwrap();

    // Their declarations, byte for byte ours (members in order).
    let theirs = JsonObject::parse(line).unwrap().object("theirs").unwrap();
    assert_eq!(
        theirs.get("optional").unwrap().get(),
        payment_id::declaration(false).to_json()
    );
    assert_eq!(
        theirs.get("required").unwrap().get(),
        payment_id::declaration(true).to_json()
    );

    // Ours, judged by theirs.
    for (i, required) in [false, true].into_iter().enumerate() {
        let judged = &answer["declarations"][i];
        assert_eq!(judged["shape"], true, "{judged}");
        assert_eq!(judged["valid"], true, "{judged}");
        assert_eq!(judged["required"], required, "{judged}");
        assert_eq!(
            payment_id::is_required(&serde_json::value::to_raw_value(&declarations[i]).unwrap()),
            required
        );
    }

    // Our echo: extracted and valid there; the negatives refused there and here.
    let p = &answer["payloads"];
    assert_eq!(p[0]["id"], id.as_str());
    assert_eq!(p[0]["valid"], true);
    assert_eq!(p[0]["meetsRequired"], true);
    assert_eq!(p[1]["valid"], false, "an id of 129 characters: {p}");
    assert_eq!(
        p[2]["meetsRequired"], false,
        "a declaration without an id: {p}"
    );
    assert_eq!(p[3]["meetsRequired"], false);
    for (i, expected) in [
        PaymentId::Id(id.clone()),
        PaymentId::Invalid(String::new()),
        PaymentId::Absent,
        PaymentId::Absent,
    ]
    .iter()
    .enumerate()
    {
        let extensions = serde_json::value::to_raw_value(&payloads[i]["extensions"]).unwrap();
        let read = payment_id::read_id(Some(&extensions));
        match expected {
            PaymentId::Invalid(_) => {
                assert!(matches!(read, PaymentId::Invalid(_)), "{i}: {read:?}")
            }
            other => assert_eq!(&read, other, "{i}"),
        }
    }

    // The id rule: the same verdicts.
    for (i, candidate) in IDS.iter().enumerate() {
        assert_eq!(
            answer["ids"][i],
            payment_id::is_valid_id(candidate),
            "{candidate:?}"
        );
    }

    // Their ids and their client's echo of our declarations, read by ours.
    for generated in answer["generated"].as_array().unwrap() {
        assert!(
            payment_id::is_valid_id(generated.as_str().unwrap()),
            "{generated}"
        );
    }
    let echoed = answer["echoed"].as_array().unwrap();
    assert_eq!(echoed.len(), 2);
    for e in echoed {
        let raw = serde_json::value::to_raw_value(e).unwrap();
        let PaymentId::Id(theirs) = payment_id::read_id(Some(&raw)) else {
            panic!("their echo carries an id: {e}")
        };
        assert!(theirs.starts_with("pay_"), "{theirs}");
    }
}

/// The official client pays our seller on a route requiring payment ids (its id appended by the
/// official `appendPaymentIdentifierToExtensions`), and the exact payment it sent, sent again, is
/// answered from our store: one settle, one handler run, the seller paid once.
#[tokio::test]
async fn the_official_client_pays_with_an_id_and_its_replay_is_served_from_the_store() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use alloy::primitives::U256;
    use axum::http::Method;
    use x402_core::{Amount, Price};
    use x402_evm::assets::TransferMethod;
    use x402_seller::{Accept, PaymentIdentifier, Route};
    use x402_tests::e2e::{Counting, EXACT_UNITS, evm_seller, serve, serve_facilitator};
    use x402_tests::evm::exact::ExactHarness;

    let h = ExactHarness::start().await;
    let facilitator_url = serve_facilitator(h.facilitator.clone()).await;
    let counting = Arc::new(Counting::new(Arc::new(
        x402_core::client::FacilitatorClient::new(facilitator_url),
    )));
    let seller = evm_seller(&h, counting.clone(), TransferMethod::Eip3009);
    let runs = Arc::new(AtomicUsize::new(0));
    let handler = {
        let runs = runs.clone();
        move || {
            let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
            std::future::ready(format!("run {n}"))
        }
    };
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
        .extension(PaymentIdentifier::required());
    let app = seller
        .route(axum::Router::new(), Method::GET, "/paid", handler, route)
        .unwrap();
    let shop = serve(app).await;
    let seller_address = h.bed.seller().address;
    let start = h.bed.usdc_balance(seller_address).await;
    let b0 = h.bed.buyer(0);
    let id = "pay_official_client_0001";
    let lines = NodeScript::new("payment_id_pay.mjs")
        .run(
            &[&format!("{shop}/paid")],
            &[
                (
                    "X402_INTEROP_KEY",
                    format!("0x{}", alloy::hex::encode(b0.signer.to_bytes())),
                ),
                ("PAYID_ID", id.to_owned()),
            ],
        )
        .await;
    let result: Value = serde_json::from_str(lines.last().expect("one JSON line")).unwrap();
    assert!(result.get("error").is_none(), "{result}");
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["body"], "run 1");
    assert_eq!(
        result["sent"]["extensions"][PAYMENT_IDENTIFIER]["info"]["id"], id,
        "{result}"
    );
    assert_eq!(result["replayStatus"], 200, "{result}");
    assert_eq!(result["replayBody"], "run 1");
    assert_eq!(result["replayed"], "true");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(counting.calls(), (1, 1));
    assert_eq!(
        h.bed.usdc_balance(seller_address).await,
        start + U256::from(EXACT_UNITS)
    );
}

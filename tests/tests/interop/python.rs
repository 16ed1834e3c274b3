//! Interop with the official Python SDK (PyPI `x402`, pinned in
//! tests/interop/python/requirements.txt) on anvil: its httpx client pays our axum seller, and
//! our `x402` CLI pays a FastAPI seller built with its middleware that settles through OUR
//! facilitator, or is refused by it with the bare reason.

use alloy::primitives::{Address, U256};
use axum::routing::get;
use x402_buyer::cli::Exit;
use x402_tests::e2e::{EXACT_UNITS, Shop, serve};
use x402_tests::evm::{USDC_NAME, USDC_VERSION};
use x402_tests::python::PythonScript;

#[tokio::test]
async fn the_official_python_client_pays_our_seller() {
    let shop = Shop::start().await;
    let b0 = shop.h.bed.buyer(0).clone();
    let seller = shop.h.bed.seller().address;
    let (before, seller_before) = (shop.usdc(b0.address).await, shop.usdc(seller).await);
    let key = format!("0x{}", alloy::hex::encode(b0.signer.to_bytes()));
    // The bed's USDC, allowed under its CAIP-2 id (v2) and its v1 name.
    let allowed: Vec<_> = ["eip155:84532", "base-sepolia"]
        .map(|network| {
            serde_json::json!({
                "network": network,
                "asset": shop.h.bed.usdc().to_checksum(None),
                "max_amount_per_payment": EXACT_UNITS.to_string(),
            })
        })
        .into();
    let lines = PythonScript::new("pay.py")
        .run(
            &[
                &shop.at("/joke"),
                &shop.at("/permit2"),
                &shop.at("/v1-only"),
            ],
            &[
                ("X402_INTEROP_KEY", key),
                (
                    "X402_INTEROP_ALLOWED",
                    serde_json::Value::from(allowed).to_string(),
                ),
            ],
        )
        .await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    let payer = b0.address.to_checksum(None);
    // EIP-3009 and Permit2 in v2 (PAYMENT-RESPONSE), EIP-3009 in v1 (X-PAYMENT-RESPONSE).
    let expected = [
        (
            "why did the buyer pay? it was exact",
            "PAYMENT-RESPONSE",
            "eip155:84532",
        ),
        ("paid through permit2", "PAYMENT-RESPONSE", "eip155:84532"),
        ("v1 content", "X-PAYMENT-RESPONSE", "base-sepolia"),
    ];
    for (line, (body, header, network)) in lines.iter().zip(expected) {
        let result: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(result["status"], 200, "{result}");
        assert_eq!(result["body"], body, "{result}");
        assert_eq!(result["header"], header, "{result}");
        let settlement = &result["settlement"];
        assert_eq!(settlement["success"], true, "{result}");
        assert_eq!(settlement["network"], network, "{result}");
        assert_eq!(settlement["payer"], payer.as_str(), "{result}");
        let tx = settlement["transaction"].as_str().unwrap();
        assert!(tx.starts_with("0x") && tx.len() == 66, "{result}");
    }
    let paid = U256::from(3 * EXACT_UNITS);
    assert_eq!(shop.usdc(b0.address).await, before - paid);
    assert_eq!(shop.usdc(seller).await, seller_before + paid);
    assert_eq!(shop.counting.calls(), (3, 3));
}

/// The FastAPI seller of `server.py` on the shop's chain, through our facilitator; `drain_url`
/// is its `/weather-drain` hook.
async fn fastapi(shop: &Shop, drain_url: Option<String>) -> (tokio::process::Child, String) {
    let mut env = vec![
        ("FACILITATOR_URL", shop.facilitator_url.clone()),
        ("NETWORK", shop.h.network.to_string()),
        ("ASSET", shop.h.bed.usdc().to_checksum(None)),
        ("PAY_TO", shop.h.bed.seller().address.to_checksum(None)),
        ("AMOUNT", EXACT_UNITS.to_string()),
        ("TOKEN_NAME", USDC_NAME.to_owned()),
        ("TOKEN_VERSION", USDC_VERSION.to_owned()),
    ];
    if let Some(url) = drain_url {
        env.push(("DRAIN_URL", url));
    }
    PythonScript::new("server.py").serve(&env).await
}

/// A hook that empties `who`'s USDC when called (`GET /`), so a payment verified before it fails
/// to settle after it.
async fn drain_hook(shop: &Shop, who: Address) -> String {
    let h = shop.h.clone();
    let drain = move || {
        let h = h.clone();
        async move {
            let all = h.usdc(who).await;
            h.bed
                .transfer_usdc(who, h.bed.deployer().address, all)
                .await;
            "drained"
        }
    };
    serve(axum::Router::new().route("/", get(drain))).await
}

/// `x402 pay URL --max 0.02 --asset <the bed's USDC> --evm-rpc <anvil> --json` with `key`, in process: the exit
/// status and the JSON report.
async fn cli_pay(shop: &Shop, url: &str, key: &str) -> (Exit, serde_json::Value) {
    let asset = format!("{}:{}:6:USDC", shop.h.network, shop.h.bed.usdc());
    let rpc = shop.h.bed.anvil().endpoint();
    let args = [
        "pay",
        url,
        "--max",
        "0.02",
        "--asset",
        &asset,
        "--evm-rpc",
        rpc,
        "--json",
    ]
    .map(str::to_owned);
    let key = key.to_owned();
    let env = move |name: &str| (name == "X402_PRIVATE_KEY").then(|| key.clone());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = x402_buyer::cli::run(&args, &env, &mut out, &mut err).await;
    let (out, err) = (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    );
    let report = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (exit, report)
}

#[tokio::test]
async fn our_cli_pays_a_fastapi_seller_through_our_facilitator() {
    let shop = Shop::start().await;
    let b1 = shop.h.bed.buyer(1).clone();
    let seller = shop.h.bed.seller().address;
    let (_server, url) = fastapi(&shop, None).await;
    let (before, seller_before) = (shop.usdc(b1.address).await, shop.usdc(seller).await);
    let key = format!("0x{}", alloy::hex::encode(b1.signer.to_bytes()));
    let payer = b1.address.to_checksum(None);
    for (path, weather) in [("/weather", "sunny"), ("/weather-permit2", "cloudy")] {
        let (exit, report) = cli_pay(&shop, &format!("{url}{path}"), &key).await;
        assert_eq!(exit, Exit::Success, "{report}");
        assert_eq!(report["status"], 200, "{report}");
        assert_eq!(report["paid"], true, "{report}");
        let settlement = &report["settlement"];
        assert_eq!(settlement["success"], true, "{report}");
        assert_eq!(settlement["network"], "eip155:84532", "{report}");
        assert_eq!(settlement["payer"], payer.as_str(), "{report}");
        assert!(
            settlement["transaction"]
                .as_str()
                .unwrap()
                .starts_with("0x"),
            "{report}"
        );
        let body: serde_json::Value =
            serde_json::from_str(report["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["from"], "fastapi", "{report}");
        assert_eq!(body["weather"], weather, "{report}");
    }
    let paid = U256::from(2 * EXACT_UNITS);
    assert_eq!(shop.usdc(b1.address).await, before - paid);
    assert_eq!(shop.usdc(seller).await, seller_before + paid);
}

#[tokio::test]
async fn the_fastapi_seller_refuses_an_empty_wallet_with_the_bare_reason() {
    // The Python middleware is the oracle here: a payment refused at verify is a 402 whose
    // PAYMENT-REQUIRED `error` is the bare reason our facilitator gave; our seller answers the
    // same, and our CLI reports both alike.
    let shop = Shop::start().await;
    let b2 = shop.h.bed.buyer(2).clone();
    let seller = shop.h.bed.seller().address;
    let (_server, url) = fastapi(&shop, None).await;
    let all = shop.usdc(b2.address).await;
    shop.h
        .bed
        .transfer_usdc(b2.address, shop.h.bed.deployer().address, all)
        .await;
    let seller_before = shop.usdc(seller).await;
    let key = format!("0x{}", alloy::hex::encode(b2.signer.to_bytes()));

    let (exit, theirs) = cli_pay(&shop, &format!("{url}/weather"), &key).await;
    assert_eq!(exit, Exit::Failure, "{theirs}");
    assert_eq!(theirs["status"], 402, "{theirs}");
    assert_eq!(theirs["paid"], false, "{theirs}");
    assert!(
        theirs["settlement"].is_null(),
        "nothing was settled: {theirs}"
    );
    let error = theirs["error"].as_str().unwrap();
    let reason = error
        .strip_prefix("the seller refused the payment (HTTP 402): ")
        .unwrap_or_else(|| panic!("a refusal: {error}"));
    assert!(
        reason
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "a bare reason code: {reason}"
    );

    let (exit, ours) = cli_pay(&shop, &shop.at("/joke"), &key).await;
    assert_eq!(exit, Exit::Failure, "{ours}");
    assert_eq!(ours["status"], 402, "{ours}");
    assert_eq!(ours["error"], error, "the same refusal from ours");
    assert!(ours["settlement"].is_null(), "{ours}");

    assert_eq!(shop.usdc(b2.address).await, U256::ZERO, "nothing was paid");
    assert_eq!(
        shop.usdc(seller).await,
        seller_before,
        "nothing was received"
    );
    assert_eq!(
        shop.counting.calls(),
        (1, 0),
        "ours verified once, never settled"
    );
}

#[tokio::test]
async fn the_fastapi_seller_reports_a_failed_settlement_to_our_cli() {
    // The wallet is emptied while the handler runs: the Python middleware answers 402 with the
    // failed settlement in PAYMENT-RESPONSE and withholds the content; our CLI reports the
    // failure and its reason, not a pending payment.
    let shop = Shop::start().await;
    let b3 = shop.h.bed.buyer(3).clone();
    let seller = shop.h.bed.seller().address;
    let drain = drain_hook(&shop, b3.address).await;
    let (_server, url) = fastapi(&shop, Some(drain)).await;
    let seller_before = shop.usdc(seller).await;
    let key = format!("0x{}", alloy::hex::encode(b3.signer.to_bytes()));

    let (exit, report) = cli_pay(&shop, &format!("{url}/weather-drain"), &key).await;
    assert_eq!(exit, Exit::Failure, "{report}");
    assert_eq!(report["status"], 402, "{report}");
    assert_eq!(report["paid"], false, "{report}");
    assert_eq!(report["pending"], false, "{report}");
    assert!(
        report["body"].is_null(),
        "the content is withheld: {report}"
    );
    let settlement = &report["settlement"];
    assert_eq!(settlement["success"], false, "{report}");
    assert_eq!(settlement["network"], "eip155:84532", "{report}");
    let reason = settlement["errorReason"].as_str().expect("a reason");
    assert_eq!(
        report["error"],
        format!("the seller refused the payment (HTTP 402): settlement failed: {reason}"),
        "{report}"
    );

    assert_eq!(
        shop.usdc(b3.address).await,
        U256::ZERO,
        "drained by the hook"
    );
    assert_eq!(shop.usdc(seller).await, seller_before, "nothing was paid");
}

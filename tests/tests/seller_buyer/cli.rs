//! Malformed payments, the browser paywall, and the `x402` command line (which checks an
//! `--asset`'s decimals against the token's `decimals()` before paying).

use alloy::primitives::U256;
use x402_buyer::cli::Exit;
use x402_core::header::{PAYMENT_REQUIRED, PAYMENT_SIGNATURE};
use x402_tests::e2e::{EXACT_UNITS, Shop};

#[tokio::test]
async fn malformed_payments_are_client_errors_and_browsers_get_a_page() {
    let shop = Shop::start().await;
    let client = reqwest::Client::new();
    let with = |value: &str| {
        client
            .get(shop.at("/joke"))
            .header(PAYMENT_SIGNATURE, value.to_owned())
            .send()
    };
    for bad in [
        "!!!",
        "e30=",
        "eyJ4NDAyVmVyc2lvbiI6MX0=",
        "eyJhIjoxLCJhIjoyfQ==",
    ] {
        let r = with(bad).await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("PAYMENT-SIGNATURE"),
            "{body}"
        );
    }
    let r = client
        .get(shop.at("/joke"))
        .header("x-payment", "%%%")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // No payment: a v2 header and a v1 body, neither cacheable.
    let r = reqwest::get(shop.at("/joke")).await.unwrap();
    assert_eq!(r.status(), 402);
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("no-store")
    );
    let v2 = r.headers()[PAYMENT_REQUIRED].to_str().unwrap().to_owned();
    let doc: serde_json::Value = x402_core::header::decode(&v2, 65536).unwrap();
    assert_eq!(doc["x402Version"], 2);
    assert_eq!(doc["accepts"][0]["amount"], EXACT_UNITS.to_string());
    assert!(doc["resource"]["url"].as_str().unwrap().ends_with("/joke"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["x402Version"], 1);
    assert_eq!(body["accepts"][0]["network"], "base-sepolia");

    // The resource describes the service.
    assert_eq!(doc["resource"]["serviceName"], "x402 jokes");
    assert_eq!(
        doc["resource"]["tags"],
        serde_json::json!(["jokes", "x402"])
    );

    // Asking for HTML is not enough to be a browser (the reference's rule: `Accept: text/html`
    // and a `Mozilla` User-Agent): the v1 document.
    let r = client
        .get(shop.at("/joke"))
        .header("accept", "text/html,application/xhtml+xml")
        .header("user-agent", "curl/8.5.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["x402Version"], 1);

    // A browser gets a readable page.
    let r = client
        .get(shop.at("/joke"))
        .header("accept", "text/html,application/xhtml+xml")
        .header(
            "user-agent",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Payment required") && page.contains("a paid joke"),
        "{page}"
    );
    assert_eq!(shop.counting.calls(), (0, 0));
}

#[tokio::test]
async fn the_cli_shows_requirements_and_pays() {
    let shop = Shop::start().await;
    let b0 = shop.h.bed.buyer(0).clone();
    let key = format!("0x{}", alloy::hex::encode(b0.signer.to_bytes()));
    let asset = format!("{}:{}:6:USDC", shop.h.network, shop.h.bed.usdc());
    let rpc = shop.h.bed.anvil().endpoint().to_owned();
    let run = |args: Vec<String>, key: Option<String>| async move {
        let env = move |name: &str| (name == "X402_PRIVATE_KEY").then(|| key.clone()).flatten();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = x402_buyer::cli::run(&args, &env, &mut out, &mut err).await;
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    };
    let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let (code, out, _) = run(
        args(&["requirements", &shop.at("/joke"), "--asset", &asset]),
        None,
    )
    .await;
    assert_eq!(code, Exit::Success);
    assert!(out.contains("exact on eip155:84532: 0.01 USDC"), "{out}");

    let before = shop.usdc(b0.address).await;
    let (code, out, err) = run(
        args(&[
            "pay",
            &shop.at("/joke"),
            "--max",
            "0.02",
            "--asset",
            &asset,
            "--evm-rpc",
            &rpc,
        ]),
        Some(key.clone()),
    )
    .await;
    assert_eq!(code, Exit::Success, "{out}\n{err}");
    assert!(out.contains("why did the buyer pay"), "{out}");
    assert!(
        out.contains("settlement: success") && out.contains("transaction: 0x"),
        "{out}"
    );
    // The bed's anvil uses chain id 84532 too: no public explorer link for it.
    assert!(
        !out.contains("basescan") && !out.contains("explorer:"),
        "{out}"
    );
    assert!(err.contains("200 OK"), "{err}");
    assert!(
        !out.contains(&key[2..]) && !err.contains(&key[2..]),
        "the key was printed"
    );
    assert_eq!(
        shop.usdc(b0.address).await,
        before - U256::from(EXACT_UNITS)
    );

    // --json: one object on stdout, the progress on stderr.
    let (code, out, err) = run(
        args(&[
            "pay",
            &shop.at("/joke"),
            "--max",
            "0.02",
            "--asset",
            &asset,
            "--evm-rpc",
            &rpc,
            "--json",
        ]),
        Some(key.clone()),
    )
    .await;
    assert_eq!(code, Exit::Success, "{out}\n{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["paid"], true, "{v}");
    assert_eq!(v["pending"], false, "{v}");
    assert_eq!(v["settlement"]["success"], true, "{v}");
    assert!(
        v["settlement"]["transaction"]
            .as_str()
            .unwrap()
            .starts_with("0x"),
        "{v}"
    );
    assert_eq!(v["explorer"], serde_json::Value::Null, "{v}");
    assert!(
        v["body"]
            .as_str()
            .unwrap()
            .contains("why did the buyer pay"),
        "{v}"
    );
    assert!(err.contains("200 OK"), "{err}");

    let (code, _, err) = run(
        args(&[
            "pay",
            &shop.at("/joke"),
            "--max",
            "0.001",
            "--asset",
            &asset,
            "--evm-rpc",
            &rpc,
        ]),
        Some(key),
    )
    .await;
    assert_eq!(code, Exit::Failure);
    assert!(err.contains("more than the maximum"), "{err}");
    let (code, _, err) = run(args(&["pay", &shop.at("/joke"), "--max", "0.02"]), None).await;
    assert_eq!(code, Exit::Failure);
    assert!(err.contains("X402_PRIVATE_KEY"), "{err}");
}

#[tokio::test]
async fn the_cli_checks_an_assets_decimals_before_paying() {
    let shop = Shop::start().await;
    let b0 = shop.h.bed.buyer(0).clone();
    let key = format!("0x{}", alloy::hex::encode(b0.signer.to_bytes()));
    let rpc = shop.h.bed.anvil().endpoint().to_owned();
    let usdc = shop.h.bed.usdc();
    let network = shop.h.network.to_string();
    let run = |args: Vec<String>| {
        let key = key.clone();
        async move {
            let env = move |name: &str| (name == "X402_PRIVATE_KEY").then(|| key.clone());
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = x402_buyer::cli::run(&args, &env, &mut out, &mut err).await;
            (
                code,
                String::from_utf8(out).unwrap(),
                String::from_utf8(err).unwrap(),
            )
        }
    };
    let pay = |asset: &str, extra: &[&str]| {
        let mut v: Vec<String> = ["pay", &shop.at("/joke"), "--max", "0.02", "--asset", asset]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let before = shop.usdc(b0.address).await;

    // USDC has 6 decimals. Entered with 18, `--max 0.02` would be 2×10¹⁶ units — 20 billion
    // USDC: refused, exit 2, before the seller is even asked.
    let wrong = format!("{network}:{usdc}:18:USDC");
    let (code, out, err) = run(pay(&wrong, &["--evm-rpc", &rpc])).await;
    assert_eq!(code, Exit::Usage, "{out}\n{err}");
    assert!(
        err.contains("the token has 6 decimals, not 18") && err.contains("nothing was paid"),
        "{err}"
    );
    assert!(out.is_empty() && !err.contains("GET "), "{out}\n{err}");
    // Fewer decimals are refused as well (they make the cap too small, but the entry is wrong).
    let (code, _, err) = run(pay(&format!("{network}:{usdc}:2"), &["--evm-rpc", &rpc])).await;
    assert_eq!(code, Exit::Usage, "{err}");
    assert!(err.contains("not 2"), "{err}");
    // Without an RPC to check with: refused, saying why.
    let (code, _, err) = run(pay(&wrong, &[])).await;
    assert_eq!(code, Exit::Usage, "{err}");
    assert!(err.contains("needs --evm-rpc"), "{err}");
    // An RPC of another chain does not check this one.
    let elsewhere = format!("eip155:1:{usdc}:6:USDC");
    let (code, _, err) = run(pay(&elsewhere, &["--evm-rpc", &rpc])).await;
    assert_eq!(code, Exit::Usage, "{err}");
    assert!(
        err.contains(&format!(
            "no --evm-rpc serves eip155:1 (they serve {network})"
        )),
        "{err}"
    );
    // No contract at the address.
    let nothing = format!("{network}:0x00000000000000000000000000000000000000aa:6");
    let (code, _, err) = run(pay(&nothing, &["--evm-rpc", &rpc])).await;
    assert_eq!(code, Exit::Usage, "{err}");
    assert!(err.contains("there is no contract"), "{err}");
    // --json: one object with the error, exit 2.
    let (code, out, _) = run(pay(&wrong, &["--evm-rpc", &rpc, "--json"])).await;
    assert_eq!(code, Exit::Usage);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["paid"], false, "{v}");
    assert!(v["error"].as_str().unwrap().contains("not 18"), "{v}");
    // Nothing moved, the facilitator was never asked.
    assert_eq!(shop.usdc(b0.address).await, before);
    assert_eq!(shop.counting.calls(), (0, 0));

    // The right decimals pay.
    let right = format!("{network}:{usdc}:6:USDC");
    let (code, out, err) = run(pay(&right, &["--evm-rpc", &rpc])).await;
    assert_eq!(code, Exit::Success, "{out}\n{err}");
    assert!(out.contains("settlement: success"), "{out}");
    assert_eq!(
        shop.usdc(b0.address).await,
        before - U256::from(EXACT_UNITS)
    );
}

//! Access control on the built binary against anvil: API keys for /verify and /settle (401, 403,
//! 429 with Retry-After; nothing broadcast for any refusal), the open routes, our
//! `FacilitatorClient` with a bearer token, `auth = "none"` written down and warned about, and
//! keys absent from the logs and metrics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::io::Read as _;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use x402_core::Facilitator as _;
use x402_core::client::{BearerToken, FacilitatorClient};
use x402_evm::assets::TransferMethod;
use x402_tests::evm::exact::ExactHarness;
use x402_tests::wait;

use crate::common::{Running, command, config, get, run};

const SHOP_KEY: &str = "shop-key-4b1d0c2e9f8a7b6c5d4e3f2a1b0c9d8e";
const OTHER_KEY: &str = "other-key-0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const UPTO_KEY: &str = "upto-key-aaaabbbbccccddddeeeeffff00001111";
const MAINNET_KEY: &str = "mainnet-key-99998888777766665555444433332222";
const KEYS: [&str; 4] = [SHOP_KEY, OTHER_KEY, UPTO_KEY, MAINNET_KEY];

/// The common test config with `auth = "none"` replaced by `keys` (TOML), and the keys' values in
/// the environment.
fn keyed(h: &ExactHarness, keys: &str) -> (String, Vec<(&'static str, String)>) {
    let (text, mut envs) = config(h);
    let text = text.replacen("auth = \"none\"\n", "", 1);
    envs.extend([
        ("T_SHOP_KEY", SHOP_KEY.to_owned()),
        ("T_OTHER_KEY", OTHER_KEY.to_owned()),
        ("T_UPTO_KEY", UPTO_KEY.to_owned()),
        ("T_MAINNET_KEY", MAINNET_KEY.to_owned()),
    ]);
    (format!("{text}\n{keys}"), envs)
}

/// Starts the binary keeping everything it logs.
fn start_logged(text: &str, envs: &[(&str, String)]) -> (Running, Arc<Mutex<String>>) {
    let (mut cmd, file) = command(text, envs);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    drop(file);
    let log = Arc::new(Mutex::new(String::new()));
    let mut stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let line = String::from_utf8(line).unwrap();
    let Some(url) = line.trim().strip_prefix("listening on ") else {
        panic!(
            "facilitator did not start: {line:?} {}",
            log.lock().unwrap()
        );
    };
    (
        Running {
            url: url.to_owned(),
            child,
        },
        log,
    )
}

async fn post_with(url: &str, path: &str, key: Option<&str>, body: &[u8]) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

/// What must not move when a request is refused: the facilitator's nonce (pending included:
/// nothing was even sent), the buyer's and the seller's USDC.
async fn snapshot(h: &ExactHarness, buyer: Address) -> (u64, U256, U256) {
    let provider = h.bed.provider();
    let nonce = provider
        .get_transaction_count(h.bed.facilitator().address)
        .pending()
        .await
        .unwrap();
    (
        nonce,
        h.usdc(buyer).await,
        h.usdc(h.bed.seller().address).await,
    )
}

#[tokio::test]
async fn keys_scopes_and_rates_refuse_before_anything_is_sent() {
    let h = ExactHarness::start().await;
    let seller = h.bed.seller().address;
    let keys = format!(
        r#"
[[auth.keys]]
id = "shop"
key = "$T_SHOP_KEY"
networks = ["eip155:84532"]
schemes = ["exact"]
pay_to = ["{seller:#x}"]
settles_per_second = 0.001
[[auth.keys]]
id = "other-shop"
key = "$T_OTHER_KEY"
pay_to = ["0x00000000000000000000000000000000000000aa"]
[[auth.keys]]
id = "upto-only"
key = "$T_UPTO_KEY"
schemes = ["upto"]
[[auth.keys]]
id = "mainnet"
key = "$T_MAINNET_KEY"
networks = ["eip155:8453"]
"#
    );
    let (text, envs) = keyed(&h, &keys);
    let (server, log) = start_logged(&text, &envs);
    let url = server.url.clone();
    let buyer = h.bed.buyer(0).signer.clone();
    let req = h.requirements("0.25", TransferMethod::Eip3009).await;
    let payment = h.pay_v2(&buyer, &req).await;
    let body = serde_json::to_vec(&payment).unwrap();
    let before = snapshot(&h, buyer.address()).await;

    for (key, status, cause) in [
        (None, 401, "an API key is required"),
        (
            Some("not-a-key-of-this-facilitator-0123456789"),
            401,
            "not valid",
        ),
        (
            Some(OTHER_KEY),
            403,
            "\"other-shop\" may not settle to this payTo",
        ),
        (
            Some(UPTO_KEY),
            403,
            "\"upto-only\" may not settle with this scheme",
        ),
        (
            Some(MAINNET_KEY),
            403,
            "\"mainnet\" may not settle on this network",
        ),
    ] {
        for path in ["/verify", "/settle"] {
            let response = post_with(&url, path, key, &body).await;
            assert_eq!(response.status().as_u16(), status, "{key:?} {path}");
            if status == 401 {
                assert_eq!(
                    response.headers()["www-authenticate"],
                    "Bearer realm=\"x402-facilitator\""
                );
            }
            let v: serde_json::Value = response.json().await.unwrap();
            let error = v["error"].as_str().unwrap();
            let cause = cause.replace("settle", &path[1..]);
            assert!(error.contains(&cause), "{cause:?} not in {v}");
        }
    }
    assert_eq!(
        snapshot(&h, buyer.address()).await,
        before,
        "a refusal moved something"
    );

    // The open routes need no key.
    for path in ["/supported", "/health", "/ready", "/metrics"] {
        assert_eq!(get(&url, path).await.0, 200, "{path}");
    }

    // Our client with the shop's key: verified and settled.
    let client = FacilitatorClient::new(url.clone()).with_auth(BearerToken::new(SHOP_KEY).unwrap());
    assert!(!format!("{client:?}").contains(SHOP_KEY));
    let v = client.verify(&payment).await.unwrap();
    assert!(v.is_valid, "{v:?}");
    let s = client.settle(&payment).await.unwrap();
    assert!(s.success, "{s:?}");
    let after = snapshot(&h, buyer.address()).await;
    assert_eq!(after.0, before.0 + 1);
    assert_eq!(after.1, before.1 - U256::from(250_000));
    assert_eq!(after.2, before.2 + U256::from(250_000));

    // Its settle rate (one per 1000 s) is spent: 429 with Retry-After, nothing sent. Verifies
    // have their own rate.
    let second = serde_json::to_vec(&h.pay_v2(&buyer, &req).await).unwrap();
    assert_eq!(
        post_with(&url, "/verify", Some(SHOP_KEY), &second)
            .await
            .status(),
        200
    );
    let response = post_with(&url, "/settle", Some(SHOP_KEY), &second).await;
    assert_eq!(response.status().as_u16(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1, "{retry}");
    let v: serde_json::Value = response.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("rate limit"), "{v}");
    assert_eq!(
        snapshot(&h, buyer.address()).await,
        after,
        "a rate refusal moved something"
    );
    // Our client reports the refusal as an HTTP error with the status, not as a verdict.
    let e = client.settle(&payment).await.unwrap_err();
    assert!(
        matches!(e, x402_core::FacilitatorError::Http { status: 429, .. }),
        "{e:?}"
    );

    // Refusals are counted by key id and cause; no key value appears in metrics or logs.
    let (_, metrics) = get(&url, "/metrics").await;
    for needle in [
        r#"x402_auth_refusals_total{route="settle",key="",cause="missing_key"} 1"#,
        r#"x402_auth_refusals_total{route="verify",key="",cause="unknown_key"} 1"#,
        r#"x402_auth_refusals_total{route="settle",key="other-shop",cause="pay_to"} 1"#,
        r#"x402_auth_refusals_total{route="verify",key="upto-only",cause="scheme"} 1"#,
        r#"x402_auth_refusals_total{route="settle",key="mainnet",cause="network"} 1"#,
        r#"x402_auth_refusals_total{route="settle",key="shop",cause="settle_rate"} 2"#,
    ] {
        assert!(metrics.contains(needle), "missing {needle}\n{metrics}");
    }
    wait::until("the refusals are logged", wait::HANG_GUARD, || async {
        log.lock().unwrap().contains("settle_rate")
    })
    .await;
    drop(server);
    let log = log.lock().unwrap().clone();
    assert!(
        log.contains("other-shop") && log.contains("request refused"),
        "{log}"
    );
    assert!(log.contains("need an API key"), "{log}");
    for key in KEYS.iter().chain(["not-a-key-of-this-facilitator"].iter()) {
        assert!(
            !log.contains(key) && !metrics.contains(key),
            "{key} leaked:\n{log}"
        );
    }
}

#[tokio::test]
async fn concurrent_settles_of_a_key_are_limited() {
    let h = ExactHarness::start().await;
    let keys = "[[auth.keys]]\nid = \"shop\"\nkey = \"$T_SHOP_KEY\"\nconcurrent_settles = 1\n";
    let (text, envs) = keyed(&h, keys);
    let (server, _log) = start_logged(&text, &envs);
    let req = h.requirements("0.01", TransferMethod::Eip3009).await;
    let (first_buyer, second_buyer) =
        (h.bed.buyer(1).signer.clone(), h.bed.buyer(2).signer.clone());
    let first = serde_json::to_vec(&h.pay_v2(&first_buyer, &req).await).unwrap();
    let second = serde_json::to_vec(&h.pay_v2(&second_buyer, &req).await).unwrap();
    let second_before = h.usdc(second_buyer.address()).await;

    // Hold the first settle in its receipt wait.
    h.set_automine(false).await;
    let url = server.url.clone();
    let held = tokio::spawn(async move {
        let r = post_with(&url, "/settle", Some(SHOP_KEY), &first).await;
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().await.unwrap(),
        )
    });
    let provider = h.bed.provider();
    let signer = h.bed.facilitator().address;
    wait::until(
        "the first settle's transaction is in the pool",
        wait::HANG_GUARD,
        || async {
            let pending = provider
                .get_transaction_count(signer)
                .pending()
                .await
                .unwrap();
            pending > provider.get_transaction_count(signer).await.unwrap()
        },
    )
    .await;
    let pending = provider
        .get_transaction_count(signer)
        .pending()
        .await
        .unwrap();

    let response = post_with(&server.url, "/settle", Some(SHOP_KEY), &second).await;
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let v: serde_json::Value = response.json().await.unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("concurrent_settles"),
        "{v}"
    );
    assert_eq!(
        provider
            .get_transaction_count(signer)
            .pending()
            .await
            .unwrap(),
        pending
    );

    h.mine().await;
    h.set_automine(true).await;
    let (status, s) = held.await.unwrap();
    assert_eq!(
        (status, &s["success"]),
        (200, &serde_json::json!(true)),
        "{s}"
    );
    assert_eq!(
        h.usdc(second_buyer.address()).await,
        second_before,
        "the refused settle moved funds"
    );
    // The place is free again once the first settle ended.
    let response = post_with(&server.url, "/settle", Some(SHOP_KEY), &second).await;
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn open_access_must_be_written_down_and_is_warned_about() {
    let h = ExactHarness::start().await;
    let (text, envs) = config(&h);
    let (ok, _, stderr) = run(
        &text.replacen("auth = \"none\"\n", "", 1),
        &envs,
        &["--check-config"],
    );
    assert!(!ok && stderr.contains("auth: missing"), "{stderr}");
    let (server, log) = start_logged(&text, &envs);
    wait::until("the open-access warning", wait::HANG_GUARD, || async {
        log.lock()
            .unwrap()
            .contains("/verify and /settle serve anyone")
    })
    .await;
    // Anyone may verify.
    let buyer = h.bed.buyer(3).signer.clone();
    let req = h.requirements("0.01", TransferMethod::Eip3009).await;
    let body = serde_json::to_vec(&h.pay_v2(&buyer, &req).await).unwrap();
    let response = post_with(&server.url, "/verify", None, &body).await;
    assert_eq!(response.status().as_u16(), 200);
}

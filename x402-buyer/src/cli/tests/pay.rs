//! `x402 pay` and `x402 requirements` run in process against a v1 seller on a local port.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

pub(super) const KEY: &str = "0x1111111111111111111111111111111111111111111111111111111111111111";
pub(super) const TX: &str = "0xabababababababababababababababababababababababababababababababab";
/// Base Sepolia's USDC as an `--asset` (it is built in too: the other tests need no entry).
const USDC: &str = "eip155:84532:0x036CbD53842c5426634e7929541eC2318f3dCF7e:6:USDC";

/// A v1 seller on a local port: 402 without a payment; with one, `paid` (status line,
/// settlement header JSON, body; no body = the 402 document again, with the settlement's
/// error). Returns its URL and the count of requests it received with a payment.
pub(super) async fn seller(
    paid: (&'static str, String, Option<String>),
) -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/joke", listener.local_addr().unwrap());
    let document = |error: &str| {
        serde_json::json!({
        "x402Version": 1,
        "error": error,
        "accepts": [{
            "scheme": "exact",
            "network": "base-sepolia",
            "maxAmountRequired": "10000",
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            "payTo": "0x00000000000000000000000000000000000000aa",
            "resource": url,
            "description": "a joke",
            "maxTimeoutSeconds": 60,
            "extra": {"name": "USDC", "version": "2"}
        }]
        })
        .to_string()
    };
    let required = document("Payment required");
    let refused = document("settlement failed: settlement_pending");
    let settlement =
        x402_core::header::encode(&serde_json::from_str::<serde_json::Value>(&paid.1).unwrap())
            .unwrap();
    let paid_requests = Arc::new(AtomicUsize::new(0));
    let counter = paid_requests.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let with_payment = String::from_utf8_lossy(&request)
                .to_ascii_lowercase()
                .contains("\r\nx-payment:");
            let (status, extra, body) = if with_payment {
                counter.fetch_add(1, Ordering::SeqCst);
                (
                    paid.0,
                    format!("x-payment-response: {settlement}\r\n"),
                    paid.2.clone().unwrap_or_else(|| refused.clone()),
                )
            } else {
                ("402 Payment Required", String::new(), required.clone())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    (url, paid_requests)
}

#[tokio::test]
async fn a_pending_settlement_exits_3() {
    let (url, paid_requests) = seller((
        "402 Payment Required",
        format!(
            r#"{{"success":false,"errorReason":"settlement_pending","transaction":"{TX}","network":"base-sepolia"}}"#
        ),
        None,
    ))
    .await;
    let pay = ["pay", &url, "--max", "0.02"];
    let (exit, out, err) = run_with(&pay, &[("X402_PRIVATE_KEY", KEY)]).await;
    assert_eq!(exit, Exit::Pending, "{out}\n{err}");
    assert_eq!(exit.code(), 3);
    assert_eq!(paid_requests.load(Ordering::SeqCst), 1, "paid once");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains(&format!("transaction: {TX}")) && err.contains("still pending"),
        "{err}"
    );
    assert!(
        !err.contains("basescan") && !err.contains(&KEY[2..]),
        "{err}"
    );

    let json = [&pay[..], &["--json", "--explorer", "https://e.test/tx/"]].concat();
    let (exit, out, err) = run_with(&json, &[("X402_PRIVATE_KEY", KEY)]).await;
    assert_eq!(exit, Exit::Pending, "{out}\n{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["url"], url.as_str());
    assert_eq!(v["status"], 402);
    assert_eq!(v["paid"], false);
    assert_eq!(v["pending"], true);
    assert_eq!(v["settlement"]["errorReason"], "settlement_pending");
    assert_eq!(v["settlement"]["transaction"], TX);
    assert_eq!(v["explorer"], format!("https://e.test/tx/{TX}"));
    assert_eq!(v["body"], serde_json::Value::Null);
    assert!(
        v["error"].as_str().unwrap().contains("settlement_pending"),
        "{v}"
    );
}

#[tokio::test]
async fn pay_prints_the_body_and_settlement_or_one_json_object() {
    let (url, _) = seller((
        "200 OK",
        format!(r#"{{"success":true,"transaction":"{TX}","network":"base-sepolia"}}"#),
        Some("why did the buyer pay".to_owned()),
    ))
    .await;
    let pay = ["pay", &url, "--max", "0.02"];
    let (exit, out, err) = run_with(&pay, &[("X402_PRIVATE_KEY", KEY)]).await;
    assert_eq!(exit, Exit::Success, "{out}\n{err}");
    assert!(out.starts_with("why did the buyer pay\n"), "{out}");
    assert!(
        out.contains(&format!(
            "settlement: success\n  network:     base-sepolia\n  transaction: {TX}\n"
        )),
        "{out}"
    );
    assert!(!out.contains("explorer:"), "{out}");
    assert!(
        err.contains("200 OK") && err.contains("signed and sent 0.01 USDC"),
        "{err}"
    );

    let json = [&pay[..], &["--json"]].concat();
    let (exit, out, err) = run_with(&json, &[("X402_PRIVATE_KEY", KEY)]).await;
    assert_eq!(exit, Exit::Success, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], 200);
    assert_eq!(v["paid"], true);
    assert_eq!(v["pending"], false);
    assert_eq!(v["settlement"]["success"], true);
    assert_eq!(v["explorer"], serde_json::Value::Null);
    assert_eq!(v["body"], "why did the buyer pay");
    assert_eq!(v["error"], serde_json::Value::Null);

    let (exit, out, err) = run_with(&["requirements", &url, "--json"], &[]).await;
    assert_eq!(exit, Exit::Success, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["x402Version"], 1);
    assert_eq!(v["accepts"][0]["maxAmountRequired"], "10000");
    assert!(err.contains("exact on base-sepolia: 0.01 USDC"), "{err}");
    let (exit, out, _) = run_with(&["requirements", &url], &[]).await;
    assert_eq!(exit, Exit::Success);
    assert!(out.contains("1. exact on base-sepolia: 0.01 USDC"), "{out}");
}

#[tokio::test]
async fn failures_exit_1_and_still_print_json() {
    // Nothing listens on port 1.
    let args = ["pay", "http://127.0.0.1:1/x", "--max", "0.02", "--json"];
    let (exit, out, err) = run_with(&args, &[("X402_PRIVATE_KEY", KEY)]).await;
    assert_eq!(exit, Exit::Failure, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], serde_json::Value::Null);
    assert_eq!(v["paid"], false);
    assert!(v["error"].is_string(), "{v}");
    assert!(err.starts_with("paying as 0x"), "{err}");
    // No key at all.
    let (exit, out, err) = run_with(&args, &[]).await;
    assert_eq!(exit, Exit::Failure);
    assert!(
        out.contains("X402_PRIVATE_KEY") && err.contains("X402_PRIVATE_KEY"),
        "{out}{err}"
    );
    let (exit, out, _) = run_with(&["requirements", "http://127.0.0.1:1/x", "--json"], &[]).await;
    assert_eq!(exit, Exit::Failure);
    assert!(out.is_empty(), "{out}");
}

#[tokio::test]
async fn a_pending_settlement_behind_an_error_status_exits_3_and_pays_once() {
    // x402-seller's answer when the settlement is still pending after its retry.
    let body = format!(
        r#"{{"error":"the payment was sent and is being settled: transaction {TX}","errorReason":"settlement_pending","transaction":"{TX}","network":"base-sepolia"}}"#
    );
    let (url, paid_requests) = seller((
        "504 Gateway Timeout",
        format!(
            r#"{{"success":false,"errorReason":"settlement_pending","transaction":"{TX}","network":"base-sepolia"}}"#
        ),
        Some(body),
    ))
    .await;
    let pay = ["pay", &url, "--max", "0.02"];
    let (exit, out, err) = run_with(&pay, &[("X402_PRIVATE_KEY", KEY)]).await;
    assert_eq!(exit, Exit::Pending, "{out}\n{err}");
    assert_eq!(paid_requests.load(Ordering::SeqCst), 1, "paid once");
    // Nothing on stdout: there is no content, only the seller's message and the settlement.
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("504 Gateway Timeout")
            && err.contains("is being settled")
            && err.contains(&format!("transaction: {TX}"))
            && err.contains("still pending"),
        "{err}"
    );

    let json = [&pay[..], &["--json"]].concat();
    let (exit, out, err) = run_with(&json, &[("X402_PRIVATE_KEY", KEY)]).await;
    assert_eq!(exit, Exit::Pending, "{out}\n{err}");
    assert_eq!(paid_requests.load(Ordering::SeqCst), 2, "once per run");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], 504);
    assert_eq!(v["paid"], false);
    assert_eq!(v["pending"], true);
    assert_eq!(v["settlement"]["transaction"], TX);
    assert!(v["body"].as_str().unwrap().contains(TX), "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("being settled"),
        "{v}"
    );
}

#[tokio::test]
async fn an_evm_asset_is_not_trusted_without_an_rpc_to_check_it() {
    let (url, paid_requests) = seller((
        "200 OK",
        format!(r#"{{"success":true,"transaction":"{TX}","network":"base-sepolia"}}"#),
        Some("why did the buyer pay".to_owned()),
    ))
    .await;
    // No --evm-rpc: a usage error naming the flag and why; the seller is not even asked.
    let pay = ["pay", &url, "--max", "0.02", "--asset", USDC];
    let (exit, out, err) = run_with(&pay, &[("X402_PRIVATE_KEY", KEY)]).await;
    assert_eq!(exit, Exit::Usage, "{out}\n{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("--evm-rpc") && err.contains("X402_EVM_RPC") && err.contains("decimals()"),
        "{err}"
    );
    assert!(!err.contains("GET "), "{err}");
    // --json: the one object, with the error; exit 2 still.
    let json = [&pay[..], &["--json"]].concat();
    let (exit, out, _) = run_with(&json, &[("X402_PRIVATE_KEY", KEY)]).await;
    assert_eq!(exit, Exit::Usage);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["paid"], false, "{v}");
    assert!(v["error"].as_str().unwrap().contains("--evm-rpc"), "{v}");
    // An RPC nobody answers (port 1): a failure, exit 1, its URL never printed.
    let rpc = "http://127.0.0.1:1/?apikey=SECRET";
    let with_rpc = [&pay[..], &["--evm-rpc", rpc]].concat();
    let (exit, out, err) = run_with(&with_rpc, &[("X402_PRIVATE_KEY", KEY)]).await;
    assert_eq!(exit, Exit::Failure, "{out}\n{err}");
    assert!(err.contains("--evm-rpc #1"), "{err}");
    assert!(!err.contains("SECRET") && !out.contains("SECRET"), "{err}");
    // The same from $X402_EVM_RPC.
    let env = [("X402_PRIVATE_KEY", KEY), ("X402_EVM_RPC", rpc)];
    let (exit, _, err) = run_with(&pay, &env).await;
    assert_eq!(exit, Exit::Failure, "{err}");
    assert!(err.contains("--evm-rpc #1"), "{err}");
    assert_eq!(paid_requests.load(Ordering::SeqCst), 0, "nothing paid");
    // The built-in asset needs no check: the same payment without the entry pays.
    let (exit, out, err) = run_with(&pay[..4], &[("X402_PRIVATE_KEY", KEY)]).await;
    assert_eq!(exit, Exit::Success, "{out}\n{err}");
    assert_eq!(paid_requests.load(Ordering::SeqCst), 1);
}

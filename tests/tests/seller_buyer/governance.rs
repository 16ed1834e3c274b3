//! The buyer's spending governance on the real bed: a rolling budget refuses the payment that
//! would exceed it — also after a restart, from the ledger — a denied recipient is not paid, a
//! selector closure's pick is the one paid, a hook aborting on payment-required stops the
//! request, and `x402 history` lists what `x402 pay` paid. Every refusal checks that nothing
//! reached the facilitator and no USDC moved.

use std::sync::Arc;

use alloy::primitives::U256;
use async_trait::async_trait;
use x402_buyer::cli::Exit;
use x402_buyer::hook::{Before, BuyerHook, HookError, RequiredCall};
use x402_buyer::{Error, JsonlLedger, Ledger as _, Policy, Record};
use x402_core::{Amount, Price};
use x402_evm::assets::TransferMethod;
use x402_seller::{Accept, Route};
use x402_tests::e2e::{EXACT_UNITS, Shop, buyer_for, evm_seller, serve};

use crate::settled;

fn refusal(e: Error) -> String {
    match e {
        Error::NoAcceptableOption(reasons) => reasons.join("; "),
        other => panic!("expected a policy refusal, got {other}"),
    }
}

#[tokio::test]
async fn a_rolling_budget_refuses_what_would_exceed_it_even_after_a_restart() {
    let shop = Shop::start().await;
    let b0 = shop.h.bed.buyer(0).clone();
    let seller = shop.h.bed.seller().address;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let ledger = || Arc::new(JsonlLedger::open(&path).unwrap());
    // 0.015 USDC per hour: one 0.01 joke fits, two do not.
    let hourly = || Policy::default().max_per_hour("0.015");
    let (before, seller_before) = (shop.usdc(b0.address).await, shop.usdc(seller).await);

    let buyer = buyer_for(&shop.h, &b0.signer, hourly())
        .with_ledger(ledger())
        .unwrap();
    let paid = buyer.get(&shop.at("/joke")).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    let tx = settled(&paid.payment).transaction;
    let after_one = before - U256::from(EXACT_UNITS);
    assert_eq!(shop.usdc(b0.address).await, after_one);
    assert_eq!(shop.counting.calls(), (1, 1));

    let why = refusal(buyer.get(&shop.at("/joke")).await.unwrap_err());
    assert!(
        why.contains("it costs 0.01 USDC, and 0.01 USDC of the budget of 0.015 USDC per 1h"),
        "{why}"
    );
    drop(buyer);

    // A new buyer on the same ledger (a restart) still refuses it.
    let restarted = buyer_for(&shop.h, &b0.signer, hourly())
        .with_ledger(ledger())
        .unwrap();
    let why = refusal(restarted.get(&shop.at("/joke")).await.unwrap_err());
    assert!(why.contains("per 1h was paid in the last 1h"), "{why}");

    // Nothing was paid after the first: the facilitator saw one payment, one joke's USDC moved.
    assert_eq!(shop.counting.calls(), (1, 1));
    assert_eq!(shop.usdc(b0.address).await, after_one);
    assert_eq!(
        shop.usdc(seller).await,
        seller_before + U256::from(EXACT_UNITS)
    );
    // The ledger holds that payment and its settlement's transaction.
    let records = ledger().records().unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    let (Record::Payment(p), Record::Settlement(s)) = (&records[0], &records[1]) else {
        panic!("{records:?}")
    };
    assert_eq!(p.amount, Amount::from(EXACT_UNITS));
    assert_eq!(p.pay_to.to_lowercase(), seller.to_string().to_lowercase());
    assert_eq!(
        p.payer.as_deref().map(str::to_lowercase),
        Some(b0.address.to_string().to_lowercase())
    );
    assert_eq!(
        (s.id.as_str(), s.transaction.as_deref()),
        (p.id.as_str(), Some(tx.as_str()))
    );
}

#[tokio::test]
async fn a_denied_recipient_is_not_paid() {
    let shop = Shop::start().await;
    let b0 = shop.h.bed.buyer(0).clone();
    let seller = shop.h.bed.seller().address;
    let before = shop.usdc(b0.address).await;
    // Lowercase: the list compares EVM addresses without regard to case.
    let deny = Policy::default().deny_recipient(seller.to_string().to_lowercase());
    let buyer = buyer_for(&shop.h, &b0.signer, deny);
    let why = refusal(buyer.get(&shop.at("/joke")).await.unwrap_err());
    assert!(
        why.contains(&format!(
            "the recipient {} is on the deny list",
            seller.to_checksum(None)
        )),
        "{why}"
    );
    assert_eq!(shop.counting.calls(), (0, 0));
    assert_eq!(shop.usdc(b0.address).await, before);
}

#[tokio::test]
async fn a_selector_closure_picks_an_option_that_is_not_the_default_and_it_is_paid() {
    let shop = Shop::start().await;
    let h = &shop.h;
    let b0 = h.bed.buyer(0).clone();
    let (seller, other) = (h.bed.seller().address, h.bed.spare_accounts()[0].address);
    // Two options in the bed's USDC: 0.01 to the seller (the default's pick, first), 0.02 to
    // another account.
    let accept = |pay_to: alloy::primitives::Address, units: u64| {
        Accept::new(
            "exact",
            h.network.clone(),
            pay_to.to_checksum(None),
            Price::Atomic(Amount::from(units)),
        )
        .max_timeout_seconds(120)
    };
    let paywall = evm_seller(h, shop.counting.clone(), TransferMethod::Eip3009)
        .paywall(
            Route::new()
                .accept(accept(seller, EXACT_UNITS))
                .accept(accept(other, 2 * EXACT_UNITS)),
        )
        .unwrap();
    let url = serve(axum::Router::new().route(
        "/two",
        axum::routing::get(|| async { "paid the other way" }).layer(paywall),
    ))
    .await;
    let url = format!("{url}/two");
    let (before, seller_before, other_before) = (
        shop.usdc(b0.address).await,
        shop.usdc(seller).await,
        shop.usdc(other).await,
    );
    let wanted = other.to_checksum(None);
    let buyer = buyer_for(h, &b0.signer, Policy::default()).select_with(move |candidates| {
        candidates
            .iter()
            .position(|c| c.view.pay_to.eq_ignore_ascii_case(&wanted))
    });
    let paid = buyer.get(&url).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    settled(&paid.payment);
    assert_eq!(paid.response.text().await.unwrap(), "paid the other way");
    assert_eq!(
        shop.usdc(b0.address).await,
        before - U256::from(2 * EXACT_UNITS)
    );
    assert_eq!(
        shop.usdc(other).await,
        other_before + U256::from(2 * EXACT_UNITS)
    );
    assert_eq!(shop.usdc(seller).await, seller_before);
    assert_eq!(shop.counting.calls(), (1, 1));
}

/// A prompt the user answers "no".
#[derive(Debug)]
struct SaysNo;

#[async_trait]
impl BuyerHook for SaysNo {
    fn name(&self) -> &str {
        "prompt"
    }

    async fn on_payment_required(&self, call: &RequiredCall<'_>) -> Result<Before, HookError> {
        Ok(Before::abort(format!(
            "the user declined to pay for {}",
            call.url.path()
        )))
    }
}

#[tokio::test]
async fn a_hook_aborting_on_payment_required_stops_the_request() {
    let shop = Shop::start().await;
    let b0 = shop.h.bed.buyer(0).clone();
    let before = shop.usdc(b0.address).await;
    let buyer = buyer_for(&shop.h, &b0.signer, Policy::default()).with_hook(Arc::new(SaysNo));
    let e = buyer.get(&shop.at("/joke")).await.unwrap_err();
    assert!(
        matches!(&e, Error::Aborted { hook, step: "on_payment_required", reason }
            if hook == "prompt" && reason == "the user declined to pay for /joke"),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "hook prompt stopped the payment (on_payment_required): the user declined to pay for /joke"
    );
    let usdc = shop.h.bed.usdc().to_string();
    assert_eq!(buyer.spent(&shop.h.network, &usdc), Amount::ZERO);
    assert_eq!(shop.counting.calls(), (0, 0));
    assert_eq!(shop.usdc(b0.address).await, before);
}

#[tokio::test]
async fn x402_history_lists_what_x402_pay_paid() {
    let shop = Shop::start().await;
    let b0 = shop.h.bed.buyer(0).clone();
    let key = format!("0x{}", alloy::hex::encode(b0.signer.to_bytes()));
    let asset = format!("{}:{}:6:USDC", shop.h.network, shop.h.bed.usdc());
    let rpc = shop.h.bed.anvil().endpoint().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.jsonl").to_str().unwrap().to_owned();
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
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let pay = |json: bool| {
        let mut v = strings(&[
            "pay",
            &shop.at("/joke"),
            "--max",
            "0.02",
            "--per-day",
            "0.025",
            "--asset",
            &asset,
            "--evm-rpc",
            &rpc,
            "--ledger",
            &ledger,
        ]);
        if json {
            v.push("--json".into());
        }
        v
    };
    let before = shop.usdc(b0.address).await;
    let mut transactions = Vec::new();
    for _ in 0..2 {
        let (code, out, err) = run(pay(true)).await;
        assert_eq!(code, Exit::Success, "{out}\n{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        transactions.push(v["settlement"]["transaction"].as_str().unwrap().to_owned());
    }
    // A third run would pass the day's 0.025: refused, nothing paid.
    let (code, _, err) = run(pay(false)).await;
    assert_eq!(code, Exit::Failure, "{err}");
    assert!(err.contains("of the budget of 0.025 USDC per 1d"), "{err}");
    assert_eq!(shop.counting.calls(), (2, 2));
    assert_eq!(
        shop.usdc(b0.address).await,
        before - U256::from(2 * EXACT_UNITS)
    );

    let (code, out, err) = run(strings(&["history", "--ledger", &ledger, "--json"])).await;
    assert_eq!(code, Exit::Success, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let entries = v.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{v}");
    for (entry, tx) in entries.iter().zip(&transactions) {
        assert_eq!(entry["url"], shop.at("/joke"), "{entry}");
        assert_eq!(entry["network"], shop.h.network.to_string(), "{entry}");
        assert_eq!(entry["amount"], EXACT_UNITS.to_string(), "{entry}");
        assert_eq!(entry["scheme"], "exact", "{entry}");
        assert_eq!(entry["settlement"]["success"], true, "{entry}");
        assert_eq!(entry["settlement"]["transaction"], tx.as_str(), "{entry}");
    }
    let (code, out, _) = run(strings(&["history", "--ledger", &ledger])).await;
    assert_eq!(code, Exit::Success);
    for tx in &transactions {
        assert!(out.contains(&format!("settled {tx}")), "{out}");
    }
    assert!(
        out.contains("2 payment(s)") && out.contains("total 0.02 USDC"),
        "{out}"
    );
}

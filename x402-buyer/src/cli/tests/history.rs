//! `x402 pay`'s ledger and limits across runs, and `x402 history`.

use std::sync::atomic::Ordering;

use super::pay::{KEY, TX, seller};
use super::*;

#[tokio::test]
async fn budgets_hold_across_runs_and_history_lists_the_payments() {
    let (url, paid) = seller((
        "200 OK",
        format!(r#"{{"success":true,"transaction":"{TX}","network":"base-sepolia"}}"#),
        Some("a joke".to_owned()),
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.jsonl");
    let ledger = ledger.to_str().unwrap();
    let pay = ["pay", &url, "--max", "0.02", "--per-hour", "0.015"];
    let key = ("X402_PRIVATE_KEY", KEY);
    let (exit, out, err) = run_with(&pay, &[key, ("X402_LEDGER", ledger)]).await;
    assert_eq!(exit, Exit::Success, "{out}\n{err}");
    assert!(err.contains(&format!("ledger: {ledger}")), "{err}");
    // A second run (a new process, as far as the budget knows) is refused by the first's.
    let (exit, _, err) = run_with(&[&pay[..], &["--ledger", ledger]].concat(), &[key]).await;
    assert_eq!(exit, Exit::Failure, "{err}");
    assert!(
        err.contains("0.01 USDC of the budget of 0.015 USDC per 1h was paid in the last 1h"),
        "{err}"
    );
    assert_eq!(paid.load(Ordering::SeqCst), 1, "paid once");

    let (exit, out, err) = run_with(&["history", "--ledger", ledger], &[]).await;
    assert_eq!(exit, Exit::Success, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("TIME") && lines[0].contains("SETTLEMENT"),
        "{out}"
    );
    assert!(
        lines[1].contains("eip155:84532")
            && lines[1].contains("0.01 USDC")
            && lines[1].contains("0x00000000000000000000000000000000000000aa")
            && lines[1].contains(&url)
            && lines[1].contains(&format!("settled {TX}")),
        "{out}"
    );
    assert_eq!(lines[2], "1 payment(s)", "{out}");
    assert!(
        lines[3].starts_with("total 0.01 USDC on eip155:84532"),
        "{out}"
    );

    let (exit, out, _) = run_with(&["history", "--json"], &[("X402_LEDGER", ledger)]).await;
    assert_eq!(exit, Exit::Success);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let entries = v.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{v}");
    assert_eq!(entries[0]["amount"], "10000");
    assert_eq!(entries[0]["url"], url.as_str());
    assert_eq!(entries[0]["settlement"]["transaction"], TX);

    // Filters.
    for (filter, count) in [
        (&["--network", "eip155:1"][..], 0),
        (&["--network", "eip155:*"], 1),
        (&["--since", "1h"], 1),
        (&["--since", "2999-01-01"], 0),
        (&["--since", "2000-01-01T00:00:00Z"], 1),
    ] {
        let args = [&["history", "--json", "--ledger", ledger][..], filter].concat();
        let (exit, out, err) = run_with(&args, &[]).await;
        assert_eq!(exit, Exit::Success, "{filter:?}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v.as_array().unwrap().len(), count, "{filter:?}: {v}");
    }
    let (exit, _, err) = run_with(&["history", "--ledger", ledger, "--since", "soon"], &[]).await;
    assert_eq!(exit, Exit::Failure);
    assert!(err.contains("--since \"soon\""), "{err}");
}

#[tokio::test]
async fn history_of_a_missing_or_damaged_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.jsonl");
    let ledger = path.to_str().unwrap();
    let (exit, out, err) = run_with(&["history", "--ledger", ledger], &[]).await;
    assert_eq!(exit, Exit::Success, "{err}");
    assert!(
        out.is_empty() && err.contains("no payments recorded"),
        "{out}{err}"
    );
    assert!(!path.exists(), "history creates no ledger");
    let (_, out, _) = run_with(&["history", "--ledger", ledger, "--json"], &[]).await;
    assert_eq!(out.trim(), "[]");
    std::fs::write(&path, "{\"kind\":\"payment\"}\n").unwrap();
    let (exit, _, err) = run_with(&["history", "--ledger", ledger], &[]).await;
    assert_eq!(exit, Exit::Failure);
    assert!(err.contains("line 1 is not a ledger record"), "{err}");
    // `pay` refuses to count budgets from it, before asking the seller anything.
    let pay = [
        "pay",
        "http://127.0.0.1:9/joke",
        "--max",
        "1",
        "--ledger",
        ledger,
    ];
    let (exit, _, err) = run_with(&pay, &[("X402_PRIVATE_KEY", KEY)]).await;
    assert_eq!(exit, Exit::Failure);
    assert!(
        err.contains("line 1 is not a ledger record") && err.contains("nothing was paid"),
        "{err}"
    );
    assert!(!err.contains("GET "), "{err}");
}

#[tokio::test]
async fn limits_counted_from_the_ledger_need_one() {
    let pay = [
        "pay",
        "http://127.0.0.1:9/joke",
        "--max",
        "1",
        "--per-day",
        "1",
    ];
    let (exit, _, err) = run_with(&pay, &[("X402_PRIVATE_KEY", KEY)]).await;
    assert_eq!(exit, Exit::Failure);
    assert!(
        err.contains("pass --ledger PATH or set X402_LEDGER"),
        "{err}"
    );
    let (exit, _, err) = run_with(&["history"], &[]).await;
    assert_eq!(exit, Exit::Failure);
    assert!(err.contains("no ledger"), "{err}");
}

#[test]
fn governance_flags_reach_the_policy() {
    let parsed = parse(&strings(&[
        "pay",
        "http://x/y",
        "--max",
        "1",
        "--per-hour",
        "0.5",
        "--per-day",
        "2",
        "--deny-recipient",
        "0xdead",
        "--allow-recipient",
        "0xbeef",
        "--rate-limit",
        "3/10m",
        "--ledger",
        "/tmp/l.jsonl",
    ]))
    .unwrap();
    let p = &parsed.policy;
    let budgets: Vec<(u64, &str)> = p
        .budgets
        .iter()
        .map(|b| (b.window.as_secs(), b.amount.as_str()))
        .collect();
    assert_eq!(budgets, [(3600, "0.5"), (86_400, "2")]);
    assert_eq!(p.deny_recipients, ["0xdead"]);
    assert_eq!(p.allow_recipients, ["0xbeef"]);
    let rate = p.rate_limit.unwrap();
    assert_eq!((rate.payments, rate.window.as_secs()), (3, 600));
    assert_eq!(parsed.ledger.as_deref(), Some("/tmp/l.jsonl"));
    assert!(
        parse(&strings(&[
            "pay",
            "http://x/y",
            "--max",
            "1",
            "--rate-limit",
            "3"
        ]))
        .is_err()
    );
}

//! Rolling budgets (across restarts), concurrency, recipients, the rate limit, filters and
//! selectors.

use std::time::Duration;

use super::*;
use crate::Candidate;

fn ledger_in(dir: &tempfile::TempDir) -> Arc<JsonlLedger> {
    Arc::new(JsonlLedger::open(dir.path().join("ledger.jsonl")).unwrap())
}

#[tokio::test]
async fn a_rolling_budget_refuses_what_exceeds_it_and_survives_a_restart() {
    let (url, paid) = seller(vec![option(10_000, SELLER)]).await;
    let dir = tempfile::tempdir().unwrap();
    let signer = Arc::new(Signer::default());
    let clock = clock();
    let hourly = || Policy::default().max_per_hour("0.025");
    let first = buyer(&signer, hourly())
        .with_clock(clock.clone())
        .with_ledger(ledger_in(&dir))
        .unwrap();
    first.get(&url).await.unwrap();
    first.get(&url).await.unwrap();
    let why = refusal(first.get(&url).await.unwrap_err());
    assert!(
        why.contains("it costs 0.01 USDC, and 0.02 USDC of the budget of 0.025 USDC per 1h"),
        "{why}"
    );
    assert_eq!(paid.load(Ordering::SeqCst), 2);
    drop(first);

    // A new buyer on the same ledger counts the two payments.
    let second = buyer(&signer, hourly())
        .with_clock(clock.clone())
        .with_ledger(ledger_in(&dir))
        .unwrap();
    let why = refusal(second.get(&url).await.unwrap_err());
    assert!(why.contains("0.02 USDC of the budget"), "{why}");
    // ... a buyer without the ledger does not.
    buyer(&signer, hourly()).get(&url).await.unwrap();
    assert_eq!(paid.load(Ordering::SeqCst), 3);

    // An hour later the window has slid past both.
    clock.set_shift(3600);
    let third = buyer(&signer, hourly())
        .with_clock(clock.clone())
        .with_ledger(ledger_in(&dir))
        .unwrap();
    third.get(&url).await.unwrap();
    assert_eq!(paid.load(Ordering::SeqCst), 4);
    assert_eq!(payments(&ledger_in(&dir)).len(), 3);
}

#[tokio::test]
async fn buyers_sharing_a_ledger_count_each_others_payments() {
    let (url, paid) = seller(vec![option(10_000, SELLER)]).await;
    let dir = tempfile::tempdir().unwrap();
    let signer = Arc::new(Signer::default());
    // Two buyers, each with its own handle on the file (as two processes would be).
    let daily = || Policy::default().max_per_day("0.015");
    let one = buyer(&signer, daily())
        .with_ledger(ledger_in(&dir))
        .unwrap();
    let two = buyer(&signer, daily())
        .with_ledger(ledger_in(&dir))
        .unwrap();
    one.get(&url).await.unwrap();
    let why = refusal(two.get(&url).await.unwrap_err());
    assert!(
        why.contains("0.01 USDC of the budget of 0.015 USDC per 1d"),
        "{why}"
    );
    assert_eq!(paid.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn concurrent_requests_never_both_fit_a_budget_for_one() {
    let (url, paid) = seller(vec![option(10_000, SELLER)]).await;
    let dir = tempfile::tempdir().unwrap();
    // Signing takes a while, so every request is choosing while the first is still signing.
    let signer = Arc::new(Signer {
        delay: Duration::from_millis(200),
        ..Signer::default()
    });
    let buyer = Arc::new(
        buyer(&signer, Policy::default().max_per_day("0.015"))
            .with_ledger(ledger_in(&dir))
            .unwrap(),
    );
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let (buyer, url) = (buyer.clone(), url.clone());
            tokio::spawn(async move { buyer.get(&url).await })
        })
        .collect();
    let mut ok = 0;
    for run in runs {
        match run.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert!(refusal(e).contains("per 1d"), "refused by the budget"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(signer.signed.load(Ordering::SeqCst), 1);
    assert_eq!(paid.load(Ordering::SeqCst), 1);
    assert_eq!(payments(&ledger_in(&dir)).len(), 1);
}

#[tokio::test]
async fn a_failed_signature_gives_its_reservation_back() {
    let (url, paid) = seller(vec![option(10_000, SELLER)]).await;
    let locked = Arc::new(Signer {
        fail: true,
        ..Signer::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let buyer_ = buyer(&locked, Policy::default().max_per_hour("0.01"))
        .with_ledger(ledger_in(&dir))
        .unwrap();
    for _ in 0..2 {
        let e = buyer_.get(&url).await.unwrap_err();
        assert!(
            matches!(e, Error::Sign(_)),
            "the budget is not the refusal: {e}"
        );
    }
    assert_eq!(paid.load(Ordering::SeqCst), 0);
    assert!(payments(&ledger_in(&dir)).is_empty());
    // The budget is whole for a buyer that can sign.
    let signer = Arc::new(Signer::default());
    buyer(&signer, Policy::default().max_per_hour("0.01"))
        .with_ledger(ledger_in(&dir))
        .unwrap()
        .get(&url)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_budget_for_another_asset_or_an_unusable_one() {
    let (url, _) = seller(vec![option(10_000, SELLER)]).await;
    let signer = Arc::new(Signer::default());
    let other = crate::Budget::per_hour("0").for_asset(usdc().network, OTHER);
    buyer(&signer, Policy::default().with_budget(other))
        .get(&url)
        .await
        .unwrap();
    let why = refusal(
        buyer(&signer, Policy::default().max_per_day("lots"))
            .get(&url)
            .await
            .unwrap_err(),
    );
    assert!(
        why.contains("the budget of lots per 1d is unusable"),
        "{why}"
    );
}

#[tokio::test]
async fn recipients_on_the_deny_list_or_off_the_allow_list_are_not_paid() {
    let (url, paid) = seller(vec![option(10_000, SELLER), option(10_000, OTHER)]).await;
    let signer = Arc::new(Signer::default());
    // The deny list is checked without regard to case (EVM).
    let deny = Policy::default()
        .deny_recipient(SELLER.to_uppercase().replace("0X", "0x"))
        .deny_recipient(OTHER);
    let why = refusal(buyer(&signer, deny).get(&url).await.unwrap_err());
    assert!(
        why.contains(&format!(
            "option 1 (exact on {NETWORK}): the recipient {SELLER} is on the deny list"
        )) && why.contains(&format!("the recipient {OTHER} is on the deny list")),
        "{why}"
    );
    assert_eq!(paid.load(Ordering::SeqCst), 0);
    // Allowing only the second recipient pays it.
    let allow = Policy::default().allow_recipient(OTHER);
    let done = buyer(&signer, allow).get(&url).await.unwrap();
    assert_eq!(
        done.payment.unwrap().requirements.view().unwrap().pay_to,
        OTHER
    );
    let why = refusal(
        buyer(&signer, Policy::default().allow_recipient(PAYER))
            .get(&url)
            .await
            .unwrap_err(),
    );
    assert!(why.contains("is not on the allow list"), "{why}");
    // A denied recipient stays denied even when allowed.
    let both = Policy::default()
        .allow_recipient(OTHER)
        .deny_recipient(OTHER);
    assert!(refusal(buyer(&signer, both).get(&url).await.unwrap_err()).contains("deny list"));
}

#[tokio::test]
async fn the_rate_limit_counts_payments_per_origin_and_survives_a_restart() {
    let (url, paid) = seller(vec![option(1, SELLER)]).await;
    let (elsewhere, _) = seller(vec![option(1, SELLER)]).await;
    let dir = tempfile::tempdir().unwrap();
    let signer = Arc::new(Signer::default());
    let limited = || Policy::default().max_payments_per_origin(2, Duration::from_secs(600));
    let first = buyer(&signer, limited())
        .with_ledger(ledger_in(&dir))
        .unwrap();
    first.get(&url).await.unwrap();
    first.get(&url).await.unwrap();
    let why = refusal(first.get(&url).await.unwrap_err());
    assert!(why.contains("was paid 2 time(s) in the last 10m"), "{why}");
    first.get(&elsewhere).await.unwrap();
    let second = buyer(&signer, limited())
        .with_ledger(ledger_in(&dir))
        .unwrap();
    assert!(refusal(second.get(&url).await.unwrap_err()).contains("2 time(s)"));
    assert_eq!(paid.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn filters_exclude_options_and_say_why() {
    let (url, paid) = seller(vec![option(10_000, SELLER), option(20_000, OTHER)]).await;
    let signer = Arc::new(Signer::default());
    let cheap = |c: &Candidate<'_>| {
        if c.view.amount > x402_core::Amount::from(15_000) {
            Err(format!("{} is too much", c.amount()))
        } else {
            Ok(())
        }
    };
    let done = buyer(&signer, Policy::default().filter("cheap", cheap))
        .get(&url)
        .await
        .unwrap();
    assert_eq!(
        done.payment.unwrap().requirements.view().unwrap().pay_to,
        SELLER
    );
    let never = Policy::default()
        .filter("cheap", cheap)
        .filter("not-aa", |c| {
            (c.view.pay_to != SELLER)
                .then_some(())
                .ok_or("no".to_owned())
        });
    let why = refusal(buyer(&signer, never).get(&url).await.unwrap_err());
    assert_eq!(
        why,
        format!(
            "option 1 (exact on {NETWORK}): filter not-aa: no; option 2 (exact on {NETWORK}): \
             filter cheap: 0.02 USDC is too much"
        )
    );
    assert_eq!(paid.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_selector_picks_among_the_acceptable_options() {
    let (url, paid) = seller(vec![
        option(10_000, SELLER),
        option(20_000, OTHER),
        option(99_000_000, OTHER),
    ])
    .await;
    let signer = Arc::new(Signer::default());
    let capped = || Policy {
        max_per_request: Some("1".into()),
        ..Policy::default()
    };
    // The default takes the first acceptable option.
    let done = buyer(&signer, capped()).get(&url).await.unwrap();
    assert_eq!(
        done.payment.unwrap().requirements.view().unwrap().pay_to,
        SELLER
    );
    // A closure sees only the acceptable ones (not the 99 USDC option), best first.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let last = buyer(&signer, capped()).select_with(move |candidates| {
        let mut seen = record.lock().unwrap();
        seen.extend(candidates.iter().map(|c| (c.index, c.amount())));
        candidates.len().checked_sub(1)
    });
    let done = last.get(&url).await.unwrap();
    let chosen = done.payment.unwrap().requirements;
    assert_eq!(chosen.view().unwrap().pay_to, OTHER);
    assert_eq!(
        chosen.view().unwrap().amount,
        x402_core::Amount::from(20_000)
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [(0, "0.01 USDC".to_owned()), (1, "0.02 USDC".to_owned())]
    );
    assert_eq!(paid.load(Ordering::SeqCst), 2);
    // Declining, or naming no candidate, pays nothing.
    let why = refusal(
        buyer(&signer, capped())
            .select_with(|_| None)
            .get(&url)
            .await
            .unwrap_err(),
    );
    assert!(
        why.contains("more than the maximum")
            && why.contains("the selector declined the 2 acceptable option(s)"),
        "{why}"
    );
    let why = refusal(
        buyer(&signer, capped())
            .select_with(|_| Some(7))
            .get(&url)
            .await
            .unwrap_err(),
    );
    assert!(why.contains("the selector chose candidate 7 of 2"), "{why}");
    assert_eq!(paid.load(Ordering::SeqCst), 2);
}

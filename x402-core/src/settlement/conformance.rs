//! The behaviour every [`SettlementStore`] backend must show, as one suite a backend's tests
//! run against a fresh store (`run`). Identities are random per run, so a shared database may
//! be reused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use super::{Claim, ClaimToken, Intent, Outcome, PaymentId, SettlementStore, StoreOptions};
use crate::{Reason, UnixTime};

const FAR: UnixTime = UnixTime(u64::MAX / 4);

fn fresh(tag: &str) -> PaymentId {
    PaymentId::new("conformance", [tag, &super::random_hex()])
}

fn intent(network: &str, tx: &str) -> Intent {
    Intent {
        network: network.into(),
        transaction: tx.into(),
        detail: serde_json::json!({ "raw": "0x01", "nonce": 7 }),
    }
}

async fn acquire(store: &dyn SettlementStore, id: &PaymentId) -> ClaimToken {
    match store.claim(id, FAR).await.unwrap() {
        Claim::Acquired(t) => t,
        Claim::Taken(r) => panic!("{id} should be free, found {r:?}"),
    }
}

/// Runs every check; `make` builds a store with the given options (it may share a backend).
pub async fn run<F>(make: F)
where
    F: Fn(StoreOptions) -> Arc<dyn SettlementStore>,
{
    let store = make(StoreOptions::default());
    exactly_one_of_many_concurrent_claims_acquires(&store).await;
    release_frees_only_a_claim_without_intent(store.as_ref()).await;
    tokens_fence_every_write(store.as_ref()).await;
    reconciliation_is_compare_and_set_and_success_is_delivered_once(store.as_ref()).await;
    unresolved_lists_by_network_oldest_first(store.as_ref()).await;
    payer_turns_serialize_one_payer(&store).await;
    throttles_keep_the_later_instant_and_lapse(store.as_ref()).await;
    store.health().await.unwrap();
    let quick = make(StoreOptions {
        abandon_after: Duration::from_millis(300),
        ..StoreOptions::default()
    });
    an_abandoned_claim_without_intent_is_taken_over(quick.as_ref()).await;
}

async fn exactly_one_of_many_concurrent_claims_acquires(store: &Arc<dyn SettlementStore>) {
    let id = fresh("race");
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let s = Arc::clone(store);
            let id = id.clone();
            tokio::spawn(async move { s.claim(&id, FAR).await.unwrap() })
        })
        .collect();
    let mut acquired = 0;
    for t in tasks {
        match t.await.unwrap() {
            Claim::Acquired(_) => acquired += 1,
            Claim::Taken(r) => assert_eq!(r.outcome, None, "nothing ended yet"),
        }
    }
    assert_eq!(acquired, 1, "exactly one claim acquires");
}

async fn release_frees_only_a_claim_without_intent(store: &dyn SettlementStore) {
    let id = fresh("release");
    let token = acquire(store, &id).await;
    // Someone else's token releases nothing.
    store.release(&id, &ClaimToken::random()).await.unwrap();
    assert!(matches!(
        store.claim(&id, FAR).await.unwrap(),
        Claim::Taken(_)
    ));
    store.release(&id, &token).await.unwrap();
    let token = acquire(store, &id).await;
    assert!(
        store
            .write_ahead(&id, &token, &intent("eip155:1", "0xaa"))
            .await
            .unwrap()
    );
    // Written ahead: never released.
    store.release(&id, &token).await.unwrap();
    let Claim::Taken(record) = store.claim(&id, FAR).await.unwrap() else {
        panic!("a claim with an intent must survive a release");
    };
    assert_eq!(record.outcome, None);
    assert_eq!(record.intent, Some(intent("eip155:1", "0xaa")));
    assert!(record.is_unresolved());
    assert_eq!(record.transaction(), Some("0xaa"));
}

async fn tokens_fence_every_write(store: &dyn SettlementStore) {
    let id = fresh("fence");
    let token = acquire(store, &id).await;
    let stranger = ClaimToken::random();
    assert!(
        !store
            .write_ahead(&id, &stranger, &intent("eip155:1", "0xbb"))
            .await
            .unwrap()
    );
    let failed = Outcome::Failed {
        reason: Reason::TRANSACTION_FAILED,
        transaction: Some("0xbb".into()),
    };
    assert!(
        !store
            .complete(&id, &stranger, failed.clone())
            .await
            .unwrap()
    );
    assert!(store.complete(&id, &token, failed.clone()).await.unwrap());
    // Ended: the holder's token writes nothing more.
    assert!(!store.complete(&id, &token, failed.clone()).await.unwrap());
    assert!(
        !store
            .write_ahead(&id, &token, &intent("eip155:1", "0xcc"))
            .await
            .unwrap()
    );
    assert_eq!(store.outcome(&id).await.unwrap(), Some(failed.clone()));
    let Claim::Taken(record) = store.claim(&id, FAR).await.unwrap() else {
        panic!("a recorded failure is never claimed again");
    };
    assert_eq!(record.outcome, Some(failed));
    assert!(!record.is_unresolved());
    // An unknown identity has no record.
    assert_eq!(store.record(&fresh("none")).await.unwrap(), None);
}

async fn reconciliation_is_compare_and_set_and_success_is_delivered_once(
    store: &dyn SettlementStore,
) {
    let id = fresh("reconcile");
    let token = acquire(store, &id).await;
    assert!(
        store
            .write_ahead(&id, &token, &intent("eip155:1", "0xd1"))
            .await
            .unwrap()
    );
    // Re-signed: the intent is replaced.
    assert!(
        store
            .write_ahead(&id, &token, &intent("eip155:1", "0xd2"))
            .await
            .unwrap()
    );
    let pending = Outcome::Pending {
        transaction: "0xd2".into(),
    };
    assert!(store.complete(&id, &token, pending).await.unwrap());
    assert!(store.record(&id).await.unwrap().unwrap().is_unresolved());
    let landed = Outcome::Landed {
        transaction: "0xd2".into(),
    };
    // Only the transaction written ahead is accepted.
    assert!(
        !store
            .resolve(&id, "0xd1", Some(landed.clone()))
            .await
            .unwrap()
    );
    assert!(
        store
            .resolve(&id, "0xd2", Some(landed.clone()))
            .await
            .unwrap()
    );
    // Resolved: a second reconciler changes nothing.
    assert!(!store.resolve(&id, "0xd2", None).await.unwrap());
    assert!(store.deliver(&id).await.unwrap());
    assert!(
        !store.deliver(&id).await.unwrap(),
        "success is delivered once"
    );
    assert_eq!(
        store.outcome(&id).await.unwrap(),
        Some(Outcome::Settled {
            transaction: "0xd2".into()
        })
    );
    assert!(!store.deliver(&fresh("none")).await.unwrap());

    // A reconciler resolves an in-flight record first: the holder's completion loses.
    let id = fresh("race-holder");
    let token = acquire(store, &id).await;
    assert!(
        store
            .write_ahead(&id, &token, &intent("eip155:1", "0xe1"))
            .await
            .unwrap()
    );
    assert!(
        store
            .resolve(&id, "0xe1", Some(landed_as("0xe1")))
            .await
            .unwrap()
    );
    assert!(
        !store
            .complete(
                &id,
                &token,
                Outcome::Settled {
                    transaction: "0xe1".into()
                }
            )
            .await
            .unwrap()
    );
    // The chain proves nothing can land: the record is removed and the payment is free again.
    let id = fresh("dead");
    let token = acquire(store, &id).await;
    assert!(
        store
            .write_ahead(&id, &token, &intent("eip155:1", "0xf1"))
            .await
            .unwrap()
    );
    assert!(store.resolve(&id, "0xf1", None).await.unwrap());
    assert_eq!(store.record(&id).await.unwrap(), None);
    acquire(store, &id).await;
}

fn landed_as(tx: &str) -> Outcome {
    Outcome::Landed {
        transaction: tx.into(),
    }
}

async fn unresolved_lists_by_network_oldest_first(store: &dyn SettlementStore) {
    let network = format!("conformance:{}", super::random_hex());
    let other = format!("conformance:{}", super::random_hex());
    let mut ids = Vec::new();
    for n in 0..3 {
        let id = fresh("list");
        let token = acquire(store, &id).await;
        let tx = format!("0x{n}");
        assert!(
            store
                .write_ahead(&id, &token, &intent(&network, &tx))
                .await
                .unwrap()
        );
        if n == 1 {
            let pending = Outcome::Pending { transaction: tx };
            assert!(store.complete(&id, &token, pending).await.unwrap());
        }
        ids.push(id);
        // Distinct claim times.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Neither a settled record, a claim without intent, nor another network's is listed.
    let settled = fresh("list-settled");
    let token = acquire(store, &settled).await;
    assert!(
        store
            .write_ahead(&settled, &token, &intent(&network, "0x9"))
            .await
            .unwrap()
    );
    let done = Outcome::Settled {
        transaction: "0x9".into(),
    };
    assert!(store.complete(&settled, &token, done).await.unwrap());
    acquire(store, &fresh("list-bare")).await;
    let foreign = fresh("list-foreign");
    let token = acquire(store, &foreign).await;
    assert!(
        store
            .write_ahead(&foreign, &token, &intent(&other, "0x8"))
            .await
            .unwrap()
    );

    let listed: Vec<PaymentId> = store
        .unresolved(&network, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(listed, ids);
    assert_eq!(store.unresolved(&network, 2).await.unwrap().len(), 2);
    assert!(store.counts().await.unwrap().unresolved >= 4);
}

async fn payer_turns_serialize_one_payer(store: &Arc<dyn SettlementStore>) {
    let payer = format!("0xpayer{}", super::random_hex());
    let turn = store
        .payer_turn(&payer, Duration::from_secs(5))
        .await
        .unwrap()
        .expect("a free payer's turn is granted");
    // Another payer is free meanwhile.
    let other = format!("0xother{}", super::random_hex());
    assert!(
        store
            .payer_turn(&other, Duration::from_secs(5))
            .await
            .unwrap()
            .is_some()
    );
    // The same payer is busy until the turn ends.
    assert!(
        store
            .payer_turn(&payer, Duration::from_millis(200))
            .await
            .unwrap()
            .is_none()
    );
    let s = Arc::clone(store);
    let p = payer.clone();
    let waiter = tokio::spawn(async move { s.payer_turn(&p, Duration::from_secs(30)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(turn);
    assert!(
        waiter.await.unwrap().unwrap().is_some(),
        "the next waiter gets the turn"
    );
}

async fn an_abandoned_claim_without_intent_is_taken_over(store: &dyn SettlementStore) {
    let id = fresh("abandoned");
    let old = acquire(store, &id).await;
    assert!(matches!(
        store.claim(&id, FAR).await.unwrap(),
        Claim::Taken(_)
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let new = acquire(store, &id).await;
    assert_ne!(old, new);
    // The vanished holder can no longer write ahead: it sends nothing.
    assert!(
        !store
            .write_ahead(&id, &old, &intent("eip155:1", "0x01"))
            .await
            .unwrap()
    );
    // A claim with an intent is never taken over, however old.
    assert!(
        store
            .write_ahead(&id, &new, &intent("eip155:1", "0x02"))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(matches!(
        store.claim(&id, FAR).await.unwrap(),
        Claim::Taken(_)
    ));
}

/// A throttle key no other run uses.
pub fn fresh_throttle_key() -> String {
    format!("conformance:1/0xpayer{}", super::random_hex())
}

async fn throttles_keep_the_later_instant_and_lapse(store: &dyn SettlementStore) {
    let key = fresh_throttle_key();
    assert_eq!(
        store.throttled(&key).await.unwrap(),
        None,
        "never throttled"
    );
    let now = UnixTime::now().0;
    let hour = UnixTime(now + 3600);
    store.throttle(&key, hour).await.unwrap();
    assert_eq!(store.throttled(&key).await.unwrap(), Some(hour));
    // An earlier instant never shortens a cool-down; a later one extends it.
    store.throttle(&key, UnixTime(now + 60)).await.unwrap();
    assert_eq!(store.throttled(&key).await.unwrap(), Some(hour));
    let longer = UnixTime(now + 7200);
    store.throttle(&key, longer).await.unwrap();
    assert_eq!(store.throttled(&key).await.unwrap(), Some(longer));
    // Another payer is not throttled; an instant already passed throttles nobody.
    assert_eq!(store.throttled(&fresh_throttle_key()).await.unwrap(), None);
    let past = fresh_throttle_key();
    store.throttle(&past, UnixTime(now - 1)).await.unwrap();
    assert_eq!(store.throttled(&past).await.unwrap(), None);
    // A cool-down lapses once its instant has passed (and a new one may follow).
    let short = fresh_throttle_key();
    let soon = UnixTime(UnixTime::now().0 + 1);
    store.throttle(&short, soon).await.unwrap();
    match store.throttled(&short).await.unwrap() {
        Some(until) => assert_eq!(until, soon),
        // Read only once its second had begun (a slow store write on a loaded machine): lapsed,
        // as it must be then — never missing while it still runs.
        None => assert!(
            UnixTime::now().0 >= soon.0,
            "a cool-down still running was not found"
        ),
    }
    let mut polls = 0;
    while store.throttled(&short).await.unwrap().is_some() {
        polls += 1;
        assert!(polls < 600, "a cool-down one second long never lapsed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = UnixTime(UnixTime::now().0 + 3600);
    store.throttle(&short, again).await.unwrap();
    assert_eq!(store.throttled(&short).await.unwrap(), Some(again));
}

//! The PostgreSQL settlement store against a real server.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use x402_core::{
    Claim, ClaimToken, Intent, Outcome, PaymentId, SettlementStore, StoreError, StoreOptions,
    UnixTime,
};
use x402_store::{OpenError, PostgresStore};
use x402_tests::postgres::PgServer;
use x402_tests::wait;

const FAR: UnixTime = UnixTime(u64::MAX / 4);

fn fresh(tag: &str) -> PaymentId {
    PaymentId::new("pg-test", [tag, &x402_core::settlement::random_hex()])
}

fn intent(tx: &str) -> Intent {
    Intent {
        network: "eip155:84532".into(),
        transaction: tx.into(),
        detail: serde_json::json!({ "signer": "0x01", "nonce": 9 }),
    }
}

/// Runs `make` on a blocking thread (the PgServer guard blocks while it starts and stops).
async fn blocking<T: Send + 'static>(make: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(make).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_postgres_store_opened_by_url_passes_the_conformance_suite() {
    let server = blocking(PgServer::start).await;
    // `run` builds its stores synchronously: open both (default and quick options) first; they
    // share the database, as replicas do.
    let quick_options = StoreOptions {
        abandon_after: Duration::from_millis(300),
        ..StoreOptions::default()
    };
    let default = x402_store::open(&server.url(), StoreOptions::default())
        .await
        .unwrap();
    let quick = x402_store::open(&server.url(), quick_options)
        .await
        .unwrap();
    assert_eq!(default.kind(), "postgres");
    x402_core::settlement::conformance::run(|options| {
        if options == quick_options {
            Arc::clone(&quick)
        } else {
            assert_eq!(options, StoreOptions::default());
            Arc::clone(&default)
        }
    })
    .await;
    drop((default, quick));
    blocking(move || drop(server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_database_behave_as_one() {
    let server = blocking(PgServer::start).await;
    let options = StoreOptions {
        abandon_after: Duration::from_millis(400),
        ..StoreOptions::default()
    };
    let a: Arc<dyn SettlementStore> = Arc::new(
        PostgresStore::connect(&server.url(), options)
            .await
            .unwrap(),
    );
    let b: Arc<dyn SettlementStore> = Arc::new(
        PostgresStore::connect(&server.url(), options)
            .await
            .unwrap(),
    );

    // Concurrent claims across both: exactly one acquires, the rest see the claim in flight.
    let id = fresh("race");
    let claims: Vec<_> = (0..24)
        .map(|n| {
            let store = Arc::clone(if n % 2 == 0 { &a } else { &b });
            let id = id.clone();
            tokio::spawn(async move { (n % 2, store.claim(&id, FAR).await.unwrap()) })
        })
        .collect();
    let mut winner = None;
    for claim in claims {
        match claim.await.unwrap() {
            (side, Claim::Acquired(token)) => {
                assert!(winner.is_none(), "a second claim acquired");
                winner = Some((side, token));
            }
            (_, Claim::Taken(record)) => assert_eq!(record.outcome, None),
        }
    }
    let (side, token) = winner.expect("one claim acquires");
    let (holder, other) = if side == 0 { (&a, &b) } else { (&b, &a) };
    // The holder's token works through either store; a stranger's through neither.
    assert!(
        !other
            .write_ahead(&id, &ClaimToken::random(), &intent("0x0"))
            .await
            .unwrap()
    );
    assert!(
        other
            .write_ahead(&id, &token, &intent("0xa1"))
            .await
            .unwrap()
    );
    let pending = Outcome::Pending {
        transaction: "0xa1".into(),
    };
    assert!(holder.complete(&id, &token, pending.clone()).await.unwrap());
    assert_eq!(other.outcome(&id).await.unwrap(), Some(pending));
    let listed = other.unresolved("eip155:84532", 1000).await.unwrap();
    assert!(listed.iter().any(|(listed, _)| *listed == id));
    // One reconciler wins, on whichever replica.
    let landed = Outcome::Landed {
        transaction: "0xa1".into(),
    };
    let (r1, r2) = tokio::join!(
        a.resolve(&id, "0xa1", Some(landed.clone())),
        b.resolve(&id, "0xa1", Some(landed.clone()))
    );
    assert_eq!(u8::from(r1.unwrap()) + u8::from(r2.unwrap()), 1);
    let (d1, d2) = tokio::join!(a.deliver(&id), b.deliver(&id));
    assert_eq!(
        u8::from(d1.unwrap()) + u8::from(d2.unwrap()),
        1,
        "delivered once"
    );

    // An abandoned claim (by the database's clock) is taken over from the other replica, and
    // the vanished holder's token is fenced off.
    let id = fresh("abandoned");
    let Claim::Acquired(old) = a.claim(&id, FAR).await.unwrap() else {
        panic!("fresh")
    };
    assert!(matches!(b.claim(&id, FAR).await.unwrap(), Claim::Taken(_)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let Claim::Acquired(new) = b.claim(&id, FAR).await.unwrap() else {
        panic!("an abandoned claim is taken over")
    };
    assert!(!a.write_ahead(&id, &old, &intent("0xb1")).await.unwrap());
    assert!(a.write_ahead(&id, &new, &intent("0xb2")).await.unwrap());

    // A payer's turn held on one replica blocks the other until it ends.
    let payer = format!("0xpayer{}", x402_core::settlement::random_hex());
    let turn = a
        .payer_turn(&payer, Duration::from_secs(5))
        .await
        .unwrap()
        .expect("a free payer's turn");
    let started = Instant::now();
    assert!(
        b.payer_turn(&payer, Duration::from_millis(300))
            .await
            .unwrap()
            .is_none(),
        "the other replica waits"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "it waited the whole while"
    );
    assert!(
        b.payer_turn("0xsomeone-else", Duration::from_secs(5))
            .await
            .unwrap()
            .is_some()
    );
    let waiter = {
        let b = Arc::clone(&b);
        let payer = payer.clone();
        tokio::spawn(async move { b.payer_turn(&payer, Duration::from_secs(30)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "still held on the first replica");
    drop(turn);
    let next = waiter.await.unwrap().unwrap();
    assert!(
        next.is_some(),
        "the other replica gets the turn once it ends"
    );
    assert!(
        a.payer_turn(&payer, Duration::from_millis(200))
            .await
            .unwrap()
            .is_none(),
        "and now the first one waits"
    );
    drop(next);

    // A lease held by one is refused to the other until given back, or until it expires.
    let key = format!("evm-signer-{}", x402_core::settlement::random_hex());
    assert!(a.lease(&key, Duration::from_secs(30)).await.unwrap());
    assert!(
        a.lease(&key, Duration::from_secs(30)).await.unwrap(),
        "renewed by its holder"
    );
    assert!(!b.lease(&key, Duration::from_secs(30)).await.unwrap());
    b.unlease(&key).await.unwrap(); // not b's: nothing changes
    assert!(!b.lease(&key, Duration::from_secs(30)).await.unwrap());
    a.unlease(&key).await.unwrap();
    assert!(b.lease(&key, Duration::from_millis(300)).await.unwrap());
    assert!(!a.lease(&key, Duration::from_secs(30)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        a.lease(&key, Duration::from_secs(30)).await.unwrap(),
        "an expired lease is free"
    );
    assert!(!b.lease(&key, Duration::from_secs(30)).await.unwrap());

    drop((a, b));
    blocking(move || drop(server)).await;
}

/// One call of every kind, each on its own identity.
type Call = (
    &'static str,
    Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>,
);

fn every_call(store: &Arc<dyn SettlementStore>) -> Vec<Call> {
    let id = fresh("outage");
    let token = ClaimToken::random();
    macro_rules! call {
        ($name:literal, |$s:ident, $id:ident, $token:ident| $body:expr) => {{
            let ($s, $id, $token) = (Arc::clone(store), id.clone(), token.clone());
            let call: Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>> =
                Box::pin(async move {
                    let _ = (&$id, &$token);
                    $body.await.map(|_| ())
                });
            ($name, call)
        }};
    }
    let pending = Outcome::Pending {
        transaction: "0xc1".into(),
    };
    vec![
        call!("claim", |s, id, t| s.claim(&id, FAR)),
        call!("write_ahead", |s, id, t| s.write_ahead(
            &id,
            &t,
            &intent("0xc1")
        )),
        call!("release", |s, id, t| s.release(&id, &t)),
        call!("complete", |s, id, t| s.complete(&id, &t, pending)),
        call!("resolve", |s, id, t| s.resolve(&id, "0xc1", None)),
        call!("deliver", |s, id, t| s.deliver(&id)),
        call!("record", |s, id, t| s.record(&id)),
        call!("unresolved", |s, id, t| s.unresolved("eip155:84532", 10)),
        call!("payer_turn", |s, id, t| s
            .payer_turn("0xpayer-outage", Duration::from_secs(1))),
        call!("lease", |s, id, t| s
            .lease("outage-key", Duration::from_secs(5))),
        call!("unlease", |s, id, t| s.unlease("outage-key")),
        call!("throttle", |s, id, t| s
            .throttle("eip155:84532/0xoutage", UnixTime(u64::MAX / 4))),
        call!("throttled", |s, id, t| s.throttled("eip155:84532/0xoutage")),
        call!("health", |s, id, t| s.health()),
        call!("counts", |s, id, t| s.counts()),
    ]
}

/// Runs every call at once; each with its result and the time it took.
async fn run_every_call(
    store: &Arc<dyn SettlementStore>,
) -> Vec<(&'static str, Duration, Result<(), StoreError>)> {
    let tasks: Vec<_> = every_call(store)
        .into_iter()
        .map(|(name, call)| {
            tokio::spawn(async move {
                let started = Instant::now();
                let result = call.await;
                (name, started.elapsed(), result)
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// Every call fails — answers an error rather than hanging: the calls run under the hang guard,
/// which only tells an answer from a hang (the store's own call bound decides when it answers).
async fn every_call_fails(store: &Arc<dyn SettlementStore>) {
    let results = tokio::time::timeout(x402_tests::wait::HANG_GUARD, run_every_call(store))
        .await
        .expect("every call answers while the database is out of reach, none hangs");
    for (name, _took, result) in results {
        let e = result.expect_err(&format!(
            "{name} must fail while the database is out of reach"
        ));
        assert!(e.to_string().contains("postgres"), "{name}: {e}");
    }
}

/// Waits until the store answers again, then checks that every call works.
async fn every_call_works_again(store: &Arc<dyn SettlementStore>) {
    wait::until("the store answers again", wait::HANG_GUARD, || async {
        store.health().await.is_ok()
    })
    .await;
    for (name, _, result) in run_every_call(store).await {
        result.unwrap_or_else(|e| panic!("{name} fails after the database is back: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_database_fails_every_call_in_bounded_time_and_recovers_without_a_new_store() {
    let mut server = blocking(PgServer::start).await;
    let store: Arc<dyn SettlementStore> = Arc::new(
        PostgresStore::connect(&server.url(), StoreOptions::default())
            .await
            .unwrap(),
    );
    // Durable before the stop: a claim with its intent, acknowledged.
    let id = fresh("durable");
    let Claim::Acquired(token) = store.claim(&id, FAR).await.unwrap() else {
        panic!("fresh")
    };
    assert!(
        store
            .write_ahead(&id, &token, &intent("0xd1"))
            .await
            .unwrap()
    );
    store.health().await.unwrap();

    let mut server = blocking(move || {
        server.stop();
        server
    })
    .await;
    // Fail closed, and fast: the default bounds are 2 s to connect or wait for the pool and
    // 5 s for a whole call, below the 8 s allowed here.
    every_call_fails(&store).await;
    store.health().await.expect_err("health errs while down");

    server = blocking(move || {
        server.start_again();
        server
    })
    .await;
    // The pool replaces its dead connections by itself.
    every_call_works_again(&store).await;
    let record = store
        .record(&id)
        .await
        .unwrap()
        .expect("the acknowledged record survived");
    assert_eq!(record.intent, Some(intent("0xd1")));
    assert!(
        store
            .complete(
                &id,
                &token,
                Outcome::Settled {
                    transaction: "0xd1".into()
                }
            )
            .await
            .unwrap()
    );

    drop(store);
    blocking(move || drop(server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_that_hangs_fails_every_call_within_the_call_bound_and_recovers() {
    let mut server = blocking(PgServer::start).await;
    let store: Arc<dyn SettlementStore> = Arc::new(
        PostgresStore::connect(&server.url(), StoreOptions::default())
            .await
            .unwrap(),
    );
    // Pooled connections exist (they will hang), and new ones will hang in start-up.
    run_every_call(&store).await;
    server = blocking(move || {
        server.freeze();
        server
    })
    .await;
    // Nothing is answered and no connection is refused: only the store's own bounds (5 s a
    // call by default) end the calls.
    every_call_fails(&store).await;
    server = blocking(move || {
        server.thaw();
        server
    })
    .await;
    every_call_works_again(&store).await;
    drop(store);
    blocking(move || drop(server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_or_query_shows_in_errors_or_debug_output() {
    let server = blocking(PgServer::start).await;
    let port = server.port();
    // Trust authentication accepts any password: the store opens, and its Debug hides it.
    let url = format!(
        "postgres://postgres:PASSWORD-S3CRET@127.0.0.1:{port}/x402?application_name=QUERY-S3CRET"
    );
    let store = x402_store::open(&url, StoreOptions::default())
        .await
        .unwrap();
    let shown = format!("{store:?}");
    assert!(!shown.contains("S3CRET"), "{shown}");
    assert!(
        shown.contains(&format!(
            "postgres://postgres:***@127.0.0.1:{port}/x402?<redacted>"
        )),
        "{shown}"
    );

    // A database that does not exist, and a port nobody listens on: errors name the redacted
    // URL, never the secret, and come back within the connect bound.
    let missing =
        format!("postgres://postgres:PASSWORD-S3CRET@127.0.0.1:{port}/nope?password=QUERY-S3CRET");
    let closed =
        "postgres://u:PASSWORD-S3CRET@127.0.0.1:1/x402?sslmode=disable&password=QUERY-S3CRET";
    for url in [missing.as_str(), closed] {
        let e = tokio::time::timeout(
            x402_tests::wait::HANG_GUARD,
            x402_store::open(url, StoreOptions::default()),
        )
        .await
        .expect("opening answers, never hangs")
        .unwrap_err();
        assert!(matches!(e, OpenError::Postgres { .. }), "{e}");
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains("S3CRET"), "{text}");
            assert!(text.contains(":***@127.0.0.1"), "{text}");
        }
    }
    drop(store);
    blocking(move || drop(server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_migrate_once_and_pruning_keeps_unresolved_rows() {
    let server = blocking(PgServer::start).await;
    let url = server.url();
    let options = StoreOptions {
        grace: Duration::ZERO,
        ..StoreOptions::default()
    };
    // Four replicas start at once on an empty database: one migrates, the others wait for its
    // advisory lock and find the schema current.
    let connecting: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PostgresStore::connect(&url, options).await })
        })
        .collect();
    let mut stores = Vec::new();
    for connecting in connecting {
        stores.push(connecting.await.unwrap().unwrap());
    }
    let psql = x402_tests::postgres::bindir().join("psql");
    let versions = std::process::Command::new(psql)
        .args([
            "-X",
            "-At",
            "-d",
            &url,
            "-c",
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM x402_schema_version",
        ])
        .output()
        .unwrap();
    assert!(versions.status.success(), "{versions:?}");
    assert_eq!(
        String::from_utf8_lossy(&versions.stdout).trim(),
        "1,2,3,4,5"
    );

    // Expired long ago: a resolved row goes, an unresolved one stays, a live one stays.
    let store = &stores[0];
    let (stale, unresolved, live) = (fresh("stale"), fresh("unresolved"), fresh("live"));
    let Claim::Acquired(t) = store.claim(&stale, UnixTime(1)).await.unwrap() else {
        panic!()
    };
    let failed = Outcome::Failed {
        reason: x402_core::Reason::TRANSACTION_FAILED,
        transaction: None,
    };
    assert!(store.complete(&stale, &t, failed).await.unwrap());
    let Claim::Acquired(t) = store.claim(&unresolved, UnixTime(1)).await.unwrap() else {
        panic!()
    };
    assert!(
        store
            .write_ahead(&unresolved, &t, &intent("0xe1"))
            .await
            .unwrap()
    );
    let Claim::Acquired(t) = store.claim(&live, FAR).await.unwrap() else {
        panic!()
    };
    let settled = Outcome::Settled {
        transaction: "0xe2".into(),
    };
    assert!(store.complete(&live, &t, settled).await.unwrap());
    assert!(store.prune().await.unwrap() >= 1);
    assert_eq!(store.record(&stale).await.unwrap(), None);
    assert!(
        store.record(&unresolved).await.unwrap().is_some(),
        "unresolved rows are never pruned"
    );
    assert!(store.record(&live).await.unwrap().is_some());

    drop(stores);
    blocking(move || drop(server)).await;
}

/// The bazaar's catalogue on PostgreSQL: the conformance suite, and a second replica sees what
/// the first cataloged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_postgres_catalogue_conforms_and_is_shared_by_replicas() {
    use x402_core::extension::catalog::{CatalogQuery, conformance};
    let server = blocking(PgServer::start).await;
    let a = x402_store::open(&server.url(), StoreOptions::default())
        .await
        .unwrap();
    let b = x402_store::open(&server.url(), StoreOptions::default())
        .await
        .unwrap();
    conformance::run(a.catalog().unwrap()).await;
    let page = b
        .catalog()
        .unwrap()
        .list(&CatalogQuery {
            limit: 10,
            now: UnixTime(1112),
            ..CatalogQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, 3, "the other replica lists the same catalogue");
    drop((a, b));
    blocking(move || drop(server)).await;
}

/// A seller's payment-identifier entries on PostgreSQL: the conformance suite, and a second
/// replica replays what the first stored and loses a concurrent claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_postgres_payment_ids_conform_and_are_shared_by_replicas() {
    use std::time::Duration;
    use x402_core::extension::idempotency::{self, Claim as IdClaim};
    let server = blocking(PgServer::start).await;
    let a = x402_store::open_payment_ids(&server.url(), StoreOptions::default())
        .await
        .unwrap();
    let b = x402_store::open_payment_ids(&server.url(), StoreOptions::default())
        .await
        .unwrap();
    idempotency::conformance::run(a.clone(), "a-").await;
    let hold = Duration::from_secs(600);
    assert!(
        matches!(
            b.claim("a-a", "g", hold).await.unwrap(),
            IdClaim::Replay(Some(_))
        ),
        "the other replica replays the stored response"
    );
    assert_eq!(b.claim("a-a", "f", hold).await.unwrap(), IdClaim::Conflict);
    // One claim across replicas.
    let (x, y) = tokio::join!(a.claim("shared", "f", hold), b.claim("shared", "f", hold));
    let mut answers = [x.unwrap(), y.unwrap()];
    answers.sort_by_key(|c| matches!(c, IdClaim::Busy));
    assert_eq!(answers, [IdClaim::Claimed, IdClaim::Busy]);
    drop((a, b));
    blocking(move || drop(server)).await;
}

/// Sign-in-with-x's tables on PostgreSQL: the conformance suite, and a second replica sees the
/// first's history and refuses the nonces it spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_postgres_sign_in_tables_conform_and_are_shared_by_replicas() {
    let server = blocking(PgServer::start).await;
    let a = x402_store::open(&server.url(), StoreOptions::default())
        .await
        .unwrap();
    let b = x402_store::open(&server.url(), StoreOptions::default())
        .await
        .unwrap();
    x402_core::extension::sign_in::conformance::run(a.sign_in().unwrap()).await;
    let other = b.sign_in().unwrap();
    assert_eq!(
        other.last_payment("/a", "0xabc").await.unwrap(),
        Some(UnixTime(300))
    );
    assert!(
        !other
            .claim_nonce("race", UnixTime(2000), UnixTime(1000))
            .await
            .unwrap(),
        "a nonce one replica spent is spent for all"
    );
    drop((a, b));
    blocking(move || drop(server)).await;
}

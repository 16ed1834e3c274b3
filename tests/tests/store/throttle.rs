//! Payer cool-downs in the PostgreSQL store: one replica's is every replica's, it survives the
//! database's crash and restart, and a database an older build created is upgraded to hold them.

use x402_core::{Claim, Outcome, PaymentId, SettlementStore, StoreOptions, UnixTime};
use x402_store::PostgresStore;
use x402_tests::postgres::PgServer;

use crate::harness::psql_ok;

async fn blocking<T: Send + 'static>(make: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(make).await.unwrap()
}

fn key() -> String {
    format!("eip155:84532/0x{}", x402_core::settlement::random_hex())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cool_down_is_every_replicas_and_survives_a_database_restart() {
    let mut server = blocking(PgServer::start).await;
    let url = server.url();
    let a = PostgresStore::connect(&url, StoreOptions::default())
        .await
        .unwrap();
    let b = PostgresStore::connect(&url, StoreOptions::default())
        .await
        .unwrap();
    let (payer, other) = (key(), key());
    let until = UnixTime(UnixTime::now().0 + 600);
    a.throttle(&payer, until).await.unwrap();
    assert_eq!(b.throttled(&payer).await.unwrap(), Some(until));
    assert_eq!(b.throttled(&other).await.unwrap(), None);
    // A shorter cool-down from the other replica keeps the longer one.
    b.throttle(&payer, UnixTime(until.0 - 300)).await.unwrap();
    assert_eq!(a.throttled(&payer).await.unwrap(), Some(until));
    drop((a, b));

    // The database stops like a crash and comes back: the cool-down is still there.
    let server = blocking(move || {
        server.stop();
        server.start_again();
        server
    })
    .await;
    let c = PostgresStore::connect(&url, StoreOptions::default())
        .await
        .unwrap();
    assert_eq!(c.throttled(&payer).await.unwrap(), Some(until));
    // Pruning leaves a cool-down still running.
    c.prune().await.unwrap();
    assert_eq!(c.throttled(&payer).await.unwrap(), Some(until));
    drop(c);
    blocking(move || drop(server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_of_schema_version_1_is_upgraded_and_keeps_its_records() {
    let server = blocking(PgServer::start).await;
    let store = PostgresStore::connect(&server.url(), StoreOptions::default())
        .await
        .unwrap();
    let id = PaymentId::new("pg-test", ["old", &x402_core::settlement::random_hex()]);
    let Claim::Acquired(token) = store.claim(&id, UnixTime(u64::MAX / 4)).await.unwrap() else {
        panic!("fresh id");
    };
    let settled = Outcome::Settled {
        transaction: "0xabc".into(),
    };
    assert!(store.complete(&id, &token, settled.clone()).await.unwrap());
    drop(store);
    // Back to what a build before cool-downs left: version 1, no throttle (nor catalogue, nor
    // payment-id, nor sign-in) table.
    psql_ok(
        &server,
        "DROP TABLE x402_throttles; DROP TABLE x402_catalog; DROP TABLE x402_payment_ids;
         DROP TABLE x402_siwx_payments; DROP TABLE x402_siwx_nonces;
         DELETE FROM x402_schema_version WHERE version >= 2",
    );
    assert_eq!(
        psql_ok(&server, "SELECT MAX(version) FROM x402_schema_version"),
        "1"
    );

    let store = PostgresStore::connect(&server.url(), StoreOptions::default())
        .await
        .unwrap();
    assert_eq!(
        psql_ok(
            &server,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM x402_schema_version"
        ),
        "1,2,3,4,5"
    );
    assert_eq!(store.outcome(&id).await.unwrap(), Some(settled));
    let (payer, until) = (key(), UnixTime(UnixTime::now().0 + 600));
    store.throttle(&payer, until).await.unwrap();
    assert_eq!(store.throttled(&payer).await.unwrap(), Some(until));
    drop(store);
    blocking(move || drop(server)).await;
}

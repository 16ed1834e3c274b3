//! The SQLite store's payer cool-downs: durable across reopening, lapsing by the store's clock,
//! and added to a file written by an older build.

use std::sync::Arc;

use rusqlite::params;
use x402_core::clock::ShiftedClock;
use x402_core::{Outcome, PaymentId, SettlementStore, StoreOptions, UnixTime};

use super::SqliteStore;
use super::schema::MIGRATIONS;

#[tokio::test]
async fn a_cool_down_survives_reopening_and_lapses_by_the_store_clock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let until = UnixTime(UnixTime::now().0 + 600);
    let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    store.throttle("eip155:1/0xaa", until).await.unwrap();
    drop(store);

    let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(store.throttled("eip155:1/0xaa").await.unwrap(), Some(until));
    assert_eq!(store.throttled("eip155:1/0xbb").await.unwrap(), None);
    drop(store);

    // Reopened an hour later: the cool-down has lapsed, and the open pruned its row.
    let later = Arc::new(ShiftedClock::new(3600));
    let store = SqliteStore::open_with_clock(&path, StoreOptions::default(), later).unwrap();
    assert_eq!(store.throttled("eip155:1/0xaa").await.unwrap(), None);
    let rows: i64 = store
        .inner
        .connection()
        .query_row("SELECT COUNT(*) FROM x402_throttles", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0, "a lapsed cool-down is pruned");
}

#[tokio::test]
async fn a_file_of_schema_version_1_is_upgraded_and_keeps_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let id = PaymentId::new("sqlite-test", ["old"]);
    let settled = Outcome::Settled {
        transaction: "0xabc".into(),
    };
    {
        // What a build before cool-downs left behind.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch("PRAGMA user_version = 1").unwrap();
        conn.execute(
            "INSERT INTO x402_settlements (id, token, holder, claimed_at_ms, expires, seq, state,
                 outcome)
             VALUES (?1, 't', 'h', 0, ?2, 1, 'settled', ?3)",
            params![id.as_str(), i64::MAX, settled.to_stored()],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    let version: i64 = store
        .inner
        .connection()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, i64::try_from(MIGRATIONS.len()).unwrap());
    assert_eq!(store.outcome(&id).await.unwrap(), Some(settled));
    let until = UnixTime(UnixTime::now().0 + 600);
    store.throttle("eip155:1/0xaa", until).await.unwrap();
    assert_eq!(store.throttled("eip155:1/0xaa").await.unwrap(), Some(until));
}

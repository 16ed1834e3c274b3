//! The SQLite store: the conformance suite, durability across reopening, one process per file.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use x402_core::{Claim, Intent, Outcome, PaymentId, SettlementStore, StoreOptions, UnixTime};

use super::SqliteStore;
use crate::OpenError;

const FAR: UnixTime = UnixTime(u64::MAX / 4);

fn id(tag: &str) -> PaymentId {
    PaymentId::new("sqlite-test", [tag])
}

fn intent(tx: &str) -> Intent {
    Intent {
        network: "eip155:8453".into(),
        transaction: tx.into(),
        detail: serde_json::json!({ "raw": "0x02f8", "nonce": 3 }),
    }
}

#[tokio::test]
async fn the_sqlite_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    x402_core::settlement::conformance::run(|options| {
        // One file per store: a file is one process's.
        let path = dir
            .path()
            .join(format!("s{}.db", n.fetch_add(1, Ordering::Relaxed)));
        Arc::new(SqliteStore::open(path, options).unwrap()) as Arc<dyn SettlementStore>
    })
    .await;
}

#[tokio::test]
async fn records_and_intents_survive_reopening_and_a_dead_process_claim_is_taken_over_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/folder/settlements.db");
    let options = StoreOptions::default(); // abandon_after: 120 s
    let store = SqliteStore::open(&path, options).unwrap();
    let Claim::Acquired(token) = store.claim(&id("sent"), FAR).await.unwrap() else {
        panic!("fresh id");
    };
    assert!(
        store
            .write_ahead(&id("sent"), &token, &intent("0xabc"))
            .await
            .unwrap()
    );
    let Claim::Acquired(bare) = store.claim(&id("bare"), FAR).await.unwrap() else {
        panic!("fresh id");
    };
    // Within one process, a claim without intent is not taken over before abandon_after.
    assert!(matches!(
        store.claim(&id("bare"), FAR).await.unwrap(),
        Claim::Taken(_)
    ));
    let first_process = store.process_id().to_owned();
    drop(store);

    let store = SqliteStore::open(&path, options).unwrap();
    assert_ne!(store.process_id(), first_process);
    let record = store
        .record(&id("sent"))
        .await
        .unwrap()
        .expect("the record survived");
    assert_eq!(record.outcome, None);
    assert_eq!(record.intent, Some(intent("0xabc")));
    let listed = store.unresolved("eip155:8453", 10).await.unwrap();
    assert_eq!(listed, vec![(id("sent"), record.clone())]);
    assert_eq!(store.counts().await.unwrap().unresolved, 1);
    // The claim with an intent is never taken over: it is reconciled.
    assert_eq!(
        store.claim(&id("sent"), FAR).await.unwrap(),
        Claim::Taken(record)
    );
    // The earlier process's claim without intent is taken over at once...
    let Claim::Acquired(new) = store.claim(&id("bare"), FAR).await.unwrap() else {
        panic!("a dead process's claim without intent is taken over at once");
    };
    // ...and the old token writes nothing.
    assert!(
        !store
            .write_ahead(&id("bare"), &bare, &intent("0xdef"))
            .await
            .unwrap()
    );
    assert!(
        store
            .write_ahead(&id("bare"), &new, &intent("0xdef"))
            .await
            .unwrap()
    );
    // Reconciled after the restart: resolved, then reopened again.
    assert!(
        store
            .resolve(
                &id("sent"),
                "0xabc",
                Some(Outcome::Landed {
                    transaction: "0xabc".into()
                })
            )
            .await
            .unwrap()
    );
    drop(store);
    let store = SqliteStore::open(&path, options).unwrap();
    assert!(store.deliver(&id("sent")).await.unwrap());
    assert_eq!(
        store.outcome(&id("sent")).await.unwrap(),
        Some(Outcome::Settled {
            transaction: "0xabc".into()
        })
    );
    let listed = store.unresolved("eip155:8453", 10).await.unwrap();
    assert_eq!(
        listed.len(),
        1,
        "only the re-claimed one is left: {listed:?}"
    );
}

#[tokio::test]
async fn a_second_store_on_the_same_file_fails_while_the_first_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settlements.db");
    let first = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    let second = SqliteStore::open(&path, StoreOptions::default()).unwrap_err();
    assert!(matches!(second, OpenError::Locked { .. }), "{second}");
    let text = second.to_string();
    assert!(text.contains("in use by another process"), "{text}");
    assert!(
        text.contains(&format!("pid {}", std::process::id())),
        "{text}"
    );
    // Through `open` too.
    let url = format!("sqlite:{}", path.display());
    let e = crate::open(&url, StoreOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, OpenError::Locked { .. }), "{e}");
    // Nothing was written by the refused store; the first still works.
    assert!(matches!(
        first.claim(&id("x"), FAR).await.unwrap(),
        Claim::Acquired(_)
    ));
    drop(first);
    let again = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    assert!(matches!(
        again.claim(&id("x"), FAR).await.unwrap(),
        Claim::Acquired(_)
    ));
}

#[tokio::test]
async fn open_reaches_sqlite_through_both_schemes() {
    let dir = tempfile::tempdir().unwrap();
    for (n, scheme) in ["sqlite:", "file:", "sqlite://"].into_iter().enumerate() {
        let path = dir.path().join(format!("via{n}/s.db"));
        let store = crate::open(
            &format!("{scheme}{}", path.display()),
            StoreOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(store.kind(), "sqlite");
        store.health().await.unwrap();
        assert!(path.exists());
    }
}

#[tokio::test]
async fn the_file_is_in_wal_mode_with_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    let conn = store.inner.connection();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let sync: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!((mode.as_str(), sync, version), ("wal", 2, 5));
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
    }
    let e = SqliteStore::open(&path, StoreOptions::default()).unwrap_err();
    assert!(e.to_string().contains("newer than this build"), "{e}");
}

#[tokio::test]
async fn expired_resolved_entries_are_pruned_after_grace_and_unresolved_ones_never() {
    fn clock() -> UnixTime {
        UnixTime(10_000)
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let options = StoreOptions {
        grace: Duration::from_secs(100),
        ..StoreOptions::default()
    };
    let clock: x402_core::SharedClock = Arc::new(clock as fn() -> UnixTime);
    let store = SqliteStore::open_with_clock(&path, options, Arc::clone(&clock)).unwrap();
    // Stale (expired long ago, resolved), stale but unresolved, within grace, live.
    let Claim::Acquired(t) = store.claim(&id("stale"), UnixTime(1)).await.unwrap() else {
        panic!()
    };
    let failed = Outcome::Failed {
        reason: x402_core::Reason::TRANSACTION_FAILED,
        transaction: None,
    };
    assert!(store.complete(&id("stale"), &t, failed).await.unwrap());
    let Claim::Acquired(t) = store.claim(&id("unresolved"), UnixTime(1)).await.unwrap() else {
        panic!()
    };
    assert!(
        store
            .write_ahead(&id("unresolved"), &t, &intent("0x1"))
            .await
            .unwrap()
    );
    store.claim(&id("grace"), UnixTime(9_950)).await.unwrap();
    store.claim(&id("live"), UnixTime(20_000)).await.unwrap();
    drop(store);
    // Pruned at open.
    let store = SqliteStore::open_with_clock(&path, options, clock).unwrap();
    assert_eq!(store.record(&id("stale")).await.unwrap(), None);
    assert!(store.record(&id("unresolved")).await.unwrap().is_some());
    assert!(store.record(&id("grace")).await.unwrap().is_some());
    assert!(store.record(&id("live")).await.unwrap().is_some());
}

#[tokio::test]
async fn leases_are_granted_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db"), StoreOptions::default()).unwrap();
    assert!(
        store
            .lease("evm-signer-0xabc", Duration::from_secs(30))
            .await
            .unwrap()
    );
    let holder: String = store
        .inner
        .connection()
        .query_row(
            "SELECT holder FROM x402_leases WHERE name = 'evm-signer-0xabc'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(holder, store.process_id());
    store.unlease("evm-signer-0xabc").await.unwrap();
    let left: i64 = store
        .inner
        .connection()
        .query_row("SELECT COUNT(*) FROM x402_leases", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

/// The child half of [`a_killed_process_keeps_its_acknowledged_writes_and_frees_the_file`]:
/// run only by that test, in a process of its own, which it kills.
#[test]
#[ignore = "the child process of a_killed_process_keeps_its_acknowledged_writes_and_frees_the_file"]
fn crash_child() {
    use std::io::Write;
    let Some(path) = std::env::var_os(CRASH_CHILD) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
        let Claim::Acquired(token) = store.claim(&id("sent"), FAR).await.unwrap() else {
            panic!("fresh id");
        };
        assert!(
            store
                .write_ahead(&id("sent"), &token, &intent("0xabc"))
                .await
                .unwrap()
        );
        store.claim(&id("bare"), FAR).await.unwrap();
        // Acknowledged: from here on a broadcast could have happened.
        let mut out = std::io::stdout();
        writeln!(out, "{CRASH_READY}").unwrap();
        out.flush().unwrap();
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    });
}

const CRASH_CHILD: &str = "X402_STORE_CRASH_CHILD";
const CRASH_READY: &str = "x402-store-crash-child-ready";

#[test]
fn a_killed_process_keeps_its_acknowledged_writes_and_frees_the_file() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settlements.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sqlite::tests::crash_child",
            "--ignored",
            "--nocapture",
        ])
        .arg("--test-threads=1")
        .env(CRASH_CHILD, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Wait (with a hang guard) for the child's acknowledgement.
    let stdout = child.stdout.take().unwrap();
    let (ready, readied) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if line.is_ok_and(|l| l.contains(CRASH_READY)) {
                let _ = ready.send(());
            }
        }
    });
    if readied.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = child.kill();
        panic!("the child never acknowledged its writes");
    }
    // While it lives, the file is its own.
    let e = SqliteStore::open(&path, StoreOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains(&format!("pid {}", child.id())),
        "{e}"
    );

    child.kill().unwrap(); // SIGKILL: no destructor, no clean close
    child.wait().unwrap();

    // The kernel dropped the lock with the process; the acknowledged writes are there.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
        let record = store
            .record(&id("sent"))
            .await
            .unwrap()
            .expect("the record survived");
        assert_eq!(record.intent, Some(intent("0xabc")));
        let listed = store.unresolved("eip155:8453", 10).await.unwrap();
        assert_eq!(listed, vec![(id("sent"), record)]);
        assert!(
            matches!(
                store.claim(&id("bare"), FAR).await.unwrap(),
                Claim::Acquired(_)
            ),
            "the dead process's claim without intent is taken over at once"
        );
    });
}

//! The SQLite schema and its migrations, versioned with `PRAGMA user_version` (atomic with the
//! migration's transaction).

use rusqlite::{Connection, TransactionBehavior};

/// Migrations in order: version `n` is `MIGRATIONS[n - 1]`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: settlements and leases.
    "CREATE TABLE x402_settlements (
        id            TEXT PRIMARY KEY NOT NULL,
        token         TEXT NOT NULL,
        holder        TEXT NOT NULL,
        claimed_at_ms INTEGER NOT NULL,
        expires       INTEGER NOT NULL,
        seq           INTEGER NOT NULL,
        state         TEXT CHECK (state IN ('settled', 'landed', 'failed', 'pending')),
        outcome       TEXT,
        network       TEXT,
        tx            TEXT,
        intent        TEXT
    );
    CREATE INDEX x402_settlements_seq ON x402_settlements (seq);
    CREATE INDEX x402_settlements_expires ON x402_settlements (expires);
    CREATE INDEX x402_settlements_unresolved ON x402_settlements (network, seq)
        WHERE intent IS NOT NULL AND (state IS NULL OR state = 'pending');
    CREATE TABLE x402_leases (
        name          TEXT PRIMARY KEY NOT NULL,
        holder        TEXT NOT NULL,
        expires_at_ms INTEGER NOT NULL
    );",
    // 2: payer cool-downs (a payment failed on chain at the facilitator's cost).
    "CREATE TABLE x402_throttles (
        key           TEXT PRIMARY KEY NOT NULL,
        refused_until INTEGER NOT NULL
    );
    CREATE INDEX x402_throttles_until ON x402_throttles (refused_until);",
    // 3: the bazaar's discovery catalogue, one row per resource.
    "CREATE TABLE x402_catalog (
        resource   TEXT PRIMARY KEY NOT NULL,
        kind       TEXT NOT NULL,
        pay_to     TEXT NOT NULL,
        network    TEXT NOT NULL,
        scheme     TEXT NOT NULL,
        item       TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX x402_catalog_recent ON x402_catalog (updated_at DESC, resource);
    CREATE INDEX x402_catalog_expires ON x402_catalog (expires_at);
    CREATE INDEX x402_catalog_pay_to ON x402_catalog (pay_to);",
    // 4: a seller's payment-identifier entries (pending claims and stored responses); times in
    // unix milliseconds.
    "CREATE TABLE x402_payment_ids (
        key         TEXT PRIMARY KEY NOT NULL,
        fingerprint TEXT NOT NULL,
        done        INTEGER NOT NULL,
        status      INTEGER,
        headers     TEXT,
        body        BLOB,
        expires_at  INTEGER NOT NULL
    );
    CREATE INDEX x402_payment_ids_expires ON x402_payment_ids (expires_at);",
    // 5: sign-in-with-x (its own file, so that migrations of other features merge cleanly).
    include_str!("../../migrations/sqlite/0005_sign_in_with_x.sql"),
];

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SchemaError {
    /// The file was written by a newer build.
    #[error(
        "its schema is at version {found}, newer than this build knows ({known}): run a newer facilitator"
    )]
    Newer { found: i64, known: i64 },
    /// SQLite failed.
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}

/// Brings the schema to the latest version, in one immediate transaction.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), SchemaError> {
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(SchemaError::Newer { found, known });
    }
    for (version, sql) in (1..).zip(MIGRATIONS) {
        if version > found {
            tx.execute_batch(sql)?;
            // PRAGMA takes no parameters; the value is our own integer.
            tx.execute_batch(&format!("PRAGMA user_version = {version}"))?;
        }
    }
    tx.commit()?;
    Ok(())
}

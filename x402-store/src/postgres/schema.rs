//! The PostgreSQL schema and its migrations: versioned in `x402_schema_version`, applied in one
//! transaction under a transaction-scoped advisory lock, so replicas starting together migrate
//! once and the others wait, then find the schema current.

use deadpool_postgres::Object;

use super::Fail;

/// The advisory lock key of migrations (`"x402sch\0"` as a big-endian integer).
const MIGRATION_LOCK: i64 = 0x7834_3032_7363_6800;

/// Migrations in order: version `n` is `MIGRATIONS[n - 1]`.
const MIGRATIONS: &[&str] = &[
    // 1: settlements and leases (payer turns and signer-key leases share the lease table, their
    // names prefixed `payer:` and `lease:`).
    "CREATE SEQUENCE x402_settlement_seq;
    CREATE TABLE x402_settlements (
        id         text PRIMARY KEY,
        token      text NOT NULL,
        holder     text NOT NULL,
        claimed_at timestamptz NOT NULL DEFAULT now(),
        expires    bigint NOT NULL,
        seq        bigint NOT NULL DEFAULT nextval('x402_settlement_seq'),
        state      text CHECK (state IN ('settled', 'landed', 'failed', 'pending')),
        outcome    text,
        network    text,
        tx         text,
        intent     text
    );
    CREATE INDEX x402_settlements_expires ON x402_settlements (expires);
    CREATE INDEX x402_settlements_unresolved ON x402_settlements (network, seq)
        WHERE intent IS NOT NULL AND (state IS NULL OR state = 'pending');
    CREATE TABLE x402_leases (
        name       text PRIMARY KEY,
        holder     text NOT NULL,
        expires_at timestamptz NOT NULL
    );",
    // 2: payer cool-downs (a payment failed on chain at the facilitator's cost), until a unix
    // second compared with the database's clock.
    "CREATE TABLE x402_throttles (
        key           text PRIMARY KEY,
        refused_until bigint NOT NULL
    );
    CREATE INDEX x402_throttles_until ON x402_throttles (refused_until);",
    // 3: the bazaar's discovery catalogue, one row per resource; times are the writing
    // facilitator's unix seconds.
    "CREATE TABLE x402_catalog (
        resource   text PRIMARY KEY,
        kind       text NOT NULL,
        pay_to     text NOT NULL,
        network    text NOT NULL,
        scheme     text NOT NULL,
        item       text NOT NULL,
        updated_at bigint NOT NULL,
        expires_at bigint NOT NULL
    );
    CREATE INDEX x402_catalog_recent ON x402_catalog (updated_at DESC, resource);
    CREATE INDEX x402_catalog_expires ON x402_catalog (expires_at);
    CREATE INDEX x402_catalog_pay_to ON x402_catalog (pay_to);",
    // 4: a seller's payment-identifier entries (pending claims and stored responses); times in
    // unix milliseconds of the database's clock.
    "CREATE TABLE x402_payment_ids (
        key         text PRIMARY KEY,
        fingerprint text NOT NULL,
        done        boolean NOT NULL,
        status      integer,
        headers     text,
        body        bytea,
        expires_at  bigint NOT NULL
    );
    CREATE INDEX x402_payment_ids_expires ON x402_payment_ids (expires_at);",
    // 5: sign-in-with-x (its own file, so that migrations of other features merge cleanly).
    include_str!("../../migrations/postgres/0005_sign_in_with_x.sql"),
];

/// Brings the schema to the latest version.
pub(super) async fn migrate(client: &mut Object) -> Result<(), Fail> {
    let known = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS x402_schema_version (
            version    integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let found: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM x402_schema_version",
            &[],
        )
        .await?
        .get(0);
    if found > known {
        return Err(Fail::Store(x402_core::StoreError(format!(
            "the schema is at version {found}, newer than this build knows ({known}): run a newer facilitator"
        ))));
    }
    for (version, sql) in (1..).zip(MIGRATIONS) {
        if version > found {
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO x402_schema_version (version) VALUES ($1)",
                &[&version],
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

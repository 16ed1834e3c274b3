//! The PostgreSQL guard: it starts, serves SQL, stops like a crash, starts again with its data,
//! and leaves nothing behind.

use std::process::Command;

use x402_tests::postgres::{PgServer, SUPERUSER, bindir};

pub(crate) fn psql(server: &PgServer, sql: &str) -> std::process::Output {
    Command::new(bindir().join("psql"))
        .args([
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &server.url(),
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs")
}

pub(crate) fn psql_ok(server: &PgServer, sql: &str) -> String {
    let out = psql(server, sql);
    assert!(
        out.status.success(),
        "psql {sql:?} failed: {}\nserver output:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.recent_output()
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn the_server_keeps_committed_data_across_an_immediate_stop_and_is_gone_after_drop() {
    let mut server = PgServer::start();
    assert!(
        server
            .url()
            .starts_with(&format!("postgres://{SUPERUSER}@127.0.0.1:"))
    );
    assert_eq!(
        psql_ok(&server, "SHOW fsync"),
        "on",
        "crash tests need fsync on"
    );
    assert_eq!(psql_ok(&server, "SELECT current_database()"), "x402");
    psql_ok(&server, "CREATE TABLE t (v int); INSERT INTO t VALUES (42)");

    server.stop();
    assert!(!server.is_running());
    assert!(
        !psql(&server, "SELECT 1").status.success(),
        "stopped means stopped"
    );

    let port = server.port();
    server.start_again();
    assert_eq!(server.port(), port);
    assert_eq!(
        psql_ok(&server, "SELECT v FROM t"),
        "42",
        "committed data survives"
    );

    let other = server.create_database("second");
    assert!(other.ends_with("/second"));

    let data = server.url();
    drop(server);
    let out = Command::new(bindir().join("pg_isready"))
        .args(["-q", "-d", &data, "-t", "1"])
        .status()
        .expect("pg_isready runs");
    assert!(!out.success(), "the server is gone after drop");
}

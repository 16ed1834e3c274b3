//! The JSON lines ledger: round trips, a cut-short last line, damaged lines, times.

use super::*;

fn payment(id: &str, time: u64) -> Record {
    Record::Payment(PaymentRecord {
        id: id.to_owned(),
        time: UnixTime(time),
        url: "http://127.0.0.1:1/joke".into(),
        origin: "http://127.0.0.1:1".into(),
        network: "eip155:84532".into(),
        asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
        amount: Amount::from(10_000),
        decimals: 6,
        symbol: "USDC".into(),
        pay_to: "0x00000000000000000000000000000000000000aa".into(),
        scheme: "exact".into(),
        x402_version: 2,
        payer: Some("0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A".into()),
    })
}

#[test]
fn records_round_trip_one_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/ledger.jsonl");
    let ledger = JsonlLedger::open(&path).unwrap();
    assert!(ledger.records().unwrap().is_empty());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let settled = Record::Settlement(SettlementRecord {
        id: "a".into(),
        time: UnixTime(1_764_822_106),
        success: true,
        transaction: Some("0xabc".into()),
        payer: None,
        error: None,
    });
    ledger.append(&payment("a", 1_764_822_106)).unwrap();
    ledger.append(&settled).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.ends_with('\n'));
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["kind"], "payment");
    assert_eq!(first["time"], "2025-12-04T04:21:46Z");
    assert_eq!(first["amount"], "10000");
    assert_eq!(first["payTo"], "0x00000000000000000000000000000000000000aa");
    assert_eq!(first["network"], "eip155:84532");
    // Another handle on the same file reads both.
    let again = JsonlLedger::open(&path).unwrap();
    assert_eq!(
        again.records().unwrap(),
        vec![payment("a", 1_764_822_106), settled]
    );
}

#[test]
fn a_cut_short_last_line_is_skipped_then_dropped_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let line = serde_json::to_string(&payment("a", 100)).unwrap();
    let cut = &line[..line.len() / 2];
    std::fs::write(&path, format!("{line}\n{cut}")).unwrap();
    let ledger = JsonlLedger::open(&path).unwrap();
    assert_eq!(ledger.records().unwrap(), vec![payment("a", 100)]);
    ledger.append(&payment("b", 200)).unwrap();
    assert_eq!(
        ledger.records().unwrap(),
        vec![payment("a", 100), payment("b", 200)]
    );
    assert!(
        !std::fs::read_to_string(&path)
            .unwrap()
            .contains(&format!("{cut}\n"))
    );
    // A file holding only a cut-short line.
    std::fs::write(&path, cut).unwrap();
    let ledger = JsonlLedger::open(&path).unwrap();
    assert!(ledger.records().unwrap().is_empty());
    ledger.append(&payment("c", 300)).unwrap();
    assert_eq!(ledger.records().unwrap(), vec![payment("c", 300)]);
}

#[test]
fn a_damaged_line_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let good = serde_json::to_string(&payment("a", 100)).unwrap();
    for (bad, what) in [
        ("{not json", "line 2"),
        (r#"{"kind":"gift","id":"x"}"#, "gift"),
        (
            &good.replace("\"10000\"", "10000"),
            "line 2 is not a ledger record",
        ),
        (
            &good.replace("T00:01:40Z", " yesterday"),
            "is not YYYY-MM-DDTHH:MM:SSZ",
        ),
    ] {
        std::fs::write(&path, format!("{good}\n{bad}\n\n{good}\n")).unwrap();
        let e = JsonlLedger::open(&path).unwrap().records().unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, LedgerError::Corrupt { line: 2, .. }) && text.contains(what),
            "{bad}: {text}"
        );
        assert!(text.contains("ledger.jsonl"), "{text}");
    }
    std::fs::write(&path, b"\xff\xfe\n").unwrap();
    let e = JsonlLedger::open(&path).unwrap().records().unwrap_err();
    assert!(e.to_string().contains("not UTF-8"), "{e}");
    // Blank lines alone are fine.
    std::fs::write(&path, "\n\n").unwrap();
    assert!(
        JsonlLedger::open(&path)
            .unwrap()
            .records()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_ledger_that_cannot_be_opened_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let e = JsonlLedger::open(file.join("ledger.jsonl")).unwrap_err();
    assert!(e.to_string().contains("a-file"), "{e}");
}

#[test]
fn times_are_rfc3339_utc() {
    use super::rfc3339::{format, parse};
    assert_eq!(format(UnixTime(0)), "1970-01-01T00:00:00Z");
    assert_eq!(format(UnixTime(951_782_400)), "2000-02-29T00:00:00Z");
    assert_eq!(format(UnixTime(1_764_822_106)), "2025-12-04T04:21:46Z");
    for t in [0, 951_782_399, 1_764_822_106, 4_102_444_800] {
        assert_eq!(parse(&format(UnixTime(t))), Some(UnixTime(t)));
    }
    assert_eq!(parse("2025-12-04"), Some(UnixTime(1_764_806_400)));
    assert_eq!(
        parse("2025-12-04T04:21:46.250Z"),
        Some(UnixTime(1_764_822_106))
    );
    for bad in [
        "",
        "yesterday",
        "2025-13-01",
        "2025-12-04T04:21:46",
        "2025-12-04T24:00:00Z",
        "2025-12-04T04:21Z",
        "+2025-12-04",
    ] {
        assert_eq!(parse(bad), None, "{bad}");
    }
}

#[test]
fn two_handles_appending_at_once_never_interleave_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let writers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            // Each thread has its own handle (its own open file), like two processes.
            let ledger = JsonlLedger::open(&path).unwrap();
            std::thread::spawn(move || {
                for i in 0..50 {
                    ledger.append(&payment(&format!("{name}{i}"), i)).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let records = JsonlLedger::open(&path).unwrap().records().unwrap();
    assert_eq!(records.len(), 100);
    for name in ["a", "b"] {
        let ids: Vec<String> = records
            .iter()
            .filter_map(|r| match r {
                Record::Payment(p) if p.id.starts_with(name) => Some(p.id.clone()),
                _ => None,
            })
            .collect();
        let expected: Vec<String> = (0..50).map(|i| format!("{name}{i}")).collect();
        assert_eq!(ids, expected, "each writer's lines, whole and in order");
    }
}

#[test]
fn news_are_the_other_writers_records_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let (one, two) = (
        JsonlLedger::open(&path).unwrap(),
        JsonlLedger::open(&path).unwrap(),
    );
    one.append(&payment("old", 1)).unwrap();
    assert_eq!(two.records().unwrap(), vec![payment("old", 1)]);
    assert_eq!(one.records().unwrap().len(), 1);
    assert!(one.news().unwrap().is_empty() && two.news().unwrap().is_empty());
    one.append(&payment("a", 2)).unwrap();
    assert_eq!(two.news().unwrap(), vec![payment("a", 2)]);
    assert!(two.news().unwrap().is_empty(), "only once");
    assert!(one.news().unwrap().is_empty(), "never its own");
    // Lines another writer appended before this one's own append are news too.
    two.append(&payment("b", 3)).unwrap();
    one.append(&payment("c", 4)).unwrap();
    assert_eq!(one.news().unwrap(), vec![payment("b", 3)]);
    assert_eq!(two.news().unwrap(), vec![payment("c", 4)]);
    // A damaged line among the news names its line in the file.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"{oops\n")
        .unwrap();
    let e = one.news().unwrap_err();
    assert!(matches!(e, LedgerError::Corrupt { line: 5, .. }), "{e}");
}

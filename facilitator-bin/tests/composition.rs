//! The registry holds exactly the scheme ids of the enabled features. CI runs this test once per
//! feature set: `--no-default-features`, `evm`, `svm` and `evm,svm`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

#[test]
fn registry_holds_exactly_the_enabled_schemes() {
    let mut expected: Vec<&str> = Vec::new();
    if cfg!(feature = "evm") {
        expected.extend(["exact-eip155", "upto-eip155"]);
    }
    if cfg!(feature = "svm") {
        expected.push("exact-solana");
    }
    expected.sort_unstable();
    let catalogue = facilitator_bin::catalogue().expect("no duplicate ids");
    let ids: Vec<&str> = catalogue.ids().collect();
    assert_eq!(ids, expected);
    // Each linked id names its own crate.
    for d in catalogue.iter() {
        assert!(d.crate_name.starts_with("scheme-"), "{d:?}");
    }
}

#[test]
fn binary_lists_the_same_schemes() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_x402-facilitator"))
        .arg("--list-schemes")
        .output()
        .expect("run the binary");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let expected: Vec<&str> = facilitator_bin::catalogue().unwrap().ids().collect();
    assert_eq!(ids, expected);
}

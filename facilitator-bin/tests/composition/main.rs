//! The registry holds exactly the scheme ids of the enabled features. CI runs this test once per
//! feature set: `--no-default-features`, each scheme feature alone (scripts/test.sh reads them
//! from the manifest) and the default `evm,svm`. With `template`, `template` pays through the
//! template scheme crate end to end.
//!
//! A binary of its own: what it links must be what the features enable. The test harness
//! (x402-tests, which the `facilitator` tests use) links every scheme crate and with it their
//! registrations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

#[cfg(feature = "template")]
mod template;

#[test]
fn registry_holds_exactly_the_enabled_schemes() {
    let mut expected: Vec<(&str, &str)> = Vec::new();
    if cfg!(feature = "evm") {
        expected.extend([
            ("exact-eip155", "scheme-exact-evm"),
            ("upto-eip155", "scheme-upto-evm"),
        ]);
    }
    if cfg!(feature = "svm") {
        expected.push(("exact-solana", "scheme-exact-svm"));
    }
    if cfg!(feature = "template") {
        expected.push(("exact-toy", "scheme-template"));
    }
    expected.sort_unstable();
    let catalogue = facilitator_bin::catalogue().expect("no duplicate ids");
    // Each id is registered by its own crate, and is `<scheme>-<namespace>` of its descriptor.
    let linked: Vec<(&str, &str)> = catalogue.iter().map(|d| (d.id, d.crate_name)).collect();
    assert_eq!(linked, expected);
    for d in catalogue.iter() {
        assert_eq!(d.id, format!("{}-{}", d.scheme, d.namespace), "{d:?}");
        assert_eq!(
            catalogue.find(d.scheme, d.namespace).map(|f| f.id),
            Some(d.id)
        );
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

#[test]
fn binary_lists_the_same_schemes_as_json() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_x402-facilitator"))
        .args(["--list-schemes", "--json"])
        .output()
        .expect("run the binary");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = v["schemes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = facilitator_bin::catalogue().unwrap().ids().collect();
    assert_eq!(ids, expected);
}

#[test]
fn binary_exit_statuses() {
    let status = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_x402-facilitator"))
            .args(args)
            .env_remove("X402_FACILITATOR_CONFIG")
            .output()
            .expect("run the binary");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, _) = status(&["--help"]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("X402_FACILITATOR_CONFIG") && stdout.contains("Exit status:"));
    let (code, stdout, _) = status(&["--version"]);
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("x402-facilitator "), "{stdout}");
    for args in [&["--bogus"][..], &[], &["--json", "--config", "f.toml"]] {
        let (code, stdout, stderr) = status(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(
            stderr.contains("Usage: x402-facilitator"),
            "{args:?}: {stderr}"
        );
    }
    let (code, stdout, stderr) = status(&["--config", "/nonexistent/x402.toml", "--check-config"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("cannot read /nonexistent/x402.toml"),
        "{stderr}"
    );
}

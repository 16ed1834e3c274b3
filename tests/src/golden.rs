//! The reason-code vocabulary is pinned: every code a crate of the workspace defines (the shared
//! ones in `x402-core`, each scheme's own with `x402_core::reason_codes!`) is one line of
//! `tests/golden/reasons.txt`, `<crate> <code>`. Adding, changing or removing a code changes that
//! file in the same commit.

// Every crate that defines codes, referenced so that its link-time entries are in this binary.
use scheme_exact_evm as _;
use scheme_exact_svm as _;
use scheme_template as _;
use scheme_upto_evm as _;
use x402_evm as _;
use x402_siwx as _;

use x402_core::reason::ReasonCode;

const GOLDEN: &str = include_str!("../golden/reasons.txt");

#[test]
fn every_reason_code_of_the_workspace_matches_the_golden_list() {
    let mut ours: Vec<String> = ReasonCode::all()
        .iter()
        .map(|c| format!("{} {}", c.crate_name, c.text))
        .collect();
    ours.sort();
    let golden: Vec<&str> = GOLDEN.lines().collect();
    assert_eq!(ours, golden, "tests/golden/reasons.txt is out of date");

    // One crate per code: two crates defining the same string would split its meaning.
    let mut texts: Vec<&str> = ReasonCode::all().iter().map(|c| c.text).collect();
    texts.dedup();
    assert_eq!(
        texts.len(),
        ReasonCode::all().len(),
        "a reason string is defined twice"
    );
    // Every crate that owns codes is linked here (a crate missing from the list above would
    // silently drop its codes from the comparison).
    let mut owners: Vec<&str> = ReasonCode::all().iter().map(|c| c.crate_name).collect();
    owners.sort_unstable();
    owners.dedup();
    assert_eq!(
        owners,
        [
            "scheme-exact-evm",
            "scheme-exact-svm",
            "scheme-template",
            "scheme-upto-evm",
            "x402-core",
            "x402-evm",
            "x402-siwx"
        ]
    );
    // Spellings of the official packages (2.27) that differ from the specification's text or
    // from older references.
    for s in [
        "invalid_exact_evm_signature",
        "invalid_exact_evm_payload_authorization_value_mismatch",
        "invalid_exact_evm_recipient_mismatch",
        "invalid_exact_evm_transfer_event_mismatch",
        "eip6492_factory_not_allowed",
        "asset_not_deployed_contract",
        "smart_wallet_deployment_failed",
        "permit2_allowance_required",
        "invalid_exact_svm_payload_amount_mismatch",
        "invalid_exact_svm_transaction_failed",
        "duplicate_settlement",
        "invalid_upto_evm_payload_settlement_exceeds_amount",
    ] {
        assert!(texts.contains(&s), "{s}");
    }
}

#[test]
fn docs_reasons_md_lists_codes_that_exist() {
    let problems = crate::vocabulary::doc_differences();
    assert!(
        problems.is_empty(),
        "docs/reasons.md:\n{}",
        problems.join("\n")
    );
}

#[test]
fn v1_spellings_pair_two_codes_of_the_scheme() {
    use x402_core::{Reason, X402Version};
    for (table, krate) in [
        (scheme_exact_evm::reason::V1_SPELLINGS, "scheme-exact-evm"),
        (scheme_exact_svm::reason::V1_SPELLINGS, "scheme-exact-svm"),
    ] {
        for (current, v1) in table {
            assert!(
                current.is_known() && v1.is_known(),
                "{krate}: {current} {v1}"
            );
            assert_ne!(current, v1, "{krate}");
            let answered: Reason = current.clone().for_version(X402Version::V1, table);
            assert_eq!(&answered, v1, "{krate}");
        }
    }
}

#[test]
fn a_scheme_code_read_from_the_wire_is_the_scheme_constant() {
    use x402_core::Reason;
    let read: Reason = serde_json::from_str("\"invalid_exact_svm_payload_memo_mismatch\"").unwrap();
    assert!(read.is_known());
    assert_eq!(
        read,
        scheme_exact_svm::reason::INVALID_EXACT_SVM_PAYLOAD_MEMO_MISMATCH
    );
    assert_eq!(
        Reason::from_wire("invalid_exact_toy_payload_signature"),
        scheme_template::reason::INVALID_EXACT_TOY_PAYLOAD_SIGNATURE
    );
}

//! The reason-code vocabulary is pinned: changing, adding or removing a string must change
//! `tests/golden/reasons.txt` in the same commit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use x402_core::Reason;

#[test]
fn reason_strings_match_the_golden_list() {
    let golden: Vec<&str> = include_str!("golden/reasons.txt").lines().collect();
    let ours: Vec<&str> = Reason::ALL.iter().map(Reason::as_str).collect();
    assert_eq!(ours, golden);
    let mut unique = ours.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ours.len(), "a reason string is defined twice");
    // Spot-check the TypeScript spellings the spec calls out as differing from its own text.
    for s in [
        "invalid_exact_evm_signature",
        "invalid_exact_evm_authorization_value",
        "invalid_exact_evm_recipient_mismatch",
        "permit2_allowance_required",
        "invalid_exact_svm_payload_amount_mismatch",
        "duplicate_settlement",
        "invalid_upto_evm_payload_settlement_exceeds_amount",
    ] {
        assert!(golden.contains(&s), "{s}");
    }
}

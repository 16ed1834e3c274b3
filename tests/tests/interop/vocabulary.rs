//! The official packages as the oracle of our vocabulary: `tests/interop/sdk-vocabulary.mjs`
//! reads the reason strings, the default asset tables and the v1 network names out of the
//! installed, lock-pinned `@x402/*` packages, and each test fails naming every difference (see
//! `docs/reasons.md`). Missing node or packages fail the test: an install bug, never a skip.

use x402_tests::e2e::NodeScript;
use x402_tests::vocabulary::{
    SdkVocabulary, asset_differences, network_differences, reason_differences, version_differences,
};

async fn official() -> SdkVocabulary {
    let lines = NodeScript::new("sdk-vocabulary.mjs").run(&[], &[]).await;
    let json = lines.last().expect("the script prints its vocabulary");
    let sdk: SdkVocabulary = serde_json::from_str(json).expect("the vocabulary parses");
    // The extraction found what it is for: a script reading nothing would pass every comparison.
    assert!(
        sdk.reasons.len() > 50,
        "{} reasons found",
        sdk.reasons.len()
    );
    assert!(!sdk.evm_assets.is_empty() && !sdk.svm_assets.is_empty());
    assert!(sdk.v1_networks.contains_key("base-sepolia"));
    sdk
}

fn versions(sdk: &SdkVocabulary) -> String {
    sdk.packages
        .iter()
        .map(|(name, v)| format!("{name}@{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn assert_none(what: &str, sdk: &SdkVocabulary, differences: Vec<String>) {
    assert!(
        differences.is_empty(),
        "{what} differ from the official packages ({}):\n{}",
        versions(sdk),
        differences.join("\n")
    );
}

#[tokio::test]
async fn the_installed_packages_are_the_pinned_ones() {
    let sdk = official().await;
    assert_none("installed versions", &sdk, version_differences(&sdk));
}

#[tokio::test]
async fn our_reason_codes_are_the_official_packages_strings() {
    let sdk = official().await;
    assert_none("reason codes", &sdk, reason_differences(&sdk));
}

#[tokio::test]
async fn our_default_assets_are_the_official_packages_defaults() {
    let sdk = official().await;
    assert_none("default asset tables", &sdk, asset_differences(&sdk));
}

#[tokio::test]
async fn our_v1_network_names_cover_the_official_packages_names() {
    let sdk = official().await;
    assert_none("v1 network names", &sdk, network_differences(&sdk));
}

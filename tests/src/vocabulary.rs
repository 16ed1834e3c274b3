//! Our vocabulary against the official packages': the reason codes (with the tables of
//! `docs/reasons.md` that say which of ours are additions and which of theirs we do not emit),
//! the default asset tables and the v1 network names. The official side is what
//! `tests/interop/sdk-vocabulary.mjs` prints; each comparison returns one line per difference,
//! naming the string, so a failing test lists every one.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use x402_core::Network;
use x402_core::reason::ReasonCode;
// The seller's sign-in-with-x codes, linked so that they are in the comparison.
use x402_siwx as _;

/// `docs/reasons.md`, the one place that lists our additions and the official strings we do not
/// emit.
pub const REASONS_DOC: &str = include_str!("../../docs/reasons.md");

/// The heading of the table of our additions.
pub const ADDITIONS: &str = "Our additions";
/// The heading of the table of specification codes no official package emits.
pub const SPEC_CODES: &str = "Specification codes no official package emits";
/// The heading of the table of official strings we do not emit.
pub const NOT_EMITTED: &str = "Official reasons we do not emit";

/// The crates whose codes the facilitator answers with (`scheme-template`'s are examples).
pub const SERVED_CRATES: [&str; 6] = [
    "scheme-exact-evm",
    "scheme-exact-svm",
    "scheme-upto-evm",
    "x402-core",
    "x402-evm",
    "x402-siwx",
];

/// One row of a `docs/reasons.md` table: its first column's code (or prefix ending in `*`) and
/// the other columns.
#[derive(Debug, Clone)]
pub struct DocRow {
    /// The code or prefix, without backticks.
    pub code: &'static str,
    /// The other columns, trimmed.
    pub columns: Vec<&'static str>,
}

impl DocRow {
    /// Whether `reason` is this row's code, or starts with its prefix.
    pub fn matches(&self, reason: &str) -> bool {
        match self.code.strip_suffix('*') {
            Some(prefix) => reason.starts_with(prefix),
            None => reason == self.code,
        }
    }
}

/// The rows of the table under `## {heading}` in `docs/reasons.md`.
///
/// # Panics
/// When the section or its table is missing.
pub fn doc_table(heading: &str) -> Vec<DocRow> {
    let marker = format!("## {heading}\n");
    let start = REASONS_DOC
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/reasons.md has no section {heading:?}"));
    let section = &REASONS_DOC[start + marker.len()..];
    let section = section.find("\n## ").map_or(section, |end| &section[..end]);
    let rows: Vec<DocRow> = section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .strip_prefix('|')?
                .strip_suffix('|')?
                .split('|')
                .map(str::trim)
                .collect();
            let code = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            Some(DocRow {
                code,
                columns: cells[1..].to_vec(),
            })
        })
        .collect();
    assert!(!rows.is_empty(), "docs/reasons.md: {heading:?} has no rows");
    rows
}

/// Every code a crate linked into this binary defines, text → crate.
pub fn defined_codes() -> BTreeMap<&'static str, &'static str> {
    ReasonCode::all()
        .iter()
        .map(|c| (c.text, c.crate_name))
        .collect()
}

/// The codes the facilitator's crates define, text → crate.
///
/// # Panics
/// When one of [`SERVED_CRATES`] is not linked (its codes would silently be left out).
pub fn served_codes() -> BTreeMap<&'static str, &'static str> {
    let codes: BTreeMap<_, _> = defined_codes()
        .into_iter()
        .filter(|(_, krate)| SERVED_CRATES.contains(krate))
        .collect();
    let owners: BTreeSet<&str> = codes.values().copied().collect();
    assert_eq!(
        owners,
        SERVED_CRATES.into_iter().collect(),
        "a crate defining codes is not linked"
    );
    codes
}

/// That the tables of `docs/reasons.md` name codes that exist: every addition and specification
/// code is defined (an addition by the crate its row names), and no exclusion is a code of ours.
pub fn doc_differences() -> Vec<String> {
    let codes = defined_codes();
    let mut out = Vec::new();
    for row in doc_table(ADDITIONS) {
        match (codes.get(row.code), row.columns.first()) {
            (None, _) => out.push(format!(
                "`{}` is listed under {ADDITIONS:?} but no crate defines it",
                row.code
            )),
            (Some(krate), Some(listed)) if krate != listed => out.push(format!(
                "`{}` is listed under {ADDITIONS:?} as {listed}'s but {krate} defines it",
                row.code
            )),
            _ => {}
        }
    }
    for row in doc_table(SPEC_CODES) {
        if !codes.contains_key(row.code) {
            out.push(format!(
                "`{}` is listed under {SPEC_CODES:?} but no crate defines it",
                row.code
            ));
        }
    }
    for row in doc_table(NOT_EMITTED) {
        if !row.code.ends_with('*') && codes.contains_key(row.code) {
            out.push(format!(
                "`{}` is listed under {NOT_EMITTED:?} but {} defines it",
                row.code, codes[row.code]
            ));
        }
    }
    out
}

/// What `tests/interop/sdk-vocabulary.mjs` prints.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SdkVocabulary {
    /// Every installed `@x402` package and its version.
    pub packages: BTreeMap<String, String>,
    /// Every reason string found.
    pub reasons: Vec<SdkReason>,
    /// `@x402/evm`'s default assets.
    pub evm_assets: Vec<SdkEvmAsset>,
    /// `@x402/svm`'s default assets.
    pub svm_assets: Vec<SdkSvmAsset>,
    /// v1 name → CAIP-2.
    pub v1_networks: BTreeMap<String, String>,
}

/// A reason string of the official packages.
#[derive(Debug, Clone, Deserialize)]
pub struct SdkReason {
    /// The string.
    pub reason: String,
    /// The package it was found in.
    pub package: String,
    /// How: `export`, `declared` or `literal` (see the script).
    pub how: String,
}

/// One default EVM asset of the official packages.
#[derive(Debug, Clone, Deserialize)]
pub struct SdkEvmAsset {
    /// CAIP-2.
    pub network: String,
    /// The token.
    pub asset: String,
    /// EIP-712 name.
    pub name: String,
    /// EIP-712 version.
    pub version: String,
    /// Decimals.
    pub decimals: u8,
    /// Ticker.
    pub symbol: String,
    /// `eip3009` or `permit2`.
    pub method: String,
}

/// One default Solana mint of the official packages.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SdkSvmAsset {
    /// CAIP-2.
    pub network: String,
    /// The mint.
    pub asset: String,
    /// Decimals.
    pub decimals: u8,
    /// Ticker.
    pub symbol: String,
    /// The owning token program.
    pub token_program: String,
}

/// Our codes against the packages' strings, in both directions, with `docs/reasons.md`'s tables
/// as the only allowed differences (and those tables checked for staleness).
pub fn reason_differences(sdk: &SdkVocabulary) -> Vec<String> {
    let ours = served_codes();
    let theirs: BTreeMap<&str, &SdkReason> =
        sdk.reasons.iter().map(|r| (r.reason.as_str(), r)).collect();
    let additions = doc_table(ADDITIONS);
    let spec = doc_table(SPEC_CODES);
    let not_emitted = doc_table(NOT_EMITTED);
    let ours_alone = |code: &str| additions.iter().chain(&spec).any(|r| r.code == code);
    let mut out = Vec::new();
    for (code, krate) in &ours {
        if !theirs.contains_key(code) && !ours_alone(code) {
            out.push(format!(
                "`{code}` ({krate}) is ours, but no official package emits it and \
                 docs/reasons.md does not list it as an addition"
            ));
        }
    }
    for row in additions.iter().chain(&spec) {
        if let Some(r) = theirs.get(row.code) {
            out.push(format!(
                "`{}` is listed in docs/reasons.md as ours alone, but {} has it ({}): it is \
                 theirs now",
                row.code, r.package, r.how
            ));
        }
    }
    for (reason, r) in &theirs {
        if !ours.contains_key(reason) && !not_emitted.iter().any(|row| row.matches(reason)) {
            out.push(format!(
                "`{reason}` ({}, {}) is not ours: answer its condition with it, or list it in \
                 docs/reasons.md under {NOT_EMITTED:?} with why",
                r.package, r.how
            ));
        }
    }
    for row in &not_emitted {
        if !theirs.keys().any(|reason| row.matches(reason)) {
            out.push(format!(
                "`{}` is listed under {NOT_EMITTED:?} but no official package has it any more",
                row.code
            ));
        }
    }
    out
}

/// The packages' versions against the pins of `tests/interop/package.json`.
pub fn version_differences(sdk: &SdkVocabulary) -> Vec<String> {
    let manifest: serde_json::Value = serde_json::from_str(include_str!("../interop/package.json"))
        .expect("tests/interop/package.json");
    let mut out = Vec::new();
    let pins = manifest["dependencies"].as_object().expect("dependencies");
    for (name, pin) in pins.iter().filter(|(n, _)| n.starts_with("@x402/")) {
        let pin = pin.as_str().unwrap_or_default();
        match sdk.packages.get(name) {
            Some(v) if v == pin => {}
            Some(v) => out.push(format!(
                "{name} {v} is installed but {pin} is pinned: run scripts/install-tools.sh"
            )),
            None => out.push(format!(
                "{name} is pinned but not installed: run scripts/install-tools.sh"
            )),
        }
    }
    out
}

/// Our default EVM assets and Solana mints against the packages': the same entries (network and
/// address) with the same decimals, EIP-712 domain, transfer method or token program, and
/// symbol, and the same default (first entry) per network.
pub fn asset_differences(sdk: &SdkVocabulary) -> Vec<String> {
    let method = |m: x402_evm::assets::TransferMethod| match m {
        x402_evm::assets::TransferMethod::Eip3009 => "eip3009",
        x402_evm::assets::TransferMethod::Permit2 => "permit2",
    };
    let ours_evm: Vec<AssetRow> = x402_evm::assets::DEFAULT_ASSETS
        .iter()
        .map(|a| AssetRow {
            network: Network::eip155(a.chain).to_string(),
            address: format!("{:#x}", a.address),
            details: format!(
                "{} {} decimals, EIP-712 {:?} {:?}, {}",
                a.symbol,
                a.decimals,
                a.name,
                a.version,
                method(a.method)
            ),
        })
        .collect();
    let theirs_evm: Vec<AssetRow> = sdk
        .evm_assets
        .iter()
        .map(|a| AssetRow {
            network: a.network.clone(),
            address: a.asset.to_lowercase(),
            details: format!(
                "{} {} decimals, EIP-712 {:?} {:?}, {}",
                a.symbol, a.decimals, a.name, a.version, a.method
            ),
        })
        .collect();
    let ours_svm: Vec<AssetRow> = scheme_exact_svm::assets::DEFAULT_MINTS
        .iter()
        .map(|m| AssetRow {
            network: m.network.to_owned(),
            address: m.mint.to_string(),
            details: format!("{} {} decimals, {}", m.symbol, m.decimals, m.token_program),
        })
        .collect();
    let theirs_svm: Vec<AssetRow> = sdk
        .svm_assets
        .iter()
        .map(|a| AssetRow {
            network: a.network.clone(),
            address: a.asset.clone(),
            details: format!("{} {} decimals, {}", a.symbol, a.decimals, a.token_program),
        })
        .collect();
    let mut out = Vec::new();
    compare_tables("EVM default asset", &ours_evm, &theirs_evm, &mut out);
    compare_tables("Solana default mint", &ours_svm, &theirs_svm, &mut out);
    out
}

/// One entry of a default asset table, as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AssetRow {
    network: String,
    address: String,
    details: String,
}

fn compare_tables(what: &str, ours: &[AssetRow], theirs: &[AssetRow], out: &mut Vec<String>) {
    let same = |a: &AssetRow, b: &AssetRow| a.network == b.network && a.address == b.address;
    for t in theirs {
        match ours.iter().find(|o| same(o, t)) {
            None => out.push(format!(
                "{what} {} on {} ({}) is the official packages' but not ours",
                t.address, t.network, t.details
            )),
            Some(o) if o.details != t.details => out.push(format!(
                "{what} {} on {}: ours {}; official {}",
                t.address, t.network, o.details, t.details
            )),
            Some(_) => {}
        }
    }
    for o in ours {
        if !theirs.iter().any(|t| same(t, o)) {
            out.push(format!(
                "{what} {} on {} ({}) is ours but not the official packages'",
                o.address, o.network, o.details
            ));
        }
    }
    let networks: BTreeSet<&str> = theirs.iter().map(|t| t.network.as_str()).collect();
    for network in networks {
        let first = |rows: &[AssetRow]| {
            rows.iter()
                .find(|r| r.network == network)
                .map(|r| r.address.clone())
        };
        if first(ours) != first(theirs) {
            out.push(format!(
                "{what}: the default on {network} is {:?} here, {:?} officially",
                first(ours),
                first(theirs)
            ));
        }
    }
}

/// Every v1 name the packages know maps to the same network here.
pub fn network_differences(sdk: &SdkVocabulary) -> Vec<String> {
    sdk.v1_networks
        .iter()
        .filter_map(|(name, caip)| match Network::from_v1_name(name) {
            Ok(n) if n.as_str() == caip => None,
            Ok(n) => Some(format!(
                "v1 name {name:?} is {n} here, {caip} in the official packages (document it \
                 next to x402_core::network::V1_NETWORKS if the chain's own id says we are right)"
            )),
            Err(_) => Some(format!(
                "v1 name {name:?} ({caip}) is the official packages' but unknown here"
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An official side that is exactly ours.
    fn mirror() -> SdkVocabulary {
        let reason = |r: &str| SdkReason {
            reason: r.to_owned(),
            package: "@x402/test".into(),
            how: "declared".into(),
        };
        let additions: Vec<&str> = doc_table(ADDITIONS)
            .iter()
            .chain(&doc_table(SPEC_CODES))
            .map(|r| r.code)
            .collect();
        let mut reasons: Vec<SdkReason> = served_codes()
            .keys()
            .filter(|c| !additions.contains(c))
            .map(|c| reason(c))
            .collect();
        // One string per exclusion, so none is stale.
        for row in doc_table(NOT_EMITTED) {
            reasons.push(reason(&row.code.replace('*', "x")));
        }
        SdkVocabulary {
            packages: BTreeMap::new(),
            reasons,
            evm_assets: x402_evm::assets::DEFAULT_ASSETS
                .iter()
                .map(|a| SdkEvmAsset {
                    network: Network::eip155(a.chain).to_string(),
                    asset: a.address.to_checksum(None),
                    name: a.name.into(),
                    version: a.version.into(),
                    decimals: a.decimals,
                    symbol: a.symbol.into(),
                    method: match a.method {
                        x402_evm::assets::TransferMethod::Eip3009 => "eip3009".into(),
                        x402_evm::assets::TransferMethod::Permit2 => "permit2".into(),
                    },
                })
                .collect(),
            svm_assets: scheme_exact_svm::assets::DEFAULT_MINTS
                .iter()
                .map(|m| SdkSvmAsset {
                    network: m.network.into(),
                    asset: m.mint.to_string(),
                    decimals: m.decimals,
                    symbol: m.symbol.into(),
                    token_program: m.token_program.to_string(),
                })
                .collect(),
            v1_networks: [("base-sepolia", "eip155:84532")]
                .into_iter()
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .collect(),
        }
    }

    #[test]
    fn a_mirror_of_ours_has_no_differences() {
        let sdk = mirror();
        assert_eq!(reason_differences(&sdk), Vec::<String>::new());
        assert_eq!(asset_differences(&sdk), Vec::<String>::new());
        assert_eq!(network_differences(&sdk), Vec::<String>::new());
        assert_eq!(doc_differences(), Vec::<String>::new());
    }

    #[test]
    fn every_difference_is_named() {
        let mut sdk = mirror();
        sdk.reasons
            .retain(|r| r.reason != "invalid_exact_evm_signature");
        sdk.reasons.push(SdkReason {
            reason: "invalid_exact_evm_new_check".into(),
            package: "@x402/evm".into(),
            how: "declared".into(),
        });
        sdk.reasons.push(SdkReason {
            reason: "payer_busy".into(),
            package: "@x402/core".into(),
            how: "literal".into(),
        });
        let d = reason_differences(&sdk).join("\n");
        for s in [
            "`invalid_exact_evm_signature` (scheme-exact-evm) is ours",
            "`invalid_exact_evm_new_check` (@x402/evm, declared) is not ours",
            "`payer_busy` is listed in docs/reasons.md as ours alone",
        ] {
            assert!(d.contains(s), "{s:?} in\n{d}");
        }
        sdk.evm_assets[0].decimals += 1;
        sdk.svm_assets.pop();
        sdk.v1_networks.insert("story".into(), "eip155:1513".into());
        let d = asset_differences(&sdk).join("\n");
        assert!(d.contains("EVM default asset") && d.contains("ours"), "{d}");
        assert!(d.contains("is ours but not the official packages'"), "{d}");
        let d = network_differences(&sdk).join("\n");
        assert!(
            d.contains("\"story\" is eip155:1514 here, eip155:1513"),
            "{d}"
        );
    }
}

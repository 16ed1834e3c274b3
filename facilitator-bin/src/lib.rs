#![doc = include_str!("../README.md")]

// rustc drops a dependency that no code names, and its registrations would silently vanish;
// each enabled scheme crate is therefore named here.
#[cfg(feature = "evm")]
use scheme_exact_evm as _;
#[cfg(feature = "svm")]
use scheme_exact_svm as _;
#[cfg(feature = "evm")]
use scheme_upto_evm as _;

use x402_core::{Catalogue, DuplicateId};

/// The schemes linked into this build, collected once; a duplicate id is a start-up error.
pub fn catalogue() -> Result<&'static Catalogue, DuplicateId> {
    Catalogue::linked()
}

/// The scheme table as printed at start-up: one `id  scheme  namespace  versions  crate` line
/// each.
pub fn scheme_table(catalogue: &Catalogue) -> String {
    let mut out = String::new();
    for d in catalogue.iter() {
        let versions: Vec<String> = d.versions.iter().map(|v| format!("v{v}")).collect();
        out.push_str(&format!(
            "{:<14} {:<6} {:<8} {:<6} {}\n",
            d.id,
            d.scheme,
            d.namespace,
            versions.join(","),
            d.crate_name
        ));
    }
    out
}

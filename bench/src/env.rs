//! Facts about the run's environment for the report: date, commit, build profile, versions.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The current time, UTC, ISO 8601.
pub fn now_utc() -> String {
    output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]).unwrap_or_else(|| "unknown".into())
}

/// The workspace's commit, `+dirty` when the tree has uncommitted changes.
pub fn commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let Some(head) = output("git", &["-C", dir, "rev-parse", "--short=10", "HEAD"]) else {
        return "unknown".into();
    };
    let dirty = output("git", &["-C", dir, "status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    if dirty { format!("{head}+dirty") } else { head }
}

/// `release` or `debug`: how this binary was built.
pub fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// Versions of the pieces under test.
pub fn versions(facilitator_bin: &Path, peer_bin: Option<&Path>) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    v.insert(
        "x402-facilitator".into(),
        format!(
            "{} ({}, {})",
            env!("CARGO_PKG_VERSION"),
            facilitator_bin.display(),
            if facilitator_bin.to_string_lossy().contains("/release/") {
                "release build"
            } else {
                "build profile from its path"
            }
        ),
    );
    if let Some(bin) = peer_bin {
        v.insert(
            "x402-rs (peer)".into(),
            format!(
                "x402-facilitator-local, x402-chain-eip155, x402-chain-solana {} from crates.io, \
                 wired as their facilitator binary (bench/peer-x402rs; {})",
                crate::targets::peer_version(),
                bin.display()
            ),
        );
    }
    let anvil = x402_tests::tools::anvil();
    if let Some(a) = output(&anvil.to_string_lossy(), &["--version"]) {
        v.insert(
            "anvil".into(),
            a.lines().next().unwrap_or_default().to_owned(),
        );
    }
    if let Some(n) = output("node", &["--version"]) {
        v.insert("node".into(), n);
    }
    let ts = crate::targets::ts_dir().join("node_modules");
    for pkg in [
        "@x402/core",
        "@x402/evm",
        "@x402/svm",
        "viem",
        "@solana/kit",
    ] {
        let manifest = ts.join(pkg).join("package.json");
        let version = std::fs::read_to_string(&manifest)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|j| j["version"].as_str().map(str::to_owned));
        if let Some(version) = version {
            v.insert(pkg.into(), version);
        }
    }
    v
}

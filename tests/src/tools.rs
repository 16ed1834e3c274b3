//! Where the test bed finds its tools: the paths `scripts/install-tools.sh` writes to
//! `$X402_CACHE/env.sh`, taken from the environment or, failing that, from the default cache.

use std::path::{Path, PathBuf};

/// The cache root used by `scripts/install-tools.sh`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("X402_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("x402-rs")
}

/// Reads `KEY=VALUE` exports from `$X402_CACHE/env.sh` (written by the install script).
fn from_env_file(key: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(cache_dir().join("env.sh")).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix("export ")?;
        let (k, v) = rest.split_once('=')?;
        (k == key).then(|| PathBuf::from(v.trim_matches('"')))
    })
}

/// Resolves a tool path: environment variable, then the install script's env file.
///
/// # Panics
/// When the tool is not installed: that is an install bug, and the test must fail, not skip.
pub fn require(key: &str) -> PathBuf {
    let path = std::env::var_os(key)
        .map(PathBuf::from)
        .or_else(|| from_env_file(key));
    match path {
        Some(p) if p.exists() => p,
        Some(p) => panic!(
            "{key} points at {} which does not exist; run scripts/install-tools.sh",
            p.display()
        ),
        None => panic!(
            "{key} is not set and no {} exists; run scripts/install-tools.sh",
            cache_dir().join("env.sh").display()
        ),
    }
}

/// The anvil binary.
pub fn anvil() -> PathBuf {
    require("X402_ANVIL")
}

/// The solana-test-validator binary.
pub fn solana_test_validator() -> PathBuf {
    require("X402_SOLANA_TEST_VALIDATOR")
}

/// The `node_modules` folder holding the contract packages and solc-js.
pub fn node_modules() -> PathBuf {
    require("X402_NODE_MODULES")
}

/// The folder of compiled test contracts written by `scripts/compile-contracts.mjs`.
pub fn contracts_dir() -> PathBuf {
    require("X402_CONTRACTS_DIR")
}

/// Reads a JSON artifact (abi + bytecode) below `root`.
///
/// # Panics
/// When the file is missing or not JSON (an install bug).
pub fn read_json(root: &Path, rel: &str) -> serde_json::Value {
    let path = root.join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; run scripts/install-tools.sh",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

//! The facilitators under test, each started as its own process on loopback so its CPU and
//! memory can be read from `/proc`: our `x402-facilitator` binary on a generated config,
//! x402-rs/x402-rs's facilitator (`bench/peer-x402rs`, built from their published crates) on a
//! generated config of theirs, and the official TypeScript library (`@x402/core` with `@x402/evm`
//! or `@x402/svm`) behind a bare Node HTTP server (`bench/ts-facilitator/server.mjs`).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use alloy::hex;
use alloy::primitives::{Address, address};
use alloy::signers::local::PrivateKeySigner;
use serde_json::json;

use crate::report::Who;

/// The TypeScript server, written next to its `node_modules` at run time.
const TS_SERVER: &str = include_str!("../ts-facilitator/server.mjs");
/// How long a facilitator may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// What a facilitator is pointed at.
#[derive(Debug, Clone)]
pub struct EvmSetup {
    /// The chain id.
    pub chain_id: u64,
    /// The JSON-RPC URL the facilitator uses (the counting proxy).
    pub rpc_url: String,
    /// The accepted token.
    pub usdc: Address,
    /// The keys it settles with.
    pub signers: Vec<PrivateKeySigner>,
    /// Its settlement store's address (`memory`, `sqlite:<path>`, `postgres://…`), handed over
    /// in the environment like a secret.
    pub store_url: String,
}

/// x402-rs's facilitator refuses to start unless a contract is deployed here: the ERC-6492
/// `UniversalSigValidator` it calls for counterfactual-wallet signatures only (never for an EOA's
/// payment, which is all the corpus holds). The bench chain has none, so [`PEER_VALIDATOR_STUB`]
/// is placed here before the peer starts.
pub const PEER_VALIDATOR_6492: Address = address!("0xdAcD51A54883eb67D95FAEb2BBfdC4a9a6BD2a3B");
/// `PUSH1 0 PUSH1 0 REVERT`: any call reverts, so a payment that did reach the validator would
/// fail visibly rather than pass.
pub const PEER_VALIDATOR_STUB: &str = "0x60006000fd";

/// The peer's manifest lock, for the version of their crates it was built from.
const PEER_LOCK: &str = include_str!("../peer-x402rs/Cargo.lock");

/// The version of x402-rs/x402-rs's crates the peer is built from (`x402-facilitator-local` in
/// `bench/peer-x402rs/Cargo.lock`).
pub fn peer_version() -> &'static str {
    PEER_LOCK
        .split("[[package]]")
        .find(|p| p.contains("name = \"x402-facilitator-local\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map_or("?", |v| v.trim_matches('"'))
}

/// A facilitator process, killed on drop.
#[derive(Debug)]
pub struct Facilitator {
    /// A label for the report.
    pub name: String,
    /// Which facilitator it is.
    pub who: Who,
    /// Its base URL.
    pub url: String,
    /// Its process id.
    pub pid: u32,
    child: Child,
    log: Arc<Mutex<VecDeque<String>>>,
    _config: Option<tempfile::NamedTempFile>,
}

impl Drop for Facilitator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Facilitator {
    /// The last lines it wrote to stderr.
    pub fn recent_log(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

fn key_hex(k: &PrivateKeySigner) -> String {
    format!("0x{}", hex::encode(k.to_bytes()))
}

/// Our facilitator's configuration for `setup`, and the environment holding its secrets.
pub fn rust_config(setup: &EvmSetup) -> (String, Vec<(String, String)>) {
    let mut env = vec![
        ("X402_BENCH_RPC".to_owned(), setup.rpc_url.clone()),
        ("X402_BENCH_STORE".to_owned(), setup.store_url.clone()),
    ];
    let mut refs = Vec::new();
    for (i, k) in setup.signers.iter().enumerate() {
        env.push((format!("X402_BENCH_KEY_{i}"), key_hex(k)));
        refs.push(format!("\"$X402_BENCH_KEY_{i}\""));
    }
    let text = format!(
        r#"listen = "127.0.0.1:0"
# the benchmark measures settlement, not access control
auth = "none"
[log]
level = "warn"
[store]
url = "$X402_BENCH_STORE"
[limits]
settle_timeout_ms = 120000
shutdown_grace_ms = 130000
# the driver is one client standing in for many sellers (c up to 1,024, open loop up to 4,096)
per_client_concurrency = 4096
[networks."eip155:{chain}"]
rpc_urls = ["$X402_BENCH_RPC"]
signer_keys = [{keys}]
receipt_timeout_ms = 60000
[networks."eip155:{chain}".schemes.exact]
assets = ["{usdc}"]
"#,
        chain = setup.chain_id,
        keys = refs.join(", "),
        usdc = setup.usdc,
    );
    (text, env)
}

/// Starts our facilitator binary `bin` for `setup`.
pub fn start_rust(bin: &Path, setup: &EvmSetup) -> Result<Facilitator, String> {
    let (text, env) = rust_config(setup);
    let n = setup.signers.len();
    let store = match setup.store_url.split(':').next() {
        Some("memory") | None => String::new(),
        Some(kind) => format!(", {kind} store"),
    };
    let name = format!("ours ({n} signer{}{store})", plural(n));
    start_rust_with(bin, name, &text, &env)
}

/// Starts our facilitator binary `bin` on the configuration `text` with `env` set.
pub fn start_rust_with(
    bin: &Path,
    name: String,
    text: &str,
    env: &[(String, String)],
) -> Result<Facilitator, String> {
    if !bin.exists() {
        return Err(format!(
            "{} does not exist; build it with `cargo build --release -p facilitator-bin`",
            bin.display()
        ));
    }
    let mut file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    cmd.arg("--config")
        .arg(file.path())
        .envs(env.iter().map(|(k, v)| (k, v)));
    spawn(cmd, name, Who::Ours, Some(file))
}

/// x402-rs's configuration (their JSON format) serving `chain_id` with the keys and RPC URL of
/// `setup`, the secrets in the environment as their `"$VAR"` references read them.
pub fn peer_config(setup: &EvmSetup) -> (String, Vec<(String, String)>) {
    let mut env = vec![("X402_BENCH_RPC".to_owned(), setup.rpc_url.clone())];
    let mut refs = Vec::new();
    for (i, k) in setup.signers.iter().enumerate() {
        env.push((format!("X402_BENCH_KEY_{i}"), key_hex(k)));
        refs.push(format!("$X402_BENCH_KEY_{i}"));
    }
    let network = format!("eip155:{}", setup.chain_id);
    let config = json!({
        "host": "127.0.0.1",
        "port": 0,
        "chains": {
            network.clone(): {
                "eip1559": true,
                "flashblocks": false,
                "signers": refs,
                "rpc": [{"http": "$X402_BENCH_RPC"}],
                // ours waits 60 s for a receipt too
                "receipt_timeout_secs": 60,
            }
        },
        "schemes": [{"id": "v2-eip155-exact", "chains": network}],
    });
    (config.to_string(), env)
}

/// Starts x402-rs's facilitator (`bin`, built from `bench/peer-x402rs`) for `setup`. The chain
/// needs [`PEER_VALIDATOR_STUB`] at [`PEER_VALIDATOR_6492`] first.
pub fn start_peer(bin: &Path, setup: &EvmSetup) -> Result<Facilitator, String> {
    let (text, env) = peer_config(setup);
    let n = setup.signers.len();
    let name = format!("x402-rs {} ({n} signer{})", peer_version(), plural(n));
    start_peer_with(bin, name, &text, &env)
}

/// Starts x402-rs's facilitator serving the Solana cluster at `rpc_url` as `network` with the
/// fee payer `key` (a 64-byte key pair, base58).
pub fn start_peer_svm(
    bin: &Path,
    rpc_url: &str,
    network: &str,
    key: &str,
) -> Result<Facilitator, String> {
    let config = json!({
        "host": "127.0.0.1",
        "port": 0,
        "chains": {
            network: {"signer": "$X402_BENCH_KEY_0", "rpc": "$X402_BENCH_RPC"}
        },
        "schemes": [{"id": "v2-solana-exact", "chains": network}],
    });
    let env = [
        ("X402_BENCH_RPC".to_owned(), rpc_url.to_owned()),
        ("X402_BENCH_KEY_0".to_owned(), key.to_owned()),
    ];
    let name = format!("x402-rs {} (1 fee payer)", peer_version());
    start_peer_with(bin, name, &config.to_string(), &env)
}

fn start_peer_with(
    bin: &Path,
    name: String,
    text: &str,
    env: &[(String, String)],
) -> Result<Facilitator, String> {
    if !bin.exists() {
        return Err(format!(
            "{} does not exist; build it with `cargo build --release --manifest-path \
             bench/peer-x402rs/Cargo.toml` (bench/run.sh does)",
            bin.display()
        ));
    }
    let mut file = tempfile::Builder::new()
        .suffix(".json")
        .tempfile()
        .map_err(|e| e.to_string())?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    cmd.arg("--config")
        .arg(file.path())
        .env_remove("CONFIG")
        .env_remove("HOST")
        .env_remove("PORT")
        .envs(env.iter().map(|(k, v)| (k, v)));
    spawn(cmd, name, Who::X402Rs, Some(file))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Where the TypeScript facilitator's packages are installed (`scripts/install-tools.sh`).
pub fn ts_dir() -> PathBuf {
    std::env::var_os("X402_BENCH_TS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| x402_tests::tools::cache_dir().join("bench-ts"))
}

/// `node server.mjs` in the TypeScript install, which must hold `package` (`@x402/evm`,
/// `@x402/svm`).
fn ts_command(package: &str) -> Result<Command, String> {
    let dir = ts_dir();
    if !dir
        .join("node_modules")
        .join(package)
        .join("package.json")
        .exists()
    {
        return Err(format!(
            "{package} is not installed in {}; run scripts/install-tools.sh",
            dir.display()
        ));
    }
    let script = dir.join("server.mjs");
    std::fs::write(&script, TS_SERVER).map_err(|e| format!("{}: {e}", script.display()))?;
    let mut cmd = Command::new("node");
    cmd.arg(&script);
    for var in [
        "RPC_URL",
        "CHAIN_ID",
        "SIGNER_KEY",
        "SVM_RPC_URL",
        "SVM_NETWORK",
        "SVM_SIGNER_KEY",
    ] {
        cmd.env_remove(var);
    }
    Ok(cmd)
}

/// Starts the TypeScript reference facilitator for `setup` (its first signer only: the
/// library's viem signer wraps one account).
pub fn start_ts(setup: &EvmSetup) -> Result<Facilitator, String> {
    let key = setup
        .signers
        .first()
        .ok_or("no signer for the TS facilitator")?;
    let mut cmd = ts_command("@x402/evm")?;
    cmd.env("RPC_URL", &setup.rpc_url)
        .env("CHAIN_ID", setup.chain_id.to_string())
        .env("SIGNER_KEY", key_hex(key));
    spawn(
        cmd,
        "TypeScript @x402/core + @x402/evm".into(),
        Who::TypeScript,
        None,
    )
}

/// Starts the TypeScript reference facilitator (`@x402/svm`) serving the Solana cluster at
/// `rpc_url` as `network` with the fee payer `key` (a 64-byte key pair, base58).
pub fn start_ts_svm(rpc_url: &str, network: &str, key: &str) -> Result<Facilitator, String> {
    let mut cmd = ts_command("@x402/svm")?;
    cmd.env("SVM_RPC_URL", rpc_url)
        .env("SVM_NETWORK", network)
        .env("SVM_SIGNER_KEY", key);
    spawn(
        cmd,
        "TypeScript @x402/core + @x402/svm".into(),
        Who::TypeScript,
        None,
    )
}

fn spawn(
    mut cmd: Command,
    name: String,
    who: Who,
    config: Option<tempfile::NamedTempFile>,
) -> Result<Facilitator, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{name}: cannot start: {e}"))?;
    let log = Arc::new(Mutex::new(VecDeque::new()));
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        drain(out, log.clone(), Some(tx));
    }
    if let Some(err) = child.stderr.take() {
        drain(err, log.clone(), None);
    }
    let pid = child.id();
    let mut facilitator = Facilitator {
        name,
        who,
        url: String::new(),
        pid,
        child,
        log,
        _config: config,
    };
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(url) => {
            facilitator.url = url;
            Ok(facilitator)
        }
        Err(_) => Err(format!(
            "{} printed no `listening on` line within {START_TIMEOUT:?}:\n{}",
            facilitator.name,
            facilitator.recent_log()
        )),
    }
}

/// Reads a pipe to its end, keeping the last lines; reports the first `listening on URL`.
fn drain(
    pipe: impl Read + Send + 'static,
    log: Arc<Mutex<VecDeque<String>>>,
    listening: Option<mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        let mut listening = listening;
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = line.trim().strip_prefix("listening on ")
                && let Some(tx) = listening.take()
            {
                let _ = tx.send(url.to_owned());
            }
            let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
            if log.len() == 40 {
                log.pop_front();
            }
            log.push_back(line);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_version_comes_from_its_lock_file() {
        let v = peer_version();
        assert!(
            v.starts_with("2."),
            "x402-facilitator-local {v} in bench/peer-x402rs/Cargo.lock"
        );
    }

    #[test]
    fn the_peer_config_is_theirs_with_secrets_in_the_environment() {
        let keys = vec![PrivateKeySigner::random(), PrivateKeySigner::random()];
        let setup = EvmSetup {
            chain_id: 31337,
            rpc_url: "http://127.0.0.1:9/".into(),
            usdc: Address::ZERO,
            signers: keys.clone(),
            store_url: "memory".into(),
        };
        let (text, env) = peer_config(&setup);
        let config: serde_json::Value = serde_json::from_str(&text).unwrap();
        let chain = &config["chains"]["eip155:31337"];
        assert_eq!(
            chain["signers"],
            json!(["$X402_BENCH_KEY_0", "$X402_BENCH_KEY_1"])
        );
        assert_eq!(chain["rpc"], json!([{"http": "$X402_BENCH_RPC"}]));
        assert_eq!(
            config["schemes"],
            json!([{"id": "v2-eip155-exact", "chains": "eip155:31337"}])
        );
        assert_eq!(config["port"], 0);
        assert!(!text.contains(&key_hex(&keys[0])), "no key in the file");
        let env: std::collections::HashMap<_, _> = env.into_iter().collect();
        assert_eq!(env["X402_BENCH_KEY_1"], key_hex(&keys[1]));
        assert_eq!(env["X402_BENCH_RPC"], "http://127.0.0.1:9/");
    }
}

//! An anvil node on a free port, killed when its guard drops.
//!
//! [`AnvilGuard::start`] runs `anvil --port 0` under [`ChildGuard`], reads the port and the dev
//! accounts' keys from anvil's start-up banner, and returns once `eth_chainId` answers with the
//! configured chain id. A background thread keeps draining anvil's stdout and stderr (keeping the
//! last lines for error messages) so a full pipe can never stall the node.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::network::EthereumWallet;
use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;

use crate::process::ChildGuard;
use crate::tools;

/// anvil's default chain id.
pub const DEFAULT_CHAIN_ID: u64 = 31337;

/// The private key of anvil's dev account #0 (from the public `test test … junk` mnemonic).
pub const DEV_ACCOUNT_0_KEY: &str =
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// How long anvil may take to print its port and answer `eth_chainId`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How many of anvil's last output lines are kept for error messages.
const LOG_TAIL: usize = 60;

/// How to start anvil.
#[derive(Debug, Clone)]
pub struct AnvilConfig {
    /// The chain id (`--chain-id`).
    pub chain_id: u64,
    /// Interval mining every this many seconds (`--block-time`); `None` mines on every transaction.
    pub block_time: Option<u64>,
    /// How many dev accounts to generate from the default mnemonic (`--accounts`).
    pub accounts: usize,
    /// Further arguments passed to anvil as they are.
    pub extra_args: Vec<String>,
}

impl Default for AnvilConfig {
    fn default() -> Self {
        Self {
            chain_id: DEFAULT_CHAIN_ID,
            block_time: None,
            accounts: 10,
            extra_args: Vec::new(),
        }
    }
}

/// One of anvil's pre-funded dev accounts (10,000 ETH each).
#[derive(Debug, Clone)]
pub struct DevAccount {
    /// Its index in anvil's account list (derivation path `m/44'/60'/0'/0/index`).
    pub index: usize,
    /// Its address.
    pub address: Address,
    /// Its signer (private key).
    pub signer: PrivateKeySigner,
}

/// The last lines anvil wrote, shared with the threads that drain its pipes.
type LogTail = Arc<Mutex<VecDeque<String>>>;

/// A running anvil; dropping the guard kills it.
#[derive(Debug)]
pub struct AnvilGuard {
    child: ChildGuard,
    port: u16,
    endpoint: String,
    chain_id: u64,
    accounts: Vec<DevAccount>,
    log: LogTail,
}

/// What the stdout thread reports while anvil starts.
enum StartEvent {
    Keys(Vec<String>),
    Listening(u16),
    Eof,
}

impl AnvilGuard {
    /// Starts anvil with the defaults: chain id 31337, 10 accounts, mining on every transaction.
    ///
    /// # Panics
    /// When anvil is not installed or does not come up within the start-up timeout.
    pub fn start() -> Self {
        Self::start_with(AnvilConfig::default())
    }

    /// Starts anvil with `config` and waits until it answers `eth_chainId`.
    ///
    /// # Panics
    /// When anvil is not installed or does not come up within the start-up timeout.
    pub fn start_with(config: AnvilConfig) -> Self {
        let started = Instant::now();
        let mut args: Vec<String> = vec![
            "--port".into(),
            "0".into(),
            "--host".into(),
            "127.0.0.1".into(),
            "--chain-id".into(),
            config.chain_id.to_string(),
            "--accounts".into(),
            config.accounts.to_string(),
        ];
        if let Some(secs) = config.block_time {
            args.extend(["--block-time".into(), secs.to_string()]);
        }
        args.extend(config.extra_args.iter().cloned());

        let mut child = ChildGuard::spawn("anvil", &tools::anvil(), &args);
        let log: LogTail = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_TAIL)));
        let stdout = child
            .child_mut()
            .stdout
            .take()
            .expect("anvil stdout is piped");
        let stderr = child
            .child_mut()
            .stderr
            .take()
            .expect("anvil stderr is piped");
        let (tx, rx) = mpsc::channel();
        spawn_stdout_reader(stdout, tx, Arc::clone(&log));
        spawn_drain(stderr, Arc::clone(&log));

        let mut keys = Vec::new();
        let port = loop {
            let left = START_TIMEOUT.saturating_sub(started.elapsed());
            match rx.recv_timeout(left) {
                Ok(StartEvent::Keys(k)) => keys = k,
                Ok(StartEvent::Listening(port)) => break port,
                Ok(StartEvent::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => panic!(
                    "anvil exited before listening (args {args:?}); its output:\n{}",
                    tail(&log)
                ),
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "anvil printed no `Listening on` line within {START_TIMEOUT:?}; its output:\n{}",
                    tail(&log)
                ),
            }
        };

        let accounts = parse_accounts(&keys);
        assert_eq!(
            accounts.len(),
            config.accounts,
            "anvil listed {} private keys, expected {}",
            accounts.len(),
            config.accounts
        );

        let guard = Self {
            child,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            chain_id: config.chain_id,
            accounts,
            log,
        };
        guard.wait_for_chain_id(started);
        guard
    }

    /// Polls `eth_chainId` until it answers with the configured chain id.
    fn wait_for_chain_id(&self, started: Instant) {
        let mut last_error = String::from("no answer yet");
        while started.elapsed() < START_TIMEOUT {
            match rpc_chain_id(self.port) {
                Ok(id) if id == self.chain_id => return,
                Ok(id) => panic!(
                    "anvil on port {} reports chain id {id}, expected {}",
                    self.port, self.chain_id
                ),
                Err(e) => last_error = e,
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "anvil on port {} did not answer eth_chainId within {START_TIMEOUT:?} ({last_error}); its output:\n{}",
            self.port,
            tail(&self.log)
        );
    }

    /// The JSON-RPC URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The port anvil listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process group id of anvil and its watchdog.
    pub fn process_group(&self) -> u32 {
        self.child.id()
    }

    /// The chain id anvil was started with.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// All dev accounts, in anvil's order.
    pub fn accounts(&self) -> &[DevAccount] {
        &self.accounts
    }

    /// Dev account `index`.
    ///
    /// # Panics
    /// When anvil was started with fewer accounts.
    pub fn account(&self, index: usize) -> &DevAccount {
        self.accounts.get(index).unwrap_or_else(|| {
            panic!(
                "anvil has {} dev accounts, no #{index}",
                self.accounts.len()
            )
        })
    }

    /// A provider without a wallet, for reads and raw RPC calls (`anvil_*`, `evm_*`).
    pub fn provider(&self) -> DynProvider {
        ProviderBuilder::new().connect_http(self.url()).erased()
    }

    /// A provider that signs with every dev account (pick one with the request's `from`; the
    /// default is account #0). Nonces are read from the node for each transaction, so other
    /// providers may send from the same accounts.
    pub fn wallet_provider(&self) -> DynProvider {
        let mut signers = self.accounts.iter().map(|a| a.signer.clone());
        let mut wallet = EthereumWallet::new(signers.next().expect("anvil has no dev accounts"));
        for signer in signers {
            wallet.register_signer(signer);
        }
        ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(wallet)
            .connect_http(self.url())
            .erased()
    }

    /// The last lines anvil wrote to stdout and stderr (for diagnosing a failure).
    pub fn recent_output(&self) -> String {
        tail(&self.log)
    }

    fn url(&self) -> alloy::transports::http::reqwest::Url {
        self.endpoint.parse().expect("anvil endpoint is a URL")
    }
}

/// Derives the dev accounts from the keys anvil printed.
fn parse_accounts(keys: &[String]) -> Vec<DevAccount> {
    keys.iter()
        .enumerate()
        .map(|(index, key)| {
            let signer: PrivateKeySigner = key
                .parse()
                .unwrap_or_else(|e| panic!("anvil printed an unreadable key #{index}: {e}"));
            DevAccount {
                index,
                address: signer.address(),
                signer,
            }
        })
        .collect()
}

/// Reads anvil's stdout: reports the private keys and the port, then keeps draining.
fn spawn_stdout_reader(
    stdout: impl Read + Send + 'static,
    tx: mpsc::Sender<StartEvent>,
    log: LogTail,
) {
    std::thread::spawn(move || {
        let mut in_keys = false;
        let mut keys = Vec::new();
        let mut reported = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !reported {
                let trimmed = line.trim();
                if trimmed == "Private Keys" {
                    in_keys = true;
                } else if in_keys && trimmed.starts_with('(') {
                    if let Some((_, key)) = trimmed.split_once(") ") {
                        keys.push(key.trim().to_owned());
                    }
                } else if in_keys && !trimmed.is_empty() && !trimmed.starts_with('=') {
                    in_keys = false;
                    let _ = tx.send(StartEvent::Keys(std::mem::take(&mut keys)));
                }
                if let Some(port) = trimmed
                    .strip_prefix("Listening on ")
                    .and_then(|addr| addr.parse::<SocketAddr>().ok())
                    .map(|addr| addr.port())
                {
                    if in_keys {
                        in_keys = false;
                        let _ = tx.send(StartEvent::Keys(std::mem::take(&mut keys)));
                    }
                    reported = true;
                    let _ = tx.send(StartEvent::Listening(port));
                }
                // Keys are secrets only in name (a public mnemonic), but keep them out of logs.
                if in_keys {
                    continue;
                }
            }
            push_line(&log, line);
        }
        if !reported {
            let _ = tx.send(StartEvent::Eof);
        }
    });
}

/// Reads a pipe to its end, keeping the last lines.
fn spawn_drain(pipe: impl Read + Send + 'static, log: LogTail) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            push_line(&log, line);
        }
    });
}

fn push_line(log: &LogTail, line: String) {
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    if log.len() == LOG_TAIL {
        log.pop_front();
    }
    log.push_back(line);
}

fn tail(log: &LogTail) -> String {
    let log = log.lock().unwrap_or_else(|e| e.into_inner());
    log.iter().cloned().collect::<Vec<_>>().join("\n")
}

/// Asks `eth_chainId` over a bare HTTP/1.1 connection (no async runtime needed).
fn rpc_chain_id(port: u16) -> Result<u64, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let json = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .ok_or_else(|| format!("malformed HTTP response: {response:?}"))?;
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("not JSON ({e}): {json:?}"))?;
    let hex = value["result"]
        .as_str()
        .ok_or_else(|| format!("no result: {value}"))?;
    u64::from_str_radix(hex.trim_start_matches("0x"), 16).map_err(|e| format!("{hex}: {e}"))
}

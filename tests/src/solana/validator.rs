//! `solana-test-validator` on a temporary ledger and a block of free ports, killed (and its
//! ledger removed) on drop.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::process::ChildGuard;
use crate::tools;

/// How long a validator may take to answer `getHealth` with `ok`: a hang guard, generous enough
/// for a start on two busy cores.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How often start-up is retried when the validator dies early (a port taken meanwhile).
const START_ATTEMPTS: usize = 3;

/// Ports per validator: rpc, pubsub (rpc + 1), faucet, gossip, then the dynamic range.
const PORT_BLOCK: u16 = 64;
/// The first port handed out; blocks stay below Linux's ephemeral range (32768 and up), where
/// port-0 binds (anvil, in-process servers) land.
const PORT_BASE: u16 = 12_000;
/// Number of port blocks (12000..31200).
const PORT_BLOCKS: u16 = 300;
/// Lines of validator stdout/stderr kept for panic messages.
const OUTPUT_LINES: usize = 200;

/// A running `solana-test-validator` on a temporary ledger; killed (and the ledger removed) on
/// drop.
pub struct ValidatorGuard {
    // Field order is drop order: the process dies before its ledger is removed.
    child: ChildGuard,
    ledger: tempfile::TempDir,
    ports: PortBlock,
    rpc_url: String,
    output: OutputTail,
}

impl fmt::Debug for ValidatorGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatorGuard")
            .field("rpc_url", &self.rpc_url)
            .field("process_group", &self.child.id())
            .field("ledger", &self.ledger.path())
            .finish_non_exhaustive()
    }
}

impl ValidatorGuard {
    /// Starts a validator and blocks until `getHealth` answers `ok` (at most [`START_TIMEOUT`] per attempt).
    ///
    /// # Panics
    /// When the binary is missing (an install bug) or the validator does not become healthy; the
    /// message carries the tail of its output and log.
    pub fn start() -> Self {
        let program = tools::solana_test_validator();
        assert!(
            program.exists(),
            "solana-test-validator: {} does not exist; run scripts/install-tools.sh",
            program.display()
        );
        let root = std::env::temp_dir().join("x402-svm-ledgers");
        std::fs::create_dir_all(&root)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", root.display()));
        sweep_dead_ledgers(&root);
        // Blocks that failed stay locked until we succeed, so a retry picks another one.
        let mut failed_blocks = Vec::new();
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            let ports = PortBlock::reserve();
            let ledger = tempfile::Builder::new()
                .prefix(&format!("ledger-{}-", std::process::id()))
                .tempdir_in(&root)
                .unwrap_or_else(|e| {
                    panic!("cannot create a ledger dir in {}: {e}", root.display())
                });
            let (launcher, args) = favoured(&program, ports.args(ledger.path()));
            let mut child = ChildGuard::spawn("solana-test-validator", &launcher, &args);
            let output = OutputTail::default();
            if let Some(out) = child.child_mut().stdout.take() {
                output.drain(out, "stdout");
            }
            if let Some(err) = child.child_mut().stderr.take() {
                output.drain(err, "stderr");
            }
            let rpc_url = format!("http://127.0.0.1:{}", ports.rpc());
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if health_ok(ports.rpc()) {
                    return Self {
                        child,
                        ledger,
                        ports,
                        rpc_url,
                        output,
                    };
                }
                if let Ok(Some(status)) = child.child_mut().try_wait() {
                    failures.push(format!(
                        "attempt {attempt} (ports {}..{}): the validator exited early \
                         (watchdog {status}):\n{}",
                        ports.base,
                        ports.base + PORT_BLOCK,
                        diagnostics(&output, ledger.path())
                    ));
                    failed_blocks.push(ports);
                    break;
                }
                if Instant::now() >= deadline {
                    panic!(
                        "solana-test-validator at {rpc_url} did not answer getHealth=ok within {} s:\n{}",
                        START_TIMEOUT.as_secs(),
                        diagnostics(&output, ledger.path())
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!(
            "solana-test-validator failed to start {START_ATTEMPTS} times:\n{}",
            failures.join("\n\n")
        );
    }

    /// The JSON-RPC URL (`http://127.0.0.1:PORT`).
    pub fn rpc_url(&self) -> &str {
        &self.rpc_url
    }

    /// The PubSub (websocket) URL, on the port after the RPC port.
    pub fn websocket_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.ports.rpc() + 1)
    }

    /// The ledger directory (removed on drop).
    pub fn ledger_path(&self) -> &Path {
        self.ledger.path()
    }

    /// The process group of the watchdog and validator (see [`ChildGuard::id`]).
    pub fn process_group(&self) -> u32 {
        self.child.id()
    }

    /// The pid of the `solana-test-validator` process itself, while it runs.
    pub fn validator_pid(&self) -> Option<u32> {
        let watchdog = self.child.id();
        let children =
            std::fs::read_to_string(format!("/proc/{watchdog}/task/{watchdog}/children")).ok()?;
        children
            .split_whitespace()
            .filter_map(|pid| pid.parse::<u32>().ok())
            .find(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| {
                    let argv0 = cmd.split(|b| *b == 0).next().unwrap_or_default();
                    argv0.ends_with(b"solana-test-validator")
                })
            })
    }

    /// Whether `getHealth` answers `ok` right now.
    pub fn is_healthy(&self) -> bool {
        health_ok(self.ports.rpc())
    }

    /// The tail of the validator's stdout/stderr and log file, for failure messages.
    pub fn diagnostics(&self) -> String {
        diagnostics(&self.output, self.ledger.path())
    }
}

/// A reserved block of [`PORT_BLOCK`] consecutive ports. The reservation is an exclusive lock on
/// a file named after the block, so parallel test binaries never pick the same block; the OS
/// drops the lock when the process dies.
struct PortBlock {
    base: u16,
    _lock: File,
}

impl PortBlock {
    fn reserve() -> Self {
        let dir = std::env::temp_dir().join("x402-svm-ports");
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let seed = RandomState::new().hash_one((std::process::id(), Instant::now()));
        let first = u16::try_from(seed % u64::from(PORT_BLOCKS)).unwrap_or(0);
        for i in 0..PORT_BLOCKS {
            let base = PORT_BASE + ((first + i) % PORT_BLOCKS) * PORT_BLOCK;
            let path = dir.join(format!("{base}.lock"));
            let Ok(lock) = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
            else {
                continue;
            };
            if lock.try_lock().is_ok() && (base..base + PORT_BLOCK).all(port_is_free) {
                return Self { base, _lock: lock };
            }
        }
        panic!("no free block of {PORT_BLOCK} ports between {PORT_BASE} and 31200");
    }

    fn rpc(&self) -> u16 {
        self.base
    }

    /// The validator's command line for this block and `ledger`.
    fn args(&self, ledger: &Path) -> Vec<String> {
        let b = self.base;
        [
            "--ledger",
            &ledger.display().to_string(),
            "--reset",
            "--quiet",
            "--bind-address",
            "127.0.0.1",
            "--rpc-port",
            &b.to_string(),
            "--faucet-port",
            &(b + 2).to_string(),
            "--gossip-port",
            &(b + 3).to_string(),
            "--dynamic-port-range",
            &format!("{}-{}", b + 4, b + PORT_BLOCK - 1),
        ]
        .map(String::from)
        .to_vec()
    }
}

/// The niceness the validator runs at, where the user may raise priority (root): its slots keep
/// their pace on two cores that tests, builds or an editor keep busy. Measured with
/// `bench/svm-load`: a busy loop on both cores drops slot production from 1.9 to 0.7 slots/s at
/// equal priority and only to 1.6 at -10 (docs/settle-timing.md). Without the right, `nice` says
/// so on stderr and starts the validator at normal priority.
const VALIDATOR_NICENESS: &str = "-10";

/// `program args…` wrapped in `nice -n VALIDATOR_NICENESS` where `nice` exists.
fn favoured(program: &Path, args: Vec<String>) -> (std::path::PathBuf, Vec<String>) {
    let nice = ["/usr/bin/nice", "/bin/nice"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists());
    match nice {
        Some(nice) => {
            let mut wrapped = vec![
                "-n".to_owned(),
                VALIDATOR_NICENESS.to_owned(),
                program.display().to_string(),
            ];
            wrapped.extend(args);
            (nice.to_path_buf(), wrapped)
        }
        None => (program.to_path_buf(), args),
    }
}

/// Whether nothing listens on `port` (TCP or UDP, any address).
fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
        && UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
}

/// One `getHealth` call over plain HTTP/1.0, so it needs no async runtime.
fn health_ok(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"getHealth"}"#;
    let request = format!(
        "POST / HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).contains(r#""result":"ok""#)
}

/// Removes ledgers whose test process is gone (a shared validator's ledger is never dropped).
fn sweep_dead_ledgers(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("ledger-"))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The last [`OUTPUT_LINES`] lines of the child's stdout and stderr, read by threads that keep
/// the pipes drained so the child never blocks on a full pipe.
#[derive(Clone, Default)]
struct OutputTail(Arc<Mutex<VecDeque<String>>>);

impl OutputTail {
    fn drain(&self, stream: impl Read + Send + 'static, label: &'static str) {
        let tail = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("validator-{label}"))
            .spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut line = Vec::new();
                while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                    let text = String::from_utf8_lossy(&line);
                    tail.push(format!("[{label}] {}", text.trim_end()));
                    line.clear();
                }
            });
        spawned.unwrap_or_else(|e| panic!("cannot spawn the {label} reader: {e}"));
    }

    fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == OUTPUT_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    fn text(&self) -> String {
        let lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// The output tail plus the last lines of the validator log (`--quiet` sends its log there).
fn diagnostics(output: &OutputTail, ledger: &Path) -> String {
    let log = std::fs::read(ledger.join("validator.log"))
        .map(|bytes| {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        })
        .unwrap_or_else(|e| format!("(no validator.log: {e})"));
    format!(
        "--- stdout/stderr tail ---\n{}\n--- {} tail ---\n{log}",
        output.text(),
        ledger.join("validator.log").display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_blocks_are_disjoint_and_below_the_ephemeral_range() {
        let a = PortBlock::reserve();
        let b = PortBlock::reserve();
        assert_ne!(a.base, b.base, "a locked block was handed out twice");
        for block in [&a, &b] {
            assert!(block.base >= PORT_BASE && block.base + PORT_BLOCK <= 32_768);
            assert_eq!((block.base - PORT_BASE) % PORT_BLOCK, 0);
        }
        let args = a.args(Path::new("/tmp/ledger"));
        let range = args[args
            .iter()
            .position(|x| x == "--dynamic-port-range")
            .unwrap()
            + 1]
        .clone();
        assert_eq!(range, format!("{}-{}", a.base + 4, a.base + PORT_BLOCK - 1));
    }

    #[test]
    fn health_check_is_false_when_nothing_listens() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        assert!(!health_ok(port));
    }
}

//! The Solana half of the chain test bed: [`ValidatorGuard`] runs `solana-test-validator` on a
//! temporary ledger and free ports, and [`SvmTestBed`] puts an SPL Token mint, a Token-2022 mint
//! and funded buyers, a seller and facilitator fee payers on it.
//!
//! Starting a validator takes seconds, so a test binary normally shares one bed
//! ([`SvmTestBed::shared`]); a test that needs a chain nobody else touches starts its own
//! ([`SvmTestBed::start`]). The shared bed lives in a `static` and is never dropped: the watchdog
//! in [`crate::process`] kills its validator when the test binary exits, and the next validator
//! start (in any test binary) removes the ledgers such dead runs left behind.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use solana_client::nonblocking::rpc_client::RpcClient;
use solana_commitment_config::CommitmentConfig;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_program_pack::Pack;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::Transaction;
use spl_token_2022_interface::extension::StateWithExtensions;
use tokio::sync::OnceCell;

use crate::process::ChildGuard;
use crate::tools;

/// Lamports in one SOL.
pub const LAMPORTS_PER_SOL: u64 = 1_000_000_000;
/// Decimals of both test mints (like USDC).
pub const MINT_DECIMALS: u8 = 6;
/// Atomic units of each mint every buyer starts with (1,000 tokens).
pub const BUYER_TOKENS: u64 = 1_000_000_000;
/// Lamports every buyer starts with.
pub const BUYER_LAMPORTS: u64 = 10 * LAMPORTS_PER_SOL;
/// Lamports every facilitator fee payer starts with.
pub const FEE_PAYER_LAMPORTS: u64 = 100 * LAMPORTS_PER_SOL;
/// Lamports the mint authority starts with (it pays for mints and token accounts).
pub const MINT_AUTHORITY_LAMPORTS: u64 = 1_000 * LAMPORTS_PER_SOL;

/// How long a validator may take to answer `getHealth` with `ok`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often start-up is retried when the validator dies early (a port taken meanwhile).
const START_ATTEMPTS: usize = 3;
/// How long a transaction may take to reach `confirmed`.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// Starts a validator and blocks until `getHealth` answers `ok` (at most 60 s per attempt).
    ///
    /// # Panics
    /// When the binary is missing (an install bug) or the validator does not become healthy; the
    /// message carries the tail of its output and log.
    pub fn start() -> Self {
        let program = tools::solana_test_validator();
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
            let args = ports.args(ledger.path());
            let mut child = ChildGuard::spawn("solana-test-validator", &program, &args);
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
                        "attempt {attempt} (ports {}..{}) exited with {status}:\n{}",
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

/// A mint on the test validator together with the token program that owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestMint {
    /// The mint account.
    pub address: Pubkey,
    /// The owning program: SPL Token or Token-2022.
    pub token_program: Pubkey,
    /// The mint's decimals.
    pub decimals: u8,
}

impl TestMint {
    /// The associated token account of `owner` for this mint.
    pub fn ata(&self, owner: &Pubkey) -> Pubkey {
        spl_associated_token_account_interface::address::get_associated_token_address_with_program_id(
            owner,
            &self.address,
            &self.token_program,
        )
    }
}

/// A validator with a 6-decimal SPL Token mint, a 6-decimal Token-2022 mint (no extensions) and
/// funded accounts: two buyers (SOL and [`BUYER_TOKENS`] of each mint in their ATAs), a seller
/// (`payTo`, empty ATAs for both mints) and two facilitator fee payers (SOL only).
pub struct SvmTestBed {
    validator: ValidatorGuard,
    mint_authority: Keypair,
    buyers: [Keypair; 2],
    seller: Keypair,
    fee_payers: [Keypair; 2],
    spl_token_mint: TestMint,
    token_2022_mint: TestMint,
}

impl fmt::Debug for SvmTestBed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SvmTestBed")
            .field("rpc_url", &self.validator.rpc_url)
            .field("mint_authority", &self.mint_authority.pubkey())
            .field("buyers", &self.buyers.each_ref().map(Keypair::pubkey))
            .field("seller", &self.seller.pubkey())
            .field(
                "fee_payers",
                &self.fee_payers.each_ref().map(Keypair::pubkey),
            )
            .field("spl_token_mint", &self.spl_token_mint)
            .field("token_2022_mint", &self.token_2022_mint)
            .finish()
    }
}

static SHARED: OnceCell<SvmTestBed> = OnceCell::const_new();

impl SvmTestBed {
    /// The bed shared by every test of this test binary, started on first use.
    pub async fn shared() -> &'static SvmTestBed {
        SHARED.get_or_init(Self::start).await
    }

    /// Starts a bed of one's own (a new validator), for tests that need isolation.
    ///
    /// # Panics
    /// When the validator does not start or a set-up transaction fails.
    pub async fn start() -> Self {
        let validator = match tokio::task::spawn_blocking(ValidatorGuard::start).await {
            Ok(v) => v,
            Err(e) => match e.try_into_panic() {
                Ok(payload) => std::panic::resume_unwind(payload),
                Err(e) => panic!("validator start-up task failed: {e}"),
            },
        };
        let rpc = client(validator.rpc_url());
        let mint_authority = Keypair::new();
        let buyers = [Keypair::new(), Keypair::new()];
        let seller = Keypair::new();
        let fee_payers = [Keypair::new(), Keypair::new()];
        let mut airdrops = Vec::new();
        for (who, lamports) in [
            (&mint_authority, MINT_AUTHORITY_LAMPORTS),
            (&buyers[0], BUYER_LAMPORTS),
            (&buyers[1], BUYER_LAMPORTS),
            (&fee_payers[0], FEE_PAYER_LAMPORTS),
            (&fee_payers[1], FEE_PAYER_LAMPORTS),
        ] {
            airdrops.push(request_airdrop(&rpc, &who.pubkey(), lamports).await);
        }
        for signature in &airdrops {
            wait_confirmed(&rpc, signature).await;
        }

        let authority = mint_authority.pubkey();
        let spl_kp = Keypair::new();
        let t22_kp = Keypair::new();
        let spl_token_mint = TestMint {
            address: spl_kp.pubkey(),
            token_program: spl_token_interface::id(),
            decimals: MINT_DECIMALS,
        };
        let token_2022_mint = TestMint {
            address: t22_kp.pubkey(),
            token_program: spl_token_2022_interface::id(),
            decimals: MINT_DECIMALS,
        };
        let rent = rpc
            .get_minimum_balance_for_rent_exemption(spl_token_interface::state::Mint::LEN)
            .await
            .unwrap_or_else(|e| panic!("getMinimumBalanceForRentExemption: {e}"));
        let mut ixs = Vec::new();
        for mint in [&spl_token_mint, &token_2022_mint] {
            ixs.extend(create_mint_ixs(mint, &authority, rent));
        }
        send_with(&rpc, &ixs, &mint_authority, &[&spl_kp, &t22_kp]).await;

        for mint in [&spl_token_mint, &token_2022_mint] {
            let mut ixs = Vec::new();
            for (owner, tokens) in [
                (&buyers[0], BUYER_TOKENS),
                (&buyers[1], BUYER_TOKENS),
                (&seller, 0),
            ] {
                ixs.extend(holder_ixs(mint, &authority, &owner.pubkey(), tokens));
            }
            send_with(&rpc, &ixs, &mint_authority, &[]).await;
        }

        Self {
            validator,
            mint_authority,
            buyers,
            seller,
            fee_payers,
            spl_token_mint,
            token_2022_mint,
        }
    }

    /// The validator.
    pub fn validator(&self) -> &ValidatorGuard {
        &self.validator
    }

    /// The JSON-RPC URL.
    pub fn rpc_url(&self) -> &str {
        self.validator.rpc_url()
    }

    /// A new RPC client (commitment `confirmed`). Each `#[tokio::test]` has its own runtime, and
    /// an HTTP client must not outlive the runtime it was used on, so there is no shared client.
    pub fn rpc(&self) -> RpcClient {
        client(self.rpc_url())
    }

    /// The mint (and freeze) authority of both mints; it also pays for set-up transactions.
    pub fn mint_authority(&self) -> &Keypair {
        &self.mint_authority
    }

    /// The two buyers, each with SOL and [`BUYER_TOKENS`] of both mints.
    pub fn buyers(&self) -> &[Keypair; 2] {
        &self.buyers
    }

    /// The seller (`payTo`): ATAs for both mints, zero balance, no SOL.
    pub fn seller(&self) -> &Keypair {
        &self.seller
    }

    /// The two facilitator fee payers, SOL only.
    pub fn fee_payers(&self) -> &[Keypair; 2] {
        &self.fee_payers
    }

    /// The SPL Token mint.
    pub fn spl_token_mint(&self) -> TestMint {
        self.spl_token_mint
    }

    /// The Token-2022 mint.
    pub fn token_2022_mint(&self) -> TestMint {
        self.token_2022_mint
    }

    /// Both mints: SPL Token first, then Token-2022.
    pub fn mints(&self) -> [TestMint; 2] {
        [self.spl_token_mint, self.token_2022_mint]
    }

    /// The bed's mint at `address`, if it is one.
    pub fn mint(&self, address: &Pubkey) -> Option<TestMint> {
        self.mints().into_iter().find(|m| m.address == *address)
    }

    /// The balance (atomic units) of `owner`'s associated token account for one of the bed's
    /// mints; 0 when that account does not exist.
    ///
    /// # Panics
    /// When `mint` is not one of the bed's mints, or on an RPC error.
    pub async fn token_balance(&self, owner: &Pubkey, mint: &Pubkey) -> u64 {
        let mint = self
            .mint(mint)
            .unwrap_or_else(|| panic!("{mint} is not a mint of this test bed"));
        let ata = mint.ata(owner);
        let account = self
            .rpc()
            .get_account_with_commitment(&ata, CommitmentConfig::confirmed())
            .await
            .unwrap_or_else(|e| panic!("getAccountInfo {ata}: {e}"))
            .value;
        let Some(account) = account else {
            return 0;
        };
        assert_eq!(
            account.owner, mint.token_program,
            "{ata} is not owned by the token program"
        );
        let state =
            StateWithExtensions::<spl_token_2022_interface::state::Account>::unpack(&account.data)
                .unwrap_or_else(|e| panic!("{ata} is not a token account: {e}"));
        assert_eq!(state.base.mint, mint.address, "{ata} holds another mint");
        state.base.amount
    }

    /// The lamports held by `pubkey` (0 for an account that does not exist).
    pub async fn sol_balance(&self, pubkey: &Pubkey) -> u64 {
        self.rpc()
            .get_balance(pubkey)
            .await
            .unwrap_or_else(|e| panic!("getBalance {pubkey}: {e}"))
    }

    /// Airdrops `lamports` to `to` and waits until it is confirmed.
    pub async fn airdrop(&self, to: &Pubkey, lamports: u64) {
        let rpc = self.rpc();
        let signature = request_airdrop(&rpc, to, lamports).await;
        wait_confirmed(&rpc, &signature).await;
    }

    /// A new keypair with `lamports` of SOL and ATAs for both mints holding `tokens` each, for a
    /// test that must not share accounts with the other tests of its binary.
    pub async fn new_token_holder(&self, lamports: u64, tokens: u64) -> Keypair {
        let owner = Keypair::new();
        if lamports > 0 {
            self.airdrop(&owner.pubkey(), lamports).await;
        }
        let authority = self.mint_authority.pubkey();
        let ixs: Vec<Instruction> = self
            .mints()
            .iter()
            .flat_map(|mint| holder_ixs(mint, &authority, &owner.pubkey(), tokens))
            .collect();
        self.send(&ixs, &self.mint_authority, &[]).await;
        owner
    }

    /// Signs `instructions` with `payer` (fee payer) and `signers`, sends them and waits for
    /// `confirmed`.
    ///
    /// # Panics
    /// When the transaction fails.
    pub async fn send(
        &self,
        instructions: &[Instruction],
        payer: &Keypair,
        signers: &[&Keypair],
    ) -> Signature {
        send_with(&self.rpc(), instructions, payer, signers).await
    }
}

/// An RPC client at commitment `confirmed`.
fn client(url: &str) -> RpcClient {
    RpcClient::new_with_commitment(url.to_owned(), CommitmentConfig::confirmed())
}

/// Creates a mint account and initialises it (decimals of `mint`, `authority` mints and freezes).
fn create_mint_ixs(mint: &TestMint, authority: &Pubkey, rent: u64) -> [Instruction; 2] {
    let space = spl_token_interface::state::Mint::LEN as u64;
    let create = solana_system_interface::instruction::create_account(
        authority,
        &mint.address,
        rent,
        space,
        &mint.token_program,
    );
    let init = if mint.token_program == spl_token_interface::id() {
        spl_token_interface::instruction::initialize_mint2(
            &mint.token_program,
            &mint.address,
            authority,
            Some(authority),
            mint.decimals,
        )
    } else {
        spl_token_2022_interface::instruction::initialize_mint2(
            &mint.token_program,
            &mint.address,
            authority,
            Some(authority),
            mint.decimals,
        )
    };
    [
        create,
        init.unwrap_or_else(|e| panic!("initialize_mint2: {e}")),
    ]
}

/// Creates `owner`'s ATA for `mint` (paid by `authority`) and mints `tokens` into it.
fn holder_ixs(
    mint: &TestMint,
    authority: &Pubkey,
    owner: &Pubkey,
    tokens: u64,
) -> Vec<Instruction> {
    let mut ixs = vec![
        spl_associated_token_account_interface::instruction::create_associated_token_account(
            authority,
            owner,
            &mint.address,
            &mint.token_program,
        ),
    ];
    if tokens > 0 {
        let ata = mint.ata(owner);
        let mint_to = if mint.token_program == spl_token_interface::id() {
            spl_token_interface::instruction::mint_to(
                &mint.token_program,
                &mint.address,
                &ata,
                authority,
                &[],
                tokens,
            )
        } else {
            spl_token_2022_interface::instruction::mint_to(
                &mint.token_program,
                &mint.address,
                &ata,
                authority,
                &[],
                tokens,
            )
        };
        ixs.push(mint_to.unwrap_or_else(|e| panic!("mint_to: {e}")));
    }
    ixs
}

async fn request_airdrop(rpc: &RpcClient, to: &Pubkey, lamports: u64) -> Signature {
    rpc.request_airdrop(to, lamports)
        .await
        .unwrap_or_else(|e| panic!("requestAirdrop {lamports} lamports to {to}: {e}"))
}

/// Polls until `signature` is `confirmed`; panics when it failed or took over 30 s.
async fn wait_confirmed(rpc: &RpcClient, signature: &Signature) {
    let deadline = Instant::now() + CONFIRM_TIMEOUT;
    loop {
        let status = rpc
            .get_signature_status_with_commitment(signature, CommitmentConfig::confirmed())
            .await
            .unwrap_or_else(|e| panic!("getSignatureStatuses {signature}: {e}"));
        match status {
            Some(Ok(())) => return,
            Some(Err(e)) => panic!("transaction {signature} failed: {e}"),
            None if Instant::now() >= deadline => {
                panic!(
                    "transaction {signature} not confirmed within {} s",
                    CONFIRM_TIMEOUT.as_secs()
                )
            }
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn send_with(
    rpc: &RpcClient,
    instructions: &[Instruction],
    payer: &Keypair,
    signers: &[&Keypair],
) -> Signature {
    let blockhash = rpc
        .get_latest_blockhash()
        .await
        .unwrap_or_else(|e| panic!("getLatestBlockhash: {e}"));
    let mut all: Vec<&Keypair> = vec![payer];
    all.extend_from_slice(signers);
    let tx =
        Transaction::new_signed_with_payer(instructions, Some(&payer.pubkey()), &all, blockhash);
    rpc.send_and_confirm_transaction(&tx)
        .await
        .unwrap_or_else(|e| panic!("transaction failed: {e}"))
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

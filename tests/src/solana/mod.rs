//! The Solana half of the chain test bed: [`ValidatorGuard`] runs `solana-test-validator` on a
//! temporary ledger and free ports, and [`SvmTestBed`] puts an SPL Token mint, a Token-2022 mint
//! and funded buyers, a seller and facilitator fee payers on it.
//!
//! Starting a validator takes seconds, so a test binary normally shares one bed
//! ([`SvmTestBed::shared`]); a test that needs a chain nobody else touches starts its own
//! ([`SvmTestBed::start`]). The shared bed lives in a `static` and is never dropped: the watchdog
//! in [`crate::process`] kills its validator when the test binary exits, and the next validator
//! start (in any test binary) removes the ledgers such dead runs left behind.

use std::fmt;
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

pub mod exact;
pub mod lighthouse;
mod validator;

pub use validator::ValidatorGuard;

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
/// How long a set-up transaction may take to reach `confirmed` before the bed gives up: a hang
/// guard, generous enough for a validator sharing two busy cores.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(120);

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
            .field("rpc_url", &self.validator.rpc_url())
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

        // One transaction per mint (ATAs for buyers and seller, buyers' tokens), sent together.
        let holders = [
            (buyers[0].pubkey(), BUYER_TOKENS),
            (buyers[1].pubkey(), BUYER_TOKENS),
            (seller.pubkey(), 0),
        ];
        let [spl_ixs, t22_ixs] = [&spl_token_mint, &token_2022_mint].map(|mint| {
            let ixs = holders
                .iter()
                .flat_map(|(owner, tokens)| holder_ixs(mint, &authority, owner, *tokens));
            ixs.collect::<Vec<_>>()
        });
        tokio::join!(
            send_with(&rpc, &spl_ixs, &mint_authority, &[]),
            send_with(&rpc, &t22_ixs, &mint_authority, &[]),
        );

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

    /// The balance (atomic units) of `owner`'s associated token account for `mint` (one of the
    /// bed's mints, or any mint on this validator); 0 when that account does not exist.
    ///
    /// # Panics
    /// When `mint` is not a mint account on this validator, or on an RPC error.
    pub async fn token_balance(&self, owner: &Pubkey, mint: &Pubkey) -> u64 {
        let rpc = self.rpc();
        let mint = match self.mint(mint) {
            Some(known) => known,
            None => {
                let account = rpc
                    .get_account(mint)
                    .await
                    .unwrap_or_else(|e| panic!("mint {mint}: {e}"));
                let state = StateWithExtensions::<spl_token_2022_interface::state::Mint>::unpack(
                    &account.data,
                )
                .unwrap_or_else(|e| panic!("{mint} is not a mint: {e}"));
                TestMint {
                    address: *mint,
                    token_program: account.owner,
                    decimals: state.base.decimals,
                }
            }
        };
        let ata = mint.ata(owner);
        let account = rpc
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

/// Polls until `signature` is `confirmed`; panics when it failed or never confirmed
/// ([`CONFIRM_TIMEOUT`]).
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

//! A facilitator of `exact` on the Solana test bed, with a seller and buyers: everything a test
//! of the scheme needs to build, verify and settle real payments on solana-test-validator.
//!
//! Each harness has its own fee payers, seller and recording RPC proxy, so tests sharing the
//! validator never see each other's balances or broadcasts. The facilitator serves
//! `solana-devnet` (a network v1 names) through the library constructor pointed at the local
//! validator; only the configuration builder checks the genesis hash.

mod proxy;

use std::sync::Arc;
use std::time::Duration;

use scheme_exact_svm::buyer::{BuyerOptions, PaymentPlan, sign_partially};
use scheme_exact_svm::payload::ExactSvmPayload;
use scheme_exact_svm::rpc::Rpc;
use scheme_exact_svm::{Facilitator, Policy};
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;
use spl_token_2022_interface::extension::ExtensionType;
use x402_core::json::JsonLimits;
use x402_core::wire::{
    PaymentPayload, PaymentPayloadV1, PaymentRequirements, PaymentRequirementsV2, Raw,
    SettleResponse, VerifyRequest, VerifyResponse,
};
use x402_core::{
    Amount, Facilitator as _, LocalFacilitator, MemoryStore, Network, Price, PriceRequest, Reason,
    Registry, X402Version,
};
use x402_core::{BuyerRole as _, FacilitatorRole as _};

pub use proxy::{RpcProxy, SendHook, SendMode};

use super::{LAMPORTS_PER_SOL, MINT_DECIMALS, SvmTestBed, TestMint};

/// The network the harness facilitator serves (solana-devnet's CAIP-2 id).
pub const NETWORK: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
/// Lamports each harness fee payer starts with.
pub const FEE_PAYER_LAMPORTS: u64 = LAMPORTS_PER_SOL;
/// Atomic units of each bed mint a harness buyer starts with.
pub const BUYER_TOKENS: u64 = 1_000_000;

/// A facilitator with fresh fee payers, a fresh seller and a fresh buyer, behind a proxy.
#[derive(Debug)]
pub struct SvmHarness {
    /// The shared validator.
    pub bed: &'static SvmTestBed,
    /// The proxy the facilitator talks to.
    pub proxy: RpcProxy,
    /// The network served.
    pub network: Network,
    /// The dispatcher with `exact` registered for v1 and v2.
    pub facilitator: LocalFacilitator,
    /// The facilitator's settlement store.
    pub store: Arc<MemoryStore>,
    /// The facilitator's fee payers (each with [`FEE_PAYER_LAMPORTS`]).
    pub fee_payers: Vec<Keypair>,
    /// The seller (`payTo`): empty ATAs for both bed mints.
    pub seller: Keypair,
    /// A buyer: SOL and [`BUYER_TOKENS`] of both bed mints.
    pub buyer: Keypair,
}

impl SvmHarness {
    /// A harness with the default policy (fast polling) and a forwarding proxy.
    pub async fn start() -> Self {
        Self::start_with(harness_policy(), SendMode::Forward).await
    }

    /// A harness with `policy` and a proxy in `mode`.
    pub async fn start_with(policy: Policy, mode: SendMode) -> Self {
        let bed = SvmTestBed::shared().await;
        let fee_payers = vec![Keypair::new(), Keypair::new()];
        let keys: Vec<Pubkey> = fee_payers.iter().map(Keypair::pubkey).collect();
        let (_, _, seller, buyer) = tokio::join!(
            bed.airdrop(&keys[0], FEE_PAYER_LAMPORTS),
            bed.airdrop(&keys[1], FEE_PAYER_LAMPORTS),
            bed.new_token_holder(0, 0),
            bed.new_token_holder(LAMPORTS_PER_SOL, BUYER_TOKENS),
        );
        let proxy = RpcProxy::start(bed.rpc_url(), mode).await;
        let network = Network::parse(NETWORK).expect("network");
        let store = Arc::new(MemoryStore::new());
        let facilitator = Facilitator::new(
            network.clone(),
            rpc(proxy.url()),
            fee_payers.iter().map(Keypair::insecure_clone).collect(),
            store.clone(),
            policy,
        )
        .expect("facilitator");
        Self {
            bed,
            proxy,
            facilitator: local(&network, facilitator),
            network,
            store,
            fee_payers,
            seller,
            buyer,
        }
    }

    /// Requirements for `amount` atomic units of `mint` paid to the harness seller, with the
    /// fee payer the facilitator advertises (and `memo`, if given).
    pub async fn requirements(
        &self,
        mint: &TestMint,
        amount: u64,
        memo: Option<&str>,
    ) -> PaymentRequirementsV2 {
        let supported = self.facilitator.supported().await.expect("supported");
        let kind = supported
            .kinds
            .into_iter()
            .find(|k| k.x402_version == X402Version::V2)
            .expect("a v2 kind");
        scheme_exact_svm::Seller::new()
            .with_rpc(rpc(self.bed.rpc_url()))
            .requirements_with_memo(
                &PriceRequest {
                    network: self.network.clone(),
                    price: Price::Atomic(Amount::from(amount)),
                    pay_to: self.seller.pubkey().to_string(),
                    asset: Some(mint.address.to_string()),
                    max_timeout_seconds: None,
                    facilitator_kind: Some(kind),
                },
                memo,
            )
            .await
            .expect("requirements")
    }

    /// `buyer` pays `requirements` with the scheme's own client, as v2.
    pub async fn pay_v2(
        &self,
        buyer: &Keypair,
        requirements: &PaymentRequirementsV2,
    ) -> VerifyRequest {
        let reqs = PaymentRequirements::V2(requirements.clone());
        request_v2(requirements, self.sign(buyer, &reqs).await)
    }

    /// `buyer` pays the same requirements written as v1.
    pub async fn pay_v1(
        &self,
        buyer: &Keypair,
        requirements: &PaymentRequirementsV2,
    ) -> VerifyRequest {
        let v1 = to_v1(requirements);
        let reqs = PaymentRequirements::V1(v1.clone());
        let payload = self.sign(buyer, &reqs).await;
        VerifyRequest::new(
            PaymentPayload::V1(PaymentPayloadV1 {
                x402_version: X402Version::V1,
                scheme: v1.scheme.clone(),
                network: v1.network.clone(),
                payload,
            }),
            reqs,
        )
    }

    async fn sign(&self, buyer: &Keypair, requirements: &PaymentRequirements) -> Raw {
        let view = requirements.view().expect("view");
        scheme_exact_svm::Buyer::new(
            buyer.insecure_clone(),
            rpc(self.bed.rpc_url()),
            BuyerOptions::default(),
        )
        .sign(&view)
        .await
        .expect("sign")
    }

    /// The plan the reference client would follow for `requirements` (to build variants of it).
    pub fn plan(&self, mint: &TestMint, requirements: &PaymentRequirementsV2) -> PaymentPlan {
        let extra: scheme_exact_svm::Extra =
            serde_json::from_str(requirements.extra.as_ref().expect("extra").get()).expect("extra");
        PaymentPlan {
            fee_payer: extra
                .fee_payer
                .expect("feePayer")
                .parse()
                .expect("feePayer"),
            token_program: mint.token_program,
            mint: mint.address,
            decimals: mint.decimals,
            pay_to: requirements.pay_to.parse().expect("payTo"),
            amount: requirements.amount.to_u64().expect("u64"),
            memo: extra
                .memo
                .map_or_else(|| b"0123456789abcdef".to_vec(), String::into_bytes),
            options: BuyerOptions::default(),
        }
    }

    /// A v0 transaction of `instructions` paid by `fee_payer`, signed by `signers`, on a fresh
    /// blockhash.
    pub async fn transaction(
        &self,
        fee_payer: &Pubkey,
        instructions: &[Instruction],
        signers: &[&Keypair],
    ) -> VersionedTransaction {
        let blockhash = self
            .bed
            .rpc()
            .get_latest_blockhash()
            .await
            .expect("blockhash");
        sign_partially(fee_payer, instructions, blockhash, signers).expect("sign")
    }

    /// A v2 request carrying `tx` for `requirements`.
    pub fn request(
        requirements: &PaymentRequirementsV2,
        tx: &VersionedTransaction,
    ) -> VerifyRequest {
        let payload = ExactSvmPayload::of(tx).expect("payload");
        request_v2(requirements, payload.to_raw().expect("raw"))
    }

    /// Verifies through the dispatcher's JSON path, as the HTTP server will.
    pub async fn verify(&self, request: &VerifyRequest) -> VerifyResponse {
        let body = serde_json::to_vec(request).expect("json");
        self.facilitator
            .verify_json(&body, JsonLimits::DEFAULT)
            .await
            .expect("verify")
    }

    /// Settles through the dispatcher's JSON path.
    pub async fn settle(&self, request: &VerifyRequest) -> SettleResponse {
        let body = serde_json::to_vec(request).expect("json");
        self.facilitator
            .settle_json(&body, JsonLimits::DEFAULT)
            .await
            .expect("settle")
    }

    /// The fee payers' SOL, the token balances of the seller, the buyer and `watch` in `mints`,
    /// and the proxy's send count.
    pub async fn snapshot(&self, mints: &[Pubkey], watch: &[Pubkey]) -> Snapshot {
        let mut sol = Vec::new();
        for k in &self.fee_payers {
            sol.push(self.bed.sol_balance(&k.pubkey()).await);
        }
        let mut tokens = Vec::new();
        let owners = [self.seller.pubkey(), self.buyer.pubkey()];
        for owner in owners.iter().chain(watch) {
            for mint in mints {
                tokens.push((*owner, *mint, self.bed.token_balance(owner, mint).await));
            }
        }
        Snapshot {
            fee_payer_sol: sol,
            tokens,
            sends: self.proxy.sends(),
        }
    }

    /// Asserts that verify and settle both refuse `request` with `reason`, and that nothing moved
    /// and nothing was sent (NO-FUNDS, NO-BROADCAST) for the tokens of `mints`.
    pub async fn assert_refused(
        &self,
        what: &str,
        request: &VerifyRequest,
        reason: Reason,
        mints: &[Pubkey],
    ) {
        let before = self.snapshot(mints, &[]).await;
        let v = self.verify(request).await;
        assert!(!v.is_valid, "{what}: verify accepted it");
        assert_eq!(v.invalid_reason, Some(reason.clone()), "{what}: {v:?}");
        let s = self.settle(request).await;
        assert!(!s.success, "{what}: settle succeeded");
        assert_eq!(s.error_reason, Some(reason), "{what}: {s:?}");
        assert!(s.transaction.is_empty(), "{what}: a transaction {s:?}");
        let after = self.snapshot(mints, &[]).await;
        assert_eq!(after.sends, 0, "{what}: the facilitator sent a transaction");
        assert_eq!(after, before, "{what}: balances moved");
    }
}

/// What [`SvmHarness::snapshot`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Each fee payer's lamports.
    pub fee_payer_sol: Vec<u64>,
    /// `(owner, mint, balance)`.
    pub tokens: Vec<(Pubkey, Pubkey, u64)>,
    /// `sendTransaction` calls seen by the proxy.
    pub sends: usize,
}

/// The harness policy: the defaults with fast polling.
pub fn harness_policy() -> Policy {
    Policy {
        poll_interval: Duration::from_millis(200),
        ..Policy::default()
    }
}

/// An RPC client list with the single endpoint `url`.
pub fn rpc(url: &str) -> Rpc {
    Rpc::new(&[url.to_owned()], Duration::from_secs(10)).expect("rpc")
}

/// A dispatcher serving `facilitator` for v1 and v2 on `network`.
pub fn local(network: &Network, facilitator: Facilitator) -> LocalFacilitator {
    let mut registry = Registry::new();
    registry
        .register(
            network.as_str(),
            scheme_exact_svm::VERSIONS,
            facilitator.into_scheme(),
        )
        .expect("register");
    LocalFacilitator::new(registry)
}

pub use crate::wire::{request_v2, to_v1};

/// A Token-2022 mint configured with one extension.
#[derive(Debug, Clone, Copy)]
pub enum MintExtension {
    /// `TransferFeeConfig` with this many basis points (maximum fee: unlimited).
    TransferFee(u16),
    /// `TransferHook` calling this program.
    TransferHook(Pubkey),
    /// `PermanentDelegate` set to this key.
    PermanentDelegate(Pubkey),
    /// `NonTransferable`.
    NonTransferable,
}

/// Creates a 6-decimal Token-2022 mint with `extension`, ATAs for each of `holders` and
/// `tokens` minted to the first holder.
pub async fn create_extension_mint(
    bed: &SvmTestBed,
    extension: MintExtension,
    holders: &[Pubkey],
    tokens: u64,
) -> TestMint {
    use spl_token_2022_interface::extension::{transfer_fee, transfer_hook};
    use spl_token_2022_interface::instruction as t22;
    let program = spl_token_2022_interface::id();
    let authority = bed.mint_authority();
    let mint = Keypair::new();
    let m = mint.pubkey();
    let (kind, init) = match extension {
        MintExtension::TransferFee(bps) => (
            ExtensionType::TransferFeeConfig,
            transfer_fee::instruction::initialize_transfer_fee_config(
                &program,
                &m,
                Some(&authority.pubkey()),
                Some(&authority.pubkey()),
                bps,
                u64::MAX,
            ),
        ),
        MintExtension::TransferHook(hook) => (
            ExtensionType::TransferHook,
            transfer_hook::instruction::initialize(
                &program,
                &m,
                Some(authority.pubkey()),
                Some(hook),
            ),
        ),
        MintExtension::PermanentDelegate(d) => (
            ExtensionType::PermanentDelegate,
            t22::initialize_permanent_delegate(&program, &m, &d),
        ),
        MintExtension::NonTransferable => (
            ExtensionType::NonTransferable,
            t22::initialize_non_transferable_mint(&program, &m),
        ),
    };
    let space =
        ExtensionType::try_calculate_account_len::<spl_token_2022_interface::state::Mint>(&[kind])
            .expect("mint size");
    let rent = bed
        .rpc()
        .get_minimum_balance_for_rent_exemption(space)
        .await
        .expect("rent");
    let mut ixs = vec![
        solana_system_interface::instruction::create_account(
            &authority.pubkey(),
            &m,
            rent,
            space as u64,
            &program,
        ),
        init.expect("extension init"),
        t22::initialize_mint2(&program, &m, &authority.pubkey(), None, MINT_DECIMALS)
            .expect("initialize_mint2"),
    ];
    let test_mint = TestMint {
        address: m,
        token_program: program,
        decimals: MINT_DECIMALS,
    };
    for owner in holders {
        ixs.push(
            spl_associated_token_account_interface::instruction::create_associated_token_account(
                &authority.pubkey(),
                owner,
                &m,
                &program,
            ),
        );
    }
    if let Some(first) = holders.first() {
        ixs.push(
            t22::mint_to(
                &program,
                &m,
                &test_mint.ata(first),
                &authority.pubkey(),
                &[],
                tokens,
            )
            .expect("mint_to"),
        );
    }
    bed.send(&ixs, authority, &[&mint]).await;
    test_mint
}

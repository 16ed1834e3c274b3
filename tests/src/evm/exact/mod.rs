//! A facilitator of `exact` on the EVM test bed, with a seller and buyers: everything a test of
//! the scheme needs to sign, verify and settle real payments on anvil.
//!
//! [`ExactHarness`] starts the bed and the facilitator; `checks` holds the assertions tests make
//! with it, `payloads` the request and payload builders.

mod checks;
mod payloads;

use std::sync::Arc;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::Eip712Domain;
use scheme_exact_evm::{Buyer, Facilitator, Policy, Seller};
use x402_core::json::JsonLimits;
use x402_core::wire::{
    PaymentRequirements, PaymentRequirementsV2, Raw, SettleResponse, VerifyRequest, VerifyResponse,
};
use x402_core::{BuyerRole as _, FacilitatorRole as _, SellerRole as _};
use x402_core::{
    DispatchError, Facilitator as _, LocalFacilitator, MemoryStore, Network, Price, PriceRequest,
    Registry, SettlementStore, SharedClock, system_clock,
};
use x402_evm::abi::eip3009::TransferWithAuthorization;
use x402_evm::abi::permit2_exact;
use x402_evm::assets::{AssetInfo, AssetTable, TransferMethod};
use x402_evm::signers::{SignerPool, TxConfig};

use crate::evm::x402::{deploy_wallet, deploy_wallet_factory, exact_payment};
use crate::evm::{EvmTestBed, EvmTestBedConfig, USDC_DECIMALS, USDC_NAME, USDC_VERSION};

pub use checks::{assert_duplicate, assert_settle_refused};
pub use payloads::{
    CODELESS, body_with, eip3009_signed, eip3009_with_signature, non_canonical_10000, now,
    payload_of, permit2_signed, permit2_with_signature, random_b256, request_v1, request_v2, to_v1,
    units,
};

/// The price the `exact` tests charge, in decimal USDC.
pub const PRICE: &str = "0.01";
/// [`PRICE`] in USDC base units.
pub const UNITS: u64 = 10_000;

/// A test bed with an `exact` facilitator in front of it.
#[derive(Debug)]
pub struct ExactHarness {
    /// The chain.
    pub bed: EvmTestBed,
    /// The network (`eip155:<chain id>`).
    pub network: Network,
    /// The dispatcher with `exact` registered for v1 and v2.
    pub facilitator: LocalFacilitator,
    /// The facilitator's settlement store.
    pub store: Arc<MemoryStore>,
    /// The facilitator's signers.
    pub pool: SignerPool,
    /// The seller side (asset table with the bed's USDC).
    pub seller: Seller,
}

impl ExactHarness {
    /// A bed on chain 84532 (a chain v1 names: `base-sepolia`) with one facilitator signer.
    pub async fn start() -> Self {
        Self::start_with(1, Policy::default()).await
    }

    /// A bed with `signers` facilitator signers (funded fresh keys) and `policy`.
    pub async fn start_with(signers: usize, policy: Policy) -> Self {
        Self::start_with_tx(signers, policy, harness_tx_config()).await
    }

    /// A bed whose signer pool sends with `tx` (fee and gas caps, receipt polling) instead of the
    /// harness's defaults.
    pub async fn start_with_tx(signers: usize, policy: Policy, tx: TxConfig) -> Self {
        Self::start_on_chain(84532, signers, policy, tx).await
    }

    /// A bed under chain id `chain_id` (whose block time sets the facilitator's expiry buffer).
    pub async fn start_on_chain(
        chain_id: u64,
        signers: usize,
        mut policy: Policy,
        tx: TxConfig,
    ) -> Self {
        let bed = EvmTestBed::start_with(EvmTestBedConfig {
            chain_id,
            ..EvmTestBedConfig::default()
        })
        .await;
        let network = Network::eip155(bed.chain_id());
        let mut keys = vec![bed.facilitator().signer.clone()];
        for _ in 1..signers {
            let key = PrivateKeySigner::random();
            let _: serde_json::Value = bed
                .provider()
                .raw_request(
                    "anvil_setBalance".into(),
                    (key.address(), U256::from(10u128.pow(21))),
                )
                .await
                .expect("fund signer");
            keys.push(key);
        }
        let pool = SignerPool::new(bed.provider(), keys, tx)
            .await
            .expect("signer pool");
        if policy.assets.is_none() {
            policy.assets = Some(vec![bed.usdc()]);
        }
        let store = Arc::new(MemoryStore::new());
        let facilitator = Facilitator::new(
            network.clone(),
            bed.provider(),
            pool.clone(),
            store.clone(),
            policy,
        )
        .expect("facilitator");
        let mut registry = Registry::new();
        registry
            .register(
                network.as_str(),
                scheme_exact_evm::VERSIONS,
                facilitator.into_scheme(),
            )
            .expect("register");
        let mut assets = AssetTable::empty();
        assets.insert(
            network.clone(),
            usdc_info(bed.usdc(), TransferMethod::Eip3009),
        );
        Self {
            network,
            facilitator: LocalFacilitator::new(registry),
            store,
            pool,
            seller: Seller::new(assets),
            bed,
        }
    }

    /// Requirements for `price` (decimal USDC) paid to the bed's seller, by EIP-3009 or Permit2.
    pub async fn requirements(&self, price: &str, method: TransferMethod) -> PaymentRequirementsV2 {
        let mut assets = AssetTable::empty();
        assets.insert(self.network.clone(), usdc_info(self.bed.usdc(), method));
        Seller::new(assets)
            .requirements(&PriceRequest {
                network: self.network.clone(),
                price: Price::Decimal(price.into()),
                pay_to: self.bed.seller().address.to_checksum(None),
                asset: None,
                max_timeout_seconds: Some(120),
                facilitator_kind: None,
            })
            .await
            .expect("requirements")
    }

    /// `buyer` signs `requirements` (any version) and returns the scheme payload.
    pub async fn sign(&self, buyer: &PrivateKeySigner, requirements: &PaymentRequirements) -> Raw {
        let view = requirements.view().expect("view");
        Buyer::new(Arc::new(buyer.clone()))
            .sign(&view)
            .await
            .expect("sign")
    }

    /// A v2 verify/settle request: `buyer` pays `requirements`.
    pub async fn pay_v2(
        &self,
        buyer: &PrivateKeySigner,
        requirements: &PaymentRequirementsV2,
    ) -> VerifyRequest {
        let reqs = PaymentRequirements::V2(requirements.clone());
        let payload = self.sign(buyer, &reqs).await;
        request_v2(requirements, payload)
    }

    /// A v1 verify/settle request for the same requirements written as v1.
    pub async fn pay_v1(
        &self,
        buyer: &PrivateKeySigner,
        requirements: &PaymentRequirementsV2,
    ) -> VerifyRequest {
        let reqs = PaymentRequirements::V1(to_v1(requirements));
        let payload = self.sign(buyer, &reqs).await;
        request_v1(requirements, payload)
    }

    /// The USDC balance of `who`.
    pub async fn usdc(&self, who: Address) -> U256 {
        self.bed.usdc_balance(who).await
    }

    /// Turns anvil's automine on or off (off: sent transactions wait in the pool).
    pub async fn set_automine(&self, on: bool) {
        let _: serde_json::Value = self
            .bed
            .provider()
            .raw_request("evm_setAutomine".into(), (on,))
            .await
            .expect("evm_setAutomine");
    }

    /// Mines one block now.
    pub async fn mine(&self) {
        let _: serde_json::Value = self
            .bed
            .provider()
            .raw_request("evm_mine".into(), ())
            .await
            .expect("evm_mine");
    }

    /// `who`'s transaction count: mined (`latest`), or with the node's pool (`pending`).
    pub async fn nonce_of(&self, who: Address, pending: bool) -> u64 {
        let call = self.bed.provider().get_transaction_count(who);
        if pending {
            call.pending().await
        } else {
            call.latest().await
        }
        .expect("nonce")
    }

    /// Each facilitator signer's on-chain nonce: unchanged means nothing was broadcast.
    pub async fn signer_nonces(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for a in self.pool.addresses() {
            out.push(
                self.bed
                    .provider()
                    .get_transaction_count(a)
                    .pending()
                    .await
                    .expect("nonce"),
            );
        }
        out
    }

    /// Sends a request body through the dispatcher's JSON path, as the HTTP server will.
    pub async fn verify_json(&self, request: &VerifyRequest) -> x402_core::wire::VerifyResponse {
        let body = serde_json::to_vec(request).expect("json");
        self.facilitator
            .verify_json(&body, JsonLimits::DEFAULT)
            .await
            .expect("verify")
    }

    /// Settles through the dispatcher's JSON path.
    pub async fn settle_json(&self, request: &VerifyRequest) -> x402_core::wire::SettleResponse {
        let body = serde_json::to_vec(request).expect("json");
        self.facilitator
            .settle_json(&body, JsonLimits::DEFAULT)
            .await
            .expect("settle")
    }

    /// Verifies a raw request body as the HTTP server will: `Err` is a 400-class refusal of a
    /// malformed body (or a facilitator failure), never a panic.
    pub async fn verify_body(&self, body: &[u8]) -> Result<VerifyResponse, DispatchError> {
        self.facilitator
            .verify_json(body, JsonLimits::DEFAULT)
            .await
    }

    /// Settles a raw request body (see [`ExactHarness::verify_body`]).
    pub async fn settle_body(&self, body: &[u8]) -> Result<SettleResponse, DispatchError> {
        self.facilitator
            .settle_json(body, JsonLimits::DEFAULT)
            .await
    }

    /// The USDC of the seller, the facilitator signers and `watch`, and the signers' ETH and
    /// nonces: compare two snapshots to check that nothing moved and nothing was broadcast.
    pub async fn snapshot(&self, watch: &[Address]) -> Snapshot {
        let signers = self.pool.addresses();
        let mut usdc = Vec::new();
        for &a in std::iter::once(&self.bed.seller().address)
            .chain(&signers)
            .chain(watch)
        {
            usdc.push((a, self.usdc(a).await));
        }
        let mut signer_eth = Vec::new();
        for &a in &signers {
            signer_eth.push(self.bed.provider().get_balance(a).await.expect("balance"));
        }
        Snapshot {
            usdc,
            signer_eth,
            signer_nonces: self.signer_nonces().await,
        }
    }

    /// Another dispatcher over the same chain and signers, with its own settlement `store`,
    /// `policy` (no asset list means the bed's USDC only) and `clock`.
    pub fn facilitator_with(
        &self,
        store: Arc<dyn SettlementStore>,
        mut policy: Policy,
        clock: SharedClock,
    ) -> LocalFacilitator {
        if policy.assets.is_none() {
            policy.assets = Some(vec![self.bed.usdc()]);
        }
        let facilitator = Facilitator::new(
            self.network.clone(),
            self.bed.provider(),
            self.pool.clone(),
            store,
            policy,
        )
        .expect("facilitator")
        .with_clock(clock);
        let mut registry = Registry::new();
        registry
            .register(
                self.network.as_str(),
                scheme_exact_evm::VERSIONS,
                facilitator.into_scheme(),
            )
            .expect("register");
        LocalFacilitator::new(registry)
    }

    /// The EIP-3009 authorization a buyer's wallet signs for `requirements`: `from` pays the
    /// exact amount to `payTo`, valid from ten minutes ago for two minutes, with a random nonce.
    pub fn eip3009_message(
        &self,
        from: Address,
        requirements: &PaymentRequirementsV2,
    ) -> TransferWithAuthorization {
        let now = now();
        TransferWithAuthorization {
            from,
            to: requirements.pay_to.parse().expect("payTo"),
            value: requirements.amount.get(),
            validAfter: U256::from(now - 600),
            validBefore: U256::from(now + 120),
            nonce: random_b256(),
        }
    }

    /// The bed USDC's EIP-712 domain (what a correct EIP-3009 signature is made under).
    pub fn usdc_domain(&self) -> Eip712Domain {
        self.bed.usdc_domain()
    }

    /// The Permit2 witness transfer a buyer signs for `requirements`: exact amount of the asset
    /// to `payTo` through the exact proxy, valid from ten minutes ago for two minutes, with a
    /// random nonce.
    pub fn permit2_message(
        &self,
        requirements: &PaymentRequirementsV2,
    ) -> permit2_exact::PermitWitnessTransferFrom {
        let now = now();
        exact_payment(
            requirements.asset.parse().expect("asset"),
            requirements.amount.get(),
            requirements.pay_to.parse().expect("payTo"),
            U256::from_be_bytes(random_b256().0),
            now + 120,
            now - 600,
        )
    }

    /// Permit2's EIP-712 domain on the bed's chain.
    pub fn permit2_domain(&self) -> Eip712Domain {
        self.bed.permit2_domain()
    }

    /// A smart wallet (deployed through a fresh factory) owned by a spare dev account — which
    /// has ETH, so it can switch the wallet's validation — holding one price of USDC.
    pub async fn funded_wallet(&self) -> (Address, PrivateKeySigner) {
        let owner = self.bed.spare_accounts()[0].signer.clone();
        let factory = deploy_wallet_factory(&self.bed).await;
        let wallet = deploy_wallet(&self.bed, factory, owner.address(), B256::ZERO).await;
        self.bed.mint_usdc(wallet, U256::from(UNITS)).await;
        (wallet, owner)
    }

    /// Another dispatcher like [`ExactHarness::facilitator_with`], with a settlement store of its
    /// own.
    pub fn fresh_facilitator(&self, policy: Policy, clock: SharedClock) -> LocalFacilitator {
        self.facilitator_with(Arc::new(MemoryStore::new()), policy, clock)
    }

    /// A dispatcher with a store of its own and the real clock that accepts `asset` besides the
    /// bed's USDC.
    pub fn facilitator_listing(&self, asset: Address) -> LocalFacilitator {
        self.fresh_facilitator(
            Policy {
                assets: Some(vec![self.bed.usdc(), asset]),
                ..Policy::default()
            },
            system_clock(),
        )
    }
}

/// Settles `requests` all at once through the harness's dispatcher; the answers in order.
pub async fn settle_all(
    h: &Arc<ExactHarness>,
    requests: impl IntoIterator<Item = VerifyRequest>,
) -> Vec<SettleResponse> {
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|r| {
            let h = h.clone();
            tokio::spawn(async move { h.facilitator.settle(&r).await.expect("settle answers") })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("settle task"));
    }
    out
}

/// The signer-pool settings of the harness: the defaults with fast receipt polling.
pub fn harness_tx_config() -> TxConfig {
    TxConfig {
        poll_interval: std::time::Duration::from_millis(20),
        ..TxConfig::default()
    }
}

/// What [`ExactHarness::snapshot`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// USDC of the seller, each facilitator signer and each watched account, in that order.
    pub usdc: Vec<(Address, U256)>,
    /// ETH of each facilitator signer.
    pub signer_eth: Vec<U256>,
    /// Each facilitator signer's pending nonce.
    pub signer_nonces: Vec<u64>,
}

/// The bed's USDC as an asset-table entry.
pub fn usdc_info(address: Address, method: TransferMethod) -> AssetInfo {
    AssetInfo {
        address,
        name: USDC_NAME.into(),
        version: USDC_VERSION.into(),
        decimals: USDC_DECIMALS,
        method,
    }
}

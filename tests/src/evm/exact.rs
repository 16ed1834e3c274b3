//! A facilitator of `exact` on the EVM test bed, with a seller and buyers: everything a test of
//! the scheme needs to sign, verify and settle real payments on anvil.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::Eip712Domain;
use scheme_exact_evm::payload::{self, Eip3009Payload, ExactEvmPayload, Permit2Payload};
use scheme_exact_evm::{ExactEvm, Facilitator, Policy};
use x402_core::json::JsonLimits;
use x402_core::settlement::StoreError;
use x402_core::wire::{
    PaymentPayload, PaymentPayloadV1, PaymentPayloadV2, PaymentRequirements, PaymentRequirementsV1,
    PaymentRequirementsV2, Raw, ResourceInfo, SettleResponse, VerifyRequest, VerifyResponse,
};
use x402_core::{
    Amount, Claim, DispatchError, LocalFacilitator, MemoryStore, Network, Outcome, PaymentId,
    Price, PriceRequest, Registry, Scheme, SettlementStore, UnixTime, X402Version,
};
use x402_evm::abi::eip3009::TransferWithAuthorization;
use x402_evm::abi::permit2_exact;
use x402_evm::addresses::EXACT_PERMIT2_PROXY;
use x402_evm::assets::{AssetInfo, AssetTable, TransferMethod};
use x402_evm::eip712::eip3009_domain;
use x402_evm::signers::{SignerPool, TxConfig};

use crate::evm::x402::sign_eip712;
use crate::evm::{EvmTestBed, EvmTestBedConfig, USDC_DECIMALS, USDC_NAME, USDC_VERSION};

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
    pub seller: ExactEvm,
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
    pub async fn start_with_tx(signers: usize, mut policy: Policy, tx: TxConfig) -> Self {
        let bed = EvmTestBed::start_with(EvmTestBedConfig {
            chain_id: 84532,
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
                &[X402Version::V1, X402Version::V2],
                Arc::new(ExactEvm::facilitator(facilitator)),
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
            seller: ExactEvm::seller(assets),
            bed,
        }
    }

    /// Requirements for `price` (decimal USDC) paid to the bed's seller, by EIP-3009 or Permit2.
    pub async fn requirements(&self, price: &str, method: TransferMethod) -> PaymentRequirementsV2 {
        let mut assets = AssetTable::empty();
        assets.insert(self.network.clone(), usdc_info(self.bed.usdc(), method));
        ExactEvm::seller(assets)
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
        ExactEvm::buyer(Arc::new(buyer.clone()))
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

    /// The USDC balance of `who`.
    pub async fn usdc(&self, who: Address) -> U256 {
        self.bed.usdc_balance(who).await
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

    /// Asserts NO-FUNDS and NO-BROADCAST against `before` (same `watch` list).
    pub async fn assert_untouched(&self, before: &Snapshot, what: &str) {
        let watch: Vec<Address> = before
            .usdc
            .iter()
            .skip(1 + self.pool.addresses().len())
            .map(|(a, _)| *a)
            .collect();
        let now = self.snapshot(&watch).await;
        assert_eq!(
            now.signer_nonces, before.signer_nonces,
            "{what}: the facilitator broadcast a transaction"
        );
        assert_eq!(now.usdc, before.usdc, "{what}: USDC moved");
        assert_eq!(
            now.signer_eth, before.signer_eth,
            "{what}: the facilitator spent ETH"
        );
    }

    /// Another dispatcher over the same chain and signers, with its own settlement `store`,
    /// `policy` (no asset list means the bed's USDC only) and `clock`.
    pub fn facilitator_with(
        &self,
        store: Arc<dyn SettlementStore>,
        mut policy: Policy,
        clock: fn() -> UnixTime,
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
                &[X402Version::V1, X402Version::V2],
                Arc::new(ExactEvm::facilitator(facilitator)),
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
        let now = UnixTime::now().0;
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
        eip3009_domain(
            USDC_NAME,
            USDC_VERSION,
            self.bed.chain_id(),
            self.bed.usdc(),
        )
    }

    /// The Permit2 witness transfer a buyer signs for `requirements`: exact amount of the asset
    /// to `payTo` through the exact proxy, valid from ten minutes ago for two minutes, with a
    /// random nonce.
    pub fn permit2_message(
        &self,
        requirements: &PaymentRequirementsV2,
    ) -> permit2_exact::PermitWitnessTransferFrom {
        let now = UnixTime::now().0;
        permit2_exact::PermitWitnessTransferFrom {
            permitted: permit2_exact::TokenPermissions {
                token: requirements.asset.parse().expect("asset"),
                amount: requirements.amount.get(),
            },
            spender: EXACT_PERMIT2_PROXY,
            nonce: U256::from_be_bytes(random_b256().0),
            deadline: U256::from(now + 120),
            witness: permit2_exact::Witness {
                to: requirements.pay_to.parse().expect("payTo"),
                validAfter: U256::from(now - 600),
            },
        }
    }

    /// Permit2's EIP-712 domain on the bed's chain.
    pub fn permit2_domain(&self) -> Eip712Domain {
        x402_evm::eip712::permit2_domain(self.bed.chain_id())
    }
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

/// Signs `message` (an EIP-3009 authorization) under `domain` with `key`: the payload as a wallet
/// sends it.
pub fn eip3009_signed(
    key: &PrivateKeySigner,
    message: &TransferWithAuthorization,
    domain: &Eip712Domain,
) -> Raw {
    eip3009_with_signature(message, sign_eip712(key, message, domain))
}

/// An EIP-3009 payload for `message` carrying `signature` verbatim (forged, malformed, wrapped).
pub fn eip3009_with_signature(message: &TransferWithAuthorization, signature: Bytes) -> Raw {
    payload::to_json(&ExactEvmPayload::Eip3009(Eip3009Payload {
        signature,
        from: message.from,
        to: message.to,
        value: message.value,
        valid_after: message.validAfter,
        valid_before: message.validBefore,
        nonce: message.nonce,
    }))
    .expect("payload json")
}

/// Signs a Permit2 witness transfer of `owner` under `domain` with `key`.
pub fn permit2_signed(
    key: &PrivateKeySigner,
    owner: Address,
    message: &permit2_exact::PermitWitnessTransferFrom,
    domain: &Eip712Domain,
) -> Raw {
    permit2_with_signature(owner, message, sign_eip712(key, message, domain))
}

/// A Permit2 payload of `owner` for `message` carrying `signature` verbatim.
pub fn permit2_with_signature(
    owner: Address,
    message: &permit2_exact::PermitWitnessTransferFrom,
    signature: Bytes,
) -> Raw {
    payload::to_json(&ExactEvmPayload::Permit2(Permit2Payload {
        signature,
        from: owner,
        token: message.permitted.token,
        amount: message.permitted.amount,
        spender: message.spender,
        nonce: message.nonce,
        deadline: message.deadline,
        witness_to: message.witness.to,
        valid_after: message.witness.validAfter,
    }))
    .expect("payload json")
}

/// An action a [`HookStore`] runs once.
pub type ClaimHook = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A [`MemoryStore`] that runs a hook the first time a claim is acquired: after the facilitator
/// verified (and simulated) a payment and before it checks the nonce and broadcasts. Tests use
/// it to change the chain at exactly that moment (a front-runner, a wallet that flips).
pub struct HookStore {
    inner: MemoryStore,
    hook: tokio::sync::Mutex<Option<ClaimHook>>,
}

impl std::fmt::Debug for HookStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookStore")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl HookStore {
    /// A store that runs `hook` on its first acquired claim.
    pub fn new(hook: ClaimHook) -> Self {
        Self {
            inner: MemoryStore::new(),
            hook: tokio::sync::Mutex::new(Some(hook)),
        }
    }

    /// Whether the hook has run.
    pub async fn fired(&self) -> bool {
        self.hook.lock().await.is_none()
    }
}

#[async_trait::async_trait]
impl SettlementStore for HookStore {
    async fn claim(&self, id: &PaymentId, expires: UnixTime) -> Result<Claim, StoreError> {
        let claim = self.inner.claim(id, expires).await?;
        if matches!(claim, Claim::Acquired) {
            let hook = self.hook.lock().await.take();
            if let Some(hook) = hook {
                hook().await;
            }
        }
        Ok(claim)
    }

    async fn release(&self, id: &PaymentId) -> Result<(), StoreError> {
        self.inner.release(id).await
    }

    async fn complete(&self, id: &PaymentId, outcome: Outcome) -> Result<(), StoreError> {
        self.inner.complete(id, outcome).await
    }

    async fn outcome(&self, id: &PaymentId) -> Result<Option<Outcome>, StoreError> {
        self.inner.outcome(id).await
    }
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

/// A v2 request whose `accepted` is the requirement verbatim.
pub fn request_v2(requirements: &PaymentRequirementsV2, payload: Raw) -> VerifyRequest {
    VerifyRequest::new(
        PaymentPayload::V2(PaymentPayloadV2 {
            x402_version: X402Version::V2,
            resource: Some(ResourceInfo {
                url: "http://127.0.0.1/paid".into(),
                description: None,
                mime_type: None,
            }),
            accepted: requirements.clone(),
            payload,
            extensions: None,
        }),
        PaymentRequirements::V2(requirements.clone()),
    )
}

/// The same requirement in v1 shape (the network by its v1 name).
pub fn to_v1(r: &PaymentRequirementsV2) -> PaymentRequirementsV1 {
    let network = Network::parse(&r.network).expect("network");
    PaymentRequirementsV1 {
        scheme: r.scheme.clone(),
        network: network.to_wire(X402Version::V1),
        max_amount_required: r.amount,
        asset: r.asset.clone(),
        pay_to: r.pay_to.clone(),
        resource: "http://127.0.0.1/paid".into(),
        description: String::new(),
        mime_type: None,
        output_schema: None,
        max_timeout_seconds: r.max_timeout_seconds,
        extra: r.extra.clone(),
    }
}

/// 32 random bytes (a fresh key's secret).
pub fn random_b256() -> B256 {
    PrivateKeySigner::random().to_bytes()
}

/// `amount` as a uint256.
pub fn units(amount: Amount) -> U256 {
    amount.get()
}

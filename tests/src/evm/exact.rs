//! A facilitator of `exact` on the EVM test bed, with a seller and buyers: everything a test of
//! the scheme needs to sign, verify and settle real payments on anvil.

use std::sync::Arc;

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use scheme_exact_evm::{ExactEvm, Facilitator, Policy};
use x402_core::json::JsonLimits;
use x402_core::wire::{
    PaymentPayload, PaymentPayloadV1, PaymentPayloadV2, PaymentRequirements, PaymentRequirementsV1,
    PaymentRequirementsV2, Raw, ResourceInfo, VerifyRequest,
};
use x402_core::{
    Amount, LocalFacilitator, MemoryStore, Network, Price, PriceRequest, Registry, Scheme,
    X402Version,
};
use x402_evm::assets::{AssetInfo, AssetTable, TransferMethod};
use x402_evm::signers::{SignerPool, TxConfig};

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
    pub async fn start_with(signers: usize, mut policy: Policy) -> Self {
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
        let pool = SignerPool::new(
            bed.provider(),
            keys,
            TxConfig {
                poll_interval: std::time::Duration::from_millis(20),
                ..TxConfig::default()
            },
        )
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

/// `amount` as a uint256.
pub fn units(amount: Amount) -> U256 {
    amount.get()
}

//! Facilitator side of `upto` on EVM: verify the authorization for its maximum; settle the
//! actual amount from the witness facilitator, at most once.

mod settle;
mod verify;

pub(crate) use verify::Phase;

use alloy::primitives::{Address, U256};
use alloy::providers::DynProvider;
use async_trait::async_trait;
use x402_core::wire::Raw;
use x402_core::{
    FacilitatorRole, KeyedLocks, Network, PaymentContext, SchemeError, SchemeStatus, Settlement,
    UnixTime, Verdict,
};
use x402_evm::settle::Settler;
use x402_evm::signers::SignerPool;

/// Operator policy for one network.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The tokens payments may be made in; `None` accepts any token with code.
    pub assets: Option<Vec<Address>>,
    /// Gas limit of an upto proxy settle.
    pub gas_limit: u64,
    /// Signers below this native balance (wei) are reported unfunded.
    pub min_signer_balance: Option<U256>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            assets: None,
            gas_limit: 300_000,
            min_signer_balance: None,
        }
    }
}

/// The facilitator role of `upto` on one EVM network.
#[derive(Debug)]
pub struct Facilitator {
    pub(crate) network: Network,
    pub(crate) chain_id: u64,
    pub(crate) provider: DynProvider,
    pub(crate) signers: SignerPool,
    pub(crate) settler: Settler,
    pub(crate) policy: Policy,
    pub(crate) clock: fn() -> UnixTime,
    pub(crate) payer_locks: KeyedLocks,
    pub(crate) assets_with_code: x402_evm::chain::CodeCache,
}

impl Facilitator {
    /// A facilitator on `network` reading through `provider` and settling with `signers`; the
    /// store must be the one `exact` uses on this network (Permit2 nonces are shared).
    pub fn new(
        network: Network,
        provider: DynProvider,
        signers: SignerPool,
        store: std::sync::Arc<dyn x402_core::SettlementStore>,
        policy: Policy,
    ) -> Result<Self, SchemeError> {
        let chain_id =
            x402_evm::parse::chain_id(&network).map_err(|e| SchemeError::Config(e.to_string()))?;
        if signers.addresses().is_empty() {
            return Err(SchemeError::Config(
                "at least one signer key is required".into(),
            ));
        }
        Ok(Self {
            settler: Settler::new(provider.clone(), signers.clone(), store),
            network,
            chain_id,
            provider,
            signers,
            policy,
            clock: UnixTime::now,
            payer_locks: KeyedLocks::default(),
            assets_with_code: x402_evm::chain::CodeCache::default(),
        })
    }

    /// Replaces the clock.
    pub fn with_clock(mut self, clock: fn() -> UnixTime) -> Self {
        self.clock = clock;
        self
    }

    /// The signer addresses (each may be named as `facilitatorAddress`).
    pub fn signer_addresses(&self) -> Vec<Address> {
        self.signers.addresses()
    }

    /// One of the signers, for `/supported` (`extra.facilitatorAddress`).
    pub fn facilitator_address(&self) -> Option<Address> {
        self.signers.addresses().first().copied()
    }
}

#[async_trait]
impl FacilitatorRole for Facilitator {
    fn scheme(&self) -> &'static str {
        crate::SCHEME
    }

    async fn verify(&self, payment: &PaymentContext<'_>) -> Result<Verdict, SchemeError> {
        let (payload, verdict) = self.check(payment, Phase::Verify).await?;
        let payer = payload.map(|p| p.from.to_checksum(None));
        Ok(Verdict::from_check(payer, verdict))
    }

    async fn settle(&self, payment: &PaymentContext<'_>) -> Result<Settlement, SchemeError> {
        self.settle_payment(payment).await
    }

    /// `{"facilitatorAddress": ..}`: the signer a buyer's witness must name.
    fn supported_extra(&self, _network: &Network) -> Option<Raw> {
        let address = self.facilitator_address()?;
        x402_core::wire::to_raw(&serde_json::json!({
            "facilitatorAddress": address.to_checksum(None),
        }))
        .ok()
    }

    /// Probes the chain: the RPC answers and the signers are funded.
    async fn status(&self, _network: &Network) -> Result<Option<SchemeStatus>, SchemeError> {
        x402_evm::startup::status(
            &self.provider,
            &self.signers,
            self.policy.min_signer_balance,
        )
        .await
        .map(Some)
    }

    fn signers(&self, _network: &Network) -> Vec<String> {
        self.signer_addresses()
            .iter()
            .map(|a| a.to_checksum(None))
            .collect()
    }
}

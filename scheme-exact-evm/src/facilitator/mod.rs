//! Facilitator side of `exact` on EVM: verify (EIP-3009 and Permit2) and settle at most once.

/// Inside a verify step returning `Result<Result<T, Rejection>, SchemeError>`: unwraps a
/// `Result<_, Rejection>` or returns the rejection as the verdict.
macro_rules! reject_on_err {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(rejection) => return Ok(Err(rejection)),
        }
    };
}

mod eip3009;
mod permit2;
mod settle;

use x402_evm::chain as rpc;

use std::sync::Arc;

use alloy::primitives::{Address, U256};
use alloy::providers::DynProvider;
use async_trait::async_trait;
use x402_core::{
    FacilitatorRole, KeyedLocks, Network, PaymentContext, Reason, Rejection, SchemeError,
    SchemeStatus, Settlement, SettlementStore, UnixTime, Verdict,
};
use x402_evm::settle::{SettlePlan, Settler};
use x402_evm::signers::SignerPool;

pub use x402_evm::permit2::{EXPIRY_BUFFER_SECONDS, permit2_id};

use crate::Extra;
use crate::payload::{self, ExactEvmPayload};

/// Operator policy for one network.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The tokens payments may be made in; `None` accepts any token (not recommended).
    pub assets: Option<Vec<Address>>,
    /// ERC-6492 factories the facilitator may call to deploy a buyer's wallet.
    pub erc6492_factories: Vec<Address>,
    /// Gas limit of an EIP-3009 settle from an EOA.
    pub gas_limit_eip3009: u64,
    /// Gas limit of an EIP-3009 settle whose signature a contract wallet checks.
    pub gas_limit_eip3009_contract: u64,
    /// Gas limit of a deploy-and-settle batch for a counterfactual wallet.
    pub gas_limit_counterfactual: u64,
    /// Gas limit of a Permit2 proxy settle.
    pub gas_limit_permit2: u64,
    /// Signers below this native balance (wei) are reported unfunded.
    pub min_signer_balance: Option<U256>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            assets: None,
            erc6492_factories: Vec::new(),
            gas_limit_eip3009: 150_000,
            gas_limit_eip3009_contract: 250_000,
            gas_limit_counterfactual: 1_000_000,
            gas_limit_permit2: 300_000,
            min_signer_balance: None,
        }
    }
}

/// The facilitator role of `exact` on one EVM network.
#[derive(Debug)]
pub struct Facilitator {
    pub(crate) network: Network,
    pub(crate) chain_id: u64,
    pub(crate) provider: DynProvider,
    pub(crate) signers: SignerPool,
    pub(crate) policy: Policy,
    pub(crate) settler: Settler,
    pub(crate) clock: fn() -> UnixTime,
    pub(crate) payer_locks: KeyedLocks,
    /// Assets seen with code (a call to an address without code "succeeds" and proves nothing).
    pub(crate) assets_with_code: rpc::CodeCache,
}

impl Facilitator {
    /// A facilitator on `network` reading through `provider` and settling with `signers`.
    pub fn new(
        network: Network,
        provider: DynProvider,
        signers: SignerPool,
        store: Arc<dyn SettlementStore>,
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
            settler: Settler::new(provider.clone(), signers.clone(), store.clone()),
            network,
            chain_id,
            provider,
            signers,
            policy,
            clock: UnixTime::now,
            payer_locks: KeyedLocks::default(),
            assets_with_code: rpc::CodeCache::default(),
        })
    }

    /// Replaces the clock (tests pin time to a vector's window).
    pub fn with_clock(mut self, clock: fn() -> UnixTime) -> Self {
        self.clock = clock;
        self
    }

    /// The signer addresses.
    pub fn signer_addresses(&self) -> Vec<Address> {
        self.signers.addresses()
    }

    /// The address simulations are sent from: the first signer.
    pub(crate) fn simulate_from(&self) -> Address {
        self.signers
            .addresses()
            .first()
            .copied()
            .unwrap_or_default()
    }

    /// The requirements' asset (if the policy accepts it) and recipient.
    pub(crate) fn requirement_addresses(
        &self,
        req: &x402_core::RequirementsView<'_>,
    ) -> Result<(Address, Address), Rejection> {
        x402_evm::parse::requirement_addresses(req, self.policy.assets.as_deref())
    }

    /// Whether the token has code (cached; see [`x402_evm::chain::CodeCache`]).
    pub(crate) async fn asset_has_code(&self, asset: Address) -> Result<bool, SchemeError> {
        self.assets_with_code.has_code(&self.provider, asset).await
    }

    /// Parses and verifies; `Ok(Ok(plan))` when the payment is valid.
    pub(crate) async fn check(
        &self,
        ctx: &PaymentContext<'_>,
    ) -> Result<(Option<ExactEvmPayload>, Result<SettlePlan, Rejection>), SchemeError> {
        let payload = match payload::parse(ctx.payload.payload) {
            Ok(p) => p,
            Err(r) => return Ok((None, Err(r))),
        };
        let extra: Extra = match ctx.requirements.extra_as() {
            Ok(e) => e.unwrap_or_default(),
            Err(e) => {
                return Ok((
                    Some(payload),
                    Err(Rejection::with_message(
                        Reason::InvalidPaymentRequirements,
                        format!("extra: {e}"),
                    )),
                ));
            }
        };
        let verdict = match &payload {
            ExactEvmPayload::Eip3009(p) => self.verify_eip3009(ctx, p, &extra).await?,
            ExactEvmPayload::Permit2(p) => self.verify_permit2(ctx, p).await?,
        };
        Ok((Some(payload), verdict))
    }
}

#[async_trait]
impl FacilitatorRole for Facilitator {
    fn scheme(&self) -> &'static str {
        crate::SCHEME
    }

    async fn verify(&self, payment: &PaymentContext<'_>) -> Result<Verdict, SchemeError> {
        let (payload, verdict) = self.check(payment).await?;
        let payer = payload
            .map(|p| p.payer().to_checksum(None))
            .or_else(|| payload::payer_hint(payment.payload.payload));
        Ok(Verdict::from_check(payer, verdict))
    }

    async fn settle(&self, payment: &PaymentContext<'_>) -> Result<Settlement, SchemeError> {
        self.settle_payment(payment).await
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

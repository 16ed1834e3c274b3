//! Buyer side: requirements → a Permit2 witness transfer for the maximum, bound to the recipient,
//! the settling facilitator and the start of validity.

use std::sync::Arc;

use alloy::primitives::U256;
use alloy::signers::Signer;
use alloy::sol_types::SolStruct;
use async_trait::async_trait;
use x402_core::wire::Raw;
use x402_core::{BuyerRole, RequirementsView, SchemeError, Signed, UnixTime};
use x402_evm::abi::permit2_upto;
use x402_evm::addresses::UPTO_PERMIT2_PROXY;
use x402_evm::eip712::permit2_domain;
use x402_evm::parse;
use x402_evm::sponsor::erc20::buyer_erc20_entry;
use x402_evm::sponsor::{
    BuyerPermit, EIP2612_GAS_SPONSORING, ERC20_APPROVAL_GAS_SPONSORING, buyer_eip2612_entry,
};

use crate::Extra;
use crate::payload::{self, UptoPayload};

/// How far back a buyer dates `validAfter`, tolerating clock skew (x402-spec §4).
const VALID_AFTER_SKEW: u64 = 600;

/// The buyer role of `upto` on EVM: signs Permit2 witness transfers for the maximum with any
/// alloy signer.
#[derive(Clone)]
pub struct Buyer {
    signer: Arc<dyn Signer + Send + Sync>,
    rpcs: Arc<std::collections::BTreeMap<u64, alloy::providers::DynProvider>>,
}

impl std::fmt::Debug for Buyer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buyer")
            .field("address", &self.signer.address())
            .finish_non_exhaustive()
    }
}

impl Buyer {
    /// A buyer signing with `signer` (any alloy signer).
    pub fn new(signer: Arc<dyn Signer + Send + Sync>) -> Self {
        Self {
            signer,
            rpcs: Arc::default(),
        }
    }

    /// Reads chain `chain_id` through `provider`: with it, a payment whose 402 offers
    /// `eip2612GasSponsoring` carries an EIP-2612 permit for Permit2 when the allowance is short
    /// (see [`x402_evm::sponsor::buyer_eip2612_entry`]); failing that, when it offers
    /// `erc20ApprovalGasSponsoring`, the buyer's signed `approve(Permit2)` transaction
    /// ([`x402_evm::sponsor::erc20::buyer_erc20_entry`]). Without one, none is sent.
    pub fn with_rpc(mut self, chain_id: u64, provider: alloy::providers::DynProvider) -> Self {
        Arc::make_mut(&mut self.rpcs).insert(chain_id, provider);
        self
    }
}

#[async_trait]
impl BuyerRole for Buyer {
    fn scheme(&self) -> &'static str {
        crate::SCHEME
    }

    async fn sign(&self, requirements: &RequirementsView<'_>) -> Result<Raw, SchemeError> {
        let payload = sign(self.signer.as_ref(), requirements, UnixTime::now()).await?;
        payload::to_json(&payload).map_err(SchemeError::other)
    }

    /// Signs, and adds an `eip2612GasSponsoring` permit (or else an `erc20ApprovalGasSponsoring`
    /// signed approval) for the maximum when the seller offers it
    /// and the allowance to Permit2 is short.
    async fn sign_offered(
        &self,
        requirements: &RequirementsView<'_>,
        offered: Option<&serde_json::value::RawValue>,
    ) -> Result<Signed, SchemeError> {
        let p = sign(self.signer.as_ref(), requirements, UnixTime::now()).await?;
        let mut extensions = Vec::new();
        if let Ok(chain_id) = parse::chain_id(&requirements.network)
            && let Some(provider) = self.rpcs.get(&chain_id)
        {
            let extra: Extra = requirements.extra_as().ok().flatten().unwrap_or_default();
            let permit = BuyerPermit {
                name: extra.name.as_deref(),
                version: extra.version.as_deref(),
                chain_id,
                token: p.token,
                amount: p.max_amount,
                deadline: p.deadline,
            };
            let signer = self.signer.as_ref();
            if let Some(entry) = buyer_eip2612_entry(signer, provider, offered, permit).await? {
                extensions.push((EIP2612_GAS_SPONSORING.to_owned(), entry));
            } else if let Some(entry) =
                buyer_erc20_entry(signer, provider, offered, chain_id, p.token, p.max_amount)
                    .await?
            {
                // No permit (the token has no EIP-2612, or the seller offers only this): the
                // buyer's own approve(Permit2) transaction, for the facilitator to broadcast.
                extensions.push((ERC20_APPROVAL_GAS_SPONSORING.to_owned(), entry));
            }
        }
        let payload = payload::to_json(&p).map_err(SchemeError::other)?;
        Ok(Signed {
            payload,
            extensions,
        })
    }
}

/// Signs an `upto` authorization for `req`, refusing requirements it cannot check.
pub(crate) async fn sign(
    signer: &(dyn Signer + Send + Sync),
    req: &RequirementsView<'_>,
    now: UnixTime,
) -> Result<UptoPayload, SchemeError> {
    let unusable = |m: String| SchemeError::Unusable(m);
    if req.scheme != crate::SCHEME {
        return Err(unusable(format!("scheme {:?} is not upto", req.scheme)));
    }
    let chain_id = parse::chain_id(&req.network).map_err(|e| unusable(e.to_string()))?;
    let token = parse::address("asset", req.asset).map_err(|e| unusable(e.to_string()))?;
    let to = parse::address("payTo", req.pay_to).map_err(|e| unusable(e.to_string()))?;
    let extra: Extra = req
        .extra_as()
        .map_err(|e| unusable(format!("extra: {e}")))?
        .unwrap_or_default();
    let facilitator = extra
        .facilitator_address
        .as_deref()
        .ok_or_else(|| unusable("extra.facilitatorAddress is required to sign upto".into()))?;
    let facilitator =
        parse::address("facilitatorAddress", facilitator).map_err(|e| unusable(e.to_string()))?;
    if req.amount.is_zero() {
        return Err(unusable("a maximum of zero authorizes nothing".into()));
    }
    let valid_after = U256::from(now.0.saturating_sub(VALID_AFTER_SKEW));
    let deadline = U256::from(now.0.saturating_add(req.max_timeout_seconds));
    if deadline <= valid_after {
        return Err(unusable("the deadline would not follow validAfter".into()));
    }
    let nonce = U256::from_be_bytes(rand::random::<[u8; 32]>());
    let message = permit2_upto::PermitWitnessTransferFrom {
        permitted: permit2_upto::TokenPermissions {
            token,
            amount: req.amount.get(),
        },
        spender: UPTO_PERMIT2_PROXY,
        nonce,
        deadline,
        witness: permit2_upto::Witness {
            to,
            facilitator,
            validAfter: valid_after,
        },
    };
    let digest = message.eip712_signing_hash(&permit2_domain(chain_id));
    let signature = signer
        .sign_hash(&digest)
        .await
        .map_err(SchemeError::signer)?;
    Ok(UptoPayload {
        signature: signature.as_bytes().to_vec().into(),
        from: signer.address(),
        token,
        max_amount: req.amount.get(),
        spender: UPTO_PERMIT2_PROXY,
        nonce,
        deadline,
        to,
        facilitator,
        valid_after,
    })
}

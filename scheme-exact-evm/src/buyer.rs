//! Buyer side: requirements → a signed EIP-3009 authorization or Permit2 witness transfer.

use std::sync::Arc;

use alloy::primitives::{B256, U256};
use alloy::signers::Signer;
use alloy::sol_types::SolStruct;
use async_trait::async_trait;
use x402_core::wire::Raw;
use x402_core::{BuyerRole, RequirementsView, SchemeError, Signed, UnixTime};
use x402_evm::abi::{eip3009, permit2_exact};
use x402_evm::addresses::EXACT_PERMIT2_PROXY;
use x402_evm::eip712::{eip3009_domain, permit2_domain};
use x402_evm::parse;
use x402_evm::sponsor::erc20::buyer_erc20_entry;
use x402_evm::sponsor::{
    BuyerPermit, EIP2612_GAS_SPONSORING, ERC20_APPROVAL_GAS_SPONSORING, buyer_eip2612_entry,
};

use crate::Extra;
use crate::payload::{self, Eip3009Payload, ExactEvmPayload, Permit2Payload};

/// How far back a buyer dates `validAfter`, tolerating clock skew (x402-spec §4).
pub(crate) const VALID_AFTER_SKEW: u64 = 600;

/// The buyer role of `exact` on EVM: signs EIP-3009 authorizations and Permit2 witness transfers
/// with any alloy signer.
#[derive(Clone)]
pub struct Buyer {
    signer: Arc<dyn Signer + Send + Sync>,
    clock: x402_core::SharedClock,
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
            clock: x402_core::system_clock(),
            rpcs: Arc::default(),
        }
    }

    /// Reads chain `chain_id` through `provider`: with it, a Permit2 payment whose 402 offers
    /// `eip2612GasSponsoring` carries an EIP-2612 permit for Permit2 when the allowance is short
    /// (see [`x402_evm::sponsor::buyer_eip2612_entry`]); failing that, when it offers
    /// `erc20ApprovalGasSponsoring`, the buyer's signed `approve(Permit2)` transaction
    /// ([`x402_evm::sponsor::erc20::buyer_erc20_entry`]). Without one, none is sent.
    pub fn with_rpc(mut self, chain_id: u64, provider: alloy::providers::DynProvider) -> Self {
        Arc::make_mut(&mut self.rpcs).insert(chain_id, provider);
        self
    }

    /// Replaces the clock used when signing (the authorization's window starts from it).
    pub fn with_clock(mut self, clock: x402_core::SharedClock) -> Self {
        self.clock = clock;
        self
    }
}

#[async_trait]
impl BuyerRole for Buyer {
    fn scheme(&self) -> &'static str {
        crate::SCHEME
    }

    async fn sign(&self, requirements: &RequirementsView<'_>) -> Result<Raw, SchemeError> {
        let payload = sign(self.signer.as_ref(), requirements, self.clock.now()).await?;
        payload::to_json(&payload).map_err(SchemeError::other)
    }

    /// Signs, and adds an `eip2612GasSponsoring` permit (or else an `erc20ApprovalGasSponsoring`
    /// signed approval) to a Permit2 payment when the seller
    /// offers it and the allowance to Permit2 is short.
    async fn sign_offered(
        &self,
        requirements: &RequirementsView<'_>,
        offered: Option<&serde_json::value::RawValue>,
    ) -> Result<Signed, SchemeError> {
        let payload = sign(self.signer.as_ref(), requirements, self.clock.now()).await?;
        let mut extensions = Vec::new();
        if let ExactEvmPayload::Permit2(p) = &payload
            && let Ok(chain_id) = parse::chain_id(&requirements.network)
            && let Some(provider) = self.rpcs.get(&chain_id)
        {
            let extra: Extra = requirements.extra_as().ok().flatten().unwrap_or_default();
            let permit = BuyerPermit {
                name: extra.name.as_deref(),
                version: extra.version.as_deref(),
                chain_id,
                token: p.token,
                amount: p.amount,
                deadline: p.deadline,
            };
            let signer = self.signer.as_ref();
            if let Some(entry) = buyer_eip2612_entry(signer, provider, offered, permit).await? {
                extensions.push((EIP2612_GAS_SPONSORING.to_owned(), entry));
            } else if let Some(entry) =
                buyer_erc20_entry(signer, provider, offered, chain_id, p.token, p.amount).await?
            {
                // No permit (the token has no EIP-2612, or the seller offers only this): the
                // buyer's own approve(Permit2) transaction, for the facilitator to broadcast.
                extensions.push((ERC20_APPROVAL_GAS_SPONSORING.to_owned(), entry));
            }
        }
        let payload = payload::to_json(&payload).map_err(SchemeError::other)?;
        Ok(Signed {
            payload,
            extensions,
        })
    }
}

/// Signs a payment for `req` with `signer`.
pub(crate) async fn sign(
    signer: &(dyn Signer + Send + Sync),
    req: &RequirementsView<'_>,
    now: UnixTime,
) -> Result<ExactEvmPayload, SchemeError> {
    let unusable = |m: String| SchemeError::Unusable(m);
    if req.scheme != crate::SCHEME {
        return Err(unusable(format!("scheme {:?} is not exact", req.scheme)));
    }
    let chain_id = parse::chain_id(&req.network).map_err(|e| unusable(e.to_string()))?;
    let asset = parse::address("asset", req.asset).map_err(|e| unusable(e.to_string()))?;
    let pay_to = parse::address("payTo", req.pay_to).map_err(|e| unusable(e.to_string()))?;
    let extra: Extra = req
        .extra_as()
        .map_err(|e| unusable(format!("extra: {e}")))?
        .unwrap_or_default();
    let valid_after = U256::from(now.0.saturating_sub(VALID_AFTER_SKEW));
    let deadline = U256::from(now.0.saturating_add(req.max_timeout_seconds));
    let from = signer.address();
    let sign_err = |e: alloy::signers::Error| SchemeError::signer(e);

    if extra.is_permit2() {
        let nonce = U256::from_be_bytes(rand::random::<[u8; 32]>());
        let msg = permit2_exact::PermitWitnessTransferFrom {
            permitted: permit2_exact::TokenPermissions {
                token: asset,
                amount: req.amount.get(),
            },
            spender: EXACT_PERMIT2_PROXY,
            nonce,
            deadline,
            witness: permit2_exact::Witness {
                to: pay_to,
                validAfter: valid_after,
            },
        };
        let digest = msg.eip712_signing_hash(&permit2_domain(chain_id));
        let signature = signer.sign_hash(&digest).await.map_err(sign_err)?;
        return Ok(ExactEvmPayload::Permit2(Permit2Payload {
            signature: signature.as_bytes().to_vec().into(),
            from,
            token: asset,
            amount: req.amount.get(),
            spender: EXACT_PERMIT2_PROXY,
            nonce,
            deadline,
            witness_to: pay_to,
            valid_after,
        }));
    }

    let (Some(name), Some(version)) = (extra.name.as_deref(), extra.version.as_deref()) else {
        return Err(unusable(
            "extra.name and extra.version (the token's EIP-712 domain) are required to sign".into(),
        ));
    };
    let nonce = B256::from(rand::random::<[u8; 32]>());
    let msg = eip3009::TransferWithAuthorization {
        from,
        to: pay_to,
        value: req.amount.get(),
        validAfter: valid_after,
        validBefore: deadline,
        nonce,
    };
    let digest = msg.eip712_signing_hash(&eip3009_domain(name, version, chain_id, asset));
    let signature = signer.sign_hash(&digest).await.map_err(sign_err)?;
    Ok(ExactEvmPayload::Eip3009(Eip3009Payload {
        signature: signature.as_bytes().to_vec().into(),
        from,
        to: pay_to,
        value: req.amount.get(),
        valid_after,
        valid_before: deadline,
        nonce,
    }))
}

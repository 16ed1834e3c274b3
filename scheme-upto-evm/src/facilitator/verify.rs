//! Verification of `upto` payments in the reference's order (x402-spec §3.3).

use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::{SolCall, SolStruct};
use x402_core::{PaymentContext, Reason, Rejection, SchemeError, UnixTime};
use x402_evm::abi::permit2::{self, IUptoPermit2Proxy};
use x402_evm::abi::permit2_upto;
use x402_evm::addresses::UPTO_PERMIT2_PROXY;
use x402_evm::chain::{self, CallResult};
use x402_evm::eip712::permit2_domain;
use x402_evm::permit2::{Diagnosis, check_time, diagnose, permit2_id};
use x402_evm::settle::{NonceCheck, SettlePlan, Transfer};
use x402_evm::signature;

use super::Facilitator;
use crate::payload::{self, UptoPayload};

/// Which amount a verification checks against.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Phase {
    /// `/verify`: the requirements carry the maximum, which must equal the permitted amount.
    Verify,
    /// `/settle`: the requirements carry the actual charge, at most the permitted amount.
    Settle,
}

fn reject(reason: Reason) -> Rejection {
    Rejection::new(reason)
}

/// Unwraps a `Result<_, Rejection>` or returns the rejection as the verdict.
macro_rules! reject_on_err {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(rejection) => return Ok(Err(rejection)),
        }
    };
}

impl Facilitator {
    /// Parses and verifies; the payload (when it parses) and `Ok(plan)` when valid. The plan
    /// settles `amount` (the maximum at verify, the charge at settle).
    pub(crate) async fn check(
        &self,
        ctx: &PaymentContext<'_>,
        phase: Phase,
    ) -> Result<(Option<UptoPayload>, Result<SettlePlan, Rejection>), SchemeError> {
        let p = match payload::parse(ctx.payload.payload) {
            Ok(p) => p,
            Err(r) => return Ok((None, Err(r))),
        };
        let verdict = self.verify_payload(ctx, &p, phase).await?;
        Ok((Some(p), verdict))
    }

    async fn verify_payload(
        &self,
        ctx: &PaymentContext<'_>,
        p: &UptoPayload,
        phase: Phase,
    ) -> Result<Result<SettlePlan, Rejection>, SchemeError> {
        let req = &ctx.requirements;
        // 1–2. scheme, network.
        if ctx.payload.scheme != crate::SCHEME || req.scheme != crate::SCHEME {
            return Ok(Err(reject(Reason::InvalidUptoEvmScheme)));
        }
        if !ctx.network_matches() {
            return Ok(Err(reject(Reason::InvalidUptoEvmNetworkMismatch)));
        }
        let (asset, pay_to) = reject_on_err!(self.requirement_addresses(req));
        // 3–5. spender, recipient, facilitator.
        if p.spender != UPTO_PERMIT2_PROXY {
            return Ok(Err(reject(Reason::InvalidPermit2Spender)));
        }
        if p.to != pay_to {
            return Ok(Err(reject(Reason::InvalidPermit2RecipientMismatch)));
        }
        if !self.signers.contains(p.facilitator) {
            return Ok(Err(Rejection::with_message(
                Reason::UptoFacilitatorMismatch,
                format!("{} is not a signer of this facilitator", p.facilitator),
            )));
        }
        // 6–7. time window.
        reject_on_err!(check_time(
            (self.clock)(),
            p.valid_after,
            p.deadline,
            Reason::Permit2NotYetValid,
            Reason::Permit2DeadlineExpired,
        ));
        // 8. amount: the maximum at verify; at most the maximum at settle.
        let amount = req.amount.get();
        match phase {
            Phase::Verify if amount != p.max_amount => {
                return Ok(Err(reject(Reason::Permit2AmountMismatch)));
            }
            Phase::Settle if amount > p.max_amount => {
                return Ok(Err(Rejection::with_message(
                    Reason::InvalidUptoEvmPayloadSettlementExceedsAmount,
                    format!("settle {amount} exceeds the authorized {}", p.max_amount),
                )));
            }
            _ => {}
        }
        // 9. token.
        if p.token != asset {
            return Ok(Err(reject(Reason::Permit2TokenMismatch)));
        }
        // 10. signature: ECDSA for an account without code; Permit2 itself asks a contract.
        let message = permit2_upto::PermitWitnessTransferFrom {
            permitted: permit2_upto::TokenPermissions {
                token: p.token,
                amount: p.max_amount,
            },
            spender: p.spender,
            nonce: p.nonce,
            deadline: p.deadline,
            witness: permit2_upto::Witness {
                to: p.to,
                facilitator: p.facilitator,
                validAfter: p.valid_after,
            },
        };
        let digest = message.eip712_signing_hash(&permit2_domain(self.chain_id));
        if signature::recover(&digest, &p.signature) != Some(p.from)
            && chain::code(&self.provider, p.from).await?.is_empty()
        {
            return Ok(Err(reject(Reason::InvalidPermit2Signature)));
        }
        if !self
            .assets_with_code
            .has_code(&self.provider, asset)
            .await?
        {
            return Ok(Err(Rejection::with_message(
                Reason::UnsupportedAsset,
                format!("no contract at asset {asset}"),
            )));
        }
        // 11. simulate the proxy call, from the witness facilitator, for the amount at stake.
        let plan = self.plan(p, amount);
        if amount.is_zero() {
            // Nothing will be sent; the proxy would refuse a zero transfer anyway.
            return Ok(Ok(plan));
        }
        match chain::call(&self.provider, p.facilitator, plan.to, plan.data.clone()).await? {
            CallResult::Ok(_) => Ok(Ok(plan)),
            CallResult::Reverted => Ok(Err(diagnose(
                &self.provider,
                p.facilitator,
                Diagnosis {
                    proxy: UPTO_PERMIT2_PROXY,
                    token: p.token,
                    owner: p.from,
                    amount,
                    nonce: p.nonce,
                },
            )
            .await?)),
        }
    }

    fn requirement_addresses(
        &self,
        req: &x402_core::RequirementsView<'_>,
    ) -> Result<(Address, Address), Rejection> {
        x402_evm::parse::requirement_addresses(req, self.policy.assets.as_deref())
    }

    /// The proxy call that settles `amount` of `p`, sent from the witness facilitator.
    fn plan(&self, p: &UptoPayload, amount: U256) -> SettlePlan {
        let data: Bytes = IUptoPermit2Proxy::settleCall {
            permit: permit2::PermitTransferFrom {
                permitted: permit2::TokenPermissions {
                    token: p.token,
                    amount: p.max_amount,
                },
                nonce: p.nonce,
                deadline: p.deadline,
            },
            amount,
            owner: p.from,
            witness: permit2::UptoWitness {
                to: p.to,
                facilitator: p.facilitator,
                validAfter: p.valid_after,
            },
            signature: p.signature.clone(),
        }
        .abi_encode()
        .into();
        SettlePlan {
            to: UPTO_PERMIT2_PROXY,
            data,
            gas_limit: self.policy.gas_limit,
            from: Some(p.facilitator),
            id: permit2_id(&self.network, p.from, p.nonce),
            expires: UnixTime(u64::try_from(p.deadline).unwrap_or(u64::MAX)),
            payer: p.from,
            transfer: Transfer {
                token: p.token,
                from: p.from,
                to: p.to,
                value: amount,
            },
            nonce_check: NonceCheck::Permit2 {
                owner: p.from,
                nonce: p.nonce,
            },
            report_amount: Some(amount),
        }
    }
}

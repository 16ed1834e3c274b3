//! Verification of Permit2 payments through the exact proxy (x402-spec §3.2).

use alloy::sol_types::{SolCall, SolStruct};
use x402_core::{PaymentContext, Reason, Rejection, SchemeError, UnixTime};
use x402_evm::abi::permit2::{self, IExactPermit2Proxy};
use x402_evm::abi::permit2_exact;
use x402_evm::addresses::EXACT_PERMIT2_PROXY;
use x402_evm::chain::{self as rpc, CallResult};
use x402_evm::eip712::permit2_domain;
use x402_evm::permit2::{Diagnosis, check_time, diagnose, permit2_id};
use x402_evm::settle::{NonceCheck, SettlePlan, Transfer};
use x402_evm::signature;

use super::Facilitator;
use crate::payload::Permit2Payload;

fn reject(reason: Reason) -> Rejection {
    Rejection::new(reason)
}

impl Facilitator {
    /// Verifies a Permit2 payment; `Ok(Ok(plan))` when valid.
    pub(crate) async fn verify_permit2(
        &self,
        ctx: &PaymentContext<'_>,
        p: &Permit2Payload,
    ) -> Result<Result<SettlePlan, Rejection>, SchemeError> {
        let req = &ctx.requirements;
        // 1–2. scheme, network.
        if ctx.payload.scheme != crate::SCHEME || req.scheme != crate::SCHEME {
            return Ok(Err(reject(Reason::UnsupportedPayloadType)));
        }
        if !ctx.network_matches() {
            return Ok(Err(reject(Reason::InvalidExactEvmNetworkMismatch)));
        }
        let (asset, pay_to) = reject_on_err!(self.requirement_addresses(req));
        // 3–8. spender, recipient, deadline, start, amount, token.
        if p.spender != EXACT_PERMIT2_PROXY {
            return Ok(Err(reject(Reason::InvalidPermit2Spender)));
        }
        if p.witness_to != pay_to {
            return Ok(Err(reject(Reason::InvalidPermit2RecipientMismatch)));
        }
        reject_on_err!(check_time(
            (self.clock)(),
            p.valid_after,
            p.deadline,
            Reason::Permit2NotYetValid,
            Reason::Permit2DeadlineExpired,
        ));
        if p.amount != req.amount.get() {
            return Ok(Err(reject(Reason::Permit2AmountMismatch)));
        }
        if p.token != asset {
            return Ok(Err(reject(Reason::Permit2TokenMismatch)));
        }
        // 9. signature: ECDSA for an account without code; Permit2 itself asks a contract.
        let message = permit2_exact::PermitWitnessTransferFrom {
            permitted: permit2_exact::TokenPermissions {
                token: p.token,
                amount: p.amount,
            },
            spender: p.spender,
            nonce: p.nonce,
            deadline: p.deadline,
            witness: permit2_exact::Witness {
                to: p.witness_to,
                validAfter: p.valid_after,
            },
        };
        let digest = message.eip712_signing_hash(&permit2_domain(self.chain_id));
        if signature::recover(&digest, &p.signature) != Some(p.from)
            && rpc::code(&self.provider, p.from).await?.is_empty()
        {
            return Ok(Err(reject(Reason::InvalidPermit2Signature)));
        }
        // 10. simulate the proxy call settle will send (against a token that exists).
        if !self.asset_has_code(asset).await? {
            return Ok(Err(Rejection::with_message(
                Reason::UnsupportedAsset,
                format!("no contract at asset {asset}"),
            )));
        }
        let data = IExactPermit2Proxy::settleCall {
            permit: permit2::PermitTransferFrom {
                permitted: permit2::TokenPermissions {
                    token: p.token,
                    amount: p.amount,
                },
                nonce: p.nonce,
                deadline: p.deadline,
            },
            owner: p.from,
            witness: permit2::ExactWitness {
                to: p.witness_to,
                validAfter: p.valid_after,
            },
            signature: p.signature.clone(),
        }
        .abi_encode();
        let plan = SettlePlan {
            to: EXACT_PERMIT2_PROXY,
            data: data.into(),
            gas_limit: self.policy.gas_limit_permit2,
            from: None,
            id: permit2_id(&self.network, p.from, p.nonce),
            expires: UnixTime(u64::try_from(p.deadline).unwrap_or(u64::MAX)),
            payer: p.from,
            transfer: Transfer {
                token: p.token,
                from: p.from,
                to: p.witness_to,
                value: p.amount,
            },
            nonce_check: NonceCheck::Permit2 {
                owner: p.from,
                nonce: p.nonce,
            },
            report_amount: None,
        };
        match rpc::call(
            &self.provider,
            self.simulate_from(),
            plan.to,
            plan.data.clone(),
        )
        .await?
        {
            CallResult::Ok(_) => Ok(Ok(plan)),
            CallResult::Reverted => Ok(Err(diagnose(
                &self.provider,
                self.simulate_from(),
                Diagnosis {
                    proxy: EXACT_PERMIT2_PROXY,
                    token: p.token,
                    owner: p.from,
                    amount: p.amount,
                    nonce: p.nonce,
                },
            )
            .await?)),
        }
    }
}

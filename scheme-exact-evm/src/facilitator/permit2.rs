//! Verification of Permit2 payments through the exact proxy (x402-spec §3.2).

use alloy::primitives::{Address, U256};
use alloy::sol_types::{SolCall, SolStruct};
use x402_core::{PaymentContext, PaymentId, Reason, Rejection, SchemeError, UnixTime};
use x402_evm::abi::eip3009::IEip3009Token;
use x402_evm::abi::permit2::{self, IExactPermit2Proxy};
use x402_evm::abi::permit2_exact;
use x402_evm::addresses::{EXACT_PERMIT2_PROXY, PERMIT2};
use x402_evm::eip712::permit2_domain;
use x402_evm::signature;

use super::eip3009::NonceCheck;
use super::rpc::{self, CallResult};
use super::{Facilitator, SettlePlan, Transfer, check_time};
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
        let asset = match self.allowed_asset(req.asset) {
            Ok(a) => a,
            Err(r) => return Ok(Err(r)),
        };
        let pay_to = match x402_evm::parse::address("payTo", req.pay_to) {
            Ok(a) => a,
            Err(e) => {
                return Ok(Err(Rejection::with_message(
                    Reason::InvalidPaymentRequirements,
                    e.to_string(),
                )));
            }
        };
        // 3–8. spender, recipient, deadline, start, amount, token.
        if p.spender != EXACT_PERMIT2_PROXY {
            return Ok(Err(reject(Reason::InvalidPermit2Spender)));
        }
        if p.witness_to != pay_to {
            return Ok(Err(reject(Reason::InvalidPermit2RecipientMismatch)));
        }
        if let Err(r) = check_time(
            (self.clock)(),
            p.valid_after,
            p.deadline,
            Reason::Permit2NotYetValid,
            Reason::Permit2DeadlineExpired,
        ) {
            return Ok(Err(r));
        }
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
            CallResult::Reverted => Ok(Err(self.diagnose_permit2(p).await?)),
        }
    }

    /// Finds out why a Permit2 simulation failed (x402-spec §3.2 step 10), first hit wins.
    async fn diagnose_permit2(&self, p: &Permit2Payload) -> Result<Rejection, SchemeError> {
        let from = self.simulate_from();
        let proxy = rpc::view(
            &self.provider,
            from,
            EXACT_PERMIT2_PROXY,
            IExactPermit2Proxy::PERMIT2Call {},
        )
        .await?;
        if proxy != Some(PERMIT2) {
            return Ok(reject(Reason::Permit2ProxyNotDeployed));
        }
        if self.permit2_nonce_used(p.from, p.nonce).await? {
            return Ok(reject(Reason::Permit2InvalidNonce));
        }
        let balance = rpc::view(
            &self.provider,
            from,
            p.token,
            IEip3009Token::balanceOfCall { account: p.from },
        )
        .await?;
        if balance.is_none_or(|b| b < p.amount) {
            return Ok(reject(Reason::Permit2InsufficientBalance));
        }
        let allowance = rpc::view(
            &self.provider,
            from,
            p.token,
            IEip3009Token::allowanceCall {
                owner: p.from,
                spender: PERMIT2,
            },
        )
        .await?;
        if allowance.is_none_or(|a| a < p.amount) {
            return Ok(reject(Reason::Permit2AllowanceRequired));
        }
        if rpc::code(&self.provider, p.from).await?.is_empty() {
            Ok(reject(Reason::Permit2SimulationFailed))
        } else {
            // A contract owner whose EIP-1271 check failed inside Permit2.
            Ok(reject(Reason::InvalidPermit2Signature))
        }
    }

    /// Whether Permit2's unordered nonce of `owner` is already spent.
    pub(crate) async fn permit2_nonce_used(
        &self,
        owner: Address,
        nonce: U256,
    ) -> Result<bool, SchemeError> {
        let word = nonce >> 8;
        let bit = U256::from(1) << (nonce & U256::from(0xff)).to::<usize>();
        let bitmap = rpc::view(
            &self.provider,
            self.simulate_from(),
            PERMIT2,
            x402_evm::abi::permit2::IPermit2Nonces::nonceBitmapCall {
                owner,
                wordPos: word,
            },
        )
        .await?
        .unwrap_or_default();
        Ok(bitmap & bit != U256::ZERO)
    }
}

/// The identity of a Permit2 payment: one nonce space per owner, shared by every spender (the
/// exact and upto proxies alike).
pub fn permit2_id(network: &x402_core::Network, owner: Address, nonce: U256) -> PaymentId {
    PaymentId::new(
        "permit2",
        [
            network.as_str().to_owned(),
            format!("{owner:#x}"),
            nonce.to_string(),
        ],
    )
}

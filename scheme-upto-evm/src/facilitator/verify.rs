//! Verification of `upto` payments in the reference's order (x402-spec §3.3): what `upto` says
//! to the shared check sequence ([`x402_evm::facilitator::verify_permit2`]) — its proxy and
//! reasons, the witness facilitator, the amount-up-to rules, and the proxy call (from the witness
//! facilitator, for the amount at stake) settle sends.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::{SolCall, SolStruct};
use x402_core::{Reason, Rejection};
use x402_evm::abi::permit2::{self, IUptoPermit2Proxy};
use x402_evm::abi::permit2_upto;
use x402_evm::addresses::UPTO_PERMIT2_PROXY;
use x402_evm::eip712::permit2_domain;
use x402_evm::facilitator::{Permit2Scheme, Permit2View, Phase};
use x402_evm::settle::SettlePlan;
use x402_evm::sponsor::Eip2612Permit;

use super::Facilitator;
use crate::payload::UptoPayload;

impl Permit2Scheme for Facilitator {
    type Permit = UptoPayload;

    const SCHEME: &'static str = crate::SCHEME;
    const PROXY: Address = UPTO_PERMIT2_PROXY;
    const SCHEME_MISMATCH: Reason = crate::reason::INVALID_UPTO_EVM_SCHEME;
    const NETWORK_MISMATCH: Reason = crate::reason::INVALID_UPTO_EVM_NETWORK_MISMATCH;

    fn assets(&self) -> Option<&[Address]> {
        self.policy.assets.as_deref()
    }

    fn view(p: &UptoPayload) -> Permit2View<'_> {
        Permit2View {
            terms: p.terms(),
            signature: &p.signature,
            to: p.to,
            valid_after: p.valid_after,
        }
    }

    /// The witness facilitator must be one of this facilitator's signers.
    fn check_witness(&self, p: &UptoPayload) -> Result<(), Rejection> {
        if !self.core.signers.contains(p.facilitator) {
            return Err(Rejection::with_message(
                crate::reason::UPTO_FACILITATOR_MISMATCH,
                format!("{} is not a signer of this facilitator", p.facilitator),
            ));
        }
        Ok(())
    }

    /// The maximum at verify; at most the maximum at settle.
    fn amount(p: &UptoPayload, amount: U256, phase: Phase) -> Result<U256, Rejection> {
        match phase {
            Phase::Verify if amount != p.max_amount => {
                Err(Rejection::new(x402_evm::reason::PERMIT2_AMOUNT_MISMATCH))
            }
            Phase::Settle | Phase::Claimed if amount > p.max_amount => {
                Err(Rejection::with_message(
                    crate::reason::INVALID_UPTO_EVM_PAYLOAD_SETTLEMENT_EXCEEDS_AMOUNT,
                    format!("settle {amount} exceeds the authorized {}", p.max_amount),
                ))
            }
            _ => Ok(amount),
        }
    }

    fn digest(p: &UptoPayload, chain_id: u64) -> B256 {
        permit2_upto::PermitWitnessTransferFrom {
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
        }
        .eip712_signing_hash(&permit2_domain(chain_id))
    }

    /// The proxy call that settles `amount` of `p` (`settleWithPermit` with the buyer's EIP-2612
    /// permit), sent from the witness facilitator, with the amount reported.
    fn plan(
        &self,
        p: &UptoPayload,
        amount: U256,
        signature: &Bytes,
        permit: Option<&Eip2612Permit>,
    ) -> SettlePlan {
        let permit_transfer = permit2::PermitTransferFrom {
            permitted: permit2::TokenPermissions {
                token: p.token,
                amount: p.max_amount,
            },
            nonce: p.nonce,
            deadline: p.deadline,
        };
        let witness = permit2::UptoWitness {
            to: p.to,
            facilitator: p.facilitator,
            validAfter: p.valid_after,
        };
        let (data, gas_limit): (Bytes, u64) = match permit {
            None => (
                IUptoPermit2Proxy::settleCall {
                    permit: permit_transfer,
                    amount,
                    owner: p.from,
                    witness,
                    signature: signature.clone(),
                }
                .abi_encode()
                .into(),
                self.policy.gas_limit,
            ),
            Some(permit) => (
                IUptoPermit2Proxy::settleWithPermitCall {
                    permit2612: permit.call_tuple(),
                    permit: permit_transfer,
                    amount,
                    owner: p.from,
                    witness,
                    signature: signature.clone(),
                }
                .abi_encode()
                .into(),
                self.policy
                    .gas_limit
                    .saturating_add(x402_evm::facilitator::SETTLE_WITH_PERMIT_EXTRA_GAS),
            ),
        };
        SettlePlan {
            from: Some(p.facilitator),
            report_amount: Some(amount),
            ..Self::view(p).plan(
                &self.core.network,
                UPTO_PERMIT2_PROXY,
                data,
                gas_limit,
                amount,
                crate::reason::INVALID_UPTO_EVM_TRANSACTION_FAILED,
            )
        }
    }

    /// The witness facilitator: the proxy refuses any other sender.
    fn simulate_from(&self, p: &UptoPayload) -> Address {
        p.facilitator
    }

    /// Nothing is sent for a zero charge (the proxy would refuse a zero transfer anyway).
    fn sends_nothing(amount: U256) -> bool {
        amount.is_zero()
    }
}

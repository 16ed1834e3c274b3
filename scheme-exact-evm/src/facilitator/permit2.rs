//! Permit2 payments through the exact proxy (x402-spec §3.2): what `exact` says to the shared
//! check sequence ([`x402_evm::facilitator::verify_permit2`]) — its proxy and reasons, the exact
//! amount, its witness type and the proxy call settle sends.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::{SolCall, SolStruct};
use x402_core::{Reason, Rejection};
use x402_evm::abi::permit2::{self, IExactPermit2Proxy};
use x402_evm::abi::permit2_exact;
use x402_evm::addresses::EXACT_PERMIT2_PROXY;
use x402_evm::eip712::permit2_domain;
use x402_evm::facilitator::{Permit2Scheme, Permit2View, Phase};
use x402_evm::settle::SettlePlan;
use x402_evm::sponsor::Eip2612Permit;

use super::Facilitator;
use crate::payload::Permit2Payload;

impl Permit2Scheme for Facilitator {
    type Permit = Permit2Payload;

    const SCHEME: &'static str = crate::SCHEME;
    const PROXY: Address = EXACT_PERMIT2_PROXY;
    const SCHEME_MISMATCH: Reason = Reason::UNSUPPORTED_PAYLOAD_TYPE;
    const NETWORK_MISMATCH: Reason = crate::reason::INVALID_EXACT_EVM_NETWORK_MISMATCH;

    fn assets(&self) -> Option<&[Address]> {
        self.policy.assets.as_deref()
    }

    fn view(p: &Permit2Payload) -> Permit2View<'_> {
        Permit2View {
            terms: p.terms(),
            signature: &p.signature,
            to: p.witness_to,
            valid_after: p.valid_after,
        }
    }

    /// Exactly the required amount.
    fn amount(p: &Permit2Payload, required: U256, _phase: Phase) -> Result<U256, Rejection> {
        if p.amount != required {
            return Err(Rejection::new(x402_evm::reason::PERMIT2_AMOUNT_MISMATCH));
        }
        Ok(p.amount)
    }

    fn digest(p: &Permit2Payload, chain_id: u64) -> B256 {
        permit2_exact::PermitWitnessTransferFrom {
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
        }
        .eip712_signing_hash(&permit2_domain(chain_id))
    }

    /// The proxy call moving the whole permitted amount (`settleWithPermit` with the buyer's
    /// EIP-2612 permit), sent by any signer.
    fn plan(
        &self,
        p: &Permit2Payload,
        _amount: U256,
        signature: &Bytes,
        permit: Option<&Eip2612Permit>,
    ) -> SettlePlan {
        let permit_transfer = permit2::PermitTransferFrom {
            permitted: permit2::TokenPermissions {
                token: p.token,
                amount: p.amount,
            },
            nonce: p.nonce,
            deadline: p.deadline,
        };
        let witness = permit2::ExactWitness {
            to: p.witness_to,
            validAfter: p.valid_after,
        };
        let (data, gas_limit) = match permit {
            None => (
                IExactPermit2Proxy::settleCall {
                    permit: permit_transfer,
                    owner: p.from,
                    witness,
                    signature: signature.clone(),
                }
                .abi_encode(),
                self.policy.gas_limit_permit2,
            ),
            Some(permit) => (
                IExactPermit2Proxy::settleWithPermitCall {
                    permit2612: permit.call_tuple(),
                    permit: permit_transfer,
                    owner: p.from,
                    witness,
                    signature: signature.clone(),
                }
                .abi_encode(),
                self.policy
                    .gas_limit_permit2
                    .saturating_add(x402_evm::facilitator::SETTLE_WITH_PERMIT_EXTRA_GAS),
            ),
        };
        Self::view(p).plan(
            &self.core.network,
            EXACT_PERMIT2_PROXY,
            data.into(),
            gas_limit,
            p.amount,
            x402_evm::reason::INVALID_EXACT_EVM_TRANSACTION_FAILED,
        )
    }

    fn simulate_from(&self, _p: &Permit2Payload) -> Address {
        self.core.simulate_from()
    }
}

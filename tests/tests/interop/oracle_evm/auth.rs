//! An authorization of any of the four mechanisms before it is signed, signed as a wallet signs
//! it, and its nonce used on chain by someone else.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use serde_json::Value;
use x402_core::wire::{PaymentRequirementsV2, Raw};
use x402_evm::abi::eip3009::{IEip3009Token, TransferWithAuthorization};
use x402_evm::abi::{permit2_exact, permit2_upto};
use x402_evm::addresses::PERMIT2;
use x402_evm::eip712::eip3009_domain;
use x402_tests::evm::exact::{eip3009_signed, permit2_signed};
use x402_tests::evm::x402::{sign_eip712, split_signature};
use x402_tests::evm::{USDC_NAME, USDC_VERSION, permit2_domain};

use super::{Bed, Mech, fresh_nonce, unix_now};

alloy::sol! {
    interface IPermit2Nonces {
        function invalidateUnorderedNonces(uint256 wordPos, uint256 mask) external;
    }
}

/// An authorization before it is signed, with what it is signed under.
#[derive(Debug, Clone)]
pub(crate) struct Auth {
    pub(crate) from: Address,
    pub(crate) to: Address,
    pub(crate) token: Address,
    pub(crate) value: U256,
    pub(crate) spender: Address,
    pub(crate) facilitator: Address,
    pub(crate) valid_after: u64,
    pub(crate) expiry: u64,
    pub(crate) nonce: B256,
    pub(crate) chain_id: u64,
    pub(crate) token_name: String,
    pub(crate) token_version: String,
}

impl Auth {
    /// What the buyer `from` signs for `req`: valid from ten minutes ago for two minutes.
    pub(crate) fn new(bed: &Bed, mech: Mech, from: Address, req: &PaymentRequirementsV2) -> Self {
        let now = unix_now();
        Self {
            from,
            to: req.pay_to.parse().expect("payTo"),
            token: req.asset.parse().expect("asset"),
            value: req.amount.get(),
            spender: mech.proxy(),
            facilitator: bed.shop.h.bed.facilitator().address,
            valid_after: now - 600,
            expiry: now + 120,
            nonce: fresh_nonce(),
            chain_id: bed.shop.h.bed.chain_id(),
            token_name: USDC_NAME.to_owned(),
            token_version: USDC_VERSION.to_owned(),
        }
    }

    pub(crate) fn eip3009(&self) -> TransferWithAuthorization {
        TransferWithAuthorization {
            from: self.from,
            to: self.to,
            value: self.value,
            validAfter: U256::from(self.valid_after),
            validBefore: U256::from(self.expiry),
            nonce: self.nonce,
        }
    }

    /// The scheme payload `key` signs.
    pub(crate) fn sign(&self, mech: Mech, key: &PrivateKeySigner) -> Raw {
        let nonce = U256::from_be_bytes(self.nonce.0);
        let (after, deadline) = (U256::from(self.valid_after), U256::from(self.expiry));
        match mech {
            Mech::Eip3009 | Mech::Eip3009V1 => {
                let domain = eip3009_domain(
                    &self.token_name,
                    &self.token_version,
                    self.chain_id,
                    self.token,
                );
                eip3009_signed(key, &self.eip3009(), &domain)
            }
            Mech::Permit2 => {
                let message = permit2_exact::PermitWitnessTransferFrom {
                    permitted: permit2_exact::TokenPermissions {
                        token: self.token,
                        amount: self.value,
                    },
                    spender: self.spender,
                    nonce,
                    deadline,
                    witness: permit2_exact::Witness {
                        to: self.to,
                        validAfter: after,
                    },
                };
                permit2_signed(key, self.from, &message, &permit2_domain(self.chain_id))
            }
            Mech::Upto => {
                let message = permit2_upto::PermitWitnessTransferFrom {
                    permitted: permit2_upto::TokenPermissions {
                        token: self.token,
                        amount: self.value,
                    },
                    spender: self.spender,
                    nonce,
                    deadline,
                    witness: permit2_upto::Witness {
                        to: self.to,
                        facilitator: self.facilitator,
                        validAfter: after,
                    },
                };
                let signature = sign_eip712(key, &message, &permit2_domain(self.chain_id));
                scheme_upto_evm::payload::to_json(&scheme_upto_evm::payload::UptoPayload {
                    signature,
                    from: self.from,
                    token: self.token,
                    max_amount: self.value,
                    spender: self.spender,
                    nonce,
                    deadline,
                    to: self.to,
                    facilitator: self.facilitator,
                    valid_after: after,
                })
                .expect("payload json")
            }
        }
    }
}

/// Uses the authorization's nonce on chain before the facilitators see it: a third party submits
/// the EIP-3009 authorization itself; a Permit2 owner invalidates the nonce.
pub(crate) async fn use_nonce(bed: &Bed, mech: Mech, auth: &Auth, body: &Value) {
    let h = &bed.shop.h;
    let tx = if mech.eip3009() {
        let at = "/paymentPayload/payload/signature";
        let signature: Bytes = body
            .pointer(at)
            .and_then(Value::as_str)
            .expect(at)
            .parse()
            .expect("hex");
        let (v, r, s) = split_signature(&signature);
        let m = auth.eip3009();
        let data = IEip3009Token::transferWithAuthorization_0Call {
            from: m.from,
            to: m.to,
            value: m.value,
            validAfter: m.validAfter,
            validBefore: m.validBefore,
            nonce: m.nonce,
            v,
            r,
            s,
        }
        .abi_encode();
        TransactionRequest::default()
            .from(h.bed.deployer().address)
            .to(h.bed.usdc())
            .input(data.into())
    } else {
        let nonce = U256::from_be_bytes(auth.nonce.0);
        let data = IPermit2Nonces::invalidateUnorderedNoncesCall {
            wordPos: nonce >> 8,
            mask: U256::from(1) << (nonce & U256::from(0xff)).to::<usize>(),
        }
        .abi_encode();
        TransactionRequest::default()
            .from(auth.from)
            .to(PERMIT2)
            .input(data.into())
    };
    h.bed.send(tx, "the nonce used first").await;
}

//! Verification of EIP-3009 payments, in the reference's order (x402-spec §3.1), with signature
//! routing by code, an ERC-6492 factory allow-list, and a simulation of the exact call settle
//! will send.

use alloy::primitives::{Address, Bytes};
use alloy::sol_types::{SolCall, SolStruct};
use x402_core::{PaymentContext, Reason, Rejection, SchemeError, UnixTime};
use x402_evm::abi::eip3009::{IEip3009Token, TransferWithAuthorization};
use x402_evm::abi::wallet::{Call, IERC1271, IMulticall3};
use x402_evm::addresses::{ERC1271_MAGIC, MULTICALL3};
use x402_evm::eip712::{eip3009_domain_separator, signing_hash};
use x402_evm::signature::{self, Erc6492};

use x402_evm::chain as rpc;
use x402_evm::facilitator::Phase;
use x402_evm::reject_on_err;
use x402_evm::settle::{NonceCheck, SettlePlan, Transfer};

use super::Facilitator;
use crate::Extra;
use crate::payload::Eip3009Payload;

/// How the signature of a payment is checked and how its settlement is sent.
enum Route {
    /// An account without code: ECDSA, with the signature normalized to 65 bytes, `v` 27/28
    /// (it may come with `v` 0/1 or in EIP-2098's 64-byte form).
    Eoa(Bytes),
    /// A deployed contract: EIP-1271 (the inner signature when a 6492 wrapper was sent).
    Contract(Bytes),
    /// A counterfactual wallet deployed by an allow-listed factory in the same batch.
    Counterfactual(Erc6492),
}

fn reject(reason: Reason) -> Rejection {
    Rejection::new(reason)
}

impl Facilitator {
    /// Verifies an EIP-3009 payment; `Ok(Ok(plan))` when valid.
    pub(crate) async fn verify_eip3009(
        &self,
        ctx: &PaymentContext<'_>,
        p: &Eip3009Payload,
        extra: &Extra,
        phase: Phase,
    ) -> Result<Result<SettlePlan, Rejection>, SchemeError> {
        let req = &ctx.requirements;
        // 1. scheme (v1 also needs a known network name).
        if ctx.payload.scheme != crate::SCHEME || req.scheme != crate::SCHEME {
            return Ok(Err(reject(crate::reason::INVALID_EXACT_EVM_SCHEME)));
        }
        if ctx.payload.network().is_none() {
            return Ok(Err(reject(
                crate::reason::INVALID_EXACT_EVM_NETWORK_MISMATCH,
            )));
        }
        // 2. EIP-712 domain data.
        let (Some(name), Some(version)) = (extra.name.as_deref(), extra.version.as_deref()) else {
            return Ok(Err(reject(
                crate::reason::INVALID_EXACT_EVM_MISSING_EIP712_DOMAIN,
            )));
        };
        // 3. network.
        if !ctx.network_matches() {
            return Ok(Err(reject(
                crate::reason::INVALID_EXACT_EVM_NETWORK_MISMATCH,
            )));
        }
        let (asset, pay_to) = reject_on_err!(
            self.core
                .requirement_addresses(req, self.policy.assets.as_deref())
        );
        // 4. signature, routed by the payer's code.
        let digest = digest(asset, p, name, version, self.core.chain_id);
        let route = reject_on_err!(self.route_signature(p, &digest).await?);
        // 5–8. recipient, time window, exact amount.
        if p.to != pay_to {
            return Ok(Err(reject(
                crate::reason::INVALID_EXACT_EVM_RECIPIENT_MISMATCH,
            )));
        }
        reject_on_err!(self.core.check_window(
            p.valid_after,
            p.valid_before,
            crate::reason::INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_AFTER,
            crate::reason::INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_BEFORE,
        ));
        if p.value != req.amount.get() {
            return Ok(Err(reject(
                crate::reason::INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALUE_MISMATCH,
            )));
        }
        // 9. simulate exactly what settle will send (against a token that exists; at settle,
        //    under the claim).
        reject_on_err!(self.core.require_asset_code(asset).await?);
        let (to, data, gas_limit) = settle_call(asset, p, &route, &self.policy);
        let plan = SettlePlan {
            to,
            data,
            gas_limit,
            from: None,
            id: crate::payload::eip3009_id(&self.core.network, asset, p),
            reverted: crate::reason::INVALID_EXACT_EVM_TRANSACTION_FAILED,
            expires: UnixTime(u64::try_from(p.valid_before).unwrap_or(u64::MAX)),
            payer: p.from,
            transfer: Transfer {
                token: asset,
                from: p.from,
                to: p.to,
                value: p.value,
            },
            nonce_check: NonceCheck::Eip3009 {
                token: asset,
                authorizer: p.from,
                nonce: p.nonce,
            },
            report_amount: None,
        };
        // A settle simulates once, under the payment's claim (`Phase::Claimed`).
        if !phase.simulates() {
            return Ok(Ok(plan));
        }
        // A counterfactual wallet's batch goes through Multicall3: without it nothing deploys.
        let no_code = crate::reason::SMART_WALLET_DEPLOYMENT_FAILED;
        let from = self.core.simulate_from();
        if reject_on_err!(self.core.simulate(from, &plan, no_code).await?) {
            return Ok(Ok(plan));
        }
        Ok(Err(self
            .diagnose_eip3009(asset, p, &route, name, version)
            .await?))
    }

    /// Whether `p` is signed by its payer (see [`x402_evm::facilitator::EvmScheme::authentic`]):
    /// the digest its requirements give, checked as [`Self::route_signature`] routes it. A
    /// counterfactual wallet's signature is checked only by the simulation; its allow-listed
    /// factory is what stands for it here.
    pub(crate) async fn eip3009_authentic(
        &self,
        ctx: &PaymentContext<'_>,
        p: &Eip3009Payload,
    ) -> Result<bool, SchemeError> {
        let Ok(Some(extra)) = ctx.requirements.extra_as::<Extra>() else {
            return Ok(false);
        };
        let (Some(name), Some(version)) = (extra.name.as_deref(), extra.version.as_deref()) else {
            return Ok(false);
        };
        let Ok(asset) = x402_evm::parse::address("asset", ctx.requirements.asset) else {
            return Ok(false);
        };
        let digest = digest(asset, p, name, version, self.core.chain_id);
        // An EOA's signature needs no chain read.
        if signature::normalize_ecdsa(&p.signature)
            .is_some_and(|n| signature::recover(&digest, &n) == Some(p.from))
        {
            return Ok(true);
        }
        Ok(self.route_signature(p, &digest).await?.is_ok())
    }

    /// How `p`'s signature is checked and its settlement sent. An ECDSA signature by the payer
    /// needs no chain read: only an account with a key signs so (no contract address has one),
    /// and whether the account's code (an EIP-7702 delegation, which can change at any time)
    /// accepts it is what the token asks when the settlement is simulated — the same call settle
    /// sends, simulated again at settle. Any other signature is routed by the payer's code
    /// (contract code is cached; a delegation or no code is read each time).
    async fn route_signature(
        &self,
        p: &Eip3009Payload,
        digest: &alloy::primitives::B256,
    ) -> Result<Result<Route, Rejection>, SchemeError> {
        let wrapped = signature::unwrap_erc6492(&p.signature);
        if wrapped.is_none()
            && let Some(normalized) = signature::normalize_ecdsa(&p.signature)
                .filter(|n| signature::recover(digest, n) == Some(p.from))
        {
            return Ok(Ok(Route::Eoa(normalized)));
        }
        if self.core.code_at(p.from).await?.is_some() {
            // A deployed wallet, or a delegated account: EIP-1271 on the payer, with the inner
            // signature if wrapped.
            let sig = match wrapped {
                Some(Ok(w)) => w.inner,
                Some(Err(())) => return Ok(Err(bad_6492())),
                None => p.signature.clone(),
            };
            let call = IERC1271::isValidSignatureCall {
                hash: *digest,
                signature: sig.clone(),
            };
            let magic =
                rpc::view(&self.core.provider, self.core.simulate_from(), p.from, call).await?;
            return Ok(if magic == Some(ERC1271_MAGIC) {
                Ok(Route::Contract(sig))
            } else {
                Err(reject(crate::reason::INVALID_EXACT_EVM_SIGNATURE))
            });
        }
        match wrapped {
            // Not the payer's ECDSA signature (checked above), and no wallet to ask.
            None if p.signature.len() > 65 => Ok(Err(Rejection::with_message(
                crate::reason::INVALID_EXACT_EVM_SIGNATURE,
                // A smart-wallet signature for a wallet that does not exist and cannot be built.
                "a contract signature for a payer without code and without an ERC-6492 \
                 deployment",
            ))),
            None => Ok(Err(reject(crate::reason::INVALID_EXACT_EVM_SIGNATURE))),
            Some(Err(())) => Ok(Err(bad_6492())),
            Some(Ok(w)) if !self.policy.erc6492_factories.contains(&w.factory) => {
                Ok(Err(Rejection::with_message(
                    crate::reason::EIP6492_FACTORY_NOT_ALLOWED,
                    format!("ERC-6492 factory {} is not allow-listed", w.factory),
                )))
            }
            Some(Ok(w)) => Ok(Ok(Route::Counterfactual(w))),
        }
    }

    /// Finds out why a simulation failed (x402-spec §3.1 step 9), first hit wins; before giving
    /// up, a counterfactual wallet's deployment is tried on its own.
    async fn diagnose_eip3009(
        &self,
        asset: Address,
        p: &Eip3009Payload,
        route: &Route,
        name: &str,
        version: &str,
    ) -> Result<Rejection, SchemeError> {
        let provider = &self.core.provider;
        let from = self.core.simulate_from();
        let state = rpc::view(
            provider,
            from,
            asset,
            IEip3009Token::authorizationStateCall {
                authorizer: p.from,
                nonce: p.nonce,
            },
        )
        .await?;
        match state {
            None => {
                return Ok(reject(
                    crate::reason::INVALID_EXACT_EVM_EIP3009_NOT_SUPPORTED,
                ));
            }
            Some(true) => return Ok(reject(crate::reason::INVALID_EXACT_EVM_NONCE_ALREADY_USED)),
            Some(false) => {}
        }
        let token_name = rpc::view(provider, from, asset, IEip3009Token::nameCall {}).await?;
        if token_name.as_deref() != Some(name) {
            return Ok(reject(crate::reason::INVALID_EXACT_EVM_TOKEN_NAME_MISMATCH));
        }
        let token_version = rpc::view(provider, from, asset, IEip3009Token::versionCall {}).await?;
        if token_version.as_deref() != Some(version) {
            return Ok(reject(
                crate::reason::INVALID_EXACT_EVM_TOKEN_VERSION_MISMATCH,
            ));
        }
        let balance = rpc::view(
            provider,
            from,
            asset,
            IEip3009Token::balanceOfCall { account: p.from },
        )
        .await?;
        if balance.is_none_or(|b| b < p.value) {
            return Ok(reject(
                crate::reason::INVALID_EXACT_EVM_INSUFFICIENT_BALANCE,
            ));
        }
        if let Route::Eoa(sig) = route
            && let x402_evm::code::Code::Delegated(to) = self.core.code_at(p.from).await?
        {
            // The token asks a delegated account's code (EIP-1271) even for its key's signature.
            let call = IERC1271::isValidSignatureCall {
                hash: digest(asset, p, name, version, self.core.chain_id),
                signature: sig.clone(),
            };
            if rpc::view(provider, from, p.from, call).await? != Some(ERC1271_MAGIC) {
                return Ok(Rejection::with_message(
                    crate::reason::INVALID_EXACT_EVM_SIGNATURE,
                    format!(
                        "the payer is an EIP-7702 account delegated to {to}, whose code does not \
                         accept the payer's signature"
                    ),
                ));
            }
        }
        if let Route::Counterfactual(w) = route {
            let deploy = rpc::call(provider, from, w.factory, w.factory_calldata.clone()).await?;
            if matches!(deploy, rpc::CallResult::Reverted) {
                return Ok(Rejection::with_message(
                    crate::reason::SMART_WALLET_DEPLOYMENT_FAILED,
                    format!("the ERC-6492 factory call to {} reverts", w.factory),
                ));
            }
        }
        Ok(reject(
            crate::reason::INVALID_EXACT_EVM_TRANSACTION_SIMULATION_FAILED,
        ))
    }
}

/// The EIP-712 digest the payer signs for `p` on `asset`'s domain.
fn digest(
    asset: Address,
    p: &Eip3009Payload,
    name: &str,
    version: &str,
    chain_id: u64,
) -> alloy::primitives::B256 {
    let message = TransferWithAuthorization {
        from: p.from,
        to: p.to,
        value: p.value,
        validAfter: p.valid_after,
        validBefore: p.valid_before,
        nonce: p.nonce,
    }
    .eip712_hash_struct();
    signing_hash(
        &eip3009_domain_separator(name, version, chain_id, asset),
        &message,
    )
}

fn bad_6492() -> Rejection {
    Rejection::with_message(
        crate::reason::INVALID_EXACT_EVM_FAILED_TO_PARSE_SIGNATURE,
        "ERC-6492 wrapper does not decode",
    )
}

/// The call that settles the payment: the (v, r, s) overload for an EOA, the bytes overload for a
/// contract wallet, and a Multicall3 batch (deploy, then transfer) for a counterfactual wallet.
fn settle_call(
    asset: Address,
    p: &Eip3009Payload,
    route: &Route,
    policy: &super::Policy,
) -> (Address, Bytes, u64) {
    let with_bytes = |sig: Bytes| -> Bytes {
        IEip3009Token::transferWithAuthorization_1Call {
            from: p.from,
            to: p.to,
            value: p.value,
            validAfter: p.valid_after,
            validBefore: p.valid_before,
            nonce: p.nonce,
            signature: sig,
        }
        .abi_encode()
        .into()
    };
    match route {
        Route::Eoa(s) => {
            let v = s[64];
            let data = IEip3009Token::transferWithAuthorization_0Call {
                from: p.from,
                to: p.to,
                value: p.value,
                validAfter: p.valid_after,
                validBefore: p.valid_before,
                nonce: p.nonce,
                v,
                r: alloy::primitives::B256::from_slice(&s[..32]),
                s: alloy::primitives::B256::from_slice(&s[32..64]),
            }
            .abi_encode();
            (asset, data.into(), policy.gas_limit_eip3009)
        }
        Route::Contract(sig) => (
            asset,
            with_bytes(sig.clone()),
            policy.gas_limit_eip3009_contract,
        ),
        Route::Counterfactual(w) => {
            let batch = IMulticall3::tryAggregateCall {
                requireSuccess: true,
                calls: vec![
                    Call {
                        target: w.factory,
                        callData: w.factory_calldata.clone(),
                    },
                    Call {
                        target: asset,
                        callData: with_bytes(w.inner.clone()),
                    },
                ],
            };
            (
                MULTICALL3,
                batch.abi_encode().into(),
                policy.gas_limit_counterfactual,
            )
        }
    }
}

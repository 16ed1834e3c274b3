//! SIWE (EIP-4361) on `eip155:*` chains: signing with the buyer's EVM key (EIP-191), and the
//! seller's check — an account without code by ECDSA recovery, a deployed smart wallet by its
//! EIP-1271 `isValidSignature`, a counterfactual one (an ERC-6492 wrapper) by deploying and
//! asking it inside one `eth_call` through Multicall3 (a simulation: nothing is sent).

use std::sync::Arc;

use alloy::primitives::{Address, Bytes, eip191_hash_message};
use alloy::providers::{DynProvider, Provider as _};
use alloy::signers::Signer;
use alloy::sol_types::{SolCall as _, SolValue as _};
use x402_evm::abi::wallet::{Call, IERC1271, IMulticall3};
use x402_evm::addresses::{ERC1271_MAGIC, MULTICALL3};
use x402_evm::signature::{recover, unwrap_erc6492};

use crate::proof::Proof;
use crate::reason::{self, Refusal};

/// Signs `message` (EIP-191 `personal_sign`) with `signer`: `0x`-hex of the 65-byte signature.
pub async fn sign(
    signer: &Arc<dyn Signer + Send + Sync>,
    message: &str,
) -> Result<String, alloy::signers::Error> {
    let signature = signer.sign_message(message.as_bytes()).await?;
    Ok(format!(
        "0x{}",
        alloy::primitives::hex::encode(signature.as_bytes())
    ))
}

/// The address an EVM signer signs as (checksummed).
pub fn address(signer: &Arc<dyn Signer + Send + Sync>) -> String {
    signer.address().to_checksum(None)
}

/// Checks a SIWE proof's signature over `message`: the payer (checksummed) when it is the
/// address's. `provider` is the chain's RPC: without one, only accounts without code (ECDSA)
/// can sign in.
pub async fn verify(
    proof: &Proof,
    message: &str,
    provider: Option<&DynProvider>,
) -> Result<String, Refusal> {
    let malformed = |m: String| Refusal::new(reason::MALFORMED_SIGNATURE, m);
    let address: Address = proof
        .address
        .parse()
        .map_err(|_| malformed(format!("address {:?} is not an EVM address", proof.address)))?;
    let hex = proof
        .signature
        .strip_prefix("0x")
        .unwrap_or(&proof.signature);
    let signature = alloy::primitives::hex::decode(hex)
        .map_err(|_| malformed("the signature is not hex".to_owned()))?;
    if signature.len() > x402_evm::parse::MAX_SIGNATURE_BYTES {
        return Err(malformed("the signature is too long".to_owned()));
    }
    let hash = eip191_hash_message(message.as_bytes());
    let payer = address.to_checksum(None);
    let refused = || {
        Refusal::new(
            reason::SIGNATURE,
            format!("the signature is not {payer}'s over the sign-in message"),
        )
    };
    let verifier_error = |e: String| {
        Refusal::new(
            reason::VERIFIER_ERROR,
            format!("cannot ask the chain about {payer}'s wallet: {e}"),
        )
    };
    if let Some(wrapped) = unwrap_erc6492(&signature) {
        let wrapped =
            wrapped.map_err(|()| malformed("the ERC-6492 wrapper does not decode".to_owned()))?;
        let Some(provider) = provider else {
            return Err(verifier_error(format!(
                "no RPC is configured for {} (needed for an ERC-6492 signature)",
                proof.chain_id
            )));
        };
        let code = provider
            .get_code_at(address)
            .await
            .map_err(|e| verifier_error(e.to_string()))?;
        let valid = if code.is_empty() {
            counterfactual(provider, address, hash, &wrapped).await
        } else {
            erc1271(provider, address, hash, wrapped.inner).await
        }
        .map_err(verifier_error)?;
        return if valid { Ok(payer) } else { Err(refused()) };
    }
    if recover(&hash, &signature) == Some(address) {
        return Ok(payer);
    }
    let Some(provider) = provider else {
        return Err(refused());
    };
    let code = provider
        .get_code_at(address)
        .await
        .map_err(|e| verifier_error(e.to_string()))?;
    if code.is_empty() {
        return Err(refused());
    }
    match erc1271(provider, address, hash, Bytes::from(signature)).await {
        Ok(true) => Ok(payer),
        Ok(false) => Err(refused()),
        Err(e) => Err(verifier_error(e)),
    }
}

/// EIP-1271: whether the wallet at `address` answers the magic value (a revert is a no).
async fn erc1271(
    provider: &DynProvider,
    address: Address,
    hash: alloy::primitives::B256,
    signature: Bytes,
) -> Result<bool, String> {
    let call = IERC1271::isValidSignatureCall { hash, signature };
    let request = alloy::rpc::types::TransactionRequest::default()
        .to(address)
        .input(call.abi_encode().into());
    match provider.call(request).await {
        Ok(out) => Ok(magic(&out)),
        // A revert is the wallet's "no"; a transport failure is not an answer.
        Err(e) if e.as_error_resp().is_some() => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

/// ERC-6492 for a wallet not yet deployed: Multicall3 runs the factory call, then asks the new
/// wallet, inside one `eth_call`.
async fn counterfactual(
    provider: &DynProvider,
    address: Address,
    hash: alloy::primitives::B256,
    wrapped: &x402_evm::signature::Erc6492,
) -> Result<bool, String> {
    let check = IERC1271::isValidSignatureCall {
        hash,
        signature: wrapped.inner.clone(),
    };
    let batch = IMulticall3::tryAggregateCall {
        requireSuccess: false,
        calls: vec![
            Call {
                target: wrapped.factory,
                callData: wrapped.factory_calldata.clone(),
            },
            Call {
                target: address,
                callData: check.abi_encode().into(),
            },
        ],
    };
    let request = alloy::rpc::types::TransactionRequest::default()
        .to(MULTICALL3)
        .input(batch.abi_encode().into());
    let out = provider.call(request).await.map_err(|e| e.to_string())?;
    let results = IMulticall3::tryAggregateCall::abi_decode_returns(&out)
        .map_err(|e| format!("Multicall3 answered garbage: {e}"))?;
    Ok(results
        .get(1)
        .is_some_and(|r| r.success && magic(&r.returnData)))
}

/// Whether an `isValidSignature` return is the EIP-1271 magic value.
fn magic(out: &[u8]) -> bool {
    <alloy::primitives::FixedBytes<4>>::abi_decode(out).is_ok_and(|m| m == ERC1271_MAGIC)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use alloy::signers::local::PrivateKeySigner;

    use super::*;
    use crate::proof::{Challenge, SupportedChain};

    fn proof(address: &str) -> Proof {
        let challenge = Challenge {
            domain: "shop.example".into(),
            uri: "https://shop.example/a".into(),
            version: "1".into(),
            nonce: "0123456789abcdef0123456789abcdef".into(),
            issued_at: "2026-01-01T00:00:00.000Z".into(),
            expiration_time: None,
            not_before: None,
            statement: None,
            request_id: None,
            resources: None,
        };
        Proof::unsigned(
            &challenge,
            &SupportedChain::for_network("eip155:8453"),
            address,
        )
    }

    #[tokio::test]
    async fn an_eoa_signs_in_and_others_do_not() {
        let signer: Arc<dyn Signer + Send + Sync> = Arc::new(PrivateKeySigner::random());
        let mut p = proof(&address(&signer));
        let message = p.message().unwrap();
        p.signature = sign(&signer, &message).await.unwrap();
        assert_eq!(verify(&p, &message, None).await.unwrap(), address(&signer));

        // Another key's signature, a changed message, garbage.
        let other: Arc<dyn Signer + Send + Sync> = Arc::new(PrivateKeySigner::random());
        let mut forged = p.clone();
        forged.signature = sign(&other, &message).await.unwrap();
        assert_eq!(
            verify(&forged, &message, None).await.unwrap_err().reason,
            reason::SIGNATURE
        );
        let changed = message.replace("shop.example", "evil.example");
        assert_eq!(
            verify(&p, &changed, None).await.unwrap_err().reason,
            reason::SIGNATURE
        );
        let mut garbage = p.clone();
        garbage.signature = "0xzz".into();
        assert_eq!(
            verify(&garbage, &message, None).await.unwrap_err().reason,
            reason::MALFORMED_SIGNATURE
        );
        let mut wrapped = p.clone();
        wrapped.signature = format!(
            "0x{}",
            alloy::primitives::hex::encode(x402_evm::addresses::ERC6492_MAGIC)
        );
        assert_eq!(
            verify(&wrapped, &message, None).await.unwrap_err().reason,
            reason::MALFORMED_SIGNATURE
        );
    }
}

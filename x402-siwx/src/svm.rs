//! SIWS on `solana:*` chains: the buyer's Solana keypair signs the message bytes (ed25519), the
//! seller checks the signature against the address (the public key, base58).

use std::str::FromStr as _;

use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_signer::Signer as _;

use crate::proof::Proof;
use crate::reason::{self, Refusal};

/// Signs `message` with `keypair`: the base58 of the 64-byte ed25519 signature.
pub fn sign(keypair: &Keypair, message: &str) -> String {
    keypair.sign_message(message.as_bytes()).to_string()
}

/// The address a keypair signs as (base58 public key).
pub fn address(keypair: &Keypair) -> String {
    keypair.pubkey().to_string()
}

/// Checks a SIWS proof's signature over `message`: the payer (the address) when it is the
/// address's. A small-order public key never verifies.
pub fn verify(proof: &Proof, message: &str) -> Result<String, Refusal> {
    let malformed = |m: &str| Refusal::new(reason::MALFORMED_SIGNATURE, m.to_owned());
    let key = Pubkey::from_str(&proof.address)
        .map_err(|_| malformed("the address is not a base58 32-byte public key"))?;
    let signature = Signature::from_str(&proof.signature)
        .map_err(|_| malformed("the signature is not a base58 64-byte ed25519 signature"))?;
    let refused = || {
        Refusal::new(
            reason::SIGNATURE,
            format!(
                "the signature is not {}'s over the sign-in message",
                proof.address
            ),
        )
    };
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key.to_bytes()).map_err(|_| refused())?;
    if key.is_weak() {
        return Err(refused());
    }
    let signature = ed25519_dalek::Signature::from_bytes(signature.as_array());
    key.verify_strict(message.as_bytes(), &signature)
        .map_err(|_| refused())?;
    Ok(proof.address.clone())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proof::{Challenge, SupportedChain};

    #[test]
    fn a_real_keypair_signs_in_and_forgeries_do_not() {
        let keypair = Keypair::new();
        let challenge = Challenge {
            domain: "shop.example".into(),
            uri: "https://shop.example/a".into(),
            version: "1".into(),
            nonce: "0123456789abcdef0123456789abcdef".into(),
            issued_at: "2026-01-01T00:00:00.000Z".into(),
            expiration_time: Some("2026-01-01T00:05:00.000Z".into()),
            not_before: None,
            statement: Some("Sign in".into()),
            request_id: None,
            resources: None,
        };
        let chain = SupportedChain::for_network("solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1");
        let mut proof = Proof::unsigned(&challenge, &chain, &address(&keypair));
        let message = proof.message().unwrap();
        proof.signature = sign(&keypair, &message);
        assert_eq!(verify(&proof, &message).unwrap(), address(&keypair));

        let other = Keypair::new();
        let mut forged = proof.clone();
        forged.signature = sign(&other, &message);
        assert_eq!(
            verify(&forged, &message).unwrap_err().reason,
            reason::SIGNATURE
        );
        assert_eq!(
            verify(&proof, &message.replace("shop", "evil"))
                .unwrap_err()
                .reason,
            reason::SIGNATURE
        );
        let mut garbage = proof.clone();
        garbage.signature = "0x00".into();
        assert_eq!(
            verify(&garbage, &message).unwrap_err().reason,
            reason::MALFORMED_SIGNATURE
        );
        // The all-zero key is of small order.
        let mut weak = proof.clone();
        weak.address = Pubkey::new_from_array([0; 32]).to_string();
        assert_eq!(
            verify(&weak, &message).unwrap_err().reason,
            reason::SIGNATURE
        );
    }
}

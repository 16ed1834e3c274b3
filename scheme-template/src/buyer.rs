//! Buyer: requirements → a signed transfer.

use async_trait::async_trait;
use ed25519_dalek::{Signer, SigningKey};
use x402_core::wire::Raw;
use x402_core::{BuyerRole, Network, RequirementsView, SchemeError};

use crate::{ASSET, Account, NAMESPACE, Nonce, SCHEME, ToyPayload, Transfer};

/// The buyer role of `exact` on a toy ledger: an ed25519 key.
pub struct Buyer {
    key: SigningKey,
}

impl std::fmt::Debug for Buyer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret key.
        f.debug_struct("Buyer")
            .field("account", &self.account())
            .finish_non_exhaustive()
    }
}

impl Buyer {
    /// The buyer holding this 32-byte ed25519 secret key.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&secret),
        }
    }

    /// A buyer with a fresh random key.
    pub fn random() -> Self {
        Self::from_secret(rand::random())
    }

    /// Its account (public key).
    pub fn account(&self) -> Account {
        Account(self.key.verifying_key().to_bytes())
    }

    /// Signs `transfer` for `network` (any transfer: tests sign wrong ones on purpose).
    pub fn sign_transfer(&self, transfer: Transfer, network: &Network) -> ToyPayload {
        let signature = self.key.sign(&transfer.signing_bytes(network));
        ToyPayload {
            transfer,
            signature: hex::encode(signature.to_bytes()),
        }
    }
}

#[async_trait]
impl BuyerRole for Buyer {
    fn scheme(&self) -> &'static str {
        SCHEME
    }

    async fn sign(&self, requirements: &RequirementsView<'_>) -> Result<Raw, SchemeError> {
        let unusable = |m: String| SchemeError::Unusable(m);
        let network = &requirements.network;
        if requirements.scheme != SCHEME || network.namespace() != NAMESPACE {
            return Err(unusable(format!(
                "not {SCHEME} on a toy network: {} on {network}",
                requirements.scheme
            )));
        }
        if requirements.asset != ASSET {
            return Err(unusable(format!("unknown asset {:?}", requirements.asset)));
        }
        let to: Account = requirements
            .pay_to
            .parse()
            .map_err(|e| unusable(format!("payTo: {e}")))?;
        let transfer = Transfer {
            from: self.account(),
            to,
            amount: requirements.amount,
            nonce: Nonce(rand::random()),
        };
        x402_core::wire::to_raw(&self.sign_transfer(transfer, network)).map_err(SchemeError::other)
    }
}

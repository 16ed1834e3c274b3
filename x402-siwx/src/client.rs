//! The buyer role: [`SiwxBuyer`], a [`BuyerHook`] that answers a 402 offering sign-in-with-x
//! with a proof signed by the buyer's own keys (the ones it pays with), so a seller it paid
//! before serves it without a second payment. The buyer sends the request once more with the
//! proof ([`Before::RetryWith`]); if the seller still answers 402 (never paid, proof refused),
//! the buyer pays as usual.
//!
//! A challenge is signed only when its `domain` is the requested URL's host and its `uri` is on
//! the same origin (the official client's rule), so a seller cannot have the buyer sign in
//! somewhere else.

use std::fmt;

use async_trait::async_trait;
use x402_buyer::hook::HookError;
use x402_buyer::{Before, BuyerHook, RequiredCall};
use x402_core::extension::{Declaration, read_extensions};
use x402_core::wire::PaymentRequired;

use crate::proof::{self, Challenge, HEADER, KEY, SupportedChain};

/// Signs sign-in-with-x challenges with the buyer's keys.
#[derive(Default)]
pub struct SiwxBuyer {
    #[cfg(feature = "evm")]
    evm: Option<std::sync::Arc<dyn alloy::signers::Signer + Send + Sync>>,
    #[cfg(feature = "svm")]
    svm: Option<std::sync::Arc<solana_keypair::Keypair>>,
}

impl fmt::Debug for SiwxBuyer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SiwxBuyer");
        #[cfg(feature = "evm")]
        d.field("evm", &self.evm.as_ref().map(crate::evm::address));
        #[cfg(feature = "svm")]
        d.field("svm", &self.svm.as_deref().map(crate::svm::address));
        d.finish()
    }
}

impl SiwxBuyer {
    /// A hook with no keys yet (it signs nothing until one is added).
    pub fn new() -> Self {
        Self::default()
    }

    /// Signs on `eip155:*` chains with `signer` (EIP-191), the signer the buyer pays with.
    #[cfg(feature = "evm")]
    pub fn evm(mut self, signer: std::sync::Arc<dyn alloy::signers::Signer + Send + Sync>) -> Self {
        self.evm = Some(signer);
        self
    }

    /// Signs on `solana:*` chains with `keypair` (ed25519), the keypair the buyer pays with.
    #[cfg(feature = "svm")]
    pub fn svm(mut self, keypair: std::sync::Arc<solana_keypair::Keypair>) -> Self {
        self.svm = Some(keypair);
        self
    }

    /// The `SIGN-IN-WITH-X` header value answering `declaration` for a request to `url`, or
    /// why none is made (no key for the chains offered, a challenge bound to another origin).
    pub async fn proof_for(
        &self,
        declaration: &Declaration,
        url: &str,
        networks: &[&str],
    ) -> Result<String, String> {
        let challenge: Challenge = serde_json::from_str(declaration.info.to_raw().get())
            .map_err(|e| format!("the challenge is unreadable: {e}"))?;
        let chains: Vec<SupportedChain> = declaration
            .siblings
            .get("supportedChains")
            .map(|raw| serde_json::from_str(raw.get()))
            .transpose()
            .map_err(|e| format!("supportedChains is unreadable: {e}"))?
            .unwrap_or_default();
        let (scheme, host, _) =
            proof::origin_and_path(url).ok_or_else(|| format!("{url} is not an http(s) URL"))?;
        if challenge.domain.to_ascii_lowercase() != host {
            return Err(format!(
                "the challenge's domain {:?} is not {host:?}",
                challenge.domain
            ));
        }
        match proof::origin_and_path(&challenge.uri) {
            Some((s, h, _)) if s == scheme && h == host => {}
            _ => {
                return Err(format!(
                    "the challenge's uri {:?} is not on {scheme}://{host}",
                    challenge.uri
                ));
            }
        }
        // A chain we pay on first, then any we hold a key for.
        let mut ordered: Vec<&SupportedChain> = chains
            .iter()
            .filter(|c| networks.contains(&c.chain_id.as_str()))
            .collect();
        ordered.extend(
            chains
                .iter()
                .filter(|c| !networks.contains(&c.chain_id.as_str())),
        );
        for chain in ordered {
            if let Some(header) = self.sign(&challenge, chain).await? {
                return Ok(header);
            }
        }
        Err("no key of this buyer fits the chains offered".to_owned())
    }

    /// The header for `chain`, when this hook holds a key of its family.
    async fn sign(
        &self,
        challenge: &Challenge,
        chain: &SupportedChain,
    ) -> Result<Option<String>, String> {
        #[cfg(feature = "evm")]
        if chain.chain_id.starts_with("eip155:")
            && let Some(signer) = &self.evm
        {
            let mut p =
                crate::proof::Proof::unsigned(challenge, chain, &crate::evm::address(signer));
            let message = p.message().map_err(|r| r.to_string())?;
            p.signature = crate::evm::sign(signer, &message)
                .await
                .map_err(|e| format!("cannot sign: {e}"))?;
            return Ok(Some(p.encode()));
        }
        #[cfg(feature = "svm")]
        if chain.chain_id.starts_with("solana:")
            && let Some(keypair) = &self.svm
        {
            let mut p =
                crate::proof::Proof::unsigned(challenge, chain, &crate::svm::address(keypair));
            let message = p.message().map_err(|r| r.to_string())?;
            p.signature = crate::svm::sign(keypair, &message);
            return Ok(Some(p.encode()));
        }
        let _ = (challenge, chain);
        Ok(None)
    }
}

#[async_trait]
impl BuyerHook for SiwxBuyer {
    fn name(&self) -> &str {
        KEY
    }

    async fn on_payment_required(&self, call: &RequiredCall<'_>) -> Result<Before, HookError> {
        let PaymentRequired::V2(required) = call.required else {
            return Ok(Before::Proceed);
        };
        let Ok(extensions) = read_extensions(required.extensions.as_deref()) else {
            return Ok(Before::Proceed);
        };
        let Some(raw) = extensions.get(KEY) else {
            return Ok(Before::Proceed);
        };
        let Ok(declaration) = serde_json::from_str::<Declaration>(raw.get()) else {
            tracing::debug!("the 402's sign-in-with-x declaration is unreadable; paying");
            return Ok(Before::Proceed);
        };
        let networks: Vec<&str> = required
            .accepts
            .iter()
            .map(|r| r.network.as_str())
            .collect();
        match self
            .proof_for(&declaration, call.url.as_str(), &networks)
            .await
        {
            Ok(header) => {
                let name = reqwest::header::HeaderName::from_static("sign-in-with-x");
                let value = reqwest::header::HeaderValue::try_from(header)?;
                debug_assert!(name.as_str().eq_ignore_ascii_case(HEADER));
                Ok(Before::RetryWith(name, value))
            }
            Err(why) => {
                tracing::debug!(%why, "not signing in; paying");
                Ok(Before::Proceed)
            }
        }
    }
}

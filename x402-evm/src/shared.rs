//! One signer pool per network, shared by every EVM scheme configured there: `exact` and `upto`
//! settle from the same keys, and two pools over one key would hand out the same nonces.

use std::str::FromStr;

use alloy::primitives::Address;
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use x402_core::{Network, Shared};

use crate::signers::{Leases, SignerPool, TxConfig};

/// Why the shared pool could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SharedPoolError {
    /// A key does not parse (the key itself is never shown).
    #[error("signer key #{index} for {network} is not a 32-byte hex private key")]
    BadKey {
        /// Its position in the list.
        index: usize,
        /// The network.
        network: Network,
    },
    /// No key was configured.
    #[error("no signer key is configured for {0}")]
    NoKeys(Network),
    /// Another scheme on the network was configured with other keys.
    #[error(
        "the EVM schemes on {0} are configured with different signer keys; they must share one set"
    )]
    KeysDiffer(Network),
    /// The pool could not start (RPC).
    #[error("signer pool for {network}: {reason}")]
    Start {
        /// The network.
        network: Network,
        /// Why.
        reason: String,
    },
}

/// Parses signer keys without ever echoing them.
pub fn parse_keys(
    network: &Network,
    keys: &[String],
) -> Result<Vec<PrivateKeySigner>, SharedPoolError> {
    if keys.is_empty() {
        return Err(SharedPoolError::NoKeys(network.clone()));
    }
    keys.iter()
        .enumerate()
        .map(|(index, k)| {
            PrivateKeySigner::from_str(k.trim()).map_err(|_| SharedPoolError::BadKey {
                index,
                network: network.clone(),
            })
        })
        .collect()
}

/// The pool of `network`, built on first use from `keys` (leasing its keys through `leases`);
/// later callers must name the same keys.
pub async fn shared_pool(
    shared: &Shared,
    network: &Network,
    provider: DynProvider,
    keys: &[String],
    config: TxConfig,
    leases: Leases,
) -> Result<SignerPool, SharedPoolError> {
    let signers = parse_keys(network, keys)?;
    let wanted: Vec<Address> = signers.iter().map(PrivateKeySigner::address).collect();
    let cell = shared
        .get_or_try_init::<tokio::sync::OnceCell<SignerPool>, std::convert::Infallible>(
            &format!("x402-evm/signer-pool/{network}"),
            || Ok(tokio::sync::OnceCell::new()),
        )
        .map_err(|e| SharedPoolError::Start {
            network: network.clone(),
            reason: e.to_string(),
        })?;
    let pool = cell
        .get_or_try_init(|| async {
            SignerPool::new(provider, signers, config)
                .await
                .map(|pool| pool.with_leases(leases))
                .map_err(|e| SharedPoolError::Start {
                    network: network.clone(),
                    reason: e.to_string(),
                })
        })
        .await?;
    if pool.addresses() != wanted {
        return Err(SharedPoolError::KeysDiffer(network.clone()));
    }
    Ok(pool.clone())
}

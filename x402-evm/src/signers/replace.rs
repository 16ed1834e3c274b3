//! Dropped and stuck transactions: the same bytes again, or the same nonce with higher fees.
//!
//! - [`SignerPool::rebroadcast`] sends a transaction's identical bytes again (a node that lost
//!   it): the hash is the same, so it can land at most once.
//! - [`SignerPool::replace`] signs the transaction again with the **same nonce** and fees raised
//!   by at least [`MIN_BUMP_PERCENT`] on both `maxFeePerGas` and `maxPriorityFeePerGas` (the
//!   legacy gas price), or to the market's current quote when that is higher — what nodes
//!   require to replace a pooled transaction. Fees above the configured caps are never signed:
//!   at the cap the transaction is left as it is ([`Replacement::AtCap`]). The new copy is
//!   written ahead through the journal before it is broadcast. Both copies spend one nonce, so
//!   exactly one of them can be mined.

use std::sync::atomic::Ordering;

use alloy::consensus::{Transaction, TxEnvelope};
use alloy::eips::eip2718::Decodable2718;
use alloy::primitives::{Address, Bytes};
use alloy::providers::Provider;
use tracing::{info, warn};

use super::fees::{FeeCaps, FeeQuote};
use super::nonce::{Answer, classify, sign};
use super::{Journal, Signed, SignerPool, TxRequest};
use crate::error::SendError;

/// The smallest fee increase of a replacement, in percent (geth's and most nodes' price bump).
pub const MIN_BUMP_PERCENT: u128 = 10;

/// What [`SignerPool::replace`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replacement {
    /// The replacement was broadcast (or may have been: the node's answer was lost).
    Sent(Signed),
    /// Not signed: the raised fees would exceed the configured caps.
    AtCap {
        /// The `maxFeePerGas` (legacy: gas price) a replacement needs.
        max_fee_per_gas: u128,
        /// The `maxPriorityFeePerGas` a replacement needs.
        max_priority_fee_per_gas: u128,
    },
    /// Not sent: the node refused it (underpriced for its pool, or the nonce is used — a copy
    /// was mined), or could not be reached.
    Refused(String),
}

/// What [`SignerPool::rebroadcast`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebroadcast {
    /// The node has the bytes now.
    Accepted,
    /// The nonce is used (a copy was mined, or another transaction).
    NonceUsed,
    /// Not accepted (refused, unreachable, or no answer).
    Failed(String),
}

/// `old` raised by at least [`MIN_BUMP_PERCENT`] (rounded up, at least 1 wei).
pub fn bumped(old: u128) -> u128 {
    old.saturating_add(old.saturating_mul(MIN_BUMP_PERCENT).div_ceil(100).max(1))
}

/// The fees of a replacement of a transaction signed with `old`, given the market's `quote`
/// (`None`: the market is above the caps) — `Err` with the fees needed when they exceed `caps`.
fn replacement_fees(
    old: FeeQuote,
    quote: Option<FeeQuote>,
    caps: FeeCaps,
) -> Result<FeeQuote, (u128, u128)> {
    match old {
        FeeQuote::Eip1559 {
            max_fee_per_gas,
            max_priority_fee_per_gas,
        } => {
            let (q_fee, q_tip) = match quote {
                Some(FeeQuote::Eip1559 {
                    max_fee_per_gas,
                    max_priority_fee_per_gas,
                }) => (max_fee_per_gas, max_priority_fee_per_gas),
                Some(FeeQuote::Legacy { gas_price }) => (gas_price, 0),
                None => (caps.max_fee_per_gas.saturating_add(1), 0),
            };
            let tip = bumped(max_priority_fee_per_gas).max(q_tip);
            let fee = bumped(max_fee_per_gas).max(q_fee).max(tip);
            if fee > caps.max_fee_per_gas || tip > caps.max_priority_fee {
                return Err((fee, tip));
            }
            Ok(FeeQuote::Eip1559 {
                max_fee_per_gas: fee,
                max_priority_fee_per_gas: tip,
            })
        }
        FeeQuote::Legacy { gas_price } => {
            let market = match quote {
                Some(FeeQuote::Legacy { gas_price }) => gas_price,
                Some(FeeQuote::Eip1559 {
                    max_fee_per_gas, ..
                }) => max_fee_per_gas,
                None => caps.max_fee_per_gas.saturating_add(1),
            };
            let price = bumped(gas_price).max(market);
            if price > caps.max_fee_per_gas {
                return Err((price, 0));
            }
            Ok(FeeQuote::Legacy { gas_price: price })
        }
    }
}

impl SignerPool {
    /// Sends `raw` (a transaction this pool signed) again, unchanged.
    pub async fn rebroadcast(&self, raw: &Bytes) -> Rebroadcast {
        let inner = &*self.inner;
        match classify(inner.provider.send_raw_transaction(raw).await) {
            Answer::Accepted => {
                inner.counters.rebroadcasts.fetch_add(1, Ordering::Relaxed);
                Rebroadcast::Accepted
            }
            Answer::NonceConflict(_) => Rebroadcast::NonceUsed,
            Answer::InsufficientFunds(m)
            | Answer::Rejected(m)
            | Answer::NotDelivered(m)
            | Answer::Unknown(m) => Rebroadcast::Failed(m),
        }
    }

    /// Replaces `raw` (a transaction of signer `from`, not mined) with the same call and nonce
    /// at raised fees within the caps, written ahead in `journal` first (see the module
    /// documentation). `Err`: nothing was sent (it could not be decoded, signed or recorded, or
    /// the market could not be read).
    pub async fn replace(
        &self,
        from: Address,
        raw: &Bytes,
        journal: Option<&dyn Journal>,
    ) -> Result<Replacement, SendError> {
        let inner = &*self.inner;
        let slot = inner
            .slots
            .iter()
            .find(|s| s.address == from)
            .ok_or(SendError::UnknownSigner(from))?;
        let tx = TxEnvelope::decode_2718(&mut raw.as_ref()).map_err(|e| SendError::Signing {
            from,
            reason: format!("cannot decode the transaction to replace: {e}"),
        })?;
        let old = match (tx.is_dynamic_fee(), tx.max_priority_fee_per_gas()) {
            (true, Some(tip)) => FeeQuote::Eip1559 {
                max_fee_per_gas: tx.max_fee_per_gas(),
                max_priority_fee_per_gas: tip,
            },
            _ => FeeQuote::Legacy {
                gas_price: tx.gas_price().unwrap_or_else(|| tx.max_fee_per_gas()),
            },
        };
        let caps = FeeCaps {
            max_fee_per_gas: inner.config.max_fee_per_gas_cap,
            max_priority_fee: inner.config.max_priority_fee_cap,
        };
        let quote = match inner.fees.quote(&inner.provider, caps).await {
            Ok(quote) => Some(quote),
            Err(SendError::FeeAboveCap { .. }) => None,
            Err(e) => return Err(e),
        };
        let fees = match replacement_fees(old, quote, caps) {
            Ok(fees) => fees,
            Err((max_fee_per_gas, max_priority_fee_per_gas)) => {
                return Ok(Replacement::AtCap {
                    max_fee_per_gas,
                    max_priority_fee_per_gas,
                });
            }
        };
        let request = TxRequest {
            to: tx.to().unwrap_or_default(),
            data: tx.input().clone(),
            gas_limit: tx.gas_limit(),
            from: Some(from),
            value: tx.value(),
        };
        let nonce = tx.nonce();
        // Serialized with the signer's other sends.
        let _state = slot.state.lock().await;
        let (hash, raw) = sign(&slot.signer, inner.chain_id, nonce, fees, &request)?;
        let signed = Signed {
            hash,
            from,
            nonce,
            raw: raw.clone(),
        };
        if let Some(journal) = journal {
            journal.record(&signed).await?;
        }
        match classify(inner.provider.send_raw_transaction(&raw).await) {
            Answer::Accepted => {
                inner.counters.replacements.fetch_add(1, Ordering::Relaxed);
                info!(%from, nonce, %hash, ?fees, "replaced a stuck transaction with higher fees");
                Ok(Replacement::Sent(signed))
            }
            Answer::Unknown(reason) => {
                inner.counters.ambiguous.fetch_add(1, Ordering::Relaxed);
                warn!(%from, nonce, %hash, %reason, "replacement broadcast outcome unknown");
                Ok(Replacement::Sent(signed))
            }
            Answer::NonceConflict(m)
            | Answer::InsufficientFunds(m)
            | Answer::Rejected(m)
            | Answer::NotDelivered(m) => {
                warn!(%from, nonce, %hash, reason = %m, "replacement not accepted");
                Ok(Replacement::Refused(m))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: FeeCaps = FeeCaps {
        max_fee_per_gas: 1_000,
        max_priority_fee: 100,
    };

    fn eip1559(fee: u128, tip: u128) -> FeeQuote {
        FeeQuote::Eip1559 {
            max_fee_per_gas: fee,
            max_priority_fee_per_gas: tip,
        }
    }

    #[test]
    fn replacements_raise_both_fees_by_ten_percent_within_the_caps() {
        assert_eq!(bumped(0), 1);
        assert_eq!(bumped(1), 2);
        assert_eq!(bumped(100), 110);
        assert_eq!(bumped(101), 112);
        assert_eq!(
            replacement_fees(eip1559(500, 10), Some(eip1559(300, 5)), CAPS),
            Ok(eip1559(550, 11))
        );
        // The market above the bump: the market.
        assert_eq!(
            replacement_fees(eip1559(500, 10), Some(eip1559(800, 50)), CAPS),
            Ok(eip1559(800, 50))
        );
        // At a cap: nothing above it.
        assert_eq!(
            replacement_fees(eip1559(1_000, 10), Some(eip1559(1_000, 10)), CAPS),
            Err((1_100, 11))
        );
        assert_eq!(
            replacement_fees(eip1559(500, 100), Some(eip1559(500, 100)), CAPS),
            Err((550, 110))
        );
        assert!(replacement_fees(eip1559(500, 10), None, CAPS).is_err());
        assert_eq!(
            replacement_fees(FeeQuote::Legacy { gas_price: 100 }, None, CAPS),
            Err((1_001, 0))
        );
        assert_eq!(
            replacement_fees(
                FeeQuote::Legacy { gas_price: 100 },
                Some(FeeQuote::Legacy { gas_price: 50 }),
                CAPS
            ),
            Ok(FeeQuote::Legacy { gas_price: 110 })
        );
    }
}

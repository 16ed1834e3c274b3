//! Fee estimation for the signer pool: one `eth_feeHistory` (or `eth_gasPrice` on chains without
//! a base fee) per cache period, shared by every signer, then the configured caps.

use std::time::{Duration, Instant};

use alloy::eips::BlockNumberOrTag;
use alloy::providers::{DynProvider, Provider};
use tokio::sync::Mutex;

use crate::error::{SendError, describe_rpc_error};

/// How many past blocks the priority fee is estimated from.
const FEE_HISTORY_BLOCKS: u64 = 10;
/// The reward percentile asked for (alloy's and MetaMask's "medium").
const REWARD_PERCENTILE: f64 = 20.0;
/// The smallest priority fee offered, in wei.
const MIN_PRIORITY_FEE: u128 = 1;

/// The fees one transaction is signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FeeQuote {
    /// A type-2 transaction.
    Eip1559 {
        max_fee_per_gas: u128,
        max_priority_fee_per_gas: u128,
    },
    /// A legacy (EIP-155) transaction.
    Legacy { gas_price: u128 },
}

/// The market as last observed.
#[derive(Debug, Clone, Copy)]
enum Market {
    Eip1559 { base_fee: u128, priority_fee: u128 },
    Legacy { gas_price: u128 },
}

/// The caps a quote must respect.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FeeCaps {
    pub(crate) max_fee_per_gas: u128,
    pub(crate) max_priority_fee: u128,
}

/// Caches the market for `ttl`; concurrent callers share one refresh.
#[derive(Debug)]
pub(crate) struct FeeOracle {
    ttl: Duration,
    cache: Mutex<Option<(Instant, Market)>>,
}

impl FeeOracle {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            cache: Mutex::new(None),
        }
    }

    /// The fees to sign with now, within `caps`.
    pub(crate) async fn quote(
        &self,
        provider: &DynProvider,
        caps: FeeCaps,
    ) -> Result<FeeQuote, SendError> {
        let market = {
            let mut cache = self.cache.lock().await;
            match *cache {
                Some((at, market)) if at.elapsed() < self.ttl => market,
                _ => {
                    let market = observe(provider).await?;
                    *cache = Some((Instant::now(), market));
                    market
                }
            }
        };
        apply_caps(market, caps)
    }
}

/// Reads the market: the next block's base fee and recent tips, or the legacy gas price.
async fn observe(provider: &DynProvider) -> Result<Market, SendError> {
    let history = provider
        .get_fee_history(
            FEE_HISTORY_BLOCKS,
            BlockNumberOrTag::Latest,
            &[REWARD_PERCENTILE],
        )
        .await;
    if let Ok(history) = &history {
        let base_fee = history
            .next_block_base_fee()
            .unwrap_or(0)
            .max(history.latest_block_base_fee().unwrap_or(0));
        if base_fee > 0 {
            let rewards = history.reward.as_deref().unwrap_or_default();
            return Ok(Market::Eip1559 {
                base_fee,
                priority_fee: median_tip(rewards),
            });
        }
    }
    // No base fee (pre-London chain) or no fee history: a legacy gas price works everywhere.
    match provider.get_gas_price().await {
        Ok(gas_price) => Ok(Market::Legacy { gas_price }),
        Err(e) => {
            let reason = match &history {
                Err(history_error) => describe_rpc_error(history_error),
                Ok(_) => describe_rpc_error(&e),
            };
            Err(SendError::Unavailable(format!("fee estimate: {reason}")))
        }
    }
}

/// The median of the non-zero first-percentile tips, at least [`MIN_PRIORITY_FEE`].
fn median_tip(rewards: &[Vec<u128>]) -> u128 {
    let mut tips: Vec<u128> = rewards
        .iter()
        .filter_map(|block| block.first().copied())
        .filter(|tip| *tip > 0)
        .collect();
    if tips.is_empty() {
        return MIN_PRIORITY_FEE;
    }
    tips.sort_unstable();
    let n = tips.len();
    let median = if n.is_multiple_of(2) {
        let (a, b) = (tips[n / 2 - 1], tips[n / 2]);
        a / 2 + b / 2 + (a % 2 + b % 2) / 2
    } else {
        tips[n / 2]
    };
    median.max(MIN_PRIORITY_FEE)
}

/// Applies the caps: refuses when the network's price alone is above the fee cap (a transaction
/// under it would sit in the mempool), otherwise clamps.
fn apply_caps(market: Market, caps: FeeCaps) -> Result<FeeQuote, SendError> {
    match market {
        Market::Eip1559 {
            base_fee,
            priority_fee,
        } => {
            if base_fee > caps.max_fee_per_gas {
                return Err(SendError::FeeAboveCap {
                    required: base_fee,
                    cap: caps.max_fee_per_gas,
                });
            }
            let priority = priority_fee.min(caps.max_priority_fee);
            // Twice the base fee survives six full blocks of +12.5 %.
            let max_fee = base_fee
                .saturating_mul(2)
                .saturating_add(priority)
                .min(caps.max_fee_per_gas);
            Ok(FeeQuote::Eip1559 {
                max_fee_per_gas: max_fee,
                max_priority_fee_per_gas: priority.min(max_fee),
            })
        }
        Market::Legacy { gas_price } => {
            if gas_price > caps.max_fee_per_gas {
                return Err(SendError::FeeAboveCap {
                    required: gas_price,
                    cap: caps.max_fee_per_gas,
                });
            }
            Ok(FeeQuote::Legacy { gas_price })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: FeeCaps = FeeCaps {
        max_fee_per_gas: 100,
        max_priority_fee: 5,
    };

    #[test]
    fn median_ignores_zero_tips() {
        assert_eq!(median_tip(&[]), MIN_PRIORITY_FEE);
        assert_eq!(median_tip(&[vec![0], vec![0]]), MIN_PRIORITY_FEE);
        assert_eq!(median_tip(&[vec![3], vec![0], vec![9], vec![5]]), 5);
        assert_eq!(median_tip(&[vec![4], vec![8]]), 6);
        assert_eq!(median_tip(&[vec![3], vec![5]]), 4);
        assert_eq!(median_tip(&[vec![u128::MAX], vec![u128::MAX]]), u128::MAX);
    }

    #[test]
    fn caps_clamp_or_refuse() {
        let quote = apply_caps(
            Market::Eip1559 {
                base_fee: 10,
                priority_fee: 50,
            },
            CAPS,
        );
        assert!(matches!(
            quote,
            Ok(FeeQuote::Eip1559 {
                max_fee_per_gas: 25,
                max_priority_fee_per_gas: 5
            })
        ));
        let clamped = apply_caps(
            Market::Eip1559 {
                base_fee: 90,
                priority_fee: 1,
            },
            CAPS,
        );
        assert!(matches!(
            clamped,
            Ok(FeeQuote::Eip1559 {
                max_fee_per_gas: 100,
                ..
            })
        ));
        let refused = apply_caps(
            Market::Eip1559 {
                base_fee: 101,
                priority_fee: 1,
            },
            CAPS,
        );
        assert!(matches!(
            refused,
            Err(SendError::FeeAboveCap {
                required: 101,
                cap: 100
            })
        ));
        assert!(matches!(
            apply_caps(Market::Legacy { gas_price: 200 }, CAPS),
            Err(SendError::FeeAboveCap { .. })
        ));
        assert!(matches!(
            apply_caps(Market::Legacy { gas_price: 7 }, CAPS),
            Ok(FeeQuote::Legacy { gas_price: 7 })
        ));
    }
}

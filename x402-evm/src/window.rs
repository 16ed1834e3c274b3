//! How long an authorization must still run when it is verified: the expiry buffer, per network.
//!
//! A payment is settled by a transaction that has to be included in a block whose timestamp is
//! still inside the authorization's window (EIP-3009: `block.timestamp < validBefore`; Permit2:
//! `block.timestamp <= deadline`). A transaction sent right after a block was sealed waits one
//! whole block, and the block it then lands in may be missed or full, so a window that ends
//! within two block times of "now" can expire in the mempool: the facilitator would have paid
//! the gas of a revert. The buffer is therefore two block times plus a margin for the
//! facilitator's own round trips ([`EXPIRY_MARGIN_SECONDS`]), never less than
//! [`MIN_EXPIRY_BUFFER_SECONDS`] (the reference's six seconds). On a 12-second L1 that is 26
//! seconds; on a 2-second L2 it stays at six. A chain missing from [`block_time_ms`] is
//! assumed to be as slow as Ethereum mainnet. Operators override it per network
//! (`expiry_buffer_seconds` in [`crate::options::NetworkOptions`]).

use alloy::primitives::U256;
use x402_core::{Reason, Rejection, UnixTime};

/// The least expiry buffer on any network, in seconds (the reference's fixed buffer, x402-spec §4).
pub const MIN_EXPIRY_BUFFER_SECONDS: u64 = 6;

/// What the buffer adds to two block times for the facilitator's own round trips, in seconds.
pub const EXPIRY_MARGIN_SECONDS: u64 = 2;

/// The block time assumed for a chain [`block_time_ms`] does not know (Ethereum mainnet's).
pub const UNKNOWN_CHAIN_BLOCK_TIME_MS: u64 = 12_000;

/// The usual block time of a chain, in milliseconds, where it is known.
pub fn block_time_ms(chain_id: u64) -> Option<u64> {
    Some(match chain_id {
        // Ethereum mainnet and its testnets (Sepolia, Holesky, Hoodi).
        1 | 11_155_111 | 17_000 | 560_048 => 12_000,
        // OP-stack and other 2-second chains: Base, Base Sepolia, Optimism, OP Sepolia, Polygon
        // PoS, Polygon Amoy, Avalanche C-Chain, Fuji.
        8453 | 84_532 | 10 | 11_155_420 | 137 | 80_002 | 43_114 | 43_113 => 2_000,
        // Arbitrum One, Arbitrum Sepolia.
        42_161 | 421_614 => 250,
        // Celo (an L2 since 2025), Abstract and Abstract testnet.
        42_220 | 2741 | 11_124 => 1_000,
        // Sei, Sei testnet; Monad, Monad testnet.
        1329 | 1328 | 143 | 10_143 => 400,
        // Local development chains (anvil, hardhat, ganache): a block per transaction.
        31_337 | 1337 => 1_000,
        _ => return None,
    })
}

/// The default expiry buffer of a chain, in seconds: two block times (rounded up) plus
/// [`EXPIRY_MARGIN_SECONDS`], at least [`MIN_EXPIRY_BUFFER_SECONDS`].
pub fn default_expiry_buffer(chain_id: u64) -> u64 {
    let block_ms = block_time_ms(chain_id).unwrap_or(UNKNOWN_CHAIN_BLOCK_TIME_MS);
    let two_blocks = (2 * block_ms).div_ceil(1_000);
    (two_blocks + EXPIRY_MARGIN_SECONDS).max(MIN_EXPIRY_BUFFER_SECONDS)
}

/// Checks `deadline >= now + buffer` (else `expired`) and `valid_after <= now` (else
/// `too_early`), expiry first (the reference's order).
pub fn check_time(
    now: UnixTime,
    buffer: u64,
    valid_after: U256,
    deadline: U256,
    too_early: Reason,
    expired: Reason,
) -> Result<(), Rejection> {
    let now_u = U256::from(now.0);
    if deadline < now_u + U256::from(buffer) {
        return Err(Rejection::new(expired));
    }
    if valid_after > now_u {
        return Err(Rejection::new(too_early));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_follow_the_block_time() {
        assert_eq!(default_expiry_buffer(1), 26);
        assert_eq!(default_expiry_buffer(11_155_111), 26);
        assert_eq!(default_expiry_buffer(8453), MIN_EXPIRY_BUFFER_SECONDS);
        assert_eq!(default_expiry_buffer(42_161), MIN_EXPIRY_BUFFER_SECONDS);
        assert_eq!(default_expiry_buffer(31_337), MIN_EXPIRY_BUFFER_SECONDS);
        // Unknown: as slow as mainnet.
        assert_eq!(default_expiry_buffer(999_999_999), 26);
    }

    #[test]
    fn the_window_is_checked_against_the_buffer() {
        let (early, late) = (Reason::from_wire("early"), Reason::from_wire("late"));
        let check = |deadline: u64| {
            check_time(
                UnixTime(1_000),
                26,
                U256::from(900),
                U256::from(deadline),
                early.clone(),
                late.clone(),
            )
            .map_err(|r| r.reason)
        };
        assert_eq!(check(1_025), Err(late.clone()));
        assert_eq!(check(1_026), Ok(()));
    }
}

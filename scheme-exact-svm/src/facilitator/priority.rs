//! The priority fee a payment may ask the fee payer for, relative to what the payment is worth
//! (threat-model S52).
//!
//! The buyer writes the compute-unit price, the fee payer pays it, and since SIMD-0096 the whole
//! priority fee goes to the slot's leader. So a validator — or anyone sharing its fees — that
//! pays through this facilitator is paid back the priority fee it wrote. With only the absolute
//! cap, a payment of one atomic unit (a millionth of a dollar) could carry a priority fee of
//! 100,000 lamports (about a cent and a half at $150 a SOL): our fee payer would pay thousands of
//! times what each payment is worth, to whoever leads the slot. The fee must therefore stay below
//! what the payment itself is worth: a buyer paying an honest seller gets back less than it paid,
//! and one paying itself must push a payment's worth through us for each fee it collects, so what
//! our fee payer can lose is bounded by the value it settles — never a multiple of it:
//!
//! ```text
//! cap = min(max_priority_fee_lamports,
//!           max(priority_fee_floor_lamports, amount × lamports_per_unit(mint)))
//! ```
//!
//! `lamports_per_unit` is a lower bound of one atomic unit's value in lamports, per mint
//! (`priority_fee_lamports_per_unit` in the config). The built-in mints — all US-dollar
//! stablecoins with six decimals (`crate::assets::DEFAULT_MINTS`) — default to 1 lamport per unit:
//! one unit is a millionth of a dollar, at least one lamport as long as SOL is below $1,000, so
//! a 0.01 USDC payment may carry at most 10,000 lamports of priority fee (0.0015 USD at $150 a
//! SOL: 15% of the payment, less the cheaper SOL is). A mint without a
//! valuation is worth nothing for this rule: its payments get only the floor, 1 lamport by
//! default — what the official clients' compute-unit price of 1 micro-lamport costs (rounded
//! up). Operators accepting other mints, or wanting more headroom at busy times, set a valuation
//! for them; the absolute cap bounds every payment whatever its value.
//!
//! A fee above the absolute cap is refused `invalid_exact_svm_payload_priority_fee_too_high`
//! (ours); one within it but above the payment's value is refused with the reference's code for a
//! compute-unit price too high, `…_compute_price_instruction_too_high`: for the limit the buyer
//! wrote, the price is too high for what it pays (docs/reasons.md).

use std::collections::BTreeMap;

use solana_pubkey::Pubkey;

/// Nano-lamports (10⁻⁹ lamport) per lamport: the unit valuations are kept in.
pub const NANO_PER_LAMPORT: u64 = 1_000_000_000;

/// The priority fee any payment may carry whatever its value, in lamports (what a compute-unit
/// price of 1 micro-lamport costs, rounded up).
pub const DEFAULT_PRIORITY_FEE_FLOOR_LAMPORTS: u64 = 1;

/// The default valuations: each built-in mint (a six-decimal US-dollar stablecoin) at 1 lamport
/// per atomic unit, in nano-lamports.
pub fn default_valuations() -> BTreeMap<Pubkey, u64> {
    crate::assets::DEFAULT_MINTS
        .iter()
        .map(|m| (m.mint, NANO_PER_LAMPORT))
        .collect()
}

/// The highest priority fee, in lamports, a payment of `amount` atomic units of `mint` may
/// carry: `amount × valuation` (nano-lamports per unit, `valuations`; 0 for a mint without one),
/// at least `floor`, at most `cap`.
pub fn priority_fee_cap(
    valuations: &BTreeMap<Pubkey, u64>,
    mint: &Pubkey,
    amount: Option<u64>,
    floor: u64,
    cap: u64,
) -> u64 {
    let per_unit = valuations.get(mint).copied().unwrap_or(0);
    let worth =
        u128::from(amount.unwrap_or(0)) * u128::from(per_unit) / u128::from(NANO_PER_LAMPORT);
    u64::try_from(worth).unwrap_or(u64::MAX).max(floor).min(cap)
}

/// Parses a valuation (a decimal number of lamports per atomic unit, up to nine decimals) into
/// nano-lamports.
pub fn parse_valuation(text: &str) -> Result<u64, String> {
    let atomic = x402_core::price_to_atomic(text, 9).map_err(|e| e.to_string())?;
    atomic
        .to_u64()
        .ok_or_else(|| format!("{text} lamports per unit is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instructions::USDC_MAINNET;

    #[test]
    fn the_cap_follows_the_value() {
        let v = default_valuations();
        let other = Pubkey::new_unique();
        let cap = |mint: &Pubkey, amount| priority_fee_cap(&v, mint, Some(amount), 1, 100_000);
        // 0.01 USDC: 10,000 units, 10,000 lamports.
        assert_eq!(cap(&USDC_MAINNET, 10_000), 10_000);
        // One unit: only the floor.
        assert_eq!(cap(&USDC_MAINNET, 1), 1);
        // The absolute cap bounds large payments.
        assert_eq!(cap(&USDC_MAINNET, 5_000_000), 100_000);
        // A mint without a valuation: the floor.
        assert_eq!(cap(&other, 5_000_000), 1);
        assert_eq!(priority_fee_cap(&v, &USDC_MAINNET, None, 1, 100_000), 1);
    }

    #[test]
    fn the_default_valuation_assumes_six_decimal_dollars() {
        // 1 lamport per unit holds for a millionth of a dollar only.
        for m in crate::assets::DEFAULT_MINTS {
            assert_eq!(m.decimals, 6, "{}", m.symbol);
        }
    }

    #[test]
    fn valuations_parse_as_decimals() {
        assert_eq!(parse_valuation("1"), Ok(NANO_PER_LAMPORT));
        assert_eq!(parse_valuation("0.000000001"), Ok(1));
        assert_eq!(parse_valuation("2.5"), Ok(2_500_000_000));
        assert!(parse_valuation("-1").is_err());
        assert!(parse_valuation("0.0000000001").is_err());
        assert!(parse_valuation("1e3").is_err());
    }
}

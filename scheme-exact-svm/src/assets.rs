//! The default mints of each Solana network, as the official packages have them (`@x402/svm`
//! `DEFAULT_ASSETS`, compared entry by entry by the interop suite's vocabulary test): the mint a
//! price is quoted in when the seller names none (a network's first entry), and the decimals of
//! every mint listed, so decimal prices in them need no RPC.

use solana_pubkey::Pubkey;

use crate::instructions::{TOKEN_2022_PROGRAM, TOKEN_PROGRAM, USDC_DEVNET, USDC_MAINNET};

/// Solana mainnet.
pub const MAINNET: &str = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp";
/// Solana devnet.
pub const DEVNET: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
/// Solana testnet.
pub const TESTNET: &str = "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z";

/// A mint of the built-in table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinMint {
    /// The CAIP-2 network.
    pub network: &'static str,
    /// The mint.
    pub mint: Pubkey,
    /// Its decimals.
    pub decimals: u8,
    /// The ticker buyers see.
    pub symbol: &'static str,
    /// The program that owns the mint (SPL Token or Token-2022).
    pub token_program: Pubkey,
}

const fn mint(
    network: &'static str,
    mint: Pubkey,
    symbol: &'static str,
    token_program: Pubkey,
) -> BuiltinMint {
    BuiltinMint {
        network,
        mint,
        decimals: 6,
        symbol,
        token_program,
    }
}

const fn key(base58: &str) -> Pubkey {
    Pubkey::from_str_const(base58)
}

/// USDG on devnet and testnet.
const USDG_TEST: Pubkey = key("4F6PM96JJxngmHnZLBh9n58RH4aTVNWvDs2nuwrT5BP7");
/// PYUSD on devnet and testnet.
const PYUSD_TEST: Pubkey = key("CXk2AMBfi3TwaEL2468s6zP8xq9NxTXjp9gjMgzeUynM");

/// The built-in table; every mint listed has 6 decimals.
pub const DEFAULT_MINTS: &[BuiltinMint] = &[
    mint(MAINNET, USDC_MAINNET, "USDC", TOKEN_PROGRAM),
    mint(
        MAINNET,
        key("Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"),
        "USDT",
        TOKEN_PROGRAM,
    ),
    mint(
        MAINNET,
        key("2u1tszSeqZ3qBWF3uNGPFc8TzMk2tdiwknnRMWGWjGWH"),
        "USDG",
        TOKEN_2022_PROGRAM,
    ),
    mint(
        MAINNET,
        key("2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo"),
        "PYUSD",
        TOKEN_2022_PROGRAM,
    ),
    mint(
        MAINNET,
        key("CASHx9KJUStyftLFWGvEVf59SGeG9sh5FfcnZMVPCASH"),
        "CASH",
        TOKEN_2022_PROGRAM,
    ),
    mint(DEVNET, USDC_DEVNET, "USDC", TOKEN_PROGRAM),
    mint(DEVNET, USDG_TEST, "USDG", TOKEN_2022_PROGRAM),
    mint(DEVNET, PYUSD_TEST, "PYUSD", TOKEN_2022_PROGRAM),
    mint(TESTNET, USDC_DEVNET, "USDC", TOKEN_PROGRAM),
    mint(TESTNET, USDG_TEST, "USDG", TOKEN_2022_PROGRAM),
    mint(TESTNET, PYUSD_TEST, "PYUSD", TOKEN_2022_PROGRAM),
];

/// The default mint of `network` (its first entry).
pub fn default_mint(network: &x402_core::Network) -> Option<&'static BuiltinMint> {
    DEFAULT_MINTS.iter().find(|m| m.network == network.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usdc_is_the_default_of_every_network() {
        for network in [MAINNET, DEVNET, TESTNET] {
            let n = x402_core::Network::parse(network).unwrap();
            let d = default_mint(&n).unwrap();
            assert_eq!(d.symbol, "USDC");
            assert_eq!(d.decimals, crate::instructions::USDC_DECIMALS);
        }
        assert!(default_mint(&x402_core::Network::eip155(1)).is_none());
    }
}

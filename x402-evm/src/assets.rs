//! The default assets of each EVM network, as the official packages have them: the token a price
//! is quoted in when the seller names none (a network's first entry), with the EIP-712 domain data
//! buyers sign with. Operators and sellers override or extend it; nothing here is fetched from a
//! chain.

use alloy::primitives::{Address, address};
use x402_core::Network;

/// How an asset is moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferMethod {
    /// EIP-3009 `transferWithAuthorization`.
    Eip3009,
    /// A Permit2 witness transfer through the x402 proxy.
    Permit2,
}

/// A token the schemes know how to price and sign for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetInfo {
    /// The token contract.
    pub address: Address,
    /// EIP-712 domain name (the token's `name()`).
    pub name: String,
    /// EIP-712 domain version (the token's `version()`).
    pub version: String,
    /// Decimals.
    pub decimals: u8,
    /// How it is moved by default.
    pub method: TransferMethod,
}

/// A token of the built-in table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinAsset {
    /// The EVM chain id.
    pub chain: u64,
    /// The token contract.
    pub address: Address,
    /// EIP-712 domain name (the token's `name()`).
    pub name: &'static str,
    /// EIP-712 domain version (the token's `version()`).
    pub version: &'static str,
    /// Decimals.
    pub decimals: u8,
    /// The ticker buyers see.
    pub symbol: &'static str,
    /// How it is moved by default.
    pub method: TransferMethod,
}

const fn asset(
    chain: u64,
    address: Address,
    (name, version): (&'static str, &'static str),
    decimals: u8,
    symbol: &'static str,
    method: TransferMethod,
) -> BuiltinAsset {
    BuiltinAsset {
        chain,
        address,
        name,
        version,
        decimals,
        symbol,
        method,
    }
}

use TransferMethod::{Eip3009, Permit2};

/// The built-in table: the official packages' default assets (`@x402/evm` `DEFAULT_ASSETS`,
/// compared entry by entry by the interop suite's vocabulary test). The first entry of a chain
/// is its default.
pub const DEFAULT_ASSETS: &[BuiltinAsset] = &[
    // Base
    asset(
        8453,
        address!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
        ("USD Coin", "2"),
        6,
        "USDC",
        Eip3009,
    ),
    // Base Sepolia
    asset(
        84532,
        address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e"),
        ("USDC", "2"),
        6,
        "USDC",
        Eip3009,
    ),
    // Ethereum
    asset(
        1,
        address!("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"),
        ("USD Coin", "2"),
        6,
        "USDC",
        Eip3009,
    ),
    // Avalanche C-Chain
    asset(
        43114,
        address!("0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E"),
        ("USD Coin", "2"),
        6,
        "USDC",
        Eip3009,
    ),
    // Polygon
    asset(
        137,
        address!("0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359"),
        ("USD Coin", "2"),
        6,
        "USDC",
        Eip3009,
    ),
    // Arbitrum One
    asset(
        42161,
        address!("0xaf88d065e77c8cC2239327C5EDb3A432268e5831"),
        ("USD Coin", "2"),
        6,
        "USDC",
        Eip3009,
    ),
    // Arbitrum Sepolia
    asset(
        421_614,
        address!("0x75faf114eafb1BDbe2F0316DF893fd58CE46AA4d"),
        ("USD Coin", "2"),
        6,
        "USDC",
        Eip3009,
    ),
    // Monad
    asset(
        143,
        address!("0x754704Bc059F8C67012fEd69BC8A327a5aafb603"),
        ("USDC", "2"),
        6,
        "USDC",
        Eip3009,
    ),
    // Stable
    asset(
        988,
        address!("0x779Ded0c9e1022225f8E0630b35a9b54bE713736"),
        ("USDT0", "1"),
        6,
        "USDT0",
        Eip3009,
    ),
    // Stable testnet
    asset(
        2201,
        address!("0x78Cf24370174180738C5B8E352B6D14c83a6c9A9"),
        ("USDT0", "1"),
        6,
        "USDT0",
        Eip3009,
    ),
    // MegaETH (no EIP-3009; EIP-2612)
    asset(
        4326,
        address!("0xFAfDdbb3FC7688494971a79cc65DCa3EF82079E7"),
        ("MegaUSD", "1"),
        18,
        "MegaUSD",
        Permit2,
    ),
    // Mezo (no EIP-3009; EIP-2612)
    asset(
        31612,
        address!("0xdD468A1DDc392dcdbEf6db6e34E89AA338F9F186"),
        ("Mezo USD", "1"),
        18,
        "mUSD",
        Permit2,
    ),
    // Mezo testnet (no EIP-3009; EIP-2612)
    asset(
        31611,
        address!("0x118917a40FAF1CD7a13dB0Ef56C86De7973Ac503"),
        ("Mezo USD", "1"),
        18,
        "mUSD",
        Permit2,
    ),
    // Radius (no EIP-3009; EIP-2612)
    asset(
        723_487,
        address!("0x33ad9e4BD16B69B5BFdED37D8B5D9fF9aba014Fb"),
        ("Stable Coin", "1"),
        6,
        "SBC",
        Permit2,
    ),
    // Radius testnet (no EIP-3009; EIP-2612)
    asset(
        72344,
        address!("0x33ad9e4BD16B69B5BFdED37D8B5D9fF9aba014Fb"),
        ("Stable Coin", "1"),
        6,
        "SBC",
        Permit2,
    ),
    // ADI Chain
    asset(
        36900,
        address!("0x9cb8142aEBBcdc60AF7c97Af897A67A8f3CA71C2"),
        ("USDC.e", "2"),
        6,
        "USDC.e",
        Eip3009,
    ),
    // HPP
    asset(
        190_415,
        address!("0x401eCb1D350407f13ba348573E5630B83638E30D"),
        ("Bridged USDC", "2"),
        6,
        "USDC.e",
        Eip3009,
    ),
    // HPP Sepolia
    asset(
        181_228,
        address!("0x401eCb1D350407f13ba348573E5630B83638E30D"),
        ("Bridged USDC", "2"),
        6,
        "USDC.e",
        Eip3009,
    ),
    // XDC
    asset(
        50,
        address!("0xfA2958CB79b0491CC627c1557F441eF849Ca8eb1"),
        ("USDC", "2"),
        6,
        "USDC",
        Eip3009,
    ),
    // XDC Apothem
    asset(
        51,
        address!("0xb5AB69F7bBada22B28e79C8FFAECe55eF1c771D4"),
        ("USDC", "2"),
        6,
        "USDC",
        Eip3009,
    ),
    // chain 38833 (no EIP-3009)
    asset(
        38833,
        address!("0xA5b8BF902b2844dA17d4506cc827F7F1681735E7"),
        ("USDC", "1"),
        6,
        "USDC",
        Permit2,
    ),
    // Flare
    asset(
        14,
        address!("0xe7cd86e13AC4309349F30B3435a9d337750fC82D"),
        ("USD₮0", "1"),
        6,
        "USDT0",
        Eip3009,
    ),
    // Celo (USDC is the default)
    asset(
        42220,
        address!("0xcebA9300f2b948710d2653dD7B07f33A8B32118C"),
        ("USDC", "2"),
        6,
        "USDC",
        Eip3009,
    ),
    asset(
        42220,
        address!("0x48065fbBE25f71C9282ddf5e1cD6D6A887483D5e"),
        ("Tether USD", "1"),
        6,
        "USDT",
        Eip3009,
    ),
    asset(
        42220,
        address!("0xD2ab3C9A02DBBAB236BfEC45D1d755DF4267F771"),
        ("Tether America USD", "1"),
        6,
        "USAT",
        Eip3009,
    ),
    // Celo Sepolia
    asset(
        11_142_220,
        address!("0x01C5C0122039549AD1493B8220cABEdD739BC44E"),
        ("USDC", "2"),
        6,
        "USDC",
        Eip3009,
    ),
    // Sei
    asset(
        1329,
        address!("0xe15fC38F6D8c56aF07bbCBe3BAf5708A2Bf42392"),
        ("USDC", "2"),
        6,
        "USDC",
        Eip3009,
    ),
    // Sei testnet
    asset(
        1328,
        address!("0x4fCF1784B31630811181f670Aea7A7bEF803eaED"),
        ("USDC", "2"),
        6,
        "USDC",
        Eip3009,
    ),
];

/// Known assets by network, starting from the built-in table.
#[derive(Debug, Clone)]
pub struct AssetTable {
    entries: Vec<(Network, AssetInfo)>,
}

impl Default for AssetTable {
    fn default() -> Self {
        Self::builtin()
    }
}

impl AssetTable {
    /// The built-in defaults ([`DEFAULT_ASSETS`]).
    pub fn builtin() -> Self {
        let entries = DEFAULT_ASSETS
            .iter()
            .map(|a| {
                (
                    Network::eip155(a.chain),
                    AssetInfo {
                        address: a.address,
                        name: a.name.to_owned(),
                        version: a.version.to_owned(),
                        decimals: a.decimals,
                        method: a.method,
                    },
                )
            })
            .collect();
        Self { entries }
    }

    /// An empty table.
    pub fn empty() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Adds an asset on `network`, making it the network's default (it replaces an entry with the
    /// same address).
    pub fn insert(&mut self, network: Network, asset: AssetInfo) -> &mut Self {
        self.entries
            .retain(|(n, a)| !(n == &network && a.address == asset.address));
        self.entries.insert(0, (network, asset));
        self
    }

    /// The default asset of `network`.
    pub fn default_for(&self, network: &Network) -> Option<&AssetInfo> {
        self.entries
            .iter()
            .find(|(n, _)| n == network)
            .map(|(_, a)| a)
    }

    /// The asset a seller prices in — the one it names (which must be in the table, so its
    /// decimals and EIP-712 domain are known) or the network's default — and the price in that
    /// asset's atomic units (a decimal price converts exactly or is refused).
    pub fn price(
        &self,
        network: &Network,
        asset: Option<&str>,
        price: &x402_core::Price,
    ) -> Result<(AssetInfo, x402_core::Amount), x402_core::SchemeError> {
        let unusable = x402_core::SchemeError::Unusable;
        let info = match asset {
            Some(a) => {
                let address =
                    crate::parse::address("asset", a).map_err(|e| unusable(e.to_string()))?;
                self.find(network, address).cloned().ok_or_else(|| {
                    unusable(format!(
                        "asset {address} on {network} is not in the asset table: its decimals and EIP-712 domain are unknown"
                    ))
                })?
            }
            None => self
                .default_for(network)
                .cloned()
                .ok_or_else(|| unusable(format!("no default asset is known for {network}")))?,
        };
        let amount = match price {
            x402_core::Price::Atomic(a) => *a,
            x402_core::Price::Decimal(d) => {
                x402_core::price_to_atomic(d, info.decimals).map_err(|e| unusable(e.to_string()))?
            }
        };
        Ok((info, amount))
    }

    /// The asset at `address` on `network`.
    pub fn find(&self, network: &Network, address: Address) -> Option<&AssetInfo> {
        self.entries
            .iter()
            .find(|(n, a)| n == network && a.address == address)
            .map(|(_, a)| a)
    }
}

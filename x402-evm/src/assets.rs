//! The default asset of each EVM network (x402-spec §4): the token a price is quoted in when the
//! seller names none, with the EIP-712 domain data buyers sign with. Operators and sellers
//! override or extend it; nothing here is fetched from a chain.

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

const fn row(
    chain: u64,
    addr: Address,
    name: &'static str,
    version: &'static str,
    decimals: u8,
    method: TransferMethod,
) -> (u64, Address, &'static str, &'static str, u8, TransferMethod) {
    (chain, addr, name, version, decimals, method)
}

use TransferMethod::{Eip3009, Permit2};

/// The built-in table: chain id, token, name, version, decimals, method.
pub const DEFAULT_ASSETS: &[(u64, Address, &str, &str, u8, TransferMethod)] = &[
    row(
        8453,
        address!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
        "USD Coin",
        "2",
        6,
        Eip3009,
    ),
    row(
        84532,
        address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e"),
        "USDC",
        "2",
        6,
        Eip3009,
    ),
    row(
        137,
        address!("0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359"),
        "USD Coin",
        "2",
        6,
        Eip3009,
    ),
    row(
        42161,
        address!("0xaf88d065e77c8cC2239327C5EDb3A432268e5831"),
        "USD Coin",
        "2",
        6,
        Eip3009,
    ),
    row(
        421614,
        address!("0x75faf114eafb1BDbe2F0316DF893fd58CE46AA4d"),
        "USD Coin",
        "2",
        6,
        Eip3009,
    ),
    row(
        143,
        address!("0x754704Bc059F8C67012fEd69BC8A327a5aafb603"),
        "USD Coin",
        "2",
        6,
        Eip3009,
    ),
    row(
        988,
        address!("0x779Ded0c9e1022225f8E0630b35a9b54bE713736"),
        "USDT0",
        "1",
        6,
        Eip3009,
    ),
    row(
        2201,
        address!("0x78Cf24370174180738C5B8E352B6D14c83a6c9A9"),
        "USDT0",
        "1",
        6,
        Eip3009,
    ),
    row(
        4326,
        address!("0xFAfDdbb3FC7688494971a79cc65DCa3EF82079E7"),
        "MegaUSD",
        "1",
        18,
        Permit2,
    ),
    row(
        31611,
        address!("0x118917a40FAF1CD7a13dB0Ef56C86De7973Ac503"),
        "Mezo USD",
        "1",
        18,
        Permit2,
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
    /// The built-in defaults of x402-spec §4.
    pub fn builtin() -> Self {
        let entries = DEFAULT_ASSETS
            .iter()
            .map(|&(chain, address, name, version, decimals, method)| {
                (
                    Network::eip155(chain),
                    AssetInfo {
                        address,
                        name: name.to_owned(),
                        version: version.to_owned(),
                        decimals,
                        method,
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

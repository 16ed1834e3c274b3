//! Networks: CAIP-2 chain ids, the v1 network names, and patterns such as `eip155:*`.
//!
//! Protocol v2 names a chain by its [CAIP-2] id (`namespace:reference`, e.g. `eip155:8453`);
//! protocol v1 used short names (`base`). Inside the workspace every network is a [`Network`]
//! (CAIP-2); the v1 names exist only at the wire boundary, through [`Network::from_v1_name`] and
//! [`Network::v1_name`].
//!
//! [CAIP-2]: https://chainagnostic.org/CAIPs/caip-2

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a network string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// Not `namespace:reference` with CAIP-2's character sets and lengths.
    #[error(
        "{0:?} is not a CAIP-2 chain id (namespace [-a-z0-9]{{3,8}}, ':', reference [-_a-zA-Z0-9]{{1,32}})"
    )]
    NotCaip2(String),
    /// Not a known v1 network name.
    #[error("{0:?} is not a known x402 v1 network name")]
    UnknownV1Name(String),
    /// Not a network or a `namespace:*` pattern.
    #[error("{0:?} is neither a CAIP-2 chain id nor a `namespace:*` pattern")]
    BadPattern(String),
}

/// The CAIP-2 namespace of EVM chains.
pub const EIP155: &str = "eip155";
/// The CAIP-2 namespace of Solana clusters.
pub const SOLANA: &str = "solana";

fn valid_namespace(ns: &str) -> bool {
    (3..=8).contains(&ns.len())
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn valid_reference(r: &str) -> bool {
    (1..=32).contains(&r.len())
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A CAIP-2 chain id such as `eip155:8453` or `solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Network {
    text: String,
    colon: usize,
}

impl Network {
    /// Parses and validates a CAIP-2 chain id.
    pub fn parse(s: &str) -> Result<Self, NetworkError> {
        let bad = || NetworkError::NotCaip2(s.to_owned());
        let colon = s.find(':').ok_or_else(bad)?;
        let (ns, reference) = (&s[..colon], &s[colon + 1..]);
        if !valid_namespace(ns) || !valid_reference(reference) {
            return Err(bad());
        }
        Ok(Self {
            text: s.to_owned(),
            colon,
        })
    }

    /// The EVM network with this chain id (`eip155:<id>`).
    pub fn eip155(chain_id: u64) -> Self {
        let text = format!("{EIP155}:{chain_id}");
        Self {
            colon: EIP155.len(),
            text,
        }
    }

    /// The namespace (`eip155`, `solana`).
    pub fn namespace(&self) -> &str {
        &self.text[..self.colon]
    }

    /// The reference (chain id, genesis-hash prefix).
    pub fn reference(&self) -> &str {
        &self.text[self.colon + 1..]
    }

    /// The full `namespace:reference` text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The EVM chain id, for an `eip155` network whose reference is a canonical decimal u64.
    pub fn eip155_chain_id(&self) -> Option<u64> {
        (self.namespace() == EIP155)
            .then(|| crate::amount::parse_u64(self.reference()).ok())
            .flatten()
    }

    /// Resolves a v1 network name (`base-sepolia`) to its CAIP-2 id.
    pub fn from_v1_name(name: &str) -> Result<Self, NetworkError> {
        V1_NETWORKS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, caip)| Self::parse(caip))
            .ok_or_else(|| NetworkError::UnknownV1Name(name.to_owned()))?
    }

    /// The v1 name of this network, when v1 had one.
    pub fn v1_name(&self) -> Option<&'static str> {
        V1_NETWORKS
            .iter()
            .find(|(_, caip)| *caip == self.as_str())
            .map(|(n, _)| *n)
    }

    /// Reads a network as a message of the given protocol version names it: a v1 name for v1,
    /// a CAIP-2 id for v2.
    pub fn from_wire(version: crate::X402Version, s: &str) -> Result<Self, NetworkError> {
        match version {
            crate::X402Version::V1 => Self::from_v1_name(s),
            crate::X402Version::V2 => Self::parse(s),
        }
    }

    /// Writes this network as a message of the given version names it (v1 name for v1, falling
    /// back to CAIP-2 for a chain v1 never named).
    pub fn to_wire(&self, version: crate::X402Version) -> String {
        match version {
            crate::X402Version::V1 => self.v1_name().unwrap_or(self.as_str()).to_owned(),
            crate::X402Version::V2 => self.text.clone(),
        }
    }
}

impl FromStr for Network {
    type Err = NetworkError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Network {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The v1 network names and their CAIP-2 ids (x402-spec §1.6): each name maps to the chain id
/// the named chain itself reports (`eth_chainId`; the ids in viem's chain definitions), which is
/// also what the official TypeScript packages (2.27) map it to. The official SDKs do not all
/// agree; where one differs, it is listed here (the interop suite's vocabulary test compares this
/// table with the TypeScript one):
///
/// | v1 name | here (the chain's own id) | TypeScript 2.27 | Python 2.25 |
/// |---|---|---|---|
/// | `story` | `eip155:1514` (Story mainnet) | 1514 | 1513 (Story's former testnet) |
/// | `educhain` | `eip155:41923` (EDU Chain mainnet) | 41923 | 656476 (EDU Chain testnet) |
/// | `skale-base-sepolia` | `eip155:324705682` (SKALE Base Sepolia testnet) | 324705682 | 1444673419 (SKALE Europa testnet) |
/// | `celo` | `eip155:42220` | 42220 | 42220 |
/// | `flare` | `eip155:14` | 14 | 14 |
/// | `monad-testnet` | `eip155:10143` | — (no name) | 10143 |
///
/// `celo`, `flare` and `monad-testnet` were added to follow the SDKs that know them.
pub const V1_NETWORKS: &[(&str, &str)] = &[
    ("ethereum", "eip155:1"),
    ("sepolia", "eip155:11155111"),
    ("base", "eip155:8453"),
    ("base-sepolia", "eip155:84532"),
    ("avalanche", "eip155:43114"),
    ("avalanche-fuji", "eip155:43113"),
    ("abstract", "eip155:2741"),
    ("abstract-testnet", "eip155:11124"),
    ("iotex", "eip155:4689"),
    ("sei", "eip155:1329"),
    ("sei-testnet", "eip155:1328"),
    ("polygon", "eip155:137"),
    ("polygon-amoy", "eip155:80002"),
    ("peaq", "eip155:3338"),
    ("story", "eip155:1514"),
    ("educhain", "eip155:41923"),
    ("skale-base-sepolia", "eip155:324705682"),
    ("megaeth", "eip155:4326"),
    ("monad", "eip155:143"),
    ("monad-testnet", "eip155:10143"),
    ("stable", "eip155:988"),
    ("stable-testnet", "eip155:2201"),
    ("celo", "eip155:42220"),
    ("flare", "eip155:14"),
    ("solana", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"),
    ("solana-devnet", "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"),
    ("solana-testnet", "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z"),
];

/// A set of networks a scheme serves: one chain, or every chain of a namespace (`eip155:*`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NetworkPattern {
    /// Exactly this chain.
    Exact(Network),
    /// Every chain of this CAIP-2 namespace.
    Namespace(String),
}

impl NetworkPattern {
    /// Parses `namespace:reference` or `namespace:*`.
    pub fn parse(s: &str) -> Result<Self, NetworkError> {
        if let Some(ns) = s.strip_suffix(":*") {
            return if valid_namespace(ns) {
                Ok(Self::Namespace(ns.to_owned()))
            } else {
                Err(NetworkError::BadPattern(s.to_owned()))
            };
        }
        Network::parse(s)
            .map(Self::Exact)
            .map_err(|_| NetworkError::BadPattern(s.to_owned()))
    }

    /// Whether `network` belongs to this pattern.
    pub fn matches(&self, network: &Network) -> bool {
        match self {
            Self::Exact(n) => n == network,
            Self::Namespace(ns) => network.namespace() == ns,
        }
    }

    /// The CAIP-2 namespace of the pattern.
    pub fn namespace(&self) -> &str {
        match self {
            Self::Exact(n) => n.namespace(),
            Self::Namespace(ns) => ns,
        }
    }

    /// Higher is more specific: an exact chain beats a whole namespace.
    pub fn specificity(&self) -> u8 {
        match self {
            Self::Exact(_) => 1,
            Self::Namespace(_) => 0,
        }
    }
}

impl FromStr for NetworkPattern {
    type Err = NetworkError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for NetworkPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(n) => n.fmt(f),
            Self::Namespace(ns) => write!(f, "{ns}:*"),
        }
    }
}

impl Serialize for NetworkPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NetworkPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::X402Version;

    #[test]
    fn v1_caip2_table() {
        // The whole table, both directions.
        let table = [
            ("ethereum", "eip155:1"),
            ("sepolia", "eip155:11155111"),
            ("base", "eip155:8453"),
            ("base-sepolia", "eip155:84532"),
            ("avalanche", "eip155:43114"),
            ("avalanche-fuji", "eip155:43113"),
            ("abstract", "eip155:2741"),
            ("abstract-testnet", "eip155:11124"),
            ("iotex", "eip155:4689"),
            ("sei", "eip155:1329"),
            ("sei-testnet", "eip155:1328"),
            ("polygon", "eip155:137"),
            ("polygon-amoy", "eip155:80002"),
            ("peaq", "eip155:3338"),
            ("story", "eip155:1514"),
            ("educhain", "eip155:41923"),
            ("skale-base-sepolia", "eip155:324705682"),
            ("megaeth", "eip155:4326"),
            ("monad", "eip155:143"),
            ("monad-testnet", "eip155:10143"),
            ("stable", "eip155:988"),
            ("stable-testnet", "eip155:2201"),
            ("celo", "eip155:42220"),
            ("flare", "eip155:14"),
            ("solana", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"),
            ("solana-devnet", "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"),
            ("solana-testnet", "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z"),
        ];
        assert_eq!(table.len(), V1_NETWORKS.len());
        for (name, caip) in table {
            let n = Network::from_v1_name(name).unwrap();
            assert_eq!(n.as_str(), caip);
            assert_eq!(n.v1_name(), Some(name));
            assert_eq!(n.to_wire(X402Version::V1), name);
            assert_eq!(n.to_wire(X402Version::V2), caip);
            assert_eq!(Network::from_wire(X402Version::V1, name).unwrap(), n);
        }
        assert_eq!(
            Network::from_v1_name("eip155:8453"),
            Err(NetworkError::UnknownV1Name("eip155:8453".into()))
        );
        assert!(Network::from_v1_name("Base").is_err());
        // A v2-only chain keeps its CAIP-2 id when written for v1.
        assert_eq!(
            Network::parse("eip155:42161")
                .unwrap()
                .to_wire(X402Version::V1),
            "eip155:42161"
        );
    }

    #[test]
    fn caip2_validation() {
        for ok in [
            "eip155:1",
            "eip155:31337",
            "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
            "cosmos:cosmoshub-4",
        ] {
            let n = Network::parse(ok).unwrap();
            assert_eq!(n.to_string(), ok);
        }
        for bad in [
            "",
            "base",
            ":1",
            "eip155:",
            "ei:1",
            "EIP155:1",
            "eip155:1:2",
            "eip155: 1",
            "toolongnamespace:1",
            "solana:123456789012345678901234567890123",
        ] {
            assert!(Network::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Network::parse("eip155:8453").unwrap().eip155_chain_id(),
            Some(8453)
        );
        assert_eq!(Network::eip155(31337).as_str(), "eip155:31337");
        assert_eq!(
            Network::parse("eip155:0x1").unwrap().eip155_chain_id(),
            None
        );
        assert_eq!(Network::parse("eip155:01").unwrap().eip155_chain_id(), None);
        assert_eq!(
            Network::parse("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp")
                .unwrap()
                .eip155_chain_id(),
            None
        );
    }

    #[test]
    fn patterns() {
        let base = Network::parse("eip155:8453").unwrap();
        let sol = Network::parse("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp").unwrap();
        let all_evm = NetworkPattern::parse("eip155:*").unwrap();
        assert!(all_evm.matches(&base));
        assert!(!all_evm.matches(&sol));
        assert_eq!(all_evm.to_string(), "eip155:*");
        let exact = NetworkPattern::parse("eip155:8453").unwrap();
        assert!(exact.matches(&base));
        assert!(!exact.matches(&Network::eip155(1)));
        assert!(exact.specificity() > all_evm.specificity());
        for bad in ["*", "eip155:*x", ":*", "EIP:*", "base"] {
            assert!(NetworkPattern::parse(bad).is_err(), "{bad:?}");
        }
    }
}

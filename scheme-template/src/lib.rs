//! `exact` on a toy ledger held in process: the template scheme crate that
//! `docs/writing-a-scheme.md` is written from.
//!
//! The "chain" is a [`Ledger`] of balances in this process, one per network of the CAIP-2
//! namespace `toy` (`toy:local`). Accounts are ed25519 public keys written as 64 lower-case hex
//! digits; the one asset is [`ASSET`]. A buyer pays by signing a [`Transfer`]
//! `{from, to, amount, nonce}`; the facilitator checks it and applies it to the ledger, at most
//! once per `(network, from, nonce)`.
//!
//! The crate is scheme logic only: a [`Seller`], a [`Buyer`] and a [`Facilitator`], registered
//! with [`x402_core::register_scheme!`]. The facilitator binary links it with its `template`
//! feature and configures it with
//!
//! ```toml
//! [networks."toy:local".schemes.exact]
//! balances = { "<64 hex digits>" = "1000" }
//! ```

mod buyer;
mod facilitator;
mod ledger;
pub mod reason;
mod seller;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use x402_core::{Amount, FacilitatorRole, Network, PaymentId, SchemeConfig, SchemeError};

pub use buyer::Buyer;
pub use facilitator::Facilitator;
pub use ledger::Ledger;
pub use seller::{DEFAULT_MAX_TIMEOUT_SECONDS, Seller};

/// The CAIP-2 namespace of toy ledgers (the `namespace` registered below).
pub const NAMESPACE: &str = "toy";
/// The one asset a toy ledger holds.
pub const ASSET: &str = "TOY";
/// Its decimals, for prices such as `"2.50"`.
pub const DECIMALS: u8 = 2;

/// Text that is not 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not 64 lower-case hex digits")]
pub struct NotHex32(pub String);

/// 32 bytes from exactly 64 lower-case hex digits: one spelling per value, so an account or a
/// nonce compares, hashes and signs the same way everywhere.
fn hex32(s: &str) -> Result<[u8; 32], NotHex32> {
    let canonical = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let mut out = [0u8; 32];
    match hex::decode_to_slice(s, &mut out) {
        Ok(()) if canonical => Ok(out),
        _ => Err(NotHex32(s.to_owned())),
    }
}

macro_rules! hex32_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(pub [u8; 32]);

        impl FromStr for $name {
            type Err = NotHex32;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                hex32(s).map(Self)
            }
        }
        impl TryFrom<String> for $name {
            type Error = NotHex32;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.to_string()
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }
    };
}

hex32_type!(
    /// A toy account: an ed25519 public key.
    Account
);
hex32_type!(
    /// A transfer nonce: 32 random bytes chosen by the buyer.
    Nonce
);

/// What a buyer signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// The payer.
    pub from: Account,
    /// The recipient (the requirements' `payTo`).
    pub to: Account,
    /// Atomic units of [`ASSET`] (a decimal string, strict grammar).
    pub amount: Amount,
    /// Makes each transfer unique.
    pub nonce: Nonce,
}

impl Transfer {
    /// The canonical bytes signed: a domain tag, the network, then every field in its one
    /// spelling, one per line. The buyer takes the network from the requirements, the
    /// facilitator from its configuration — never from the payload.
    pub fn signing_bytes(&self, network: &Network) -> Vec<u8> {
        let Self {
            from,
            to,
            amount,
            nonce,
        } = self;
        format!("x402-toy-transfer\n{network}\n{from}\n{to}\n{amount}\n{nonce}").into_bytes()
    }

    /// What may be settled at most once: the payer's nonce on this network.
    pub fn payment_id(&self, network: &Network) -> PaymentId {
        let (from, nonce) = (self.from.to_string(), self.nonce.to_string());
        PaymentId::new("toy-transfer", [network.as_str(), &from, &nonce])
    }
}

/// The scheme `payload`: a transfer and its ed25519 signature (128 lower-case hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToyPayload {
    /// The transfer.
    pub transfer: Transfer,
    /// `from`'s signature of [`Transfer::signing_bytes`].
    pub signature: String,
}

/// The options of `exact` on one toy network (the config file's scheme table).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The ledger's opening balances, by account (amounts as decimal strings).
    #[serde(default)]
    pub balances: BTreeMap<String, Amount>,
}

/// The catalogue's builder: opens the network's ledger and returns the facilitator role.
fn build(config: SchemeConfig) -> x402_core::registry::BuildFuture {
    Box::pin(async move {
        let facilitator: Arc<dyn FacilitatorRole> = Arc::new(Facilitator::from_config(config)?);
        Ok(facilitator)
    })
}

/// Reads the options and opens the ledger (its genesis) for `config.network`.
fn open_ledger(config: &SchemeConfig) -> Result<Arc<Ledger>, SchemeError> {
    let options: Options = serde_json::from_value(config.options.clone())
        .map_err(|e| SchemeError::Config(e.to_string()))?;
    let mut balances = Vec::new();
    for (key, amount) in options.balances {
        let account = key
            .parse::<Account>()
            .map_err(|e| SchemeError::Config(format!("balances: {e}")))?;
        balances.push((account, amount));
    }
    Ledger::open(&config.network, balances)
}

x402_core::register_scheme! {
    scheme: "exact",
    namespace: "toy",
    versions: [V2],
    build: build,
}

//! The protocol version, as data.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An x402 protocol version this build speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum X402Version {
    /// Version 1: v1 network names, `maxAmountRequired`, `X-PAYMENT` headers.
    V1,
    /// Version 2: CAIP-2 networks, `accepted`, `PAYMENT-*` headers, extensions.
    V2,
}

impl X402Version {
    /// Both versions, oldest first.
    pub const ALL: [X402Version; 2] = [X402Version::V1, X402Version::V2];

    /// The number on the wire.
    pub const fn number(self) -> u8 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }

    /// The version for a wire number, if this build speaks it.
    pub const fn from_number(n: u64) -> Option<Self> {
        match n {
            1 => Some(Self::V1),
            2 => Some(Self::V2),
            _ => None,
        }
    }
}

impl fmt::Display for X402Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

impl Serialize for X402Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.number())
    }
}

impl<'de> Deserialize<'de> for X402Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        Self::from_number(n).ok_or_else(|| {
            serde::de::Error::custom(format_args!(
                "unsupported x402Version {n} (this build speaks 1 and 2)"
            ))
        })
    }
}

//! Reason codes: the vocabulary for why a payment was refused or a settlement failed.
//!
//! The strings are the ones the official packages our interop tests pin (`@x402/*` 2.27.0, see
//! `tests/interop/package.json`) emit for the same condition, because those are what peers switch
//! on. This crate defines the shared vocabulary (the generic codes and the ones every scheme's
//! facilitator may answer: duplicates, pending settlements, assets); a scheme crate defines its
//! own codes next to its logic with [`reason_codes!`](crate::reason_codes), without editing this
//! crate. Either way a code is a [`Reason`] constant and is collected at link time into
//! [`ReasonCode::all`], so one list holds every code a build knows; the workspace's golden test
//! pins that list, and the interop suite compares it with the strings read out of the installed
//! official packages.
//!
//! The few codes that are not the official packages' — our additions, for conditions the
//! reference does not check, and the specification's generic codes no package emits — are listed,
//! each with why, in one place: `docs/reasons.md`.
//!
//! The reference's v1 mechanisms still answer a few conditions with older strings than its v2
//! ones. A scheme checks once and answers with the current string; [`Reason::for_version`] turns
//! it into the v1 spelling for a v1 payment, from the scheme's table of the pairs.
//!
//! Reason strings are opaque on the wire: a reason this build does not know (a newer peer's, or a
//! scheme not linked in) is kept verbatim rather than refused, and compares equal to the constant
//! of any build that does know it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::X402Version;

/// Why a payment is invalid or a settlement failed: a wire string, compared by its text.
#[derive(Clone)]
pub struct Reason(Text);

#[derive(Clone)]
enum Text {
    Defined(&'static str),
    Received(Box<str>),
}

/// One reason code a crate of this build defines, collected at link time.
#[derive(Debug)]
pub struct ReasonCode {
    /// The wire string.
    pub text: &'static str,
    /// The crate that defines it.
    pub crate_name: &'static str,
}

inventory::collect!(ReasonCode);

impl ReasonCode {
    /// Every code linked into this build, sorted by text.
    pub fn all() -> &'static [&'static ReasonCode] {
        static ALL: OnceLock<Vec<&'static ReasonCode>> = OnceLock::new();
        ALL.get_or_init(|| {
            let mut all: Vec<&'static ReasonCode> = inventory::iter::<ReasonCode>().collect();
            all.sort_by(|a, b| (a.text, a.crate_name).cmp(&(b.text, b.crate_name)));
            all
        })
    }

    fn find(text: &str) -> Option<&'static ReasonCode> {
        static BY_TEXT: OnceLock<BTreeMap<&'static str, &'static ReasonCode>> = OnceLock::new();
        BY_TEXT
            .get_or_init(|| Self::all().iter().map(|c| (c.text, *c)).collect())
            .get(text)
            .copied()
    }
}

/// Defines reason codes as public [`Reason`] constants of the calling module and adds them to
/// the build's list ([`ReasonCode::all`]) under the calling crate's name:
///
/// ```
/// mod reason {
///     x402_core::reason_codes! {
///         /// The toy transfer names another recipient.
///         INVALID_EXACT_TOY_PAYLOAD_RECIPIENT_MISMATCH = "invalid_exact_toy_payload_recipient_mismatch";
///     }
/// }
/// assert_eq!(reason::INVALID_EXACT_TOY_PAYLOAD_RECIPIENT_MISMATCH.as_str(), "invalid_exact_toy_payload_recipient_mismatch");
/// assert!(reason::INVALID_EXACT_TOY_PAYLOAD_RECIPIENT_MISMATCH.is_known());
/// ```
#[macro_export]
macro_rules! reason_codes {
    ($($(#[$meta:meta])* $name:ident = $text:literal;)*) => {
        $(
            $(#[$meta])*
            #[doc = concat!("`", $text, "`")]
            pub const $name: $crate::Reason = $crate::Reason::defined($text);
            $crate::inventory::submit! {
                $crate::reason::ReasonCode { text: $text, crate_name: env!("CARGO_PKG_NAME") }
            }
        )*
    };
}

/// The shared vocabulary as associated constants, each also added to the build's list.
macro_rules! shared {
    ($($name:ident = $text:literal;)*) => {
        impl Reason {
            $(
                #[doc = concat!("`", $text, "`")]
                pub const $name: Reason = Reason::defined($text);
            )*
        }
        $(inventory::submit! { ReasonCode { text: $text, crate_name: env!("CARGO_PKG_NAME") } })*
    };
}

shared! {
    // Generic (spec §9; the official packages emit the ones docs/reasons.md does not list)
    INSUFFICIENT_FUNDS = "insufficient_funds";
    INVALID_NETWORK = "invalid_network";
    INVALID_PAYLOAD = "invalid_payload";
    INVALID_PAYMENT_REQUIREMENTS = "invalid_payment_requirements";
    INVALID_SCHEME = "invalid_scheme";
    UNSUPPORTED_SCHEME = "unsupported_scheme";
    INVALID_X402_VERSION = "invalid_x402_version";
    INVALID_TRANSACTION_STATE = "invalid_transaction_state";
    UNEXPECTED_VERIFY_ERROR = "unexpected_verify_error";
    UNEXPECTED_SETTLE_ERROR = "unexpected_settle_error";
    UNSUPPORTED_PAYLOAD_TYPE = "unsupported_payload_type";
    // Outcomes any scheme's facilitator may answer (the official packages')
    NETWORK_MISMATCH = "network_mismatch";
    VERIFICATION_FAILED = "verification_failed";
    DUPLICATE_SETTLEMENT = "duplicate_settlement";
    TRANSACTION_FAILED = "transaction_failed";
    SETTLEMENT_PENDING = "settlement_pending";
    // Our additions (docs/reasons.md)
    UNSUPPORTED_ASSET = "unsupported_asset";
    PAYER_BUSY = "payer_busy";
    PAYER_THROTTLED = "payer_throttled";
    PAYER_DENIED = "payer_denied";
    RECIPIENT_DENIED = "recipient_denied";
}

impl Reason {
    /// A code defined in source; use [`reason_codes!`](crate::reason_codes), which also lists it.
    #[doc(hidden)]
    pub const fn defined(text: &'static str) -> Self {
        Reason(Text::Defined(text))
    }

    /// The wire string.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Text::Defined(s) => s,
            Text::Received(s) => s,
        }
    }

    /// Reads a wire string; any string is accepted, known or not.
    pub fn from_wire(s: &str) -> Self {
        match ReasonCode::find(s) {
            Some(code) => Reason(Text::Defined(code.text)),
            None => Reason(Text::Received(s.into())),
        }
    }

    /// Whether a crate linked into this build defines this reason.
    pub fn is_known(&self) -> bool {
        ReasonCode::find(self.as_str()).is_some()
    }

    /// This reason as a payment of protocol `version` is answered: unchanged, except for a v1
    /// payment when `v1_spellings` pairs it (current string, v1 string) with the older string
    /// the reference's v1 mechanism answers the same condition with.
    pub fn for_version(self, version: X402Version, v1_spellings: &[(Reason, Reason)]) -> Reason {
        if version != X402Version::V1 {
            return self;
        }
        v1_spellings
            .iter()
            .find(|(current, _)| *current == self)
            .map_or(self, |(_, v1)| v1.clone())
    }
}

impl PartialEq for Reason {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Reason {}

impl std::hash::Hash for Reason {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Reason").field(&self.as_str()).finish()
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Reason::from_wire(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unknown() {
        let ours: Vec<_> = ReasonCode::all()
            .iter()
            .filter(|c| c.crate_name == "x402-core")
            .collect();
        assert!(ours.len() > 10, "{ours:?}");
        for code in ours {
            let r = Reason::from_wire(code.text);
            assert!(r.is_known());
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", code.text));
            assert_eq!(serde_json::from_str::<Reason>(&json).unwrap(), r);
        }
        assert_eq!(
            Reason::from_wire("invalid_payload"),
            Reason::INVALID_PAYLOAD
        );
        let other: Reason = serde_json::from_str("\"some_new_reason\"").unwrap();
        assert_eq!(other.as_str(), "some_new_reason");
        assert!(!other.is_known());
        assert_ne!(other, Reason::INVALID_PAYLOAD);
        assert_eq!(
            serde_json::to_string(&other).unwrap(),
            "\"some_new_reason\""
        );
    }

    #[test]
    fn v1_spellings_apply_to_v1_payments_only() {
        let table = [(Reason::DUPLICATE_SETTLEMENT, Reason::TRANSACTION_FAILED)];
        let v1 = Reason::DUPLICATE_SETTLEMENT.for_version(X402Version::V1, &table);
        assert_eq!(v1, Reason::TRANSACTION_FAILED);
        let v2 = Reason::DUPLICATE_SETTLEMENT.for_version(X402Version::V2, &table);
        assert_eq!(v2, Reason::DUPLICATE_SETTLEMENT);
        let other = Reason::INVALID_PAYLOAD.for_version(X402Version::V1, &table);
        assert_eq!(other, Reason::INVALID_PAYLOAD);
    }
}

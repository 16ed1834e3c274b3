//! One view of a payment for v1 and v2 alike: schemes read these, never the versioned wire types.

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::wire::{
    PaymentPayload, PaymentRequirements, PaymentRequirementsV2, ResourceInfo, VerifyRequest,
    parse_raw,
};
use crate::{Amount, Network, Reason, X402Version};

/// A refusal: the reason code and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The reason code.
    pub reason: Reason,
    /// A human explanation (no secrets).
    pub message: Option<String>,
}

impl Rejection {
    /// A rejection with just a reason.
    pub fn new(reason: Reason) -> Self {
        Self {
            reason,
            message: None,
        }
    }

    /// A rejection with a reason and a message.
    pub fn with_message(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: Some(message.into()),
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.message {
            Some(m) => write!(f, "{}: {m}", self.reason),
            None => write!(f, "{}", self.reason),
        }
    }
}

/// Requirements of either version, seen the same way.
#[derive(Debug, Clone)]
pub struct RequirementsView<'a> {
    /// The protocol version they came in.
    pub version: X402Version,
    /// The scheme.
    pub scheme: &'a str,
    /// The network, as CAIP-2 (a v1 name is resolved).
    pub network: Network,
    /// The amount in atomic units (v1 `maxAmountRequired`).
    pub amount: Amount,
    /// The token address or mint.
    pub asset: &'a str,
    /// The recipient.
    pub pay_to: &'a str,
    /// The time allowed, in seconds.
    pub max_timeout_seconds: u64,
    /// Scheme data.
    pub extra: Option<&'a RawValue>,
}

impl<'a> RequirementsView<'a> {
    /// Reads `extra` into a typed value (`None` when absent or `null`).
    pub fn extra_as<T: DeserializeOwned>(&self) -> Result<Option<T>, serde_json::Error> {
        parse_raw(self.extra)
    }
}

impl PaymentRequirements {
    /// The version-neutral view; an unknown or malformed network is `invalid_network`.
    pub fn view(&self) -> Result<RequirementsView<'_>, Rejection> {
        let version = self.version();
        let network = Network::from_wire(version, self.network_text())
            .map_err(|e| Rejection::with_message(Reason::INVALID_NETWORK, e.to_string()))?;
        Ok(match self {
            Self::V1(r) => RequirementsView {
                version,
                scheme: &r.scheme,
                network,
                amount: r.max_amount_required,
                asset: &r.asset,
                pay_to: &r.pay_to,
                max_timeout_seconds: r.max_timeout_seconds,
                extra: r.extra.as_deref(),
            },
            Self::V2(r) => RequirementsView {
                version,
                scheme: &r.scheme,
                network,
                amount: r.amount,
                asset: &r.asset,
                pay_to: &r.pay_to,
                max_timeout_seconds: r.max_timeout_seconds,
                extra: r.extra.as_deref(),
            },
        })
    }
}

/// A payload of either version, seen the same way.
#[derive(Debug, Clone)]
pub struct PayloadView<'a> {
    /// The protocol version.
    pub version: X402Version,
    /// The scheme the buyer says it paid with (v1 `scheme`, v2 `accepted.scheme`).
    pub scheme: &'a str,
    /// The network the buyer says it paid on, as written (v1 name or CAIP-2).
    pub network_text: &'a str,
    /// The scheme-specific payload.
    pub payload: &'a RawValue,
    /// v2: the requirement the buyer echoed (unsigned; for cross-checks only).
    pub accepted: Option<&'a PaymentRequirementsV2>,
    /// v2: the resource the buyer echoed.
    pub resource: Option<&'a ResourceInfo>,
    /// v2: extensions.
    pub extensions: Option<&'a RawValue>,
}

impl<'a> PayloadView<'a> {
    /// Reads the scheme payload into a typed value.
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.payload.get())
    }

    /// The buyer's network as CAIP-2, if it names a known network.
    pub fn network(&self) -> Option<Network> {
        Network::from_wire(self.version, self.network_text).ok()
    }
}

impl PaymentPayload {
    /// The version-neutral view.
    pub fn view(&self) -> PayloadView<'_> {
        match self {
            Self::V1(p) => PayloadView {
                version: X402Version::V1,
                scheme: &p.scheme,
                network_text: &p.network,
                payload: &p.payload,
                accepted: None,
                resource: None,
                extensions: None,
            },
            Self::V2(p) => PayloadView {
                version: X402Version::V2,
                scheme: &p.accepted.scheme,
                network_text: &p.accepted.network,
                payload: &p.payload,
                accepted: Some(&p.accepted),
                resource: p.resource.as_ref(),
                extensions: p.extensions.as_deref(),
            },
        }
    }
}

/// A verify or settle request as a scheme sees it.
#[derive(Debug, Clone)]
pub struct PaymentContext<'a> {
    /// What the buyer sent.
    pub payload: PayloadView<'a>,
    /// What the seller requires (the authority for every economic check).
    pub requirements: RequirementsView<'a>,
    /// When a settle must answer at the latest (see [`crate::timing`]): a scheme waits for the
    /// chain until then and answers `settlement_pending` with the transaction, and sends nothing
    /// once it has passed. `None`: the scheme's own bounds alone apply.
    pub deadline: Option<std::time::Instant>,
}

impl<'a> PaymentContext<'a> {
    /// Builds the view of a request; an unreadable network is `invalid_network`.
    pub fn of(request: &'a VerifyRequest) -> Result<Self, Rejection> {
        Ok(Self {
            payload: request.payment_payload.view(),
            requirements: request.payment_requirements.view()?,
            deadline: None,
        })
    }

    /// The same view with a settle deadline.
    pub fn with_deadline(mut self, deadline: Option<std::time::Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Whether the buyer's scheme and network are the seller's (the facilitator's cross-check;
    /// each scheme answers a mismatch with its own reason string).
    pub fn scheme_matches(&self) -> bool {
        self.payload.scheme == self.requirements.scheme
    }

    /// Whether the buyer's network is the seller's.
    pub fn network_matches(&self) -> bool {
        self.payload.network().as_ref() == Some(&self.requirements.network)
    }
}

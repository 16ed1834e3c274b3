//! `POST /verify` and `POST /settle` bodies, and version-directed parsing of every document
//! whose shape depends on its `x402Version`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{
    PaymentPayload, PaymentPayloadV1, PaymentPayloadV2, PaymentRequired, PaymentRequiredV1,
    PaymentRequiredV2, PaymentRequirements, PaymentRequirementsV1, PaymentRequirementsV2,
};
use crate::X402Version;
use crate::json::{self, JsonError, JsonLimits};

/// Which part of a request was malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestPart {
    /// The request envelope.
    Body,
    /// `paymentPayload` (or a payment header).
    Payload,
    /// `paymentRequirements`.
    Requirements,
}

/// Why a request document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Not a well-formed document of the expected shape.
    #[error("malformed {part:?}: {source}")]
    Malformed {
        /// Where.
        part: RequestPart,
        /// What the parser said.
        #[source]
        source: JsonError,
    },
    /// `x402Version` is missing or not an integer.
    #[error("{part:?}: x402Version is missing or not an integer")]
    NoVersion {
        /// Where.
        part: RequestPart,
    },
    /// A well-formed integer version this build does not speak.
    #[error("unsupported x402Version {0} (this build speaks 1 and 2)")]
    UnsupportedVersion(u64),
    /// The envelope's `x402Version` disagrees with the payload's.
    #[error(
        "x402Version {envelope} of the request disagrees with x402Version {payload} of its paymentPayload"
    )]
    VersionMismatch {
        /// The envelope's.
        envelope: u64,
        /// The payload's.
        payload: u64,
    },
}

impl RequestError {
    fn malformed(part: RequestPart) -> impl FnOnce(serde_json::Error) -> Self {
        move |e| Self::Malformed {
            part,
            source: JsonError::Invalid(e),
        }
    }

    /// The reason code that describes this error in a response body.
    pub fn reason(&self) -> crate::Reason {
        match self {
            Self::UnsupportedVersion(_) | Self::VersionMismatch { .. } => {
                crate::Reason::INVALID_X402_VERSION
            }
            Self::Malformed {
                part: RequestPart::Requirements,
                ..
            }
            | Self::NoVersion {
                part: RequestPart::Requirements,
            } => crate::Reason::INVALID_PAYMENT_REQUIREMENTS,
            _ => crate::Reason::INVALID_PAYLOAD,
        }
    }
}

/// Reads the `x402Version` member of a document, accepting only an integer.
fn probe_version(raw: &str, part: RequestPart) -> Result<u64, RequestError> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "x402Version")]
        version: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_str(raw).map_err(RequestError::malformed(part))?;
    probe
        .version
        .as_ref()
        .and_then(serde_json::Value::as_u64)
        .ok_or(RequestError::NoVersion { part })
}

fn version_of(raw: &str, part: RequestPart) -> Result<X402Version, RequestError> {
    let n = probe_version(raw, part)?;
    X402Version::from_number(n).ok_or(RequestError::UnsupportedVersion(n))
}

fn strict_check(bytes: &[u8], limits: JsonLimits) -> Result<&str, RequestError> {
    json::check(bytes, limits).map_err(|source| RequestError::Malformed {
        part: RequestPart::Body,
        source,
    })?;
    std::str::from_utf8(bytes).map_err(|e| RequestError::Malformed {
        part: RequestPart::Body,
        source: JsonError::Invalid(serde::de::Error::custom(e)),
    })
}

impl PaymentPayload {
    /// Reads a payload of either version from untrusted JSON (strict: see [`crate::json`]).
    pub fn from_json(bytes: &[u8], limits: JsonLimits) -> Result<Self, RequestError> {
        let text = strict_check(bytes, limits)?;
        Self::from_checked(text)
    }

    fn from_checked(text: &str) -> Result<Self, RequestError> {
        let part = RequestPart::Payload;
        Ok(match version_of(text, part)? {
            X402Version::V1 => Self::V1(
                serde_json::from_str::<PaymentPayloadV1>(text)
                    .map_err(RequestError::malformed(part))?,
            ),
            X402Version::V2 => Self::V2(
                serde_json::from_str::<PaymentPayloadV2>(text)
                    .map_err(RequestError::malformed(part))?,
            ),
        })
    }
}

impl PaymentRequirements {
    /// Reads requirements in the shape of `version`.
    pub fn from_json_as(version: X402Version, text: &str) -> Result<Self, RequestError> {
        let part = RequestPart::Requirements;
        Ok(match version {
            X402Version::V1 => Self::V1(
                serde_json::from_str::<PaymentRequirementsV1>(text)
                    .map_err(RequestError::malformed(part))?,
            ),
            X402Version::V2 => Self::V2(
                serde_json::from_str::<PaymentRequirementsV2>(text)
                    .map_err(RequestError::malformed(part))?,
            ),
        })
    }
}

impl PaymentRequired {
    /// Reads a "payment required" document of either version from untrusted JSON.
    pub fn from_json(bytes: &[u8], limits: JsonLimits) -> Result<Self, RequestError> {
        let text = strict_check(bytes, limits)?;
        let part = RequestPart::Body;
        Ok(match version_of(text, part)? {
            X402Version::V1 => Self::V1(
                serde_json::from_str::<PaymentRequiredV1>(text)
                    .map_err(RequestError::malformed(part))?,
            ),
            X402Version::V2 => Self::V2(
                serde_json::from_str::<PaymentRequiredV2>(text)
                    .map_err(RequestError::malformed(part))?,
            ),
        })
    }
}

/// `POST /verify` body. The same document is the `POST /settle` body ([`SettleRequest`]).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRequest {
    /// The protocol version (equal to the payload's).
    pub x402_version: X402Version,
    /// What the buyer sent.
    pub payment_payload: PaymentPayload,
    /// What the seller requires — the seller's own object, never the buyer's `accepted`.
    pub payment_requirements: PaymentRequirements,
}

/// `POST /settle` body: the same document as a verify request.
pub type SettleRequest = VerifyRequest;

impl VerifyRequest {
    /// Builds a request; the version is taken from the payload.
    pub fn new(payment_payload: PaymentPayload, payment_requirements: PaymentRequirements) -> Self {
        Self {
            x402_version: payment_payload.version(),
            payment_payload,
            payment_requirements,
        }
    }

    /// Reads a request from untrusted JSON. The payload's `x402Version` decides the shape of both
    /// parts (routing follows the payload, x402-spec §1.4).
    pub fn from_json(bytes: &[u8], limits: JsonLimits) -> Result<Self, RequestError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Envelope<'a> {
            x402_version: Option<serde_json::Value>,
            #[serde(borrow)]
            payment_payload: &'a RawValue,
            #[serde(borrow)]
            payment_requirements: &'a RawValue,
        }
        let text = strict_check(bytes, limits)?;
        let envelope: Envelope<'_> =
            serde_json::from_str(text).map_err(RequestError::malformed(RequestPart::Body))?;
        let payload_version = probe_version(envelope.payment_payload.get(), RequestPart::Payload)?;
        if let Some(v) = &envelope.x402_version {
            let envelope_version = v.as_u64().ok_or(RequestError::NoVersion {
                part: RequestPart::Body,
            })?;
            if envelope_version != payload_version {
                return Err(RequestError::VersionMismatch {
                    envelope: envelope_version,
                    payload: payload_version,
                });
            }
        }
        let payment_payload = PaymentPayload::from_checked(envelope.payment_payload.get())?;
        let payment_requirements = PaymentRequirements::from_json_as(
            payment_payload.version(),
            envelope.payment_requirements.get(),
        )?;
        Ok(Self::new(payment_payload, payment_requirements))
    }
}

//! The HTTP header codec: strict standard base64 (RFC 4648, `=` padding) of compact UTF-8 JSON.
//!
//! One decoder for every payment header: the standard alphabet only (no URL-safe characters, no
//! whitespace), canonical padding, no stray trailing bits, and a size limit checked before any
//! decoding work.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Serialize;

use crate::json::{JsonError, JsonLimits};

/// `PAYMENT-REQUIRED` (v2, seller → buyer).
pub const PAYMENT_REQUIRED: &str = "PAYMENT-REQUIRED";
/// `PAYMENT-SIGNATURE` (v2, buyer → seller).
pub const PAYMENT_SIGNATURE: &str = "PAYMENT-SIGNATURE";
/// `PAYMENT-RESPONSE` (v2, seller → buyer after settlement).
pub const PAYMENT_RESPONSE: &str = "PAYMENT-RESPONSE";
/// `X-PAYMENT` (v1, buyer → seller).
pub const X_PAYMENT: &str = "X-PAYMENT";
/// `X-PAYMENT-RESPONSE` (v1, seller → buyer after settlement).
pub const X_PAYMENT_RESPONSE: &str = "X-PAYMENT-RESPONSE";

/// The largest payment header a seller accepts from a buyer (encoded length).
pub const MAX_REQUEST_HEADER_LEN: usize = 16 * 1024;
/// The largest payment header a buyer accepts from a seller (encoded length).
pub const MAX_RESPONSE_HEADER_LEN: usize = 64 * 1024;

const STRICT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(false),
);

/// Why a header value was refused.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// Empty value.
    #[error("header value is empty")]
    Empty,
    /// Longer than the limit.
    #[error("header value is {len} bytes, longer than the limit of {limit}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Not strict standard base64 with padding.
    #[error("header value is not standard base64 with padding: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The decoded bytes are not the expected JSON.
    #[error("header JSON: {0}")]
    Json(#[from] JsonError),
    /// Encoding failed (a value that cannot be JSON).
    #[error("cannot encode header JSON: {0}")]
    Encode(serde_json::Error),
}

/// Encodes a value as a header: compact JSON, then standard base64 with padding.
pub fn encode<T: Serialize>(value: &T) -> Result<String, HeaderError> {
    let json = serde_json::to_vec(value).map_err(HeaderError::Encode)?;
    Ok(STRICT.encode(json))
}

/// Decodes a header value to bytes with the strict rules and a length limit.
pub fn decode_bytes(value: &str, limit: usize) -> Result<Vec<u8>, HeaderError> {
    if value.is_empty() {
        return Err(HeaderError::Empty);
    }
    if value.len() > limit {
        return Err(HeaderError::TooLong {
            len: value.len(),
            limit,
        });
    }
    Ok(STRICT.decode(value)?)
}

/// Decodes standard base64 with padding strictly (also used for scheme blobs such as a Solana
/// transaction).
pub fn decode_base64(value: &str, limit: usize) -> Result<Vec<u8>, HeaderError> {
    decode_bytes(value, limit)
}

/// Encodes bytes as standard base64 with padding.
pub fn encode_base64(bytes: &[u8]) -> String {
    STRICT.encode(bytes)
}

/// Decodes a header value and checks its JSON strictly (size, depth, duplicate keys).
pub fn decode_json(value: &str, limit: usize) -> Result<Vec<u8>, HeaderError> {
    let bytes = decode_bytes(value, limit)?;
    crate::json::check(
        &bytes,
        JsonLimits {
            max_bytes: limit,
            ..JsonLimits::DEFAULT
        },
    )?;
    Ok(bytes)
}

/// Decodes a header value into a typed value.
pub fn decode<T: serde::de::DeserializeOwned>(value: &str, limit: usize) -> Result<T, HeaderError> {
    let bytes = decode_json(value, limit)?;
    serde_json::from_slice(&bytes).map_err(|e| HeaderError::Json(JsonError::Invalid(e)))
}

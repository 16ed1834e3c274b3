//! Why a sign-in-with-x proof was refused: the official package's `invalid_siwx_*` codes
//! (`@x402/extensions` 2.27), and ours for what it does not check (docs/reasons.md).

use x402_core::Reason;

x402_core::reason_codes! {
    /// The domain is not the seller's host.
    DOMAIN_MISMATCH = "invalid_siwx_domain_mismatch";
    /// The URI is not a URL of the seller's origin, or names another resource.
    URI_MISMATCH = "invalid_siwx_uri_mismatch";
    /// `issuedAt` is not an RFC 3339 date-time.
    ISSUED_AT = "invalid_siwx_issued_at";
    /// `issuedAt` is older than the seller accepts.
    ISSUED_AT_TOO_OLD = "invalid_siwx_issued_at_too_old";
    /// `issuedAt` is in the future (beyond the clock skew allowed).
    ISSUED_AT_IN_FUTURE = "invalid_siwx_issued_at_in_future";
    /// `expirationTime` is not an RFC 3339 date-time.
    EXPIRATION_TIME = "invalid_siwx_expiration_time";
    /// `expirationTime` has passed.
    EXPIRED = "invalid_siwx_expired";
    /// `notBefore` is not an RFC 3339 date-time.
    NOT_BEFORE = "invalid_siwx_not_before";
    /// `notBefore` has not come yet.
    NOT_YET_VALID = "invalid_siwx_not_yet_valid";
    /// The nonce was used before (a replayed proof).
    NONCE = "invalid_siwx_nonce";
    /// The chain is not one the seller accepts sign-ins on.
    UNSUPPORTED_CHAIN = "invalid_siwx_unsupported_chain";
    /// The chain id is not `eip155:<number>` (or `solana:<reference>`).
    CHAIN_ID = "invalid_siwx_chain_id";
    /// The signature does not verify for the address.
    SIGNATURE = "invalid_siwx_signature";
    /// The signature or the address cannot be decoded.
    MALFORMED_SIGNATURE = "invalid_siwx_malformed_signature";
    /// The chain could not be asked about a smart wallet's signature.
    VERIFIER_ERROR = "invalid_siwx_verifier_error";
    /// Ours: the header is not base64 of a sign-in-with-x proof, or a field breaks EIP-4361.
    MALFORMED = "invalid_siwx_payload";
    /// Ours: the proof is valid, but the seller's policy finds no payment of this address for
    /// this resource.
    NOT_PAID = "siwx_payment_not_found";
}

/// A refused proof: a reason code and a message for people (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct Refusal {
    /// The reason code.
    pub reason: Reason,
    /// What was wrong.
    pub message: String,
}

impl Refusal {
    /// A refusal for `reason` saying `message`.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

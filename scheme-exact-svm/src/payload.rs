//! The `exact` SVM payload: `{"transaction": "<base64 of a partially signed transaction>"}`, and
//! the strict decoder every facilitator check starts from.
//!
//! Decoding refuses, before any field is indexed: more than one packet (1232 bytes), anything but
//! strict standard base64, trailing bytes, a non-canonical encoding (the bytes must re-serialize
//! to themselves, so one message has one identity), and a message that does not sanitize (account
//! indices out of range, a header that does not fit the keys, a signature count that does not
//! match the header).

use serde::{Deserialize, Serialize};
use solana_transaction::versioned::VersionedTransaction;
use x402_core::Rejection;
use x402_core::wire::Raw;

use crate::instructions::MAX_TRANSACTION_BYTES;

/// The longest base64 text of a [`MAX_TRANSACTION_BYTES`] transaction.
pub const MAX_TRANSACTION_BASE64: usize = MAX_TRANSACTION_BYTES.div_ceil(3) * 4;

/// The scheme payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExactSvmPayload {
    /// Standard base64 of the wire transaction, signed by the buyer, fee-payer slot zeroed.
    pub transaction: String,
}

impl ExactSvmPayload {
    /// The payload of `tx`.
    pub fn of(tx: &VersionedTransaction) -> Result<Self, bincode::Error> {
        Ok(Self {
            transaction: x402_core::header::encode_base64(&bincode::serialize(tx)?),
        })
    }

    /// The payload as the JSON a payment carries.
    pub fn to_raw(&self) -> Result<Raw, serde_json::Error> {
        x402_core::wire::to_raw(self)
    }
}

/// A transaction that decoded and sanitized, with the exact bytes its signers sign.
#[derive(Debug, Clone)]
pub struct DecodedTransaction {
    /// The transaction.
    pub tx: VersionedTransaction,
    /// The serialized message (what every signature covers; its hash is the payment identity).
    pub message_bytes: Vec<u8>,
}

fn undecodable(message: impl Into<String>) -> Rejection {
    Rejection::with_message(
        crate::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_COULD_NOT_BE_DECODED,
        message,
    )
}

/// Reads the payload JSON; anything without a string `transaction` cannot be decoded.
pub fn parse(raw: &serde_json::value::RawValue) -> Result<ExactSvmPayload, Rejection> {
    serde_json::from_str(raw.get()).map_err(|e| undecodable(format!("payload: {e}")))
}

/// Decodes and sanitizes a base64 wire transaction (see the module documentation).
pub fn decode_transaction(base64: &str) -> Result<DecodedTransaction, Rejection> {
    let bytes = x402_core::header::decode_base64(base64, MAX_TRANSACTION_BASE64)
        .map_err(|e| undecodable(format!("transaction: {e}")))?;
    decode_bytes(&bytes)
}

/// Decodes and sanitizes wire bytes (see the module documentation).
pub fn decode_bytes(bytes: &[u8]) -> Result<DecodedTransaction, Rejection> {
    use bincode::Options as _;
    if bytes.len() > MAX_TRANSACTION_BYTES {
        return Err(undecodable(format!(
            "the transaction is {} bytes, more than one packet ({MAX_TRANSACTION_BYTES})",
            bytes.len()
        )));
    }
    let tx: VersionedTransaction = bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_limit(MAX_TRANSACTION_BYTES as u64)
        .reject_trailing_bytes()
        .deserialize(bytes)
        .map_err(|e| undecodable(format!("transaction: {e}")))?;
    let canonical = bincode::serialize(&tx).map_err(|e| undecodable(e.to_string()))?;
    if canonical != bytes {
        return Err(undecodable("the transaction is not canonically encoded"));
    }
    tx.sanitize()
        .map_err(|e| undecodable(format!("the transaction does not sanitize: {e}")))?;
    let message_bytes = bincode::serialize(&tx.message).map_err(|e| undecodable(e.to_string()))?;
    Ok(DecodedTransaction { tx, message_bytes })
}

/// The kind of a Solana payment's identity.
pub const PAYMENT_KIND: &str = "solana-message";

/// A payment's identity: the SHA-256 of its message's bytes on `network` (every signature
/// covers them, so no re-encoding or fee-payer signature changes it).
pub fn payment_id(network: &x402_core::Network, message_bytes: &[u8]) -> x402_core::PaymentId {
    use sha2::{Digest as _, Sha256};
    let digest = Sha256::digest(message_bytes);
    x402_core::PaymentId::new(PAYMENT_KIND, [network.as_str(), &hex::encode(digest)])
}

/// Standard base64 of the wire bytes of `tx`.
pub fn encode_transaction(tx: &VersionedTransaction) -> Result<String, bincode::Error> {
    Ok(x402_core::header::encode_base64(&bincode::serialize(tx)?))
}

/// The partially signed transaction of x402-spec §6.3 (for tests and documentation).
pub const VECTOR_TRANSACTION: &str = "AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACXTu7PXkXS0Z/TT9AxkWGp156GiahYOYrEBH8fMkWYJ+Z39IWzUiwNaYxQepJGjDGmvq2x/42CNfwYL6x8OAIPgAIBBAiBOXcOqH0XX1ajVGbDTH7My42KkbTuN6Jd9g9bj8mzlIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29cVfrYUDwcTMIz1rajclqlUU/uq3ieryKWb3Ki2UMxyVvtxjbgQB4pwJnqJwOAZZHm5AvuwQkVBwJdu/5tY3Yf4gMGRm/lIRcy/+ytunLDm+e8jOW7xfcSayxDmzpAAAAABUpTWpkpIQZNJOhxYNo4fHw1td28kruB5B+oQEEFRI0G3fbh12Whk9nL4UbO63msHLSF7V9bN5E6jPWFfv8AqTtELLORIVfxOpM9ATQoLQMrX/7NAaLb8bd5BgjfAC6nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEEBAAFAiBOAAAEAAkDAQAAAAAAAAAGBAMHAgEKDOgDAAAAAAAABgUAIDAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmAA==";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_input_is_refused_without_panicking() {
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![1],
            vec![0xff; 10],
            vec![1; 64],
            vec![0x80; 200],
            vec![0; MAX_TRANSACTION_BYTES + 1],
            // one signature, then a v0 prefix and a truncated header
            [&[1u8][..], &[0; 64], &[0x80, 1]].concat(),
            // a short-vec length that claims 0x3fff entries
            vec![0xff, 0x7f, 0, 0],
        ];
        for bytes in cases {
            let r = decode_bytes(&bytes).expect_err("refused");
            assert_eq!(
                r.reason,
                crate::reason::INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_COULD_NOT_BE_DECODED,
                "{bytes:?}"
            );
        }
        for text in ["", "not base64!", "AAAA AAAA", "-_-_", "AA=A"] {
            assert!(decode_transaction(text).is_err(), "{text:?}");
        }
        let long = "A".repeat(MAX_TRANSACTION_BASE64 + 4);
        assert!(decode_transaction(&long).is_err());
    }

    #[test]
    fn every_truncation_and_byte_flip_of_a_real_transaction_is_handled() {
        let bytes = x402_core::header::decode_base64(super::VECTOR_TRANSACTION, 4096)
            .expect("vector base64");
        assert!(decode_bytes(&bytes).is_ok());
        for len in 0..bytes.len() {
            assert!(decode_bytes(&bytes[..len]).is_err(), "truncated to {len}");
        }
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                // Either refused or decoded; never a panic.
                let _ = decode_bytes(&b);
            }
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode_bytes(&trailing).is_err());
    }
}

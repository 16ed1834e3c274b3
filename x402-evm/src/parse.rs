//! Strict parsing of the EVM fields of a payload: addresses, 32-byte nonces, signatures and
//! decimal uint256 values. Lenient spellings are refused (threat-model S4, S5, S7).

use alloy::primitives::{Address, B256, Bytes, U256};

/// The largest signature accepted (an ERC-6492 wrapper included), in bytes.
pub const MAX_SIGNATURE_BYTES: usize = 4096;

/// Why a field was refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    /// The field.
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
}

fn err(field: &'static str, problem: impl Into<String>) -> FieldError {
    FieldError {
        field,
        problem: problem.into(),
    }
}

fn hex_body<'a>(field: &'static str, s: &'a str) -> Result<&'a str, FieldError> {
    let body = s
        .strip_prefix("0x")
        .ok_or_else(|| err(field, format!("{s:?} lacks the 0x prefix")))?;
    if !body.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err(field, "contains a non-hex character"));
    }
    Ok(body)
}

/// An address: `0x` + 40 hex digits; mixed case must be a valid EIP-55 checksum.
pub fn address(field: &'static str, s: &str) -> Result<Address, FieldError> {
    let body = hex_body(field, s)?;
    if body.len() != 40 {
        return Err(err(
            field,
            format!("address has {} hex digits, not 40", body.len()),
        ));
    }
    let parsed: Address = s.parse().map_err(|e| err(field, format!("{e}")))?;
    let mixed = body.bytes().any(|b| b.is_ascii_lowercase())
        && body.bytes().any(|b| b.is_ascii_uppercase());
    if mixed && parsed.to_checksum(None) != s {
        return Err(err(
            field,
            "mixed-case address with a wrong EIP-55 checksum",
        ));
    }
    Ok(parsed)
}

/// A bytes32 value: `0x` + exactly 64 hex digits.
pub fn bytes32(field: &'static str, s: &str) -> Result<B256, FieldError> {
    let body = hex_body(field, s)?;
    if body.len() != 64 {
        return Err(err(field, format!("has {} hex digits, not 64", body.len())));
    }
    s.parse().map_err(|e| err(field, format!("{e}")))
}

/// A signature: `0x` + an even number of hex digits, at most [`MAX_SIGNATURE_BYTES`] bytes.
pub fn signature(field: &'static str, s: &str) -> Result<Bytes, FieldError> {
    let body = hex_body(field, s)?;
    if body.len() % 2 != 0 {
        return Err(err(field, "odd number of hex digits"));
    }
    if body.len() / 2 > MAX_SIGNATURE_BYTES {
        return Err(err(
            field,
            format!("longer than {MAX_SIGNATURE_BYTES} bytes"),
        ));
    }
    if body.is_empty() {
        return Err(err(field, "empty"));
    }
    s.parse().map_err(|e| err(field, format!("{e}")))
}

/// A uint256 as a canonical decimal string.
pub fn uint(field: &'static str, s: &str) -> Result<U256, FieldError> {
    x402_core::amount::parse_u256(s).map_err(|e| err(field, format!("{s:?}: {e}")))
}

/// The chain id of an `eip155` network.
pub fn chain_id(network: &x402_core::Network) -> Result<u64, FieldError> {
    network
        .eip155_chain_id()
        .ok_or_else(|| err("network", format!("{network} is not an eip155 chain")))
}

/// The requirements' asset and recipient: parsed (`invalid_payment_requirements` when malformed)
/// and the asset checked against the operator's allow-list (`unsupported_asset`).
pub fn requirement_addresses(
    req: &x402_core::RequirementsView<'_>,
    allowed_assets: Option<&[Address]>,
) -> Result<(Address, Address), x402_core::Rejection> {
    use x402_core::{Reason, Rejection};
    let invalid = |e: FieldError| {
        Rejection::with_message(Reason::INVALID_PAYMENT_REQUIREMENTS, e.to_string())
    };
    let asset = address("asset", req.asset).map_err(invalid)?;
    let pay_to = address("payTo", req.pay_to).map_err(invalid)?;
    if let Some(list) = allowed_assets
        && !list.contains(&asset)
    {
        return Err(Rejection::with_message(
            Reason::UNSUPPORTED_ASSET,
            format!("asset {asset} is not accepted on {}", req.network),
        ));
    }
    Ok((asset, pay_to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let good = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
        assert!(address("from", good).is_ok());
        assert!(address("from", &good.to_lowercase().replace("0X", "0x")).is_ok());
        assert!(address("from", &format!("0x{}", good[2..].to_uppercase())).is_ok());
        let bad_checksum = "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
        assert!(
            address("from", bad_checksum)
                .unwrap_err()
                .problem
                .contains("checksum")
        );
        for bad in [
            "f39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb922",
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb9226600",
            "0Xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
            "0xg39fd6e51aad88f6f4ce6ab8827279cfffb92266",
            "",
        ] {
            assert!(address("payTo", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nonces_signatures_uints() {
        let n = format!("0x{}", "ab".repeat(32));
        assert!(bytes32("nonce", &n).is_ok());
        assert!(bytes32("nonce", &format!("0x{}", "ab".repeat(31))).is_err());
        assert!(bytes32("nonce", &format!("0X{}", "ab".repeat(32))).is_err());
        assert!(bytes32("nonce", &format!("0x{}a", "ab".repeat(31))).is_err());
        assert!(signature("signature", "0x").is_err());
        assert!(signature("signature", "0xabc").is_err());
        assert!(signature("signature", &format!("0x{}", "00".repeat(65))).is_ok());
        assert!(
            signature(
                "signature",
                &format!("0x{}", "00".repeat(MAX_SIGNATURE_BYTES + 1))
            )
            .is_err()
        );
        assert!(uint("value", "+1").is_err());
        assert_eq!(uint("value", "10000").unwrap(), U256::from(10_000));
    }
}

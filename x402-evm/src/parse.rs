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
    if mixed && with_checksum(&parsed, |checksummed| checksummed != s) {
        return Err(err(
            field,
            "mixed-case address with a wrong EIP-55 checksum",
        ));
    }
    Ok(parsed)
}

/// The EIP-55 spelling of `address`: what `address.to_checksum(None)` returns.
pub fn checksummed(address: &Address) -> String {
    with_checksum(address, str::to_owned)
}

/// How many EIP-55 spellings each thread remembers (direct-mapped by the address's last byte).
const CHECKSUM_SLOTS: usize = 64;

/// A remembered EIP-55 spelling: the address and its 42 characters.
type Spelling = Option<(Address, [u8; 42])>;

thread_local! {
    static SPELLINGS: std::cell::RefCell<[Spelling; CHECKSUM_SLOTS]> =
        const { std::cell::RefCell::new([None; CHECKSUM_SLOTS]) };
}

/// Runs `f` on the EIP-55 spelling of `address`. The spelling is a pure function of the address
/// (one Keccak-256 of its hex), remembered for the last addresses seen on this thread: one
/// payment names its token, recipient and payer in several fields, which a verify reads more
/// than once and answers with the payer's spelling. A made-up address only takes a slot; the
/// answer is always the computed one.
fn with_checksum<R>(address: &Address, f: impl FnOnce(&str) -> R) -> R {
    let slot = usize::from(address[19]) % CHECKSUM_SLOTS;
    let known = SPELLINGS.with(|spellings| match spellings.borrow()[slot] {
        Some((seen, text)) if seen == *address => Some(text),
        _ => None,
    });
    let text = known.unwrap_or_else(|| {
        let mut text = [0u8; 42];
        let _ = address.to_checksum_raw(&mut text, None);
        SPELLINGS.with(|spellings| spellings.borrow_mut()[slot] = Some((*address, text)));
        text
    });
    match std::str::from_utf8(&text) {
        Ok(spelling) => f(spelling),
        // `to_checksum_raw` writes ASCII; never taken.
        Err(_) => f(&address.to_checksum(None)),
    }
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
    fn remembered_spellings_are_the_computed_ones() {
        // Addresses sharing slots (same last byte), repeated, interleaved: each answer is
        // `to_checksum`'s, and a wrong-case spelling is refused whether remembered or not.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut addresses: Vec<Address> = Vec::new();
        for i in 0..300u64 {
            let mut bytes = [0u8; 20];
            for chunk in bytes.chunks_mut(8) {
                let word = next().to_le_bytes();
                chunk.copy_from_slice(&word[..chunk.len()]);
            }
            if i % 3 == 0 {
                bytes[19] = 7;
            }
            addresses.push(Address::from(bytes));
        }
        for round in 0..3 {
            for (i, a) in addresses.iter().enumerate() {
                let a = if round == 1 {
                    &addresses[(i * 7) % 300]
                } else {
                    a
                };
                let want = a.to_checksum(None);
                assert_eq!(checksummed(a), want);
                assert_eq!(address("from", &want), Ok(*a));
                // Flip the case of the first letter: a wrong checksum when letters are mixed.
                if let Some(pos) = want[2..].find(|c: char| c.is_ascii_alphabetic()) {
                    let mut flipped: Vec<u8> = want.clone().into_bytes();
                    flipped[pos + 2] ^= 0x20;
                    let flipped = String::from_utf8(flipped).unwrap();
                    let body = &flipped[2..];
                    let mixed = body.bytes().any(|b| b.is_ascii_lowercase())
                        && body.bytes().any(|b| b.is_ascii_uppercase());
                    assert_eq!(address("from", &flipped).is_err(), mixed, "{flipped}");
                }
            }
        }
    }

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

//! Signature routing for EIP-3009 payments: by the payer's code, never ECDSA-first.
//!
//! * No code at the payer and a plain 65-byte signature: ECDSA recovery must give the payer.
//! * Code at the payer (a deployed smart wallet, or an EIP-7702 delegated account): EIP-1271
//!   `isValidSignature` on the payer decides.
//! * An ERC-6492 wrapper (`abi.encode(factory, calldata, innerSignature) ‖ magic`) for a payer
//!   without code: only an allow-listed factory may be called, and only in a simulation or in
//!   the settlement batch itself.

use alloy::primitives::{Address, B256, Bytes, Signature};
use alloy::sol_types::SolValue;

use crate::addresses::ERC6492_MAGIC;

/// An ERC-6492 counterfactual signature, unwrapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erc6492 {
    /// The factory that deploys the wallet.
    pub factory: Address,
    /// The call that deploys it.
    pub factory_calldata: Bytes,
    /// The wallet's own signature.
    pub inner: Bytes,
}

/// Splits an ERC-6492 wrapper; `None` when the signature has no magic suffix.
/// `Some(Err(()))` when it has the suffix but the body does not decode.
pub fn unwrap_erc6492(signature: &[u8]) -> Option<Result<Erc6492, ()>> {
    let body = signature.strip_suffix(ERC6492_MAGIC.as_slice())?;
    Some(
        <(Address, Bytes, Bytes)>::abi_decode_params(body)
            .map(|(factory, factory_calldata, inner)| Erc6492 {
                factory,
                factory_calldata,
                inner,
            })
            .map_err(|_| ()),
    )
}

/// Recovers the signer of a 65-byte ECDSA signature over `digest` (v = 27/28 or 0/1).
///
/// Any other `v` is refused, EIP-155 style values (35 and up) included: the parser would read a
/// parity from them, but the contracts that check these signatures (`ecrecover` in FiatToken and
/// Permit2) do not, so accepting one here would pass a signature the chain rejects.
pub fn recover(digest: &B256, signature: &[u8]) -> Option<Address> {
    if signature.len() != 65 || !matches!(signature[64], 0 | 1 | 27 | 28) {
        return None;
    }
    let sig = Signature::try_from(signature).ok()?;
    sig.recover_address_from_prehash(digest).ok()
}

/// An ECDSA signature in the one form every `ecrecover` caller accepts: 65 bytes, `v` 27 or 28.
/// Also reads `v` 0/1 and the 64-byte compact form of EIP-2098 (`r ‖ yParity·2²⁵⁵ + s`); `None`
/// for anything else, which is then no ECDSA signature of an account without code.
pub fn normalize_ecdsa(signature: &[u8]) -> Option<Bytes> {
    let mut out = [0u8; 65];
    match signature {
        [rs @ .., v @ (0 | 1 | 27 | 28)] if rs.len() == 64 => {
            out[..64].copy_from_slice(rs);
            out[64] = if *v < 27 { v + 27 } else { *v };
        }
        compact if compact.len() == 64 => {
            out[..64].copy_from_slice(compact);
            let parity = out[32] >> 7;
            out[32] &= 0x7f;
            out[64] = 27 + parity;
        }
        _ => return None,
    }
    Some(Bytes::copy_from_slice(&out))
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{address, b256};
    use alloy::signers::SignerSync;
    use alloy::signers::local::PrivateKeySigner;

    use super::*;

    #[test]
    fn ecdsa_forms_normalize_to_v_27_or_28() {
        let key = PrivateKeySigner::random();
        let digest = b256!("0x1111111111111111111111111111111111111111111111111111111111111111");
        let sig = key.sign_hash_sync(&digest).unwrap();
        let canonical = sig.as_bytes();
        assert!(matches!(canonical[64], 27 | 28));
        let mut v01 = canonical;
        v01[64] -= 27;
        let compact = sig.as_erc2098();
        for (what, form) in [
            ("v 27/28", &canonical[..]),
            ("v 0/1", &v01[..]),
            ("EIP-2098", &compact[..]),
        ] {
            let n = normalize_ecdsa(form).unwrap();
            assert_eq!(&n[..], &canonical[..], "{what}");
            assert_eq!(recover(&digest, &n), Some(key.address()), "{what}");
        }
        let mut v35 = canonical;
        v35[64] = 35;
        for bad in [&v35[..], &canonical[..63], &[0u8; 66][..], &[][..]] {
            assert_eq!(normalize_ecdsa(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn erc6492_round_trip_and_garbage() {
        let wrapped = Erc6492 {
            factory: address!("0x1111111111111111111111111111111111111111"),
            factory_calldata: Bytes::from(vec![1, 2, 3]),
            inner: Bytes::from(vec![9; 65]),
        };
        let mut bytes = (
            wrapped.factory,
            wrapped.factory_calldata.clone(),
            wrapped.inner.clone(),
        )
            .abi_encode_params();
        bytes.extend_from_slice(ERC6492_MAGIC.as_slice());
        assert_eq!(unwrap_erc6492(&bytes), Some(Ok(wrapped)));
        assert_eq!(unwrap_erc6492(&[0u8; 65]), None);
        let mut junk = vec![7u8; 10];
        junk.extend_from_slice(ERC6492_MAGIC.as_slice());
        assert_eq!(unwrap_erc6492(&junk), Some(Err(())));
    }

    #[test]
    fn ecdsa_recovery() {
        let key = PrivateKeySigner::random();
        let digest = b256!("0x50708d3bf7216e1aeabe7bf22081b9f36c7c287530f92510318f13a03d89dc86");
        let sig = key.sign_hash_sync(&digest).unwrap().as_bytes();
        assert_eq!(recover(&digest, &sig), Some(key.address()));
        assert_eq!(recover(&digest, &sig[..64]), None);
        let mut other = sig;
        other[10] ^= 1;
        assert_ne!(recover(&digest, &other), Some(key.address()));
        // The same parity written as 0/1 recovers too; EIP-155 and out-of-range v do not.
        let parity = sig[64] - 27;
        for (v, recovers) in [
            (parity, true),
            (parity + 27, true),
            (parity + 35, false),
            (parity + 37, false),
            (parity + 29, false),
            (parity + 2, false),
        ] {
            let mut s = sig;
            s[64] = v;
            assert_eq!(
                recover(&digest, &s) == Some(key.address()),
                recovers,
                "v = {v}"
            );
        }
    }
}

//! Signature routing for EIP-3009 payments: by the payer's code, never ECDSA-first.
//!
//! * No code at the payer and a plain 65-byte signature: ECDSA recovery must give the payer.
//! * Code at the payer (a deployed smart wallet, or an EIP-7702 delegated account): EIP-1271
//!   `isValidSignature` on the payer decides.
//! * An ERC-6492 wrapper (`abi.encode(factory, calldata, innerSignature) ‖ magic`) for a payer
//!   without code: only an allow-listed factory may be called, and only in a simulation or in
//!   the settlement batch itself.

use alloy::primitives::{Address, B256, Bytes, U256, hex};
use alloy::sol_types::SolValue;
use secp256k1::Message;
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};

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

/// The order `n` of secp256k1's group.
const SECP256K1_N: U256 = U256::from_be_bytes(hex!(
    "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
));
/// `n / 2` (rounded down): the largest low `s`.
const SECP256K1_HALF_N: U256 = U256::from_be_bytes(hex!(
    "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0"
));

/// Recovers the signer of a 65-byte ECDSA signature over `digest` (v = 27/28 or 0/1).
///
/// Any other `v` is refused, EIP-155 style values (35 and up) included: the parser would read a
/// parity from them, but the contracts that check these signatures (`ecrecover` in FiatToken and
/// Permit2) do not, so accepting one here would pass a signature the chain rejects.
///
/// Recovery runs on libsecp256k1 and answers exactly as alloy's `Signature::try_from` and
/// `recover_address_from_prehash` (k256) did before (the tests compare both): a high `s` is
/// read as its low twin `n − s` with the parity flipped (so both twins recover the same
/// address; a contract that insists on low `s` refuses the high one itself), and `r` or `s`
/// zero or ≥ `n`, an `r` that is no point's x, or a recovered point at infinity give `None`.
/// Nothing is allocated.
pub fn recover(digest: &B256, signature: &[u8]) -> Option<Address> {
    let signature: &[u8; 65] = signature.try_into().ok()?;
    let mut parity = match signature[64] {
        0 | 27 => false,
        1 | 28 => true,
        _ => return None,
    };
    let mut compact = [0u8; 64];
    compact.copy_from_slice(&signature[..64]);
    let s = U256::from_be_slice(&compact[32..]);
    if s >= SECP256K1_N {
        return None;
    }
    if s > SECP256K1_HALF_N {
        compact[32..].copy_from_slice(&(SECP256K1_N - s).to_be_bytes::<32>());
        parity = !parity;
    }
    let recid = if parity {
        RecoveryId::One
    } else {
        RecoveryId::Zero
    };
    // Refuses r ≥ n (and s ≥ n); recovery refuses r = 0, s = 0 and the point at infinity.
    let sig = RecoverableSignature::from_compact(&compact, recid).ok()?;
    let key = secp256k1::SECP256K1
        .recover_ecdsa(Message::from_digest(digest.0), &sig)
        .ok()?;
    Some(Address::from_raw_public_key(
        &key.serialize_uncompressed()[1..],
    ))
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
    use alloy::primitives::{Signature, address, b256, keccak256};
    use alloy::signers::SignerSync;
    use alloy::signers::k256;
    use alloy::signers::local::PrivateKeySigner;

    use super::*;

    /// The recovery this module used before libsecp256k1: alloy's parser and its k256 backend.
    fn alloy_recover(digest: &B256, signature: &[u8]) -> Option<Address> {
        if signature.len() != 65 || !matches!(signature[64], 0 | 1 | 27 | 28) {
            return None;
        }
        let sig = Signature::try_from(signature).ok()?;
        let key = sig.recover_from_prehash(digest).ok()?;
        Some(Address::from_public_key(&key))
    }

    /// A deterministic stream of pseudo-random words (keccak of a counter), so a failure names
    /// the case that failed.
    fn word(seed: u64) -> B256 {
        keccak256(seed.to_be_bytes())
    }

    fn same(digest: &B256, sig: &[u8], what: &str) -> Option<Address> {
        let ours = recover(digest, sig);
        assert_eq!(
            ours,
            alloy_recover(digest, sig),
            "{what}: digest {digest}, signature 0x{}",
            hex::encode(sig)
        );
        ours
    }

    fn with(sig: &[u8; 65], r: Option<U256>, s: Option<U256>, v: Option<u8>) -> [u8; 65] {
        let mut out = *sig;
        if let Some(r) = r {
            out[..32].copy_from_slice(&r.to_be_bytes::<32>());
        }
        if let Some(s) = s {
            out[32..64].copy_from_slice(&s.to_be_bytes::<32>());
        }
        if let Some(v) = v {
            out[64] = v;
        }
        out
    }

    #[test]
    fn libsecp256k1_recovers_as_alloy_for_random_keys_and_digests() {
        for i in 0..300u64 {
            let key = PrivateKeySigner::from_bytes(&word(i)).unwrap();
            let digest = word(1_000_000 + i);
            let sig = key.sign_hash_sync(&digest).unwrap().as_bytes();
            assert_eq!(same(&digest, &sig, "signed"), Some(key.address()), "{i}");
            // v 0/1, the high-s twin (parity flipped), the twin with the parity left as it was.
            let parity = sig[64] - 27;
            let s = U256::from_be_slice(&sig[32..64]);
            let high = SECP256K1_N - s;
            let cases = [
                ("v 0/1", with(&sig, None, None, Some(parity))),
                ("high s", with(&sig, None, Some(high), Some(55 - sig[64]))),
                (
                    "high s, v 0/1",
                    with(&sig, None, Some(high), Some(1 - parity)),
                ),
                ("high s, same parity", with(&sig, None, Some(high), None)),
                ("other parity", with(&sig, None, None, Some(55 - sig[64]))),
            ];
            for (what, case) in cases {
                let got = same(&digest, &case, what);
                let twin = matches!(what, "v 0/1" | "high s" | "high s, v 0/1");
                assert_eq!(got == Some(key.address()), twin, "{i} {what}");
            }
            // Another digest recovers someone else (or nobody).
            assert_ne!(
                same(&word(2_000_000 + i), &sig, "other digest"),
                Some(key.address())
            );
        }
    }

    #[test]
    fn libsecp256k1_recovers_as_alloy_for_random_bytes() {
        // Random r and s: about half the r values are no point's x; s is mostly high.
        let mut recovered = 0;
        for i in 0..400u64 {
            let mut sig = [0u8; 65];
            sig[..32].copy_from_slice(word(3_000_000 + i).as_slice());
            sig[32..64].copy_from_slice(word(4_000_000 + i).as_slice());
            for v in [0, 1, 27, 28] {
                sig[64] = v;
                recovered += usize::from(same(&word(5_000_000 + i), &sig, "random").is_some());
            }
        }
        // Both outcomes were exercised.
        assert!(
            recovered > 200 && recovered < 1_400,
            "{recovered} of 1,600 recovered"
        );
    }

    #[test]
    fn libsecp256k1_refuses_as_alloy_at_the_edges() {
        let key = PrivateKeySigner::from_bytes(&word(7)).unwrap();
        let digest = word(8);
        let sig = key.sign_hash_sync(&digest).unwrap().as_bytes();
        let n = SECP256K1_N;
        let half = SECP256K1_HALF_N;
        let edge = [
            U256::ZERO,
            U256::from(1),
            half,
            half + U256::from(1),
            n - U256::from(1),
            n,
            n + U256::from(1),
            U256::MAX,
        ];
        for value in edge {
            for v in [0, 1, 27, 28] {
                same(&digest, &with(&sig, Some(value), None, Some(v)), "edge r");
                same(&digest, &with(&sig, None, Some(value), Some(v)), "edge s");
                same(
                    &digest,
                    &with(&sig, Some(value), Some(value), Some(v)),
                    "edge r, s",
                );
            }
        }
        for value in [U256::ZERO, n, n + U256::from(1), U256::MAX] {
            for which in ["r", "s"] {
                let (r, s) = if which == "r" {
                    (Some(value), None)
                } else {
                    (None, Some(value))
                };
                assert_eq!(
                    recover(&digest, &with(&sig, r, s, None)),
                    None,
                    "{which} = {value}"
                );
            }
        }
        // s = n/2 is low and s = n/2 + 1 high: both recover (someone).
        for s in [half, half + U256::from(1)] {
            assert!(
                recover(&digest, &with(&sig, None, Some(s), None)).is_some(),
                "s = {s}"
            );
        }
        // Every v but 0, 1, 27 and 28, and every other length, is refused.
        for v in 0..=255u8 {
            let got = same(&digest, &with(&sig, None, None, Some(v)), "v");
            assert_eq!(got.is_some(), matches!(v, 0 | 1 | 27 | 28), "v = {v}");
        }
        for len in [0, 1, 64, 66, 130] {
            let mut long = sig.to_vec();
            long.resize(len, 0);
            assert_eq!(same(&digest, &long, "length"), None, "length {len}");
        }
        // A zero digest is a digest like any other.
        let zero = B256::ZERO;
        let signed = key.sign_hash_sync(&zero).unwrap().as_bytes();
        assert_eq!(same(&zero, &signed, "zero digest"), Some(key.address()));
    }

    #[test]
    fn libsecp256k1_refuses_as_alloy_a_key_at_infinity() {
        // r = x(R) for R = k·G and a digest z = s·k: the recovered key r⁻¹(s·R − z·G) is the
        // point at infinity, which neither backend returns as a key.
        use k256::elliptic_curve::PrimeField;
        use k256::elliptic_curve::sec1::ToEncodedPoint;
        use k256::{ProjectivePoint, Scalar};
        for i in 0..8u64 {
            let k = Scalar::from_repr(word(9_000 + i).0.into()).unwrap();
            let point = (ProjectivePoint::GENERATOR * k).to_affine();
            let encoded = point.to_encoded_point(false);
            let y_odd = encoded.y().unwrap()[31] & 1 == 1;
            let s = Scalar::from_repr(word(10_000 + i).0.into()).unwrap();
            let z = s * k;
            let digest = B256::from_slice(&z.to_repr());
            let mut sig = [0u8; 65];
            sig[..32].copy_from_slice(encoded.x().unwrap());
            sig[32..64].copy_from_slice(&s.to_repr());
            // The parity that names R reaches infinity (a high s flips both the parity and the
            // sign of s·R, which cancel).
            sig[64] = 27 + u8::from(y_odd);
            assert_eq!(same(&digest, &sig, "infinity"), None, "{i}");
            sig[64] = 55 - sig[64]; // the other R recovers a real key
            assert!(same(&digest, &sig, "not infinity").is_some(), "{i}");
        }
    }

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

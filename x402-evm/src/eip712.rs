//! EIP-712 domains. The chain id and verifying contract always come from the seller's
//! requirements and the facilitator's configuration — never from a payload.

use alloy::primitives::{Address, B256, b256, keccak256};
use alloy::sol_types::Eip712Domain;

use crate::addresses::PERMIT2;

/// `keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")`.
const EIP3009_DOMAIN_TYPE_HASH: B256 =
    b256!("0x8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f");

/// The domain of an EIP-3009 token: `{name, version, chainId, verifyingContract: token}`.
pub fn eip3009_domain(name: &str, version: &str, chain_id: u64, token: Address) -> Eip712Domain {
    Eip712Domain::new(
        Some(name.to_owned().into()),
        Some(version.to_owned().into()),
        Some(alloy::primitives::U256::from(chain_id)),
        Some(token),
        None,
    )
}

/// The separator of [`eip3009_domain`]`(name, version, chain_id, token)`: three Keccak-256
/// hashes (the type hash is a constant), computed without allocating. Per verify this replaces
/// building the domain (two owned strings) and alloy's `separator()` (the type string, its hash
/// and the encoded data, each allocated).
///
/// It is a pure function of its arguments, and a facilitator sees few tokens: each thread
/// remembers the last [`SEPARATORS`] (direct-mapped by the token's last byte), compared on every
/// argument, so a hit saves the three hashes and a miss only takes a slot.
pub fn eip3009_domain_separator(name: &str, version: &str, chain_id: u64, token: Address) -> B256 {
    SEPARATOR_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let slot = &mut cache[usize::from(token[19]) % SEPARATORS];
        if let Some(hit) = slot
            .as_ref()
            .filter(|k| k.chain_id == chain_id && k.token == token)
            .filter(|k| *k.name == *name && *k.version == *version)
        {
            return hit.separator;
        }
        let separator = compute_eip3009_domain_separator(name, version, chain_id, token);
        *slot = Some(Separator {
            name: name.into(),
            version: version.into(),
            chain_id,
            token,
            separator,
        });
        separator
    })
}

/// How many EIP-3009 domain separators each thread remembers.
pub const SEPARATORS: usize = 8;

struct Separator {
    name: Box<str>,
    version: Box<str>,
    chain_id: u64,
    token: Address,
    separator: B256,
}

thread_local! {
    static SEPARATOR_CACHE: std::cell::RefCell<[Option<Separator>; SEPARATORS]> =
        const { std::cell::RefCell::new([const { None }; SEPARATORS]) };
}

fn compute_eip3009_domain_separator(
    name: &str,
    version: &str,
    chain_id: u64,
    token: Address,
) -> B256 {
    let mut data = [0u8; 5 * 32];
    data[..32].copy_from_slice(EIP3009_DOMAIN_TYPE_HASH.as_slice());
    data[32..64].copy_from_slice(keccak256(name.as_bytes()).as_slice());
    data[64..96].copy_from_slice(keccak256(version.as_bytes()).as_slice());
    data[120..128].copy_from_slice(&chain_id.to_be_bytes());
    data[140..].copy_from_slice(token.as_slice());
    keccak256(data)
}

/// The EIP-712 signing hash `keccak256("\x19\x01" ‖ domainSeparator ‖ hashStruct(message))`, as
/// alloy's `eip712_signing_hash` computes it from a domain.
pub fn signing_hash(domain_separator: &B256, struct_hash: &B256) -> B256 {
    let mut data = [0u8; 2 + 32 + 32];
    data[0] = 0x19;
    data[1] = 0x01;
    data[2..34].copy_from_slice(domain_separator.as_slice());
    data[34..].copy_from_slice(struct_hash.as_slice());
    keccak256(data)
}

/// Permit2's domain: `{name: "Permit2", chainId, verifyingContract: Permit2}` — no version.
pub fn permit2_domain(chain_id: u64) -> Eip712Domain {
    Eip712Domain::new(
        Some("Permit2".into()),
        None,
        Some(alloy::primitives::U256::from(chain_id)),
        Some(PERMIT2),
        None,
    )
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{Address, B256, Signature, U256, address, b256, hex};
    use alloy::sol_types::SolStruct;

    use super::*;
    use crate::abi::{eip3009, permit2_exact, permit2_upto};
    use crate::addresses::{EXACT_PERMIT2_PROXY, UPTO_PERMIT2_PROXY};

    const SIGNER: Address = address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    const USDC_BASE_SEPOLIA: Address = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
    const PAY_TO: Address = address!("0x209693Bc6afc0C5328bA36FaF03C514EF312287C");

    fn recovers(digest: B256, sig: &str) -> Address {
        let bytes = hex::decode(sig).unwrap();
        Signature::try_from(bytes.as_slice())
            .unwrap()
            .recover_address_from_prehash(&digest)
            .unwrap()
    }

    #[test]
    fn remembered_separators_are_the_computed_ones_for_every_argument() {
        let tokens = [
            USDC_BASE_SEPOLIA,
            PAY_TO,
            SIGNER,
            Address::repeat_byte(0x42),
        ];
        // More keys than slots, several sharing a slot (same last byte), asked twice over.
        for _ in 0..2 {
            for (i, token) in tokens.iter().enumerate() {
                for name in ["USDC", "USD Coin", ""] {
                    for version in ["2", "1"] {
                        for chain_id in [84532, 8453, i as u64] {
                            assert_eq!(
                                eip3009_domain_separator(name, version, chain_id, *token),
                                eip3009_domain(name, version, chain_id, *token).separator(),
                                "{name} {version} {chain_id} {token}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn vector_a_eip3009() {
        let domain = eip3009_domain("USDC", "2", 84532, USDC_BASE_SEPOLIA);
        assert_eq!(
            domain.separator(),
            b256!("0x71f17a3b2ff373b803d70a5a07c046c1a2bc8e89c09ef722fcb047abe94c9818")
        );
        let msg = eip3009::TransferWithAuthorization {
            from: SIGNER,
            to: PAY_TO,
            value: U256::from(10_000),
            validAfter: U256::from(1_740_672_089u64),
            validBefore: U256::from(1_740_672_154u64),
            nonce: b256!("0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480"),
        };
        assert_eq!(
            msg.eip712_hash_struct(),
            b256!("0xb2438b1b8298f6129feb7c6a96cb5bee12d7e8ba27c7c27cde803071ebdc42e8")
        );
        let digest = msg.eip712_signing_hash(&domain);
        assert_eq!(
            digest,
            b256!("0x50708d3bf7216e1aeabe7bf22081b9f36c7c287530f92510318f13a03d89dc86")
        );
        assert_eq!(
            recovers(
                digest,
                "0xdc53a4a579de989368a0fae2ef2172ff2f474b4297013f865d171239f17ef4c3157b4b4030f1bebc53d55ace15c2377dff501a60e1e56c291f1000d6e78f082f1b"
            ),
            SIGNER
        );
        assert_eq!(
            alloy::primitives::keccak256(
                eip3009::TransferWithAuthorization::eip712_encode_type().as_bytes()
            ),
            b256!("0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267")
        );
    }

    #[test]
    fn eip3009_separator_and_signing_hash_match_alloy() {
        for (i, (name, version)) in [
            ("USDC", "2"),
            ("USD Coin", "2"),
            ("", ""),
            ("a name longer than one Keccak block, to cross the 136-byte rate: ………………………………………………………", "v1.0.0-ünïcode"),
        ]
        .into_iter()
        .enumerate()
        {
            for chain_id in [0, 1, 8453, 84532, u64::MAX] {
                let token = Address::from_word(alloy::primitives::keccak256([i as u8]));
                let domain = eip3009_domain(name, version, chain_id, token);
                let separator = eip3009_domain_separator(name, version, chain_id, token);
                assert_eq!(separator, domain.separator(), "{name:?} {version:?} {chain_id}");
                let msg = eip3009::TransferWithAuthorization {
                    from: SIGNER,
                    to: PAY_TO,
                    value: U256::from(chain_id),
                    validAfter: U256::ZERO,
                    validBefore: U256::MAX,
                    nonce: token.into_word(),
                };
                assert_eq!(
                    signing_hash(&separator, &msg.eip712_hash_struct()),
                    msg.eip712_signing_hash(&domain)
                );
            }
        }
        assert_eq!(
            EIP3009_DOMAIN_TYPE_HASH,
            eip3009_domain("n", "v", 1, Address::ZERO).type_hash()
        );
    }

    #[test]
    fn vector_b_permit2_exact() {
        let domain = permit2_domain(84532);
        assert_eq!(
            domain.separator(),
            b256!("0x010f27a92fb9a32622f44f001dc4d15706a85b33499cfc2ce9033113ab26592c")
        );
        let msg = permit2_exact::PermitWitnessTransferFrom {
            permitted: permit2_exact::TokenPermissions {
                token: USDC_BASE_SEPOLIA,
                amount: U256::from(10_000),
            },
            spender: EXACT_PERMIT2_PROXY,
            nonce: "33247007178036348590600198031289925668252061821958005840077069883511451257277"
                .parse()
                .unwrap(),
            deadline: U256::from(1_740_672_154u64),
            witness: permit2_exact::Witness {
                to: PAY_TO,
                validAfter: U256::from(1_740_672_089u64),
            },
        };
        assert_eq!(
            msg.eip712_type_hash(),
            b256!("0xebc156cd23678a74c94df13d772ef5478420637f0c94bd10d509e1dc98f521c7")
        );
        assert_eq!(
            msg.eip712_hash_struct(),
            b256!("0xf9efd2ab5ec37a11f062cfbde5dd2654b11aa7c03eedbac1f9bf0efd67b2d8b4")
        );
        let digest = msg.eip712_signing_hash(&domain);
        assert_eq!(
            digest,
            b256!("0x21528e1468aac114016416353e2309329f217dc180b21baa1d81cde941095685")
        );
        assert_eq!(
            recovers(
                digest,
                "0x3b029ad182a14cdb81c9eb44f935279e124e88afdc4043ed1183345aba6781b95cd297107e2808d8ea2722260e88856b5a13a6db23e38a30e2604dca9e1ce1da1b"
            ),
            SIGNER
        );
    }

    #[test]
    fn vector_c_permit2_upto() {
        let msg = permit2_upto::PermitWitnessTransferFrom {
            permitted: permit2_upto::TokenPermissions {
                token: USDC_BASE_SEPOLIA,
                amount: U256::from(5_000_000),
            },
            spender: UPTO_PERMIT2_PROXY,
            nonce: U256::from_be_bytes(
                b256!("0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480").0,
            ),
            deadline: U256::from(1_740_672_154u64),
            witness: permit2_upto::Witness {
                to: PAY_TO,
                facilitator: address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
                validAfter: U256::from(1_740_672_089u64),
            },
        };
        assert_eq!(
            msg.nonce.to_string(),
            "110117680976134290040645500446194905769275902069351365960831693135107775870080"
        );
        assert_eq!(
            msg.eip712_type_hash(),
            b256!("0x51dff6974ad4388c499e7fcfe838d2bd767162553a144098ce20ea661d70c2ee")
        );
        assert_eq!(
            msg.eip712_hash_struct(),
            b256!("0x1c0d8ef743beaec4d4f23b41537ddbd10564a2ef2b958a4d8ca06e6cd89ef3a0")
        );
        let digest = msg.eip712_signing_hash(&permit2_domain(84532));
        assert_eq!(
            digest,
            b256!("0xe44c6ecda145ae2488d7502b1fb059262755472e60a0cb060b82806662be52f2")
        );
        assert_eq!(
            recovers(
                digest,
                "0x3433d762a5ee8e40a33a489a4ad695af362e5054e1e0e7a8f6599c21d38e536c23f8ebc6800c001e0d9ca2b44850892d62e5e861c0799dabbb9a2f638692c45c1c"
            ),
            SIGNER
        );
    }
}

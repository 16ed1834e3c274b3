#![allow(clippy::unwrap_used)]

use super::*;

/// The fields of the official formatters' vectors (printed by `formatSIWEMessage` and
/// `formatSIWSMessage` of `@x402/extensions` 2.27 for these inputs).
fn full(chain: &str, kind: &str, address: &str) -> Proof {
    Proof {
        domain: "api.example.com:8443".into(),
        address: address.into(),
        statement: Some("Sign in to get your weather back".into()),
        uri: "https://api.example.com:8443/weather?x=1".into(),
        version: "1".into(),
        chain_id: chain.into(),
        kind: kind.into(),
        nonce: "a1b2c3d4e5f60718293a4b5c6d7e8f90".into(),
        issued_at: "2026-12-04T05:03:23.123Z".into(),
        expiration_time: Some("2026-12-04T05:08:23.123Z".into()),
        not_before: Some("2026-12-04T05:03:00.000Z".into()),
        request_id: Some("req-7".into()),
        resources: Some(vec![
            "https://api.example.com:8443/weather?x=1".into(),
            "ipfs://bafy".into(),
        ]),
        signature_scheme: None,
        signature: String::new(),
    }
}

fn minimal(chain: &str, kind: &str, address: &str) -> Proof {
    Proof {
        domain: "localhost:3000".into(),
        address: address.into(),
        statement: None,
        uri: "http://localhost:3000/a".into(),
        version: "1".into(),
        chain_id: chain.into(),
        kind: kind.into(),
        nonce: "00000000000000000000000000000000".into(),
        issued_at: "2026-01-01T00:00:00.000Z".into(),
        expiration_time: None,
        not_before: None,
        request_id: None,
        resources: None,
        signature_scheme: None,
        signature: String::new(),
    }
}

const EVM: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const SOL: &str = "CKPKJWNdJEqa81x7CkZ14BVPiY6y16Sxs7owznqtWYp5";

#[test]
fn siwe_text_is_the_official_formatters() {
    assert_eq!(
        full("eip155:84532", "eip191", EVM).message().unwrap(),
        "api.example.com:8443 wants you to sign in with your Ethereum account:\n0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\n\nSign in to get your weather back\n\nURI: https://api.example.com:8443/weather?x=1\nVersion: 1\nChain ID: 84532\nNonce: a1b2c3d4e5f60718293a4b5c6d7e8f90\nIssued At: 2026-12-04T05:03:23.123Z\nExpiration Time: 2026-12-04T05:08:23.123Z\nNot Before: 2026-12-04T05:03:00.000Z\nRequest ID: req-7\nResources:\n- https://api.example.com:8443/weather?x=1\n- ipfs://bafy"
    );
    assert_eq!(
        minimal("eip155:1", "eip191", EVM).message().unwrap(),
        "localhost:3000 wants you to sign in with your Ethereum account:\n0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\n\n\nURI: http://localhost:3000/a\nVersion: 1\nChain ID: 1\nNonce: 00000000000000000000000000000000\nIssued At: 2026-01-01T00:00:00.000Z"
    );
}

#[test]
fn siws_text_is_the_official_formatters() {
    assert_eq!(
        full("solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", "ed25519", SOL)
            .message()
            .unwrap(),
        "api.example.com:8443 wants you to sign in with your Solana account:\nCKPKJWNdJEqa81x7CkZ14BVPiY6y16Sxs7owznqtWYp5\n\nSign in to get your weather back\n\nURI: https://api.example.com:8443/weather?x=1\nVersion: 1\nChain ID: EtWTRABZaYq6iMfeYKouRu166VU2xqa1\nNonce: a1b2c3d4e5f60718293a4b5c6d7e8f90\nIssued At: 2026-12-04T05:03:23.123Z\nExpiration Time: 2026-12-04T05:08:23.123Z\nNot Before: 2026-12-04T05:03:00.000Z\nRequest ID: req-7\nResources:\n- https://api.example.com:8443/weather?x=1\n- ipfs://bafy"
    );
    assert_eq!(
        minimal("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "ed25519", SOL)
            .message()
            .unwrap(),
        "localhost:3000 wants you to sign in with your Solana account:\nCKPKJWNdJEqa81x7CkZ14BVPiY6y16Sxs7owznqtWYp5\n\nURI: http://localhost:3000/a\nVersion: 1\nChain ID: 5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp\nNonce: 00000000000000000000000000000000\nIssued At: 2026-01-01T00:00:00.000Z"
    );
}

#[test]
fn fields_breaking_eip_4361_are_refused_with_their_reason() {
    let base = || minimal("eip155:1", "eip191", EVM);
    let cases: Vec<(Proof, Reason)> = vec![
        (
            Proof {
                nonce: "short".into(),
                ..base()
            },
            reason::MALFORMED,
        ),
        (
            Proof {
                nonce: "abc-defgh".into(),
                ..base()
            },
            reason::MALFORMED,
        ),
        (
            Proof {
                statement: Some("a\nb".into()),
                ..base()
            },
            reason::MALFORMED,
        ),
        (
            Proof {
                issued_at: "yesterday".into(),
                ..base()
            },
            reason::ISSUED_AT,
        ),
        (
            Proof {
                expiration_time: Some("soon".into()),
                ..base()
            },
            reason::EXPIRATION_TIME,
        ),
        (
            Proof {
                not_before: Some("later".into()),
                ..base()
            },
            reason::NOT_BEFORE,
        ),
        (
            Proof {
                domain: "a b".into(),
                ..base()
            },
            reason::MALFORMED,
        ),
        (
            Proof {
                domain: "evil.example/\nURI: x".into(),
                ..base()
            },
            reason::MALFORMED,
        ),
        (
            Proof {
                uri: "not a uri".into(),
                ..base()
            },
            reason::URI_MISMATCH,
        ),
        (
            Proof {
                version: "2".into(),
                ..base()
            },
            reason::MALFORMED,
        ),
        (
            Proof {
                address: "0x1234".into(),
                ..base()
            },
            reason::MALFORMED,
        ),
        (
            Proof {
                request_id: Some("a\nb".into()),
                ..base()
            },
            reason::MALFORMED,
        ),
        (
            Proof {
                resources: Some(vec!["x y".into()]),
                ..base()
            },
            reason::MALFORMED,
        ),
        (
            Proof {
                chain_id: "eip155:0x1".into(),
                ..base()
            },
            reason::CHAIN_ID,
        ),
        (
            Proof {
                chain_id: "cosmos:hub".into(),
                ..base()
            },
            reason::UNSUPPORTED_CHAIN,
        ),
        (
            Proof {
                kind: "ed25519".into(),
                ..base()
            },
            reason::MALFORMED,
        ),
    ];
    for (proof, expected) in cases {
        let refusal = proof.message().unwrap_err();
        assert_eq!(refusal.reason, expected, "{proof:?}: {refusal}");
    }
}

#[test]
fn the_header_round_trips_and_garbage_is_refused() {
    let mut proof = full("eip155:84532", "eip191", EVM);
    proof.signature = "0xabcd".into();
    let header = proof.encode();
    assert_eq!(Proof::decode(&header).unwrap(), proof);
    // The official member order.
    let json =
        String::from_utf8(x402_core::header::decode_base64(&header, MAX_HEADER_LEN).unwrap())
            .unwrap();
    assert!(
        json.starts_with(r#"{"domain":"api.example.com:8443","address":"0xf39F"#),
        "{json}"
    );
    assert!(json.ends_with(r#""signature":"0xabcd"}"#), "{json}");
    for bad in ["", "not base64!", "e30=", "bnVsbA=="] {
        assert_eq!(
            Proof::decode(bad).unwrap_err().reason,
            reason::MALFORMED,
            "{bad:?}"
        );
    }
}

#[test]
fn origins_and_paths() {
    assert_eq!(
        origin_and_path("https://API.example.com:443/a/b?x=1"),
        Some(("https".into(), "api.example.com".into(), "/a/b".into()))
    );
    assert_eq!(
        origin_and_path("http://localhost:3000"),
        Some(("http".into(), "localhost:3000".into(), "/".into()))
    );
    assert_eq!(origin_and_path("ftp://x/y"), None);
    assert_eq!(origin_and_path("https://user@x/y"), None);
    assert_eq!(origin_and_path("/relative"), None);
}

use super::*;

/// Splits a token and decodes its header and claims.
fn decode(token: &str) -> (serde_json::Value, serde_json::Value, String, Vec<u8>) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let json = |p: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
    (
        json(parts[0]),
        json(parts[1]),
        format!("{}.{}", parts[0], parts[1]),
        URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
    )
}

fn url() -> Url {
    Url::parse(&format!("{CDP_FACILITATOR_URL}/settle")).unwrap()
}

fn check_claims(header: &serde_json::Value, claims: &serde_json::Value, alg: &str, name: &str) {
    assert_eq!(header["alg"], alg);
    assert_eq!(header["kid"], name);
    assert_eq!(header["typ"], "JWT");
    let nonce = header["nonce"].as_str().unwrap();
    assert!(
        nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_hexdigit()),
        "{nonce}"
    );
    assert_eq!(claims["sub"], name);
    assert_eq!(claims["iss"], "cdp");
    assert_eq!(claims["aud"], serde_json::json!(["cdp_service"]));
    assert_eq!(
        claims["uris"],
        serde_json::json!(["POST api.cdp.coinbase.com/platform/v2/x402/settle"])
    );
    assert_eq!(claims["iat"], 1_700_000_000);
    assert_eq!(claims["nbf"], 1_700_000_000);
    assert_eq!(claims["exp"], 1_700_000_120);
}

#[test]
fn an_es256_token_verifies_with_the_public_key() {
    use p256::ecdsa::signature::Verifier as _;
    use p256::pkcs8::EncodePrivateKey as _;
    let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
    let sec1 = secret.to_sec1_pem(Default::default()).unwrap();
    let pkcs8 = secret.to_pkcs8_pem(Default::default()).unwrap();
    let name = "organizations/org-1/apiKeys/key-1";
    let public = p256::ecdsa::VerifyingKey::from(&p256::ecdsa::SigningKey::from(&secret));
    for pem in [sec1.as_str(), pkcs8.as_str()] {
        let jwt = CdpJwt::new(name, pem).unwrap();
        let token = jwt.token(&Method::POST, &url(), 1_700_000_000).unwrap();
        let (header, claims, input, signature) = decode(&token);
        check_claims(&header, &claims, "ES256", name);
        let signature = p256::ecdsa::Signature::from_slice(&signature).unwrap();
        public.verify(input.as_bytes(), &signature).unwrap();
        // Another request gets another nonce.
        let again = decode(&jwt.token(&Method::POST, &url(), 1_700_000_000).unwrap()).0;
        assert_ne!(again["nonce"], header["nonce"]);
        assert!(!format!("{jwt:?}").contains("BEGIN"), "{jwt:?}");
    }
}

#[test]
fn an_eddsa_token_verifies_with_the_public_key() {
    let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let mut bytes = key.to_bytes().to_vec();
    bytes.extend_from_slice(key.verifying_key().as_bytes());
    let secret = STANDARD.encode(&bytes);
    let name = "5d8b3c4e-0000-4000-8000-000000000001";
    let jwt = CdpJwt::new(name, &secret).unwrap();
    let token = jwt.token(&Method::POST, &url(), 1_700_000_000).unwrap();
    let (header, claims, input, signature) = decode(&token);
    check_claims(&header, &claims, "EdDSA", name);
    let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
    key.verifying_key()
        .verify_strict(input.as_bytes(), &signature)
        .unwrap();
    let shown = format!("{jwt:?}");
    assert!(
        shown.contains(name) && !shown.contains(&secret[..20]),
        "{shown}"
    );

    // A mismatched public half, a short key and garbage are refused without echoing them.
    bytes[40] ^= 1;
    for bad in [
        STANDARD.encode(&bytes),
        STANDARD.encode([1u8; 32]),
        "-----BEGIN junk".into(),
    ] {
        let e = CdpJwt::new(name, &bad).unwrap_err().to_string();
        assert!(!e.contains(&bad), "{e}");
    }
}

#[tokio::test]
async fn the_header_is_a_fresh_bearer_token_per_request() {
    let key = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
    let mut bytes = key.to_bytes().to_vec();
    bytes.extend_from_slice(key.verifying_key().as_bytes());
    let jwt = CdpJwt::new("k", &STANDARD.encode(&bytes)).unwrap();
    let url = Url::parse("http://127.0.0.1:8402/supported").unwrap();
    let headers = jwt.headers(&Method::GET, &url).await.unwrap();
    let value = headers[AUTHORIZATION].to_str().unwrap();
    let (_, claims, _, _) = decode(value.strip_prefix("Bearer ").unwrap());
    assert_eq!(
        claims["uris"],
        serde_json::json!(["GET 127.0.0.1:8402/supported"])
    );
    let exp = claims["exp"].as_u64().unwrap();
    assert_eq!(exp - claims["nbf"].as_u64().unwrap(), 120);
    assert!(headers[AUTHORIZATION].is_sensitive());
}

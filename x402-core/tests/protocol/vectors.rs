//! Round trips of every JSON example of x402-spec §6.1 (and the §6.2 payload), byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use x402_core::header::{self, MAX_RESPONSE_HEADER_LEN};
use x402_core::json::JsonLimits;
use x402_core::wire::{
    PaymentPayload, PaymentRequired, PaymentRequirementsV2, SettleResponse, SupportedResponse,
    VerifyRequest,
};
use x402_core::{Amount, Network, PaymentContext, Reason, X402Version};

const V1_REQUIRED: &str = r#"{"x402Version":1,"error":"Payment required to access this resource","accepts":[{"scheme":"exact","network":"base-sepolia","maxAmountRequired":"10000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","resource":"https://api.example.com/premium-data","description":"Access to premium market data","mimeType":"application/json","outputSchema":null,"maxTimeoutSeconds":60,"extra":{"name":"USDC","version":"2"}}]}"#;
const V1_PAYMENT: &str = r#"{"x402Version":1,"scheme":"exact","network":"base-sepolia","payload":{"signature":"0x2d6a7588d6acca505cbf0d9a4a227e0c52c6c34008c8e8986a1283259764173608a2ce6496642e377d6da8dbbf5836e9bd15092f9ecab05ded3d6293af148b571c","authorization":{"from":"0x857b06519E91e3A54538791bDbb0E22373e36b66","to":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","value":"10000","validAfter":"1740672089","validBefore":"1740672154","nonce":"0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480"}}}"#;
const V2_REQUIRED: &str = r#"{"x402Version":2,"error":"PAYMENT-SIGNATURE header is required","resource":{"url":"https://api.example.com/premium-data","description":"Access to premium market data","mimeType":"application/json"},"accepts":[{"scheme":"exact","network":"eip155:84532","amount":"10000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","maxTimeoutSeconds":60,"extra":{"name":"USDC","version":"2"}}]}"#;
const V2_RESPONSE_HEADER: &str = "eyJzdWNjZXNzIjp0cnVlLCJ0cmFuc2FjdGlvbiI6IjB4MTIzNDU2Nzg5MGFiY2RlZjEyMzQ1Njc4OTBhYmNkZWYxMjM0NTY3ODkwYWJjZGVmMTIzNDU2Nzg5MGFiY2RlZiIsIm5ldHdvcmsiOiJlaXAxNTU6ODQ1MzIiLCJwYXllciI6IjB4ODU3YjA2NTE5RTkxZTNBNTQ1Mzg3OTFiRGJiMEUyMjM3M2UzNmI2NiJ9";
const V2_RESPONSE: &str = r#"{"success":true,"transaction":"0x1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef","network":"eip155:84532","payer":"0x857b06519E91e3A54538791bDbb0E22373e36b66"}"#;
const V2_FAILURE: &str = r#"{"success":false,"errorReason":"insufficient_funds","transaction":"","network":"eip155:84532","payer":"0x857b06519E91e3A54538791bDbb0E22373e36b66"}"#;
const V2_SUPPORTED: &str = r#"{"kinds":[{"x402Version":2,"scheme":"exact","network":"eip155:84532"},{"x402Version":2,"scheme":"exact","network":"eip155:8453"}],"extensions":[],"signers":{"eip155:*":["0x1234567890abcdef1234567890abcdef12345678"],"solana:*":["CKPKJWNdJEqa81x7CkZ14BVPiY6y16Sxs7owznqtWYp5"]}}"#;
const V2_SVM_REQUIREMENT: &str = r#"{"scheme":"exact","network":"solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp","amount":"1000","asset":"EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v","payTo":"2wKupLR9q6wXYppw8Gr2NvWxKBUqm4PPJKkQfoxHDBg4","maxTimeoutSeconds":60,"extra":{"feePayer":"EwWqGE4ZFKLofuestmU4LDdK7XM1N4ALgdZccwYugwGd","memo":"pi_3abc123def456"}}"#;
const UPTO_REQUIREMENT: &str = r#"{"scheme":"upto","network":"eip155:84532","amount":"5000000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","maxTimeoutSeconds":300,"extra":{"name":"USDC","version":"2","facilitatorAddress":"0xFacilitatorAddress1234567890123456789012"}}"#;
const UPTO_SETTLE: &str = r#"{"success":true,"transaction":"0x1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef","network":"eip155:84532","payer":"0x857b06519E91e3A54538791bDbb0E22373e36b66","amount":"2350000"}"#;
const UPTO_ZERO: &str = r#"{"success":true,"transaction":"","network":"eip155:84532","payer":"0x857b06519E91e3A54538791bDbb0E22373e36b66","amount":"0"}"#;
const V2_PAYLOAD_A: &str = r#"{"x402Version":2,"accepted":{"scheme":"exact","network":"eip155:84532","amount":"10000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","maxTimeoutSeconds":60,"extra":{"name":"USDC","version":"2"}},"payload":{"signature":"0xdc53a4a579de989368a0fae2ef2172ff2f474b4297013f865d171239f17ef4c3157b4b4030f1bebc53d55ace15c2377dff501a60e1e56c291f1000d6e78f082f1b","authorization":{"from":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","to":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","value":"10000","validAfter":"1740672089","validBefore":"1740672154","nonce":"0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480"}}}"#;

fn limits() -> JsonLimits {
    JsonLimits::DEFAULT
}

#[test]
fn v1_payment_required_round_trips() {
    let doc = PaymentRequired::from_json(V1_REQUIRED.as_bytes(), limits()).unwrap();
    let PaymentRequired::V1(v1) = &doc else {
        panic!("expected v1")
    };
    assert_eq!(v1.accepts[0].max_amount_required, Amount::from(10_000));
    // outputSchema is an explicit null and must stay one.
    assert_eq!(v1.accepts[0].output_schema.as_ref().unwrap().get(), "null");
    assert_eq!(serde_json::to_string(&doc).unwrap(), V1_REQUIRED);
}

#[test]
fn v1_payment_payload_round_trips_and_views() {
    let p = PaymentPayload::from_json(V1_PAYMENT.as_bytes(), limits()).unwrap();
    assert_eq!(p.version(), X402Version::V1);
    assert_eq!(serde_json::to_string(&p).unwrap(), V1_PAYMENT);
    let view = p.view();
    assert_eq!(view.scheme, "exact");
    assert_eq!(view.network().unwrap().as_str(), "eip155:84532");
    assert!(view.accepted.is_none());
    // Through the X-PAYMENT header and back.
    let encoded = header::encode(&p).unwrap();
    let bytes = header::decode_json(&encoded, header::MAX_REQUEST_HEADER_LEN).unwrap();
    assert_eq!(bytes, V1_PAYMENT.as_bytes());
}

#[test]
fn v2_payment_required_round_trips_through_header() {
    let doc = PaymentRequired::from_json(V2_REQUIRED.as_bytes(), limits()).unwrap();
    assert_eq!(serde_json::to_string(&doc).unwrap(), V2_REQUIRED);
    let encoded = header::encode(&doc).unwrap();
    let back = header::decode_json(&encoded, MAX_RESPONSE_HEADER_LEN).unwrap();
    assert_eq!(back, V2_REQUIRED.as_bytes());
}

#[test]
fn v2_payment_response_header_vector() {
    let decoded: SettleResponse =
        header::decode(V2_RESPONSE_HEADER, MAX_RESPONSE_HEADER_LEN).unwrap();
    assert!(decoded.success);
    assert_eq!(serde_json::to_string(&decoded).unwrap(), V2_RESPONSE);
    // Our encoder produces the specification's exact header value.
    assert_eq!(header::encode(&decoded).unwrap(), V2_RESPONSE_HEADER);
    let failure: SettleResponse = serde_json::from_str(V2_FAILURE).unwrap();
    assert_eq!(failure.error_reason, Some(Reason::INSUFFICIENT_FUNDS));
    assert_eq!(serde_json::to_string(&failure).unwrap(), V2_FAILURE);
}

#[test]
fn supported_and_requirements_vectors_round_trip() {
    let s: SupportedResponse = serde_json::from_str(V2_SUPPORTED).unwrap();
    assert_eq!(s.kinds.len(), 2);
    assert_eq!(serde_json::to_string(&s).unwrap(), V2_SUPPORTED);
    for r in [V2_SVM_REQUIREMENT, UPTO_REQUIREMENT] {
        let parsed: PaymentRequirementsV2 = serde_json::from_str(r).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), r);
    }
    for r in [UPTO_SETTLE, UPTO_ZERO] {
        let parsed: SettleResponse = serde_json::from_str(r).unwrap();
        assert!(parsed.amount.is_some());
        assert_eq!(serde_json::to_string(&parsed).unwrap(), r);
    }
    // v1 /supported had only kinds.
    let v1: SupportedResponse =
        serde_json::from_str(r#"{"kinds":[{"x402Version":1,"scheme":"exact","network":"base"}]}"#)
            .unwrap();
    assert!(v1.extensions.is_empty() && v1.signers.is_empty());
}

#[test]
fn v2_payload_vector_a_round_trips_and_views() {
    let p = PaymentPayload::from_json(V2_PAYLOAD_A.as_bytes(), limits()).unwrap();
    assert_eq!(serde_json::to_string(&p).unwrap(), V2_PAYLOAD_A);
    let v = p.view();
    assert_eq!(v.version, X402Version::V2);
    assert_eq!(v.network(), Some(Network::eip155(84532)));
    assert_eq!(v.accepted.unwrap().amount, Amount::from(10_000));
}

#[test]
fn verify_request_views_v1_and_v2_alike() {
    let v1_req = format!(
        r#"{{"x402Version":1,"paymentPayload":{V1_PAYMENT},"paymentRequirements":{}}}"#,
        &V1_REQUIRED[V1_REQUIRED.find("[{").unwrap() + 1..V1_REQUIRED.len() - 2]
    );
    let v2_req = format!(
        r#"{{"x402Version":2,"paymentPayload":{V2_PAYLOAD_A},"paymentRequirements":{}}}"#,
        &V2_REQUIRED[V2_REQUIRED.find("[{").unwrap() + 1..V2_REQUIRED.len() - 2]
    );
    let mut views = Vec::new();
    for body in [&v1_req, &v2_req] {
        let req = VerifyRequest::from_json(body.as_bytes(), limits()).unwrap();
        // Round trip of the whole request.
        assert_eq!(&serde_json::to_string(&req).unwrap(), body);
        let ctx = PaymentContext::of(&req).unwrap();
        assert!(ctx.scheme_matches() && ctx.network_matches());
        let r = &ctx.requirements;
        views.push((
            r.scheme.to_owned(),
            r.network.clone(),
            r.amount,
            r.asset.to_owned(),
            r.pay_to.to_owned(),
            r.max_timeout_seconds,
            r.extra.map(|e| e.get().to_owned()),
        ));
    }
    // Same economics, one view, whatever the version.
    assert_eq!(views[0], views[1]);
}

#[test]
fn extensions_and_extra_are_preserved_exactly() {
    // Unusual spacing, key order, big numbers and nested nulls inside free-form members survive.
    let doc = r#"{"x402Version":2,"resource":{"url":"https://x"},"accepted":{"scheme":"exact","network":"eip155:1","amount":"1","asset":"a","payTo":"b","maxTimeoutSeconds":5,"extra":{"z":1,"a":[1.50,null,123456789012345678901234567890]}},"payload":{"b":2,"a":1},"extensions":{"bazaar":{"info":{"x":1.0e2},"schema":{}}}}"#;
    let p = PaymentPayload::from_json(doc.as_bytes(), limits()).unwrap();
    assert_eq!(serde_json::to_string(&p).unwrap(), doc);
}

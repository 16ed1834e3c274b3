//! The local dispatcher routes by (version, scheme, network) and answers every unsupported
//! combination with a reason — never a panic or an internal error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use async_trait::async_trait;
use x402_core::json::JsonLimits;
use x402_core::{
    DispatchError, Facilitator, FacilitatorError, FacilitatorRole, LocalFacilitator, Network,
    PaymentContext, Reason, Registry, Rejection, SchemeError, Settlement, Verdict, X402Version,
};

/// A scheme that records what it saw: valid when the payload says `{"ok":true}`.
#[derive(Debug)]
struct Echo;

#[async_trait]
impl FacilitatorRole for Echo {
    fn scheme(&self) -> &'static str {
        "exact"
    }
    async fn verify(&self, p: &PaymentContext<'_>) -> Result<Verdict, SchemeError> {
        #[derive(serde::Deserialize)]
        struct Body {
            ok: bool,
            from: String,
        }
        let body: Body = match x402_core::scheme::parse_payload(p.payload.payload) {
            Ok(b) => b,
            Err(r) => return Ok(Verdict::invalid(None, r)),
        };
        if body.ok {
            Ok(Verdict::valid(body.from))
        } else {
            Ok(Verdict::invalid(
                Some(body.from),
                Rejection::new(Reason::from_wire("invalid_exact_evm_signature")),
            ))
        }
    }
    async fn settle(&self, p: &PaymentContext<'_>) -> Result<Settlement, SchemeError> {
        if p.requirements.amount.is_zero() {
            panic!("scheme bug");
        }
        Ok(Settlement {
            payer: Some("0xabc".into()),
            transaction: Some("0xhash".into()),
            amount: None,
            result: Ok(()),
            extensions: None,
        })
    }
    fn signers(&self, _: &Network) -> Vec<String> {
        vec!["0xsigner".into()]
    }
}

fn facilitator() -> LocalFacilitator {
    let mut reg = Registry::new();
    reg.register(
        "eip155:84532",
        &[X402Version::V1, X402Version::V2],
        Echo.into_scheme(),
    )
    .unwrap();
    LocalFacilitator::new(reg)
}

fn v2_body(scheme: &str, network: &str, amount: &str, payload: &str) -> String {
    let req = format!(
        r#"{{"scheme":"{scheme}","network":"{network}","amount":"{amount}","asset":"0xa","payTo":"0xb","maxTimeoutSeconds":60}}"#
    );
    format!(
        r#"{{"x402Version":2,"paymentPayload":{{"x402Version":2,"accepted":{req},"payload":{payload}}},"paymentRequirements":{req}}}"#
    )
}

fn v1_body(network: &str) -> String {
    format!(
        r#"{{"x402Version":1,"paymentPayload":{{"x402Version":1,"scheme":"exact","network":"{network}","payload":{{"ok":true,"from":"0xv1"}}}},"paymentRequirements":{{"scheme":"exact","network":"{network}","maxAmountRequired":"5","asset":"0xa","payTo":"0xb","resource":"r","description":"","maxTimeoutSeconds":60}}}}"#
    )
}

async fn verify(f: &LocalFacilitator, body: &str) -> x402_core::wire::VerifyResponse {
    f.verify_json(body.as_bytes(), JsonLimits::DEFAULT)
        .await
        .unwrap_or_else(|e| panic!("{body}: {e}"))
}

#[tokio::test]
async fn routes_valid_and_invalid_payments() {
    let f = facilitator();
    let ok = verify(
        &f,
        &v2_body("exact", "eip155:84532", "5", r#"{"ok":true,"from":"0xp"}"#),
    )
    .await;
    assert!(ok.is_valid);
    assert_eq!(ok.payer.as_deref(), Some("0xp"));
    let bad = verify(
        &f,
        &v2_body("exact", "eip155:84532", "5", r#"{"ok":false,"from":"0xq"}"#),
    )
    .await;
    assert!(!bad.is_valid);
    assert_eq!(
        bad.invalid_reason,
        Some(Reason::from_wire("invalid_exact_evm_signature"))
    );
    assert_eq!(
        bad.payer.as_deref(),
        Some("0xq"),
        "payer filled on rejection"
    );
    let v1 = verify(&f, &v1_body("base-sepolia")).await;
    assert!(v1.is_valid, "{v1:?}");
}

#[tokio::test]
async fn unsupported_combinations_get_reasons() {
    let f = facilitator();
    let cases = [
        (
            v2_body("upto", "eip155:84532", "5", "{}"),
            Reason::UNSUPPORTED_SCHEME,
        ),
        (
            v2_body("exact", "eip155:1", "5", "{}"),
            Reason::INVALID_NETWORK,
        ),
        (
            v2_body("exact", "not-caip2", "5", "{}"),
            Reason::INVALID_NETWORK,
        ),
        (v1_body("no-such-network"), Reason::INVALID_NETWORK),
        (v1_body("base"), Reason::INVALID_NETWORK),
        (
            v2_body("exact", "eip155:84532", "5", "{}").replace(
                r#""x402Version":2,"accepted""#,
                r#""x402Version":3,"accepted""#,
            ),
            Reason::INVALID_X402_VERSION,
        ),
        (
            v2_body("exact", "eip155:84532", "5", "{}").replacen(
                r#"{"x402Version":2"#,
                r#"{"x402Version":1"#,
                1,
            ),
            Reason::INVALID_X402_VERSION,
        ),
        (
            v2_body("exact", "eip155:84532", "5", r#"{"ok":"yes"}"#),
            Reason::INVALID_PAYLOAD,
        ),
    ];
    for (body, reason) in cases {
        let r = verify(&f, &body).await;
        assert!(!r.is_valid, "{body}");
        assert_eq!(r.invalid_reason, Some(reason.clone()), "{body}");
        if reason == Reason::INVALID_PAYLOAD {
            continue; // decided by the scheme's own verify, which this test scheme's settle skips
        }
        // Routing rejections reach settle too, and nothing is sent.
        let s = f
            .settle_json(body.as_bytes(), JsonLimits::DEFAULT)
            .await
            .unwrap();
        assert!(!s.success && s.transaction.is_empty(), "{body}");
        assert_eq!(s.error_reason, Some(reason), "{body}");
    }
}

#[tokio::test]
async fn malformed_bodies_are_bad_requests() {
    let f = facilitator();
    let good = v2_body("exact", "eip155:84532", "5", r#"{"ok":true,"from":"0xp"}"#);
    let bad_bodies = [
        String::new(),
        "{".to_owned(),
        "[]".to_owned(),
        r#"{"paymentPayload":{}}"#.to_owned(),
        good.replace(r#""amount":"5""#, r#""amount":"+5""#),
        good.replace(r#""amount":"5""#, r#""amount":5"#),
        good.replacen(
            r#""x402Version":2,"accepted""#,
            r#""x402Version":"2","accepted""#,
            1,
        ),
        good.replace(r#""ok":true"#, r#""ok":true,"ok":false"#),
        good.replace(r#""maxTimeoutSeconds":60"#, r#""maxTimeoutSeconds":-1"#),
    ];
    for body in bad_bodies {
        let err = f
            .verify_json(body.as_bytes(), JsonLimits::DEFAULT)
            .await
            .unwrap_err();
        assert!(matches!(err, DispatchError::BadRequest(_)), "{body}: {err}");
    }
    let huge = format!("{}{}", good, " ".repeat(70 * 1024));
    assert!(matches!(
        f.verify_json(huge.as_bytes(), JsonLimits::DEFAULT).await,
        Err(DispatchError::BadRequest(_))
    ));
}

#[tokio::test]
async fn settle_fills_network_in_the_request_version_and_contains_panics() {
    let f = facilitator();
    let v2 = f
        .settle_json(
            v2_body("exact", "eip155:84532", "5", "{}").as_bytes(),
            JsonLimits::DEFAULT,
        )
        .await
        .unwrap();
    assert!(v2.success);
    assert_eq!(v2.network, "eip155:84532");
    let v1 = f
        .settle_json(v1_body("base-sepolia").as_bytes(), JsonLimits::DEFAULT)
        .await
        .unwrap();
    assert_eq!(v1.network, "base-sepolia");
    let panicking = f
        .settle_json(
            v2_body("exact", "eip155:84532", "0", "{}").as_bytes(),
            JsonLimits::DEFAULT,
        )
        .await
        .unwrap_err();
    assert!(matches!(
        panicking,
        DispatchError::Internal(FacilitatorError::Panicked { .. })
    ));
}

#[tokio::test]
async fn supported_lists_kinds_and_signers() {
    let s = facilitator().supported().await.unwrap();
    let kinds: Vec<_> = s
        .kinds
        .iter()
        .map(|k| (k.x402_version, k.network.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (X402Version::V1, "base-sepolia"),
            (X402Version::V2, "eip155:84532")
        ]
    );
    assert_eq!(s.signers["eip155:*"], ["0xsigner"]);
}

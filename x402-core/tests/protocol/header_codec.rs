//! The header codec accepts exactly standard base64 with canonical padding, within a size limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use x402_core::header::{self, HeaderError, MAX_REQUEST_HEADER_LEN};
use x402_core::wire::PaymentPayload;

const PAYLOAD: &str =
    r#"{"x402Version":1,"scheme":"exact","network":"base","payload":{"k":"v?>"}}"#;

#[test]
fn valid_header_decodes() {
    let value: serde_json::Value = serde_json::from_str(PAYLOAD).unwrap();
    let encoded = header::encode(&value).unwrap();
    assert!(encoded.ends_with('='), "padding kept: {encoded}");
    let p: PaymentPayload = PaymentPayload::from_json(
        &header::decode_json(&encoded, MAX_REQUEST_HEADER_LEN).unwrap(),
        x402_core::json::JsonLimits::DEFAULT,
    )
    .unwrap();
    assert_eq!(serde_json::to_string(&p).unwrap(), PAYLOAD);
}

#[test]
fn lenient_encodings_are_rejected() {
    let value: serde_json::Value = serde_json::from_str(PAYLOAD).unwrap();
    let good = header::encode(&value).unwrap();
    assert!(
        good.contains('+') || good.contains('/'),
        "vector must exercise the +/ alphabet: {good}"
    );
    let url_safe = good.replace('+', "-").replace('/', "_");
    let unpadded = good.trim_end_matches('=').to_owned();
    let extra_pad = format!("{good}=");
    let spaced = format!(" {good}");
    let newline = format!("{}\n{}", &good[..8], &good[8..]);
    let inner_space = format!("{} {}", &good[..8], &good[8..]);
    let cases: Vec<(&str, String)> = vec![
        ("url-safe alphabet", url_safe),
        ("missing padding", unpadded),
        ("extra padding", extra_pad),
        ("leading space", spaced),
        ("embedded newline", newline),
        ("embedded space", inner_space),
        ("non-alphabet", "eyJ!@#".to_owned()),
        ("trailing bits", "QR==".to_owned()),
    ];
    for (what, input) in cases {
        let err = header::decode_json(&input, MAX_REQUEST_HEADER_LEN).unwrap_err();
        assert!(matches!(err, HeaderError::Base64(_)), "{what}: {err}");
    }
    assert!(matches!(
        header::decode_json("", MAX_REQUEST_HEADER_LEN),
        Err(HeaderError::Empty)
    ));
}

#[test]
fn size_limit_is_checked_before_decoding() {
    let big = "A".repeat(MAX_REQUEST_HEADER_LEN + 4);
    let err = header::decode_json(&big, MAX_REQUEST_HEADER_LEN).unwrap_err();
    assert!(matches!(err, HeaderError::TooLong { .. }), "{err}");
    assert!(err.to_string().contains("longer than the limit"));
}

#[test]
fn decoded_bytes_must_be_strict_json() {
    for (what, raw) in [
        ("not json", &b"hello"[..]),
        ("duplicate key", br#"{"a":1,"a":2}"#),
        ("trailing garbage", br#"{"a":1}x"#),
        ("not utf-8", b"{\"a\":\"\xff\xfe\"}"),
    ] {
        let encoded = header::encode_base64(raw);
        let err = header::decode_json(&encoded, MAX_REQUEST_HEADER_LEN).unwrap_err();
        assert!(matches!(err, HeaderError::Json(_)), "{what}: {err}");
    }
}

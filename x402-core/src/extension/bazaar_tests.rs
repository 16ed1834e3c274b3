//! Declarations byte-compatible with the reference's `declareDiscoveryExtension` and
//! `bazaarResourceServerExtension.enrichDeclaration` (@x402/extensions 2.27.0; the expected texts
//! are its output for the same configuration), and the validation negatives.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::json;

use super::bazaar::*;
use super::{Declaration, JsonObject};
use crate::UnixTime;
use crate::wire::{PaymentPayloadV2, PaymentRequirementsV2};

const QUERY: &str = r#"{"info":{"input":{"type":"http","method":"GET","queryParams":{"city":"Paris"}},"output":{"type":"json","example":{"temperature":21}}},"schema":{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"input":{"type":"object","properties":{"type":{"type":"string","const":"http"},"method":{"type":"string","enum":["GET","HEAD","DELETE"]},"queryParams":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}},"required":["type","method"],"additionalProperties":false},"output":{"type":"object","properties":{"type":{"type":"string"},"example":{"type":"object","properties":{"temperature":{"type":"number"}}}},"required":["type"]}},"required":["input"]}}"#;
const BODY: &str = r#"{"info":{"input":{"type":"http","method":"POST","bodyType":"json","body":{"prompt":"hi"}}},"schema":{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"input":{"type":"object","properties":{"type":{"type":"string","const":"http"},"method":{"type":"string","enum":["POST","PUT","PATCH"]},"bodyType":{"type":"string","enum":["json","form-data","text"]},"body":{"properties":{"prompt":{"type":"string"}}}},"required":["type","method","bodyType","body"],"additionalProperties":false}},"required":["input"]}}"#;
const MCP: &str = r#"{"info":{"input":{"type":"mcp","toolName":"search","description":"Search","transport":"sse","inputSchema":{"type":"object","properties":{"q":{"type":"string"}}},"example":{"q":"x"}}},"schema":{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"input":{"type":"object","properties":{"type":{"type":"string","const":"mcp"},"toolName":{"type":"string"},"description":{"type":"string"},"transport":{"type":"string","enum":["sse"]},"inputSchema":{"type":"object"},"example":{"type":"object"}},"required":["type","toolName","inputSchema"],"additionalProperties":false}},"required":["input"]}}"#;
const BARE: &str = r#"{"info":{"input":{"type":"http","queryParams":{}}},"schema":{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"input":{"type":"object","properties":{"type":{"type":"string","const":"http"},"method":{"type":"string","enum":["GET","HEAD","DELETE"]},"queryParams":{"type":"object","properties":{}}},"required":["type","method"],"additionalProperties":false}},"required":["input"]}}"#;
const ENRICHED: &str = r#"{"info":{"input":{"type":"http","queryParams":{},"method":"GET","pathParams":{"id":"42"}}},"schema":{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"input":{"type":"object","properties":{"type":{"type":"string","const":"http"},"method":{"type":"string","enum":["GET"]},"queryParams":{"type":"object","properties":{}},"pathParams":{"type":"object"}},"required":["type","method"],"additionalProperties":false}},"required":["input"]},"routeTemplate":"/users/:id"}"#;

fn ordered(text: &str) -> JsonObject {
    JsonObject::parse(text).unwrap()
}

#[test]
fn declarations_match_the_reference_byte_for_byte() {
    let query = Bazaar::query()
        .method("GET")
        .input_example(json!({"city": "Paris"}))
        .input_schema(json!({"properties": {"city": {"type": "string"}}, "required": ["city"]}))
        .output_example(json!({"temperature": 21}))
        .output_schema(json!({"properties": {"temperature": {"type": "number"}}}));
    assert_eq!(query.declaration().to_json(), QUERY);
    let body = Bazaar::body(BodyType::Json)
        .method("POST")
        .input_example(json!({"prompt": "hi"}))
        .input_schema(json!({"properties": {"prompt": {"type": "string"}}}));
    assert_eq!(body.declaration().to_json(), BODY);
    let mcp = Bazaar::mcp(
        "search",
        ordered(r#"{"type":"object","properties":{"q":{"type":"string"}}}"#),
    )
    .tool_description("Search")
    .transport("sse")
    .input_example(json!({"q": "x"}));
    assert_eq!(mcp.declaration().to_json(), MCP);
    assert_eq!(Bazaar::query().declaration().to_json(), BARE);
    for text in [QUERY, BODY, MCP, ENRICHED] {
        let parsed: Declaration = serde_json::from_str(text).unwrap();
        assert_eq!(parsed.to_json(), text, "round trip");
        assert_eq!(check(&parsed), Ok(()), "{text}");
    }
    for b in [query, body, mcp, Bazaar::query()] {
        assert_eq!(b.check(), Ok(()));
    }
}

#[test]
fn enrichment_matches_the_reference() {
    let bare: Declaration = serde_json::from_str(BARE).unwrap();
    let enriched = enrich(&bare, "GET", Some("/users/:id"), "/users/42");
    assert_eq!(enriched.to_json(), ENRICHED);
    // Without a parameterised template only the method is filled in.
    let plain = enrich(&bare, "HEAD", Some("/users"), "/users");
    assert!(!plain.siblings.contains("routeTemplate"));
    assert_eq!(check(&plain), Ok(()));
    // A bare declaration fails its own schema until the method is known.
    assert!(check(&bare).is_err());
    // MCP declarations are left alone.
    let mcp: Declaration = serde_json::from_str(MCP).unwrap();
    assert_eq!(enrich(&mcp, "POST", Some("/t/:x"), "/t/1"), mcp);
}

#[test]
fn route_templates_follow_the_spec() {
    for good in [
        "/users/:id",
        "/a/b.json",
        "/x~y/%20z",
        "/v1/items/:item_id/price",
    ] {
        assert!(is_valid_route_template(good), "{good}");
    }
    for bad in [
        "",
        "/",
        "users/:id",
        "/a/../b",
        "/a/%2e%2e/b",
        "/a/%252e%252e/b",
        "/http://evil",
        "/a%3A%2F%2Fb",
        "/a b",
        "/a?b",
        "/%zz",
        "/%ff",
    ] {
        assert!(!is_valid_route_template(bad), "{bad:?}");
    }
    assert_eq!(
        path_params("/users/:id/posts/:post", "/users/7/posts/9")
            .unwrap()
            .to_json(),
        r#"{"id":"7","post":"9"}"#
    );
    assert!(path_params("/users/:id", "/users/7/x").is_none());
    assert!(path_params("/users/:id", "/users/").is_none());
}

#[test]
fn validation_negatives() {
    let invalid = |b: Bazaar| b.check().unwrap_err().join("; ");
    assert!(invalid(Bazaar::query().method("POST")).contains("method"));
    assert!(invalid(Bazaar::query().method("FETCH")).contains("FETCH"));
    assert!(invalid(Bazaar::body(BodyType::Text).method("GET")).contains("not a body method"));
    assert!(invalid(Bazaar::query().route_template("/a/../b")).contains("routeTemplate"));
    assert!(invalid(Bazaar::mcp("", json!({}))).contains("toolName"));
    assert!(invalid(Bazaar::mcp("t", json!({})).transport("ws")).contains("transport"));
    // The input example must follow the input schema.
    let wrong = Bazaar::query()
        .method("GET")
        .input_example(json!({"city": 5}))
        .input_schema(json!({"properties": {"city": {"type": "string"}}}));
    assert!(invalid(wrong).contains("/input/queryParams/city"));
    // Hand-written declarations.
    let text = |t: &str| check(&serde_json::from_str::<Declaration>(t).unwrap()).unwrap_err();
    assert!(!text(r#"{"info":{},"schema":{}}"#).is_empty());
    assert!(!text(r#"{"info":{"input":{"type":"grpc"}},"schema":{}}"#).is_empty());
    assert!(
        text(r#"{"info":{"input":{"type":"http","method":"GET"}},"schema":{"$ref":"https://evil.example/x"}}"#)
            [0]
            .contains("external")
    );
    assert!(
        !text(r#"{"info":{"input":{"type":"http","method":"GET"}},"schema":{},"routeTemplate":7}"#)
            .is_empty()
    );
}

fn payload(extensions: serde_json::Value, url: &str) -> (PaymentPayloadV2, PaymentRequirementsV2) {
    let requirements = json!({
        "scheme": "exact", "network": "eip155:84532", "amount": "1000",
        "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "payTo": "0xAbC0000000000000000000000000000000000001", "maxTimeoutSeconds": 60,
        "extra": {"name": "USDC", "version": "2"}
    });
    let payload = json!({
        "x402Version": 2,
        "resource": {"url": url, "description": "Weather", "mimeType": "application/json",
                     "serviceName": "Wx", "tags": ["weather", "WEATHER", "x\u{7}"],
                     "iconUrl": "http://127.0.0.1/icon.png"},
        "accepted": requirements.clone(),
        "payload": {"signature": "0x00"},
        "extensions": extensions,
    });
    (
        serde_json::from_value(payload).unwrap(),
        serde_json::from_value(requirements).unwrap(),
    )
}

#[test]
fn a_settled_payment_is_cataloged_under_its_canonical_url() {
    let declaration: serde_json::Value = serde_json::from_str(ENRICHED).unwrap();
    let (p, r) = payload(
        json!({"bazaar": declaration, "payment-identifier": {"info": {"id": "secret"}, "schema": {}}}),
        "https://API.example.com:8443/users/42?units=metric",
    );
    let entry = catalog_entry(&p, &r, UnixTime(1_740_672_089), Duration::from_secs(60))
        .unwrap()
        .unwrap();
    assert_eq!(entry.resource, "https://api.example.com:8443/users/:id");
    assert_eq!(entry.kind, "http");
    assert_eq!(entry.pay_to, "0xabc0000000000000000000000000000000000001");
    assert_eq!(entry.expires_at, UnixTime(1_740_672_149));
    let item: serde_json::Value = serde_json::from_str(&entry.item).unwrap();
    assert_eq!(item["lastUpdated"], "2025-02-27T16:01:29.000Z");
    assert_eq!(item["accepts"][0]["amount"], "1000");
    assert_eq!(
        item["tags"],
        json!(["weather"]),
        "deduplicated, control characters dropped"
    );
    assert!(
        item.get("iconUrl").is_none(),
        "an IP-literal icon is dropped"
    );
    assert_eq!(item["serviceName"], "Wx");
    assert!(
        item["extensions"].get("payment-identifier").is_none(),
        "only the bazaar is echoed"
    );
    assert_eq!(item["extensions"]["bazaar"]["routeTemplate"], "/users/:id");

    let (none, r2) = payload(json!({}), "https://api.example.com/x");
    assert_eq!(
        catalog_entry(&none, &r2, UnixTime(0), Duration::from_secs(1)),
        Ok(None)
    );
}

#[test]
fn junk_is_not_cataloged() {
    let good: serde_json::Value = serde_json::from_str(ENRICHED).unwrap();
    let refused = |ext: serde_json::Value, url: &str| {
        let (p, r) = payload(ext, url);
        catalog_entry(&p, &r, UnixTime(0), Duration::from_secs(1)).unwrap_err()
    };
    for url in [
        "ftp://example.com/a",
        "/relative",
        "https://user:pw@example.com/a",
        "https:///nohost",
        "https://exa mple.com/",
    ] {
        refused(json!({"bazaar": good}), url);
    }
    let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
    assert!(refused(json!({"bazaar": good}), &long).contains("longer"));
    let big = json!({"bazaar": {"info": {"input": {"type": "http", "method": "GET",
        "queryParams": {"x": "y".repeat(MAX_DECLARATION_BYTES)}}}, "schema": {}}});
    assert!(refused(big, "https://example.com/a").contains("larger"));
    assert!(refused(json!({"bazaar": 5}), "https://example.com/a").contains("malformed"));
    assert!(refused(json!({"bazaar": {"info": {"input": {"type": "http", "method": "TRACE"}}, "schema": {}}}), "https://example.com/a").contains("TRACE"));
    assert!(refused(json!([1]), "https://example.com/a").contains("not an object"));
}

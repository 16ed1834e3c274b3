//! The members the TypeScript reference 2.27 added to the wire types, with the exact JSON: the
//! resource's service members (`serviceName`, `tags`, `iconUrl`), `extra` on verify and settle
//! responses, and discovery items as the bazaar shapes them. Optional members may be `null`
//! (read as absent, as the reference's schema transforms them) and unknown members are ignored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use x402_core::json::JsonLimits;
use x402_core::wire::{
    DiscoveryResponse, LastUpdated, PaymentPayload, PaymentRequired, PaymentRequirements,
    ResourceInfo, SettleResponse, VerifyResponse,
};
use x402_core::{Amount, X402Version};

const RESOURCE: &str = r#"{"url":"https://api.example.com/weather","description":"Weather","mimeType":"application/json","serviceName":"Weather Co","tags":["weather","forecast"],"iconUrl":"https://weather.example/icon.png"}"#;
const ACCEPTED: &str = r#"{"scheme":"exact","network":"eip155:84532","amount":"10000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","maxTimeoutSeconds":300,"extra":{"name":"USDC","version":"2"}}"#;

fn required(resource: &str) -> String {
    format!(
        r#"{{"x402Version":2,"error":"Payment required","resource":{resource},"accepts":[{ACCEPTED}]}}"#
    )
}

fn payload(resource: &str) -> String {
    format!(
        r#"{{"x402Version":2,"resource":{resource},"accepted":{ACCEPTED},"payload":{{"signature":"0x01"}}}}"#
    )
}

#[test]
fn the_service_members_of_a_resource_round_trip_exactly() {
    let doc = required(RESOURCE);
    let parsed = PaymentRequired::from_json(doc.as_bytes(), JsonLimits::DEFAULT).unwrap();
    let PaymentRequired::V2(v2) = &parsed else {
        panic!("v2")
    };
    assert_eq!(v2.resource.service_name.as_deref(), Some("Weather Co"));
    assert_eq!(
        v2.resource.tags.as_deref(),
        Some(&["weather".to_owned(), "forecast".to_owned()][..])
    );
    assert_eq!(
        v2.resource.icon_url.as_deref(),
        Some("https://weather.example/icon.png")
    );
    assert_eq!(serde_json::to_string(&parsed).unwrap(), doc);
    // The buyer echoes the resource in its payload.
    let doc = payload(RESOURCE);
    let parsed = PaymentPayload::from_json(doc.as_bytes(), JsonLimits::DEFAULT).unwrap();
    assert_eq!(
        parsed.view().resource.unwrap().tags.as_ref().unwrap().len(),
        2
    );
    assert_eq!(serde_json::to_string(&parsed).unwrap(), doc);
    // Built in code, in the same member order.
    let built = ResourceInfo {
        description: Some("Weather".into()),
        mime_type: Some("application/json".into()),
        service_name: Some("Weather Co".into()),
        tags: Some(vec!["weather".into(), "forecast".into()]),
        icon_url: Some("https://weather.example/icon.png".into()),
        ..ResourceInfo::new("https://api.example.com/weather")
    };
    assert_eq!(serde_json::to_string(&built).unwrap(), RESOURCE);
    assert_eq!(
        serde_json::to_string(&ResourceInfo::new("https://x")).unwrap(),
        r#"{"url":"https://x"}"#
    );
}

#[test]
fn null_and_unknown_resource_members_are_tolerated_as_the_reference_does() {
    // `null` reads as absent (and is written as absent); a member this build does not know is
    // ignored, as the reference's schema strips it.
    let resource = r#"{"url":"https://x","description":null,"mimeType":null,"serviceName":null,"tags":null,"iconUrl":null,"rating":5}"#;
    for doc in [required(resource), payload(resource)] {
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        let back = match v["accepts"].is_array() {
            true => serde_json::to_string(
                &PaymentRequired::from_json(doc.as_bytes(), JsonLimits::DEFAULT).unwrap(),
            ),
            false => serde_json::to_string(
                &PaymentPayload::from_json(doc.as_bytes(), JsonLimits::DEFAULT).unwrap(),
            ),
        }
        .unwrap();
        assert!(back.contains(r#""resource":{"url":"https://x"}"#), "{back}");
    }
}

#[test]
fn resource_members_of_the_wrong_type_are_refused_with_the_member_named() {
    for (resource, member) in [
        (r#"{"url":"https://x","serviceName":7}"#, "serviceName"),
        (r#"{"url":"https://x","tags":"weather"}"#, "tags"),
        (r#"{"url":"https://x","tags":["a",1]}"#, "tags"),
        (r#"{"url":"https://x","iconUrl":{}}"#, "iconUrl"),
        (r#"{"description":"no url"}"#, "url"),
    ] {
        let doc = required(resource);
        let err = PaymentRequired::from_json(doc.as_bytes(), JsonLimits::DEFAULT)
            .err()
            .unwrap_or_else(|| panic!("{resource} accepted"))
            .to_string();
        assert!(
            err.contains(member) || err.contains("invalid type"),
            "{resource}: {err}"
        );
    }
}

#[test]
fn verify_and_settle_responses_carry_extra_verbatim() {
    for doc in [
        r#"{"isValid":true,"payer":"0x857b06519E91e3A54538791bDbb0E22373e36b66","extra":{"simulation":{"gasUsed":"51234"},"note":1.50}}"#,
        r#"{"isValid":false,"invalidReason":"insufficient_funds","invalidMessage":"balance 0","payer":"0xabc","extensions":{"bazaar":{"status":"success"}},"extra":{}}"#,
        r#"{"isValid":true,"extra":null}"#,
    ] {
        let v: VerifyResponse = serde_json::from_str(doc).unwrap();
        assert!(v.extra.is_some());
        assert_eq!(serde_json::to_string(&v).unwrap(), doc);
    }
    let v: VerifyResponse = serde_json::from_str(r#"{"isValid":true}"#).unwrap();
    assert!(v.extra.is_none());
    assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"isValid":true}"#);
    // An unknown member of a newer peer (the reference's client-side `extensionResponses`) is
    // ignored.
    let v: VerifyResponse =
        serde_json::from_str(r#"{"isValid":true,"extensionResponses":{"x":1}}"#).unwrap();
    assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"isValid":true}"#);

    let doc = r#"{"success":true,"transaction":"0x12","network":"eip155:84532","payer":"0xabc","amount":"2350000","extra":{"blockNumber":"123"}}"#;
    let s: SettleResponse = serde_json::from_str(doc).unwrap();
    assert_eq!(s.amount, Some(Amount::from(2_350_000)));
    assert_eq!(s.extra.as_ref().unwrap().get(), r#"{"blockNumber":"123"}"#);
    assert_eq!(serde_json::to_string(&s).unwrap(), doc);
}

/// A `GET /discovery/resources` answer as the bazaar shapes it (TypeScript 2.27
/// `DiscoveryResourcesResponse`): service members on the item, ISO `lastUpdated`, extensions.
const DISCOVERY_BAZAAR: &str = r#"{"x402Version":2,"items":[{"resource":"https://api.example.com/weather","type":"http","x402Version":2,"accepts":[{"scheme":"exact","network":"eip155:84532","amount":"10000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","maxTimeoutSeconds":300,"extra":{"name":"USDC","version":"2"}}],"lastUpdated":"2026-04-21T13:40:15.000Z","description":"Weather","mimeType":"application/json","serviceName":"Weather Co","tags":["weather"],"iconUrl":"https://weather.example/icon.png","extensions":{"bazaar":{"info":{"input":{"type":"http","method":"GET"}},"schema":{"type":"object"}}}}],"pagination":{"limit":20,"offset":0,"total":1}}"#;

/// The same list in the v2 specification's older example shape: unix `lastUpdated`, `metadata`,
/// a v1 item.
const DISCOVERY_SPEC: &str = r#"{"x402Version":2,"items":[{"resource":"https://api.example.com/premium-data","type":"http","x402Version":1,"accepts":[{"scheme":"exact","network":"base-sepolia","maxAmountRequired":"10000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","resource":"https://api.example.com/premium-data","description":"","maxTimeoutSeconds":60}],"lastUpdated":1703123456,"metadata":{"category":"finance","provider":"Example Corp"}}],"pagination":{"limit":10,"offset":0,"total":1}}"#;

#[test]
fn discovery_items_round_trip_in_the_bazaar_shape_and_the_older_one() {
    let list: DiscoveryResponse = serde_json::from_str(DISCOVERY_BAZAAR).unwrap();
    let item = &list.items[0];
    assert_eq!(item.kind, "http");
    assert_eq!(
        item.last_updated,
        LastUpdated::Iso("2026-04-21T13:40:15.000Z".into())
    );
    assert_eq!(item.description.as_deref(), Some("Weather"));
    assert_eq!(item.service_name.as_deref(), Some("Weather Co"));
    assert_eq!(item.tags.as_deref(), Some(&["weather".to_owned()][..]));
    assert!(item.extensions.as_ref().unwrap().get().contains("bazaar"));
    assert!(item.metadata.is_none());
    let PaymentRequirements::V2(r) = &item.accepts().unwrap()[0] else {
        panic!("v2 accepts")
    };
    assert_eq!(r.amount, Amount::from(10_000));
    assert_eq!(serde_json::to_string(&list).unwrap(), DISCOVERY_BAZAAR);

    let list: DiscoveryResponse = serde_json::from_str(DISCOVERY_SPEC).unwrap();
    let item = &list.items[0];
    assert_eq!(item.x402_version, X402Version::V1);
    assert_eq!(item.last_updated, LastUpdated::Unix(1_703_123_456));
    assert!(item.service_name.is_none() && item.extensions.is_none());
    assert!(matches!(
        item.accepts().unwrap()[0],
        PaymentRequirements::V1(_)
    ));
    assert_eq!(serde_json::to_string(&list).unwrap(), DISCOVERY_SPEC);
}

#[test]
fn discovery_items_tolerate_null_and_unknown_members_and_name_missing_ones() {
    let item = r#"{"resource":"r","type":"mcp","x402Version":2,"accepts":[],"lastUpdated":"2026-01-01T00:00:00Z","description":null,"tags":null,"extensions":null,"toolName":"forecast"}"#;
    let list = format!(
        r#"{{"x402Version":2,"items":[{item}],"pagination":{{"limit":1,"offset":0,"total":1}}}}"#
    );
    let parsed: DiscoveryResponse = serde_json::from_str(&list).unwrap();
    let back = serde_json::to_string(&parsed.items[0]).unwrap();
    // Typed members read null as absent; raw members keep an explicit null; unknown ones go.
    assert_eq!(
        back,
        r#"{"resource":"r","type":"mcp","x402Version":2,"accepts":[],"lastUpdated":"2026-01-01T00:00:00Z","extensions":null}"#
    );
    let missing = list.replace(r#""lastUpdated":"2026-01-01T00:00:00Z","#, "");
    let err = serde_json::from_str::<DiscoveryResponse>(&missing)
        .unwrap_err()
        .to_string();
    assert!(err.contains("lastUpdated"), "{err}");
}

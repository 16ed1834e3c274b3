//! The bazaar through the facilitator's HTTP API (no chain: a scheme that settles on request):
//! what a settled payment catalogs, what it does not, and `GET /discovery/resources` paging and
//! filters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt as _;
use x402_core::extension::ExtensionConfig;
use x402_core::extension::discovery::build_bazaar;
use x402_core::{
    FacilitatorRole, LocalFacilitator, MemoryStore, Network, PaymentContext, Reason, Registry,
    Rejection, SchemeError, Settlement, SettlementStore, Verdict, X402Version,
};

use crate::config::Limits;
use crate::metrics::Metrics;
use crate::server::{AppState, router};

/// Settles when the payload says `{"ok": true}`, refuses otherwise.
#[derive(Debug)]
struct OnRequest;

#[async_trait]
impl FacilitatorRole for OnRequest {
    fn scheme(&self) -> &'static str {
        "exact"
    }
    async fn verify(&self, p: &PaymentContext<'_>) -> Result<Verdict, SchemeError> {
        if p.payload.payload.get().contains("true") {
            Ok(Verdict::valid("0xpayer"))
        } else {
            Ok(Verdict::invalid(
                Some("0xpayer".into()),
                Rejection::new(Reason::from_wire("invalid_exact_evm_signature")),
            ))
        }
    }
    async fn settle(&self, p: &PaymentContext<'_>) -> Result<Settlement, SchemeError> {
        let ok = p.payload.payload.get().contains("true");
        Ok(Settlement {
            payer: Some("0xpayer".into()),
            transaction: ok.then(|| "0xhash".into()),
            amount: None,
            result: if ok {
                Ok(())
            } else {
                Err(Rejection::new(Reason::from_wire(
                    "invalid_exact_evm_signature",
                )))
            },
            extensions: None,
        })
    }
    fn signers(&self, _: &Network) -> Vec<String> {
        vec!["0xsigner".into()]
    }
}

fn app(with_bazaar: bool) -> axum::Router {
    let mut registry = Registry::new();
    for network in ["eip155:84532", "eip155:8453"] {
        registry
            .register(network, &[X402Version::V2], OnRequest.into_scheme())
            .unwrap();
    }
    let store: Arc<dyn SettlementStore> = Arc::new(MemoryStore::new());
    let mut facilitator = LocalFacilitator::new(registry).with_store(store.clone());
    if with_bazaar {
        let bazaar = build_bazaar(&ExtensionConfig {
            options: json!({"max_per_pay_to": 50}),
            store,
            clock: x402_core::system_clock(),
        })
        .unwrap();
        facilitator = facilitator.with_extension(bazaar);
    }
    let state = AppState::new(facilitator, Arc::new(Metrics::default()), Limits::default());
    router(state)
}

fn declaration(kind: &str) -> Value {
    if kind == "mcp" {
        json!({"info": {"input": {"type": "mcp", "toolName": "t", "inputSchema": {}}},
               "schema": {"type": "object"}})
    } else {
        json!({"info": {"input": {"type": "http", "method": "GET", "queryParams": {}}},
               "schema": {"type": "object", "properties": {"input": {"type": "object"}}}})
    }
}

fn settle_body(path: &str, network: &str, ok: bool, bazaar: Option<Value>) -> String {
    let requirements = json!({"scheme": "exact", "network": network, "amount": "5",
        "asset": "0xa", "payTo": "0xB0B", "maxTimeoutSeconds": 60});
    let mut payload = json!({"x402Version": 2,
        "resource": {"url": format!("https://shop.example{path}"), "description": format!("item {path}")},
        "accepted": requirements, "payload": {"ok": ok}});
    if let Some(b) = bazaar {
        payload["extensions"] = json!({"bazaar": b});
    }
    json!({"x402Version": 2, "paymentPayload": payload, "paymentRequirements": requirements})
        .to_string()
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: String,
) -> (StatusCode, Option<String>, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let header = response
        .headers()
        .get("EXTENSION-RESPONSES")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        header,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn list(app: &axum::Router, query: &str) -> (StatusCode, Value) {
    let (status, _, body) = call(
        app,
        "GET",
        &format!("/discovery/resources{query}"),
        String::new(),
    )
    .await;
    (status, body)
}

#[tokio::test]
async fn settled_payments_are_cataloged_and_listed_page_by_page() {
    let app = app(true);
    let (_, _, supported) = call(&app, "GET", "/supported", String::new()).await;
    assert_eq!(supported["extensions"], json!(["bazaar"]));

    // A settled payment with a declaration: cataloged, answered in the header and the body.
    let (status, header, body) = call(
        &app,
        "POST",
        "/settle",
        settle_body("/r/0", "eip155:84532", true, Some(declaration("http"))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"], true);
    assert_eq!(body["extensions"]["bazaar"]["status"], "success");
    let decoded: Value = x402_core::header::decode(&header.unwrap(), 4096).unwrap();
    assert_eq!(decoded, json!({"bazaar": {"status": "success"}}));

    // Refused, undeclared and junk payments catalog nothing.
    let (_, header, body) = call(
        &app,
        "POST",
        "/settle",
        settle_body("/refused", "eip155:84532", false, Some(declaration("http"))),
    )
    .await;
    assert_eq!((body["success"].clone(), header), (json!(false), None));
    let (_, header, _) = call(
        &app,
        "POST",
        "/settle",
        settle_body("/plain", "eip155:84532", true, None),
    )
    .await;
    assert_eq!(header, None);
    let junk = json!({"info": {"input": {"type": "http", "method": "TRACE"}}, "schema": {}});
    let (_, _, body) = call(
        &app,
        "POST",
        "/settle",
        settle_body("/junk", "eip155:84532", true, Some(junk)),
    )
    .await;
    assert_eq!(body["success"], true, "the payment itself stands");
    assert_eq!(body["extensions"]["bazaar"]["status"], "rejected");
    assert!(
        body["extensions"]["bazaar"]["rejectedReason"]
            .as_str()
            .unwrap()
            .contains("TRACE")
    );
    let (_, all) = list(&app, "").await;
    assert_eq!(
        all["pagination"],
        json!({"limit": 20, "offset": 0, "total": 1})
    );
    assert_eq!(all["items"][0]["resource"], "https://shop.example/r/0");
    assert_eq!(all["items"][0]["description"], "item /r/0");
    assert_eq!(all["items"][0]["accepts"][0]["amount"], "5");

    // 24 more: 20 http on one network, 4 mcp on another.
    for i in 1..21 {
        call(
            &app,
            "POST",
            "/settle",
            settle_body(
                &format!("/r/{i}"),
                "eip155:84532",
                true,
                Some(declaration("http")),
            ),
        )
        .await;
    }
    for i in 0..4 {
        call(
            &app,
            "POST",
            "/settle",
            settle_body(
                &format!("/mcp/{i}"),
                "eip155:8453",
                true,
                Some(declaration("mcp")),
            ),
        )
        .await;
    }
    let (_, first) = list(&app, "").await;
    assert_eq!(
        first["pagination"],
        json!({"limit": 20, "offset": 0, "total": 25})
    );
    assert_eq!(first["items"].as_array().unwrap().len(), 20);
    let (_, rest) = list(&app, "?limit=10&offset=20").await;
    assert_eq!(
        rest["pagination"],
        json!({"limit": 10, "offset": 20, "total": 25})
    );
    assert_eq!(rest["items"].as_array().unwrap().len(), 5);
    let mut seen: Vec<String> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["items"].as_array().unwrap())
        .map(|i| i["resource"].as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 25, "the pages do not overlap");
    let (_, mcp) = list(&app, "?type=mcp").await;
    assert_eq!(mcp["pagination"]["total"], 4);
    assert!(
        mcp["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["type"] == "mcp")
    );
    let (_, base) = list(&app, "?network=eip155:8453&payTo=0xb0b").await;
    assert_eq!(base["pagination"]["total"], 4);
    let (_, none) = list(&app, "?scheme=upto").await;
    assert_eq!(none["pagination"]["total"], 0);
    for bad in ["?limit=0", "?limit=101", "?offset=-3", "?limit=ten"] {
        let (status, body) = list(&app, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(body["error"].as_str().is_some(), "{bad}");
    }
}

#[tokio::test]
async fn without_the_bazaar_there_is_no_discovery() {
    let app = app(false);
    let (status, body) = list(&app, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("not enabled"));
    let (_, header, body) = call(
        &app,
        "POST",
        "/settle",
        settle_body("/r", "eip155:84532", true, Some(declaration("http"))),
    )
    .await;
    assert_eq!((header, body.get("extensions").cloned()), (None, None));
}

//! The bazaar (discovery) extension against the official `@x402/extensions` package
//! (`tests/interop/bazaar.mjs`): our declarations pass its validators (and our negatives fail
//! them), its declarations are byte for byte the ones our builder writes for the same
//! configuration and pass ours, its route-template rule and ours agree, and its facilitator-side
//! extraction names the resource our catalogue keys it under.

use serde_json::{Value, json};
use x402_core::UnixTime;
use x402_core::extension::Declaration;
use x402_core::extension::JsonObject;
use x402_core::extension::bazaar::{self, Bazaar, BodyType, catalog_entry};
use x402_core::wire::{PaymentPayloadV2, PaymentRequirementsV2};
use x402_tests::e2e::NodeScript;

fn ours() -> Vec<(Declaration, bool)> {
    let query = Bazaar::query()
        .method("GET")
        .input_example(json!({"city": "Paris"}))
        .input_schema(json!({"properties": {"city": {"type": "string"}}, "required": ["city"]}))
        .output_example(json!({"temperature": 21}))
        .output_schema(json!({"properties": {"temperature": {"type": "number"}}}));
    let body = Bazaar::body(BodyType::Json)
        .method("POST")
        .input_example(json!({"prompt": "hi"}))
        .input_schema(json!({"properties": {"prompt": {"type": "string"}}}));
    let mcp = Bazaar::mcp(
        "search",
        JsonObject::parse(r#"{"type":"object","properties":{"q":{"type":"string"}}}"#).unwrap(),
    )
    .tool_description("Search")
    .transport("sse")
    .input_example(json!({"q": "x"}));
    let enriched = bazaar::enrich(
        &Bazaar::query().declaration(),
        "GET",
        Some("/users/:id"),
        "/users/42",
    );
    let form = Bazaar::body(BodyType::FormData)
        .method("PUT")
        .route_template("/items/:item");
    let form = bazaar::enrich(&form.declaration(), "PUT", Some("/items/:item"), "/items/9");
    // Negatives: a query input with a body method, an example the schema refuses, a template
    // with a traversal.
    let wrong_method = Bazaar::query().method("POST").declaration();
    let wrong_example = Bazaar::query()
        .method("GET")
        .input_example(json!({"city": 5}))
        .input_schema(json!({"properties": {"city": {"type": "string"}}}))
        .declaration();
    let mut traversal = enriched.clone();
    traversal.siblings.set_value("routeTemplate", "/a/%2e%2e/b");
    vec![
        (query.declaration(), true),
        (body.declaration(), true),
        (mcp.declaration(), true),
        (enriched, true),
        (form, true),
        (wrong_method, false),
        (wrong_example, false),
        (traversal, false),
    ]
}

const TEMPLATES: &[&str] = &[
    "/users/:id",
    "/a/b.json",
    "/x~y/%20z",
    "/",
    "users",
    "/a/../b",
    "/a/%2e%2e/b",
    "/a/%252e%252e/b",
    "/http://evil",
    "/a%3A%2F%2Fb",
    "/%zz",
    "/%ff",
    "/a b",
];

fn payment(declaration: &Value, url: &str) -> (Value, Value) {
    let requirements = json!({"scheme": "exact", "network": "eip155:84532", "amount": "1000",
        "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "payTo": "0x00000000000000000000000000000000000000b0",
        "maxTimeoutSeconds": 60, "extra": {"name": "USDC", "version": "2"}});
    let payload = json!({"x402Version": 2, "resource": {"url": url, "description": "d"},
        "accepted": requirements, "payload": {}, "extensions": {"bazaar": declaration}});
    (payload, requirements)
}

#[tokio::test]
async fn bazaar_declarations_interoperate_with_the_official_package() {
    let ours = ours();
    let declarations: Vec<Value> = ours
        .iter()
        .map(|(d, _)| serde_json::from_str(&d.to_json()).unwrap())
        .collect();
    let urls = [
        "https://shop.example/users/42?x=1",
        "https://Shop.example:8443/plain/path",
    ];
    let payloads: Vec<Value> = [(&declarations[3], urls[0]), (&declarations[0], urls[1])]
        .into_iter()
        .map(|(d, url)| {
            let (payload, requirements) = payment(d, url);
            json!({"payload": payload, "requirements": requirements})
        })
        .collect();
    let input = json!({"declarations": declarations, "templates": TEMPLATES, "payloads": payloads});
    let lines = NodeScript::new("bazaar.mjs")
        .run(&[], &[("BAZAAR_INPUT", input.to_string())])
        .await;
    let line = lines.last().expect("one JSON line");
    let answer: Value = serde_json::from_str(line).unwrap();
    // Their declarations as written (a `Value` would sort the members).
    let theirs_in_order = JsonObject::parse(line).unwrap().object("theirs").unwrap();

    // Ours, judged by theirs (and our own check agrees).
    for (i, (declaration, expected)) in ours.iter().enumerate() {
        let theirs = &answer["ours"][i];
        assert_eq!(
            theirs["valid"],
            *expected,
            "declaration {i}: {theirs}\n{}",
            declaration.to_json()
        );
        assert_eq!(
            bazaar::check(declaration).is_ok(),
            *expected,
            "our check, declaration {i}"
        );
    }

    // Route templates: the same verdicts.
    for (i, t) in TEMPLATES.iter().enumerate() {
        assert_eq!(
            answer["templates"][i],
            bazaar::is_valid_route_template(t),
            "{t:?}"
        );
    }

    // Theirs, byte for byte ours, and accepted by our check and catalogue.
    for (name, ours) in [
        ("query", &ours[0].0),
        ("body", &ours[1].0),
        ("mcp", &ours[2].0),
        ("bare", &Bazaar::query().declaration()),
        ("enriched", &ours[3].0),
    ] {
        let theirs = theirs_in_order.get(name).unwrap().get().to_owned();
        assert_eq!(ours.to_json(), theirs, "{name}");
        let parsed: Declaration = serde_json::from_str(&theirs).unwrap();
        assert_eq!(parsed.to_json(), theirs, "{name} round trip");
        if name != "bare" {
            assert_eq!(bazaar::check(&parsed), Ok(()), "{name}");
        }
    }

    // Their extraction names the resource under our catalogue's key.
    for (i, url) in urls.iter().enumerate() {
        let p = &payloads[i];
        let payload: PaymentPayloadV2 = serde_json::from_value(p["payload"].clone()).unwrap();
        let requirements: PaymentRequirementsV2 =
            serde_json::from_value(p["requirements"].clone()).unwrap();
        let entry = catalog_entry(
            &payload,
            &requirements,
            UnixTime(0),
            std::time::Duration::from_secs(1),
        )
        .unwrap()
        .unwrap();
        let theirs = &answer["extracted"][i];
        assert_eq!(
            theirs["resourceUrl"].as_str().unwrap().to_ascii_lowercase(),
            entry.resource.to_ascii_lowercase(),
            "{url}"
        );
    }
    assert_eq!(answer["extracted"][0]["routeTemplate"], "/users/:id");
}

use super::*;

const SHOP: &str = "shop-key-0123456789abcdef0123456789abcdef";
const OPS: &str = "ops-key-0123456789abcdef0123456789abcdef";
const SELLER: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
const SOL_SELLER: &str = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin";

fn env(name: &str) -> Option<String> {
    match name {
        "SHOP" => Some(SHOP.into()),
        "OPS" => Some(OPS.into()),
        _ => None,
    }
}

fn access(extra: &str) -> Access {
    let text = format!(
        r#"
        [[auth.keys]]
        id = "shop"
        key = "$SHOP"
        networks = ["eip155:84532", "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"]
        schemes = ["exact"]
        pay_to = ["{}", "{SOL_SELLER}"]
        {extra}
        [[auth.keys]]
        id = "ops"
        key = "$OPS"
        "#,
        SELLER.to_lowercase()
    );
    let table: toml::Table = toml::from_str(&text).unwrap();
    Access::new(&AuthConfig::resolve(table.get("auth").cloned(), &env).unwrap())
        .with_metrics(Arc::new(Metrics::default()))
}

fn headers(value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
    h
}

fn request(scheme: &str, network: &str, pay_to: &str) -> VerifyRequest {
    let requirements = serde_json::json!({
        "scheme": scheme, "network": network, "amount": "1000", "asset": "0xa",
        "payTo": pay_to, "maxTimeoutSeconds": 60
    });
    let body = serde_json::json!({
        "x402Version": 2,
        "paymentPayload": { "x402Version": 2, "accepted": requirements, "payload": {} },
        "paymentRequirements": requirements,
    });
    VerifyRequest::from_json(
        body.to_string().as_bytes(),
        x402_core::json::JsonLimits::DEFAULT,
    )
    .unwrap()
}

#[test]
fn keys_are_required_and_compared_by_value() {
    let a = access("");
    for (h, status, cause) in [
        (HeaderMap::new(), 401, "missing_key"),
        (headers(SHOP), 401, "missing_key"),
        (headers("Basic abc"), 401, "missing_key"),
        (headers("Bearer "), 401, "missing_key"),
        (headers(&format!("Bearer {SHOP}x")), 401, "unknown_key"),
        (
            headers(&format!("Bearer {}", &SHOP[1..])),
            401,
            "unknown_key",
        ),
    ] {
        let e = a.admit(Route::Verify, &h).unwrap_err();
        assert_eq!((e.status().as_u16(), e.cause()), (status, cause), "{h:?}");
        let r = e.response();
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"x402-facilitator\""
        );
    }
    assert_eq!(
        a.admit(Route::Verify, &headers(&format!("bearer {SHOP}")))
            .unwrap()
            .key_id(),
        Some("shop")
    );
    assert_eq!(
        a.admit(Route::Settle, &headers(&format!("Bearer {OPS}")))
            .unwrap()
            .key_id(),
        Some("ops")
    );
    // Open access admits anyone, without a key id.
    let open = Access::open()
        .admit(Route::Settle, &HeaderMap::new())
        .unwrap();
    assert_eq!(open.key_id(), None);
    assert!(
        open.check_scope(Route::Settle, &request("upto", "eip155:1", "0x1"))
            .is_ok()
    );
    assert!(open.settle_permit().unwrap().is_none());
}

#[test]
fn scope_compares_evm_recipients_in_any_case_and_solana_exactly() {
    let a = access("");
    let shop = a
        .admit(Route::Settle, &headers(&format!("Bearer {SHOP}")))
        .unwrap();
    let ok = [
        request("exact", "eip155:84532", SELLER),
        request(
            "exact",
            "eip155:84532",
            &SELLER.to_uppercase().replace("0X", "0x"),
        ),
        request(
            "exact",
            "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
            SOL_SELLER,
        ),
    ];
    for r in &ok {
        shop.check_scope(Route::Settle, r).unwrap();
    }
    for (r, cause) in [
        (request("exact", "eip155:8453", SELLER), "network"),
        (request("exact", "made-up", SELLER), "network"),
        (request("upto", "eip155:84532", SELLER), "scheme"),
        (
            request(
                "exact",
                "eip155:84532",
                "0x0000000000000000000000000000000000000001",
            ),
            "pay_to",
        ),
        (
            request(
                "exact",
                "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
                &SOL_SELLER.to_lowercase(),
            ),
            "pay_to",
        ),
    ] {
        let e = shop.check_scope(Route::Settle, &r).unwrap_err();
        assert_eq!((e.status().as_u16(), e.cause()), (403, cause));
    }
    // A key without a scope may do anything.
    let ops = a
        .admit(Route::Settle, &headers(&format!("Bearer {OPS}")))
        .unwrap();
    ops.check_scope(Route::Settle, &request("upto", "eip155:1", "0x1"))
        .unwrap();
}

#[test]
fn rates_and_concurrency_answer_429_with_retry_after() {
    let a = access("verifies_per_second = 2\nsettles_per_second = 0.001\nconcurrent_settles = 1");
    let h = headers(&format!("Bearer {SHOP}"));
    a.admit(Route::Verify, &h).unwrap();
    a.admit(Route::Verify, &h).unwrap();
    let e = a.admit(Route::Verify, &h).unwrap_err();
    assert_eq!((e.status().as_u16(), e.cause()), (429, "verify_rate"));
    assert_eq!(e.response().headers()[header::RETRY_AFTER], "1");

    let first = a.admit(Route::Settle, &h).unwrap();
    let e = a.admit(Route::Settle, &h).unwrap_err();
    assert_eq!((e.status().as_u16(), e.cause()), (429, "settle_rate"));
    let after: u64 = e.response().headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((900..=1000).contains(&after), "{after}");
    // Another key's limits are its own.
    a.admit(Route::Settle, &headers(&format!("Bearer {OPS}")))
        .unwrap();

    let permit = first.settle_permit().unwrap();
    let e = first.settle_permit().unwrap_err();
    assert_eq!(
        (e.status().as_u16(), e.cause()),
        (429, "concurrent_settles")
    );
    assert_eq!(e.response().headers()[header::RETRY_AFTER], "1");
    drop(permit);
    assert!(first.settle_permit().unwrap().is_some());
}

#[test]
fn keys_never_appear_in_debug_bodies_or_metrics() {
    let metrics = Arc::new(Metrics::default());
    let a = access("settles_per_second = 0.001").with_metrics(metrics.clone());
    let h = headers(&format!("Bearer {SHOP}"));
    let admitted = a.admit(Route::Settle, &h).unwrap();
    let mut shown = vec![format!("{a:?}"), format!("{admitted:?}")];
    for e in [
        a.admit(Route::Settle, &h).unwrap_err(),
        a.admit(Route::Settle, &headers(&format!("Bearer {SHOP}{OPS}")))
            .unwrap_err(),
        admitted
            .check_scope(Route::Settle, &request("upto", "eip155:84532", SELLER))
            .unwrap_err(),
    ] {
        shown.push(format!("{e:?}"));
        shown.push(e.message.clone());
    }
    shown.push(metrics.render());
    for text in &shown {
        assert!(!text.contains(SHOP) && !text.contains(OPS), "{text}");
    }
    let rendered = metrics.render();
    for needle in [
        r#"x402_auth_refusals_total{route="settle",key="shop",cause="settle_rate"} 1"#,
        r#"x402_auth_refusals_total{route="settle",key="",cause="unknown_key"} 1"#,
        r#"x402_auth_refusals_total{route="settle",key="shop",cause="scheme"} 1"#,
    ] {
        assert!(rendered.contains(needle), "{needle}\n{rendered}");
    }
}

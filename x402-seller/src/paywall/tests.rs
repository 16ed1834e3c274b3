use super::*;

#[test]
fn token_units_place_the_decimal_point() {
    assert_eq!(token_units("10000", 6), "0.01");
    assert_eq!(token_units("1000000", 6), "1");
    assert_eq!(token_units("1234567", 6), "1.234567");
    assert_eq!(token_units("0", 6), "0");
    assert_eq!(token_units("5", 0), "5");
    assert_eq!(token_units("1", 18), "0.000000000000000001");
}

#[test]
fn html_escaping_covers_markup_and_quotes() {
    assert_eq!(
        escape(r#"<a href="x">'&'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
}

#[test]
fn script_json_cannot_close_its_element() {
    let hostile = serde_json::json!({
        "description": "</script><script>alert(1)</script><!-- \u{2028}\u{2029} & done"
    });
    let out = json_for_script(&hostile);
    for bad in ["<", ">", "\u{2028}", "\u{2029}", "&"] {
        assert!(!out.contains(bad), "{bad:?} left in {out}");
    }
    // still the same JSON
    let back: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(back, hostile);
}

#[test]
fn the_policy_allows_exactly_the_inline_script_and_style() {
    let csp = content_security_policy(&PaywallConfig::new(), &offers("d"));
    let hash = |s: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s));
    assert!(csp.contains(&format!("script-src 'sha256-{}'", hash(SCRIPT))));
    assert!(csp.contains(&format!("style-src 'sha256-{}'", hash(STYLE))));
    assert!(csp.starts_with("default-src 'none';"));
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    assert!(csp.ends_with("frame-ancestors 'none'"), "{csp}");
}

const DEVNET: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";

fn solana_offers() -> Offers {
    let mut o = offers("d");
    let requirement: PaymentRequirementsV2 = serde_json::from_value(serde_json::json!({
        "scheme": "exact",
        "network": DEVNET,
        "amount": "10000",
        "asset": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
        "payTo": "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse",
        "maxTimeoutSeconds": 60,
        "extra": {"feePayer": "9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu"}
    }))
    .unwrap();
    o.v2.push(requirement);
    o
}

fn page_data(html: &str) -> serde_json::Value {
    let start = html.find("id=\"x402-data\">").unwrap() + "id=\"x402-data\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

#[test]
fn a_solana_rpc_is_published_and_allowed_only_where_its_network_is_offered() {
    let config = PaywallConfig::new()
        .solana_rpc(DEVNET, "https://old.example")
        .solana_rpc(DEVNET, "https://RPC.example:8899/path?key=public")
        .solana_rpc(
            "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
            "https://mainnet.example",
        );
    let csp = content_security_policy(&config, &solana_offers());
    assert!(
        csp.contains("connect-src 'self' https://rpc.example:8899;"),
        "{csp}"
    );
    assert!(
        !csp.contains("old.example") && !csp.contains("mainnet.example"),
        "{csp}"
    );
    let data = page_data(&page(&config, &solana_offers(), "Payment required"));
    assert_eq!(
        data["solanaRpc"],
        serde_json::json!({ DEVNET: "https://RPC.example:8899/path?key=public" })
    );
    // a page without Solana offers publishes and allows no RPC
    let evm_only = content_security_policy(&config, &offers("d"));
    assert!(evm_only.contains("connect-src 'self';"), "{evm_only}");
    assert_eq!(
        page_data(&page(&config, &offers("d"), "Payment required"))["solanaRpc"],
        serde_json::json!({})
    );
}

#[test]
fn unusable_rpc_urls_are_neither_published_nor_allowed() {
    for bad in [
        "ftp://rpc.example",
        "javascript:alert(1)",
        "https://user:pass@rpc.example",
        "https://rpc.example; script-src *",
        "https://rpc.example'",
        "https://",
        "rpc.example",
        "https://rpc.example/ path",
    ] {
        let config = PaywallConfig::new().solana_rpc(DEVNET, bad);
        let csp = content_security_policy(&config, &solana_offers());
        assert!(csp.contains("connect-src 'self';"), "{bad}: {csp}");
        let data = page_data(&page(&config, &solana_offers(), "Payment required"));
        assert_eq!(data["solanaRpc"], serde_json::json!({}), "{bad}");
    }
    assert_eq!(
        rpc_origin("http://127.0.0.1:8899").as_deref(),
        Some("http://127.0.0.1:8899")
    );
    assert_eq!(
        rpc_origin("https://[::1]:8899/").as_deref(),
        Some("https://[::1]:8899")
    );
}

fn offers(description: &str) -> Offers {
    let requirement: PaymentRequirementsV2 = serde_json::from_value(serde_json::json!({
        "scheme": "exact",
        "network": "eip155:84532",
        "amount": "10000",
        "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
        "maxTimeoutSeconds": 60,
        "extra": {"name": "USDC", "version": "2"}
    }))
    .unwrap();
    Offers {
        v2: vec![requirement],
        v2_from: Vec::new(),
        v1: Vec::new(),
        v1_from: Vec::new(),
        resource: serde_json::from_value(serde_json::json!({
            "url": "https://api.example.com/premium-data",
            "description": description,
            "mimeType": "application/json"
        }))
        .unwrap(),
        extensions: None,
    }
}

#[test]
fn the_page_escapes_seller_text_and_embeds_the_document() {
    let hostile = "</script><script>alert('x')</script>";
    let config = PaywallConfig::new()
        .app_name("<b>Shop</b>")
        .app_logo("javascript:alert(1)")
        .testnet(true);
    let html = page(&config, &offers(hostile), "Payment required");
    // exactly the two script elements of the page
    assert_eq!(html.matches("<script").count(), 2, "{html}");
    assert_eq!(html.matches("</script>").count(), 2, "{html}");
    assert!(html.contains("&lt;/script&gt;&lt;script&gt;alert(&#39;x&#39;)"));
    assert!(html.contains("<title>&lt;b&gt;Shop&lt;/b&gt;</title>"));
    assert!(
        !html.contains("javascript:"),
        "a non-http logo is not shown"
    );
    assert!(html.contains("Test network"));
    // the document is the v2 PaymentRequired, readable back from the JSON island
    let start = html.find("id=\"x402-data\">").unwrap() + "id=\"x402-data\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    let data: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
    assert_eq!(data["required"]["x402Version"], 2);
    assert_eq!(data["required"]["resource"]["description"], hostile);
    assert_eq!(data["required"]["accepts"][0]["amount"], "10000");
    assert_eq!(data["testnet"], true);
}

#[test]
fn labelled_assets_show_in_token_units() {
    let plain = page(&PaywallConfig::new(), &offers("d"), "Payment required");
    assert!(plain.contains("10000 atomic units of"));
    let config = PaywallConfig::new()
        .app_logo("https://example.com/logo.png")
        .asset(
            "eip155:84532",
            "0x036cbd53842c5426634e7929541ec2318f3dcf7e",
            "USDC",
            6,
        );
    let html = page(&config, &offers("d"), "Payment required");
    assert!(html.contains("<td>0.01 USDC</td>"), "{html}");
    assert!(html.contains("src=\"https://example.com/logo.png\""));
}

#[test]
fn the_inlined_assets_cannot_close_their_elements() {
    assert!(!SCRIPT.to_ascii_lowercase().contains("</script"));
    assert!(!STYLE.to_ascii_lowercase().contains("</style"));
    // no external resource is referenced by the page's own code
    for asset in [SCRIPT, STYLE] {
        assert!(!asset.contains("http://") && !asset.contains("https://"));
        assert!(!asset.contains("@import") && !asset.contains("url("));
    }
}

#[test]
fn solana_labels_match_the_mint_exactly() {
    let mint = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";
    let labelled = |asset: &str| {
        let config = PaywallConfig::new().asset(DEVNET, asset, "USDC", 6);
        page(&config, &solana_offers(), "Payment required")
    };
    assert!(labelled(mint).contains("<td>0.01 USDC</td>"));
    // another base58 string, though equal ignoring case
    let other = labelled(&mint.to_ascii_lowercase());
    assert!(!other.contains("0.01 USDC"));
    assert!(other.contains("10000 atomic units of <code>4zMMC9"));
}

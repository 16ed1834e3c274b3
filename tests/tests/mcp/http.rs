//! Streamable HTTP.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use alloy::primitives::U256;
use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, JsonObject, RequestMetaObject};
use rmcp::service::{Peer, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use x402_buyer::Policy;
use x402_core::wire::PaymentRequired;
use x402_mcp::{PAYMENT_META_KEY, PayingClient, payment_required_of, settlement_of};
use x402_tests::e2e::{EXACT_UNITS, Shop, buyer_for};
use x402_tests::mcp::{JOKE, JokeTools, paid_tools, serve_http};

async fn connect(url: &str) -> RunningService<RoleClient, ()> {
    ().serve(StreamableHttpClientTransport::from_uri(url.to_owned()))
        .await
        .expect("connect to the MCP server")
}

fn call(name: &str) -> CallToolRequestParams {
    CallToolRequestParams::new(name.to_owned())
}

fn with_payment(name: &str, payment: serde_json::Value) -> CallToolRequestParams {
    let mut params = call(name);
    params
        .meta
        .get_or_insert_with(RequestMetaObject::new)
        .insert(PAYMENT_META_KEY.to_owned(), payment);
    params
}

fn text(result: &rmcp::model::CallToolResult) -> String {
    result.content[0].as_text().expect("text").text.clone()
}

struct Bed {
    shop: Shop,
    tools: Arc<JokeTools>,
    url: String,
}

async fn start() -> Bed {
    let shop = Shop::start().await;
    let tools = Arc::new(JokeTools::default());
    let url = serve_http(tools.clone(), paid_tools(&shop)).await;
    Bed { shop, tools, url }
}

async fn balances(bed: &Bed, buyer: alloy::primitives::Address) -> (U256, U256) {
    (
        bed.shop.usdc(buyer).await,
        bed.shop.usdc(bed.shop.h.bed.seller().address).await,
    )
}

#[tokio::test]
async fn our_client_pays_our_server_once_over_streamable_http() {
    let bed = start().await;
    let b = bed.shop.h.bed.buyer(0).clone();
    let client = connect(&bed.url).await;
    let peer: &Peer<RoleClient> = &client;
    let (buyer_before, seller_before) = balances(&bed, b.address).await;

    // Unpaid: the spec's payment-required tool error, the tool not run, nothing moved.
    let unpaid = peer.call_tool(call("joke")).await.unwrap();
    assert_eq!(unpaid.is_error, Some(true));
    let structured = unpaid
        .structured_content
        .clone()
        .expect("structuredContent");
    assert_eq!(structured["x402Version"], 2);
    assert_eq!(structured["accepts"][0]["amount"], EXACT_UNITS.to_string());
    assert_eq!(structured["resource"]["url"], "mcp://tool/joke");
    let as_text: serde_json::Value = serde_json::from_str(&text(&unpaid)).unwrap();
    assert_eq!(as_text, structured, "content[0].text is the same document");
    assert!(matches!(
        payment_required_of(&unpaid),
        Some(PaymentRequired::V2(_))
    ));
    assert_eq!(bed.tools.jokes.load(Ordering::SeqCst), 0);

    // A free tool is untouched.
    let free = peer.call_tool(call("free")).await.unwrap();
    assert_eq!(free.is_error, Some(false));
    assert_eq!(text(&free), "free for all");

    // Paid: the tool runs once, the settlement is in the result's _meta, the balances move once.
    let buyer = Arc::new(buyer_for(&bed.shop.h, &b.signer, Policy::default()));
    let paying = PayingClient::new(buyer.clone());
    let paid = paying.call_tool(peer, call("joke")).await.unwrap();
    assert_eq!(paid.result.is_error, Some(false));
    assert_eq!(text(&paid.result), JOKE);
    let settlement = paid.settlement().expect("a settlement").clone();
    assert!(settlement.success, "{settlement:?}");
    assert!(settlement.transaction.starts_with("0x"));
    assert_eq!(
        settlement_of(&paid.result).unwrap().transaction,
        settlement.transaction
    );
    assert_eq!(bed.tools.jokes.load(Ordering::SeqCst), 1);
    let units = U256::from(EXACT_UNITS);
    assert_eq!(
        balances(&bed, b.address).await,
        (buyer_before - units, seller_before + units)
    );
    assert_eq!(bed.shop.counting.settles.load(Ordering::SeqCst), 1);
    assert_eq!(
        buyer.spent(
            &bed.shop.h.network,
            &bed.shop.h.bed.usdc().to_checksum(None)
        ),
        x402_core::Amount::from(EXACT_UNITS)
    );

    // The same payment again: refused, not settled twice, the tool not run again.
    let payload = serde_json::to_value(&buyer_payment(&bed, &b.signer, "joke").await).unwrap();
    let first = peer
        .call_tool(with_payment("joke", payload.clone()))
        .await
        .unwrap();
    assert_eq!(first.is_error, Some(false));
    let after_first = balances(&bed, b.address).await;
    let replay = peer.call_tool(with_payment("joke", payload)).await.unwrap();
    assert!(payment_required_of(&replay).is_some(), "{replay:?}");
    assert_eq!(balances(&bed, b.address).await, after_first);
    assert_eq!(bed.tools.jokes.load(Ordering::SeqCst), 2);
    assert_eq!(bed.shop.counting.settles.load(Ordering::SeqCst), 2);
    client.cancel().await.unwrap();
}

/// A payment for tool `name` signed by `signer` (through a buyer with no policy limits).
async fn buyer_payment(
    bed: &Bed,
    signer: &alloy::signers::local::PrivateKeySigner,
    name: &str,
) -> x402_core::wire::PaymentPayload {
    let client = connect(&bed.url).await;
    let unpaid = client.call_tool(call(name)).await.unwrap();
    let required = payment_required_of(&unpaid).expect("a payment request");
    let buyer = buyer_for(&bed.shop.h, signer, Policy::default());
    let url = reqwest::Url::parse(&format!("mcp://tool/{name}")).unwrap();
    let signed = buyer.sign_required(&url, &required).await.unwrap();
    client.cancel().await.unwrap();
    signed.payload
}

#[tokio::test]
async fn bad_payments_are_refused_with_the_payment_request_and_nothing_moves() {
    let bed = start().await;
    let b = bed.shop.h.bed.buyer(1).clone();
    let client = connect(&bed.url).await;
    let before = balances(&bed, b.address).await;

    // Not a payment document at all.
    for garbage in [
        serde_json::json!("not a payment"),
        serde_json::json!({"x402Version": 2}),
        serde_json::json!(12),
    ] {
        let result = client
            .call_tool(with_payment("joke", garbage.clone()))
            .await
            .unwrap();
        let Some(PaymentRequired::V2(doc)) = payment_required_of(&result) else {
            panic!("{garbage}: a payment request, got {result:?}")
        };
        assert!(
            doc.error.is_some_and(|e| !e.is_empty()),
            "{garbage}: a reason"
        );
    }

    // A signed payment whose signature is broken: the facilitator's verify refuses it.
    let mut payment = serde_json::to_value(buyer_payment(&bed, &b.signer, "joke").await).unwrap();
    let signature = payment["payload"]["signature"].as_str().unwrap().to_owned();
    let broken = format!("{}{}", &signature[..10], "0".repeat(signature.len() - 10));
    payment["payload"]["signature"] = broken.into();
    let result = client
        .call_tool(with_payment("joke", payment))
        .await
        .unwrap();
    let Some(PaymentRequired::V2(doc)) = payment_required_of(&result) else {
        panic!("a payment request, got {result:?}")
    };
    assert!(doc.error.is_some_and(|e| !e.is_empty()));

    // A payment signed for another price (the dynamic tool at 1 unit) does not pay `joke`.
    let mut priced = call("priced");
    let mut args = JsonObject::new();
    args.insert("units".into(), 1.into());
    priced.arguments = Some(args);
    let unpaid = client.call_tool(priced).await.unwrap();
    let Some(PaymentRequired::V2(cheap)) = payment_required_of(&unpaid) else {
        panic!("a payment request for priced, got {unpaid:?}")
    };
    assert_eq!(cheap.accepts[0].amount.to_string(), "1");
    let buyer = buyer_for(&bed.shop.h, &b.signer, Policy::default());
    let url = reqwest::Url::parse("mcp://tool/priced").unwrap();
    let signed = buyer
        .sign_required(&url, &PaymentRequired::V2(cheap))
        .await
        .unwrap();
    let result = client
        .call_tool(with_payment(
            "joke",
            serde_json::to_value(&signed.payload).unwrap(),
        ))
        .await
        .unwrap();
    assert!(payment_required_of(&result).is_some(), "{result:?}");

    // A priced call with an unusable argument: a tool error, never a protocol error.
    let result = client.call_tool(call("priced")).await.unwrap();
    assert_eq!(result.is_error, Some(true));

    assert_eq!(
        bed.tools.jokes.load(Ordering::SeqCst),
        0,
        "the tool never ran"
    );
    assert_eq!(balances(&bed, b.address).await, before, "nothing moved");
    assert_eq!(
        bed.shop.counting.settles.load(Ordering::SeqCst),
        0,
        "nothing settled"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_failing_tool_is_not_charged() {
    let bed = start().await;
    let b = bed.shop.h.bed.buyer(2).clone();
    let client = connect(&bed.url).await;
    let before = balances(&bed, b.address).await;
    let buyer = Arc::new(buyer_for(&bed.shop.h, &b.signer, Policy::default()));
    let paid = PayingClient::new(buyer)
        .call_tool(&client, call("fail"))
        .await
        .unwrap();
    assert_eq!(paid.result.is_error, Some(true));
    assert_eq!(text(&paid.result), "the tool broke");
    assert!(paid.settlement().is_none());
    assert_eq!(bed.tools.failures.load(Ordering::SeqCst), 1);
    assert_eq!(bed.shop.counting.verifies.load(Ordering::SeqCst), 1);
    assert_eq!(bed.shop.counting.settles.load(Ordering::SeqCst), 0);
    assert_eq!(balances(&bed, b.address).await, before);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_buyer_policy_bounds_what_the_client_pays() {
    let bed = start().await;
    let b = bed.shop.h.bed.buyer(3).clone();
    let client = connect(&bed.url).await;
    let before = balances(&bed, b.address).await;
    let usdc = bed.shop.h.bed.usdc().to_checksum(None);
    // A daily budget of 0.015 USDC pays one 0.01 call and refuses the second before signing.
    let policy = Policy::default().with_budget(
        x402_buyer::Budget::per_day("0.015").for_asset(bed.shop.h.network.clone(), usdc),
    );
    let buyer = Arc::new(buyer_for(&bed.shop.h, &b.signer, policy));
    let paying = PayingClient::new(buyer);
    let paid = paying.call_tool(&client, call("joke")).await.unwrap();
    assert!(paid.settlement().is_some_and(|s| s.success));
    let err = paying.call_tool(&client, call("joke")).await.unwrap_err();
    assert!(
        matches!(
            err,
            x402_mcp::Error::Buyer(x402_buyer::Error::NoAcceptableOption(_))
        ),
        "{err}"
    );
    let units = U256::from(EXACT_UNITS);
    assert_eq!(bed.tools.jokes.load(Ordering::SeqCst), 1);
    assert_eq!(
        balances(&bed, b.address).await,
        (before.0 - units, before.1 + units)
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_failed_settlement_withholds_the_tool_result() {
    let shop = Shop::start().await;
    let b = shop.h.bed.buyer(3).clone();
    let drain: x402_tests::mcp::Drain = {
        let h = shop.h.clone();
        let who = b.address;
        Arc::new(move || {
            let h = h.clone();
            Box::pin(async move {
                // The payer empties its wallet while the tool runs: the settlement must fail.
                let all = h.usdc(who).await;
                h.bed
                    .transfer_usdc(who, h.bed.deployer().address, all)
                    .await;
            })
        })
    };
    let tools = Arc::new(JokeTools {
        drain: Some(drain),
        ..JokeTools::default()
    });
    let url = serve_http(tools.clone(), paid_tools(&shop)).await;
    let bed = Bed { shop, tools, url };
    let seller_before = bed.shop.usdc(bed.shop.h.bed.seller().address).await;
    let client = connect(&bed.url).await;
    let buyer = Arc::new(buyer_for(&bed.shop.h, &b.signer, Policy::default()));
    let err = PayingClient::new(buyer)
        .call_tool(&client, call("drain"))
        .await
        .unwrap_err();
    let x402_mcp::Error::Refused { error, settlement } = &err else {
        panic!("refused, got {err}")
    };
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.starts_with("settlement failed")),
        "{err}"
    );
    assert!(settlement.as_ref().is_some_and(|s| !s.success), "{err}");
    assert!(!format!("{err:?}").contains(x402_tests::mcp::DRAIN_SECRET));
    assert_eq!(
        bed.tools.drains.load(Ordering::SeqCst),
        1,
        "the tool ran once"
    );
    assert_eq!(
        bed.shop.counting.calls(),
        (1, 1),
        "settled once, never again"
    );
    assert_eq!(
        bed.shop.usdc(bed.shop.h.bed.seller().address).await,
        seller_before
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn one_payment_sent_twice_at_once_is_settled_once() {
    let bed = start().await;
    let b = bed.shop.h.bed.buyer(2).clone();
    let before = balances(&bed, b.address).await;
    let payload = serde_json::to_value(buyer_payment(&bed, &b.signer, "joke").await).unwrap();
    let (c1, c2) = (connect(&bed.url).await, connect(&bed.url).await);
    let (r1, r2) = tokio::join!(
        c1.call_tool(with_payment("joke", payload.clone())),
        c2.call_tool(with_payment("joke", payload)),
    );
    let results = [r1.unwrap(), r2.unwrap()];
    let served = results.iter().filter(|r| r.is_error == Some(false)).count();
    let refused = results
        .iter()
        .filter(|r| payment_required_of(r).is_some())
        .count();
    assert_eq!((served, refused), (1, 1), "{results:?}");
    assert_eq!(bed.tools.jokes.load(Ordering::SeqCst), 1);
    let units = U256::from(EXACT_UNITS);
    assert_eq!(
        balances(&bed, b.address).await,
        (before.0 - units, before.1 + units)
    );
    assert_eq!(bed.shop.counting.settles.load(Ordering::SeqCst), 1);
    c1.cancel().await.unwrap();
    c2.cancel().await.unwrap();
}

//! `payment-identifier` end to end on anvil, and the origin manifest: a replayed id with the same
//! payment gets the stored response (the handler ran once, the seller was paid once), the same id
//! with another payment is 409, a route requiring ids answers 400 without one, the buyer's
//! retry after a response lost behind a proxy reuses the id and the signed payment and pays once;
//! `/.well-known/x402` lists the routes and `x402 discover <origin>` prints them.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use alloy::primitives::U256;
use axum::http::{Method, StatusCode};
use x402_buyer::{BuyerHook, Policy, Retry, SignedCall};
use x402_core::header::{self as codec, PAYMENT_SIGNATURE};
use x402_core::wire::PaymentPayload;
use x402_core::{Amount, Price};
use x402_evm::assets::TransferMethod;
use x402_seller::{Accept, PaymentIdentifier, REPLAY_HEADER, Route, Seller};
use x402_tests::e2e::{
    Counting, EXACT_UNITS, buyer_for, evm_seller, serve, serve_facilitator, sign_first,
};
use x402_tests::evm::exact::ExactHarness;

/// Keeps the payment header of every payment the buyer sends.
#[derive(Debug, Default)]
struct Capture(Mutex<Vec<String>>);

#[async_trait::async_trait]
impl BuyerHook for Capture {
    fn name(&self) -> &str {
        "capture"
    }
    async fn after_payment(&self, call: &SignedCall<'_>) {
        self.0
            .lock()
            .unwrap()
            .push(codec::encode(call.payload).unwrap());
    }
}

impl Capture {
    fn last(&self) -> String {
        self.0.lock().unwrap().last().cloned().expect("a payment")
    }
}

fn accept(h: &ExactHarness) -> Accept {
    Accept::new(
        "exact",
        h.network.clone(),
        h.bed.seller().address.to_checksum(None),
        Price::Atomic(Amount::from(EXACT_UNITS)),
    )
    .max_timeout_seconds(120)
}

/// Counts the handler's runs and answers `run <n>`.
fn counted(
    runs: Arc<AtomicUsize>,
) -> impl Fn() -> std::future::Ready<String> + Clone + Send + Sync + 'static {
    move || {
        let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
        std::future::ready(format!("run {n}"))
    }
}

async fn send(url: &str, header: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .header(PAYMENT_SIGNATURE, header)
        .send()
        .await
        .unwrap()
}

/// `header`'s payment with its payment id set to `id`.
fn with_id(header: &str, id: &str) -> String {
    let bytes = codec::decode_json(header, 64 * 1024).unwrap();
    let PaymentPayload::V2(mut p) = PaymentPayload::from_json(&bytes, Default::default()).unwrap()
    else {
        panic!("v2")
    };
    let extensions = serde_json::json!({"payment-identifier": {"info": {"required": false, "id": id}, "schema": {}}});
    p.extensions = Some(serde_json::value::to_raw_value(&extensions).unwrap());
    codec::encode(&PaymentPayload::V2(p)).unwrap()
}

struct Bed {
    h: ExactHarness,
    counting: Arc<Counting>,
    seller: Seller,
}

async fn bed() -> Bed {
    let h = ExactHarness::start().await;
    let facilitator_url = serve_facilitator(h.facilitator.clone()).await;
    let counting = Arc::new(Counting::new(Arc::new(
        x402_core::client::FacilitatorClient::new(facilitator_url),
    )));
    let seller = evm_seller(&h, counting.clone(), TransferMethod::Eip3009);
    Bed {
        h,
        counting,
        seller,
    }
}

#[tokio::test]
async fn a_payment_id_replays_refuses_reuse_and_is_required_where_declared() {
    let Bed {
        h,
        counting,
        seller,
    } = bed().await;
    let (report_runs, strict_runs) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let app = seller
        .route(
            axum::Router::new(),
            Method::GET,
            "/report",
            counted(report_runs.clone()),
            Route::new()
                .description("A report")
                .accept(accept(&h))
                .extension(PaymentIdentifier::optional())
                .extension(
                    x402_core::extension::bazaar::Bazaar::query()
                        .input_example(serde_json::json!({"units": "metric"}))
                        .output_example(serde_json::json!({"temperature": 21})),
                ),
        )
        .unwrap();
    let app = seller
        .route(
            app,
            Method::GET,
            "/strict",
            counted(strict_runs.clone()),
            Route::new()
                .description("A strict report")
                .accept(accept(&h))
                .extension(PaymentIdentifier::required()),
        )
        .unwrap()
        .merge(seller.manifest_router());
    let shop = serve(app).await;
    let seller_address = h.bed.seller().address;
    let b0 = h.bed.buyer(0);
    let capture = Arc::new(Capture::default());
    let buyer = buyer_for(&h, &b0.signer, Policy::default()).with_hook(capture.clone());

    // The buyer pays with an id; the handler runs once, the seller is paid once.
    let start = h.bed.usdc_balance(seller_address).await;
    let paid = buyer.get(&format!("{shop}/report")).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    let id = paid
        .payment
        .as_ref()
        .unwrap()
        .payment_id
        .clone()
        .expect("an id");
    assert!(id.starts_with("pay_"), "{id}");
    assert_eq!(paid.response.text().await.unwrap(), "run 1");
    assert_eq!(counting.calls(), (1, 1));
    let after = start + U256::from(EXACT_UNITS);
    assert_eq!(h.bed.usdc_balance(seller_address).await, after);
    let header = capture.last();

    // The same id and payment again: the stored response, nothing verified or settled.
    let replay = send(&format!("{shop}/report"), &header).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.headers()[REPLAY_HEADER], "true");
    assert!(replay.headers().contains_key("payment-response"));
    assert_eq!(replay.text().await.unwrap(), "run 1");
    assert_eq!(report_runs.load(Ordering::SeqCst), 1);
    assert_eq!(counting.calls(), (1, 1));
    assert_eq!(h.bed.usdc_balance(seller_address).await, after);

    // The same id with another (valid, unsent) payment: 409, nothing verified or settled.
    let other = sign_first(&format!("{shop}/report"), &b0.signer, |_| {}).await;
    let reused = send(&format!("{shop}/report"), &with_id(&other, &id)).await;
    assert_eq!(reused.status(), StatusCode::CONFLICT);
    assert_eq!(counting.calls(), (1, 1));
    assert_eq!(report_runs.load(Ordering::SeqCst), 1);

    // The first payment at another route: not the stored response (the key binds the route);
    // the already used authorization is refused, nothing settles.
    let elsewhere = send(&format!("{shop}/strict"), &header).await;
    assert_ne!(elsewhere.status(), 200);
    assert_ne!(elsewhere.text().await.unwrap(), "run 1");
    assert_eq!(counting.calls().1, 1);
    assert_eq!(strict_runs.load(Ordering::SeqCst), 0);

    // A route requiring ids: a payment without one is 400 before anything is verified.
    let verifies = counting.calls().0;
    let bare = sign_first(&format!("{shop}/strict"), &b0.signer, |_| {}).await;
    let refused = send(&format!("{shop}/strict"), &bare).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("requires a payment id")
    );
    assert_eq!(counting.calls(), (verifies, 1));
    // A malformed id: 400 too.
    let bad = send(&format!("{shop}/strict"), &with_id(&bare, "short")).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(counting.calls(), (verifies, 1));
    assert_eq!(h.bed.usdc_balance(seller_address).await, after);
    // Our buyer sends one: paid.
    let strict = buyer.get(&format!("{shop}/strict")).await.unwrap();
    assert_eq!(strict.response.status(), 200);
    assert_eq!(strict_runs.load(Ordering::SeqCst), 1);
    assert_eq!(
        h.bed.usdc_balance(seller_address).await,
        after + U256::from(EXACT_UNITS)
    );

    // The origin manifest lists both routes from their configuration.
    let manifest: serde_json::Value = reqwest::get(format!("{shop}/.well-known/x402"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(manifest["x402Version"], 2);
    let items = manifest["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{manifest}");
    assert_eq!(items[0]["resource"]["url"], format!("{shop}/report"));
    assert_eq!(items[0]["input"]["method"], "GET");
    assert_eq!(items[0]["accepts"][0]["amount"], EXACT_UNITS.to_string());
    assert!(items[0].get("requires").is_none(), "{manifest}");
    // The bazaar's contract, lifted.
    assert_eq!(items[0]["type"], "http");
    assert_eq!(items[0]["input"]["routeTemplate"], "/report");
    assert_eq!(
        items[0]["input"]["queryParams"],
        serde_json::json!({"units": "metric"}),
        "{manifest}"
    );
    assert_eq!(
        items[0]["output"]["example"],
        serde_json::json!({"temperature": 21}),
        "{manifest}"
    );
    assert!(items[1].get("output").is_none(), "{manifest}");
    assert_eq!(
        items[1]["requires"],
        serde_json::json!(["payment-identifier"])
    );
    let json = reqwest::get(format!("{shop}/.well-known/x402.json"))
        .await
        .unwrap();
    assert_eq!(json.headers()["access-control-allow-origin"], "*");

    // `x402 discover <origin>` reads it.
    let asset = format!("{}:{}:6:USDC", h.network, h.bed.usdc().to_checksum(None));
    let args: Vec<String> = ["discover", &shop, "--asset", &asset]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = x402_buyer::cli::run(&args, &|_| None, &mut out, &mut err).await;
    let (out, err) = (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    );
    assert_eq!(exit, x402_buyer::cli::Exit::Success, "{err}");
    let line = out
        .lines()
        .find(|l| l.contains(&format!("GET {shop}/strict")))
        .unwrap_or_else(|| panic!("listed: {out}"));
    assert!(line.contains("0.01 USDC (exact)"), "{line}");
    assert!(line.contains("A strict report"), "{line}");
    assert!(
        out.contains("2 resource(s) in the origin manifest"),
        "{out}"
    );
}

#[tokio::test]
async fn a_retry_after_a_lost_response_reuses_the_payment_and_pays_once() {
    let Bed {
        h,
        counting,
        seller,
    } = bed().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let cli_runs = Arc::new(AtomicUsize::new(0));
    let app = seller
        .route(
            axum::Router::new(),
            Method::GET,
            "/flaky",
            counted(runs.clone()),
            Route::new()
                .accept(accept(&h))
                .extension(PaymentIdentifier::optional()),
        )
        .unwrap();
    let app = seller
        .route(
            app,
            Method::GET,
            "/flaky-cli",
            counted(cli_runs.clone()),
            Route::new()
                .accept(accept(&h))
                .extension(PaymentIdentifier::optional()),
        )
        .unwrap();
    // A proxy in front of the seller loses the first paid response of each path (after the
    // seller settled) and answers 502.
    let lost = Arc::new(AtomicBool::new(false));
    let dropped_paths = Arc::new(Mutex::new(std::collections::HashSet::new()));
    let dropped = (lost.clone(), dropped_paths.clone());
    let app = app.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let (lost, paths) = dropped.clone();
            async move {
                let paid = request.headers().contains_key(PAYMENT_SIGNATURE);
                let path = request.uri().path().to_owned();
                let response = next.run(request).await;
                if paid && paths.lock().unwrap().insert(path) {
                    lost.store(true, Ordering::SeqCst);
                    return axum::response::IntoResponse::into_response((
                        StatusCode::BAD_GATEWAY,
                        "upstream connection reset",
                    ));
                }
                response
            }
        },
    ));
    let shop = serve(app).await;
    let seller_address = h.bed.seller().address;
    let start = h.bed.usdc_balance(seller_address).await;
    let b0 = h.bed.buyer(0);
    let capture = Arc::new(Capture::default());
    let buyer = buyer_for(&h, &b0.signer, Policy::default()).with_hook(capture.clone());

    let retry = Retry {
        attempts: 3,
        pause: Duration::from_millis(50),
        timeout: None,
    };
    let request = reqwest::Client::new()
        .get(format!("{shop}/flaky"))
        .build()
        .unwrap();
    let paid = buyer.execute_idempotent(request, &retry).await.unwrap();
    assert!(
        lost.load(Ordering::SeqCst),
        "the first paid answer was lost"
    );
    assert_eq!(paid.response.status(), 200);
    assert_eq!(paid.response.headers()[REPLAY_HEADER], "true");
    assert!(paid.payment.as_ref().unwrap().payment_id.is_some());
    assert_eq!(paid.response.text().await.unwrap(), "run 1");
    // Signed once, settled once, paid once, the handler ran once.
    assert_eq!(capture.0.lock().unwrap().len(), 1);
    assert_eq!(counting.calls(), (1, 1));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(
        h.bed.usdc_balance(seller_address).await,
        start + U256::from(EXACT_UNITS)
    );
    assert_eq!(
        buyer.spent(&h.network, &h.bed.usdc().to_checksum(None)),
        Amount::from(EXACT_UNITS)
    );

    // `x402 pay --retries 2` does the same.
    let key = format!("0x{}", alloy::hex::encode(b0.signer.to_bytes()));
    let asset = format!("{}:{}:6:USDC", h.network, h.bed.usdc().to_checksum(None));
    let rpc = h.bed.anvil().endpoint().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.jsonl");
    let args: Vec<String> = [
        "pay",
        &format!("{shop}/flaky-cli"),
        "--max",
        "0.02",
        "--asset",
        &asset,
        "--evm-rpc",
        &rpc,
        "--retries",
        "2",
        "--ledger",
        ledger.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let env = move |name: &str| (name == "X402_PRIVATE_KEY").then(|| key.clone());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = x402_buyer::cli::run(&args, &env, &mut out, &mut err).await;
    let (out, err) = (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    );
    assert_eq!(exit, x402_buyer::cli::Exit::Success, "{out}\n{err}");
    assert!(out.contains("run 1"), "{out}");
    assert_eq!(cli_runs.load(Ordering::SeqCst), 1);
    assert_eq!(counting.calls(), (2, 2));
    assert_eq!(
        h.bed.usdc_balance(seller_address).await,
        start + U256::from(2 * EXACT_UNITS)
    );
    let ledger_lines = std::fs::read_to_string(&ledger).unwrap();
    let payments = ledger_lines
        .lines()
        .filter(|l| l.contains(r#""kind":"payment""#))
        .count();
    assert_eq!(payments, 1, "one payment in the ledger: {ledger_lines}");
}
#[tokio::test]
async fn a_failed_attempt_is_not_stored_and_a_concurrent_one_waits() {
    let Bed {
        h,
        counting,
        seller,
    } = bed().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let handler = {
        let (runs, started, release) = (runs.clone(), started.clone(), release.clone());
        move || {
            let (runs, started, release) = (runs.clone(), started.clone(), release.clone());
            async move {
                let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                if n == 1 {
                    // The first attempt fails: nothing is settled, nothing stored.
                    return (StatusCode::INTERNAL_SERVER_ERROR, "try again".to_owned());
                }
                started.notify_one();
                release.notified().await;
                (StatusCode::OK, format!("run {n}"))
            }
        }
    };
    let app = seller
        .route(
            axum::Router::new(),
            Method::GET,
            "/slow",
            handler,
            Route::new()
                .accept(accept(&h))
                .extension(PaymentIdentifier::required()),
        )
        .unwrap();
    let shop = serve(app).await;
    let url = format!("{shop}/slow");
    let seller_address = h.bed.seller().address;
    let start = h.bed.usdc_balance(seller_address).await;
    let b0 = h.bed.buyer(0);
    let header = with_id(
        &sign_first(&url, &b0.signer, |_| {}).await,
        "pay_idempotent_test_0001",
    );

    // The handler fails: 500, verified but not settled, and the id is free again.
    let failed = send(&url, &header).await;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(counting.calls(), (1, 0));
    assert_eq!(h.bed.usdc_balance(seller_address).await, start);

    // The same payment again, while it is being processed a third copy gets 409 + Retry-After.
    let first = tokio::spawn({
        let (url, header) = (url.clone(), header.clone());
        async move { send(&url, &header).await }
    });
    started.notified().await;
    let concurrent = send(&url, &header).await;
    assert_eq!(concurrent.status(), StatusCode::CONFLICT);
    assert_eq!(concurrent.headers()["retry-after"], "1");
    release.notify_one();
    let first = first.await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.text().await.unwrap(), "run 2");
    assert_eq!(counting.calls(), (2, 1));

    // Once it is done, the copy is answered from the store.
    let replay = send(&url, &header).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.text().await.unwrap(), "run 2");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(counting.calls(), (2, 1));
    assert_eq!(
        h.bed.usdc_balance(seller_address).await,
        start + U256::from(EXACT_UNITS)
    );
}

#[tokio::test]
async fn a_client_that_goes_away_does_not_cancel_the_payment_it_started() {
    let Bed {
        h,
        counting,
        seller,
    } = bed().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let handler = {
        let (runs, started, release) = (runs.clone(), started.clone(), release.clone());
        move || {
            let (runs, started, release) = (runs.clone(), started.clone(), release.clone());
            async move {
                let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                started.notify_one();
                release.notified().await;
                format!("run {n}")
            }
        }
    };
    let app = seller
        .route(
            axum::Router::new(),
            Method::GET,
            "/long",
            handler,
            Route::new()
                .accept(accept(&h))
                .extension(PaymentIdentifier::optional()),
        )
        .unwrap();
    let shop = serve(app).await;
    let url = format!("{shop}/long");
    let seller_address = h.bed.seller().address;
    let start = h.bed.usdc_balance(seller_address).await;
    let b0 = h.bed.buyer(0);
    let header = with_id(
        &sign_first(&url, &b0.signer, |_| {}).await,
        "pay_client_went_away_01",
    );

    // The client sends the payment and goes away while the handler runs.
    let gone = tokio::spawn({
        let (url, header) = (url.clone(), header.clone());
        async move { send(&url, &header).await }
    });
    started.notified().await;
    gone.abort();
    assert!(gone.await.unwrap_err().is_cancelled());
    release.notify_one();

    // Its retry with the same payment: 409 + Retry-After while the first is finishing, then the
    // stored response of the one run.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    let retried = loop {
        let r = send(&url, &header).await;
        if r.status() != StatusCode::CONFLICT {
            break r;
        }
        assert!(r.headers().contains_key("retry-after"));
        assert!(tokio::time::Instant::now() < deadline, "still in progress");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(retried.status(), 200);
    assert_eq!(retried.headers()[REPLAY_HEADER], "true");
    assert_eq!(retried.text().await.unwrap(), "run 1");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(counting.calls(), (1, 1));
    assert_eq!(
        h.bed.usdc_balance(seller_address).await,
        start + U256::from(EXACT_UNITS)
    );
}

//! A facilitator that answers `settlement_pending`: the seller retries the settle once, and never
//! answers a payment that may still land with a fresh 402; the buyer never pays twice. No chain:
//! a stand-in facilitator over HTTP answers /verify valid and /settle as each test scripts it,
//! our seller talks to it through `FacilitatorClient`, and our buyer signs real EIP-3009
//! authorizations offline.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::signers::local::PrivateKeySigner;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::routing::{get, post};
use axum::{Json, Router};
use x402_buyer::middleware::PayingMiddleware;
use x402_buyer::{Buyer, KnownAsset, Policy};
use x402_core::client::FacilitatorClient;
use x402_core::header::{PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, X_PAYMENT};
use x402_core::wire::{SettleResponse, SupportedKind, SupportedResponse, VerifyResponse};
use x402_core::{
    Amount, BuyerRole as _, Network, Price, Reason, Registry, SellerRole as _, SettleTimeouts,
    X402Version,
};
use x402_seller::{Accept, Route, Seller, SellerOptions};
use x402_tests::e2e::{serve, sign_first};

const NETWORK: &str = "eip155:84532";
/// Base Sepolia USDC, priced from the built-in asset table.
const USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const PAY_TO: &str = "0x00000000000000000000000000000000000000aa";
const PRICE: u64 = 10_000;
const TX: &str = "0x5e771e5e771e5e771e5e771e5e771e5e771e5e771e5e771e5e771e5e771e5e77";
const CONTENT: &str = "the paid content";

/// A facilitator stand-in: /verify is valid; /settle answers `settlement_pending` (naming
/// [`TX`]) the first `pending_first` times, then `then`. Records every settle body.
struct StandIn {
    pending_first: usize,
    then: SettleResponse,
    verifies: AtomicUsize,
    settles: Mutex<Vec<serde_json::Value>>,
}

fn settlement(success: bool, reason: Option<Reason>) -> SettleResponse {
    SettleResponse {
        success,
        error_reason: reason,
        error_message: None,
        transaction: TX.into(),
        network: NETWORK.into(),
        payer: None,
        amount: None,
        extensions: None,
        extra: None,
    }
}

async fn supported() -> Json<SupportedResponse> {
    Json(SupportedResponse {
        kinds: vec![SupportedKind {
            x402_version: X402Version::V2,
            scheme: "exact".into(),
            network: NETWORK.into(),
            extra: None,
        }],
        ..SupportedResponse::default()
    })
}

async fn verify(State(s): State<Arc<StandIn>>) -> Json<VerifyResponse> {
    s.verifies.fetch_add(1, Ordering::SeqCst);
    Json(VerifyResponse::valid("0xPayer"))
}

async fn settle(
    State(s): State<Arc<StandIn>>,
    Json(body): Json<serde_json::Value>,
) -> Json<SettleResponse> {
    let n = {
        let mut settles = s.settles.lock().unwrap();
        settles.push(body);
        settles.len()
    };
    Json(if n <= s.pending_first {
        settlement(false, Some(Reason::SETTLEMENT_PENDING))
    } else {
        s.then.clone()
    })
}

/// Counts the requests reaching the seller with a payment header.
async fn count_paid(
    State(paid): State<Arc<AtomicUsize>>,
    request: Request,
    next: Next,
) -> axum::response::Response {
    let headers = request.headers();
    if headers.contains_key(PAYMENT_SIGNATURE) || headers.contains_key(X_PAYMENT) {
        paid.fetch_add(1, Ordering::SeqCst);
    }
    next.run(request).await
}

/// The stand-in facilitator and a seller of [`CONTENT`] at `/paid` using it.
struct Env {
    facilitator: Arc<StandIn>,
    /// Requests that reached the seller carrying a payment.
    paid_requests: Arc<AtomicUsize>,
    url: String,
}

impl Env {
    async fn start(pending_first: usize, then: SettleResponse) -> Self {
        let facilitator = Arc::new(StandIn {
            pending_first,
            then,
            verifies: AtomicUsize::new(0),
            settles: Mutex::new(Vec::new()),
        });
        let facilitator_url = serve(
            Router::new()
                .route("/supported", get(supported))
                .route("/verify", post(verify))
                .route("/settle", post(settle))
                .with_state(facilitator.clone()),
        )
        .await;
        // A facilitator answering within 500 ms: the seller retries a pending settle 50 ms later.
        let timeouts = SettleTimeouts::new(Duration::from_millis(500));
        let client = FacilitatorClient::new(facilitator_url).with_settle_timeouts(timeouts);
        let mut schemes = Registry::new();
        schemes
            .register(
                scheme_exact_evm::ANY_NETWORK,
                scheme_exact_evm::VERSIONS,
                scheme_exact_evm::Seller::default().into_scheme(),
            )
            .unwrap();
        let options = SellerOptions {
            settle_timeouts: timeouts,
            ..SellerOptions::default()
        };
        let seller = Seller::with_options(Arc::new(client), schemes, options);
        let route = Route::new().accept(Accept::new(
            "exact",
            Network::eip155(84532),
            PAY_TO,
            Price::Atomic(Amount::from(PRICE)),
        ));
        let paid_requests = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route(
                "/paid",
                get(|| async { CONTENT }).layer(seller.paywall(route).unwrap()),
            )
            .layer(axum::middleware::from_fn_with_state(
                paid_requests.clone(),
                count_paid,
            ));
        let url = format!("{}/paid", serve(app).await);
        Self {
            facilitator,
            paid_requests,
            url,
        }
    }

    fn paid_requests(&self) -> usize {
        self.paid_requests.load(Ordering::SeqCst)
    }

    /// Asserts the facilitator was asked to settle `count` times, each time the same payment.
    fn settled_identically(&self, count: usize) {
        let settles = self.facilitator.settles.lock().unwrap();
        assert_eq!(settles.len(), count, "settles");
        assert!(settles.iter().all(|s| *s == settles[0]), "{settles:?}");
        assert_eq!(
            self.facilitator.verifies.load(Ordering::SeqCst),
            1,
            "verified once"
        );
    }
}

fn signer() -> Arc<PrivateKeySigner> {
    Arc::new(PrivateKeySigner::random())
}

fn new_buyer(signer: Arc<PrivateKeySigner>) -> Buyer {
    let mut schemes = Registry::new();
    schemes
        .register(
            scheme_exact_evm::ANY_NETWORK,
            scheme_exact_evm::VERSIONS,
            scheme_exact_evm::Buyer::new(signer).into_scheme(),
        )
        .unwrap();
    let policy = Policy {
        assets: vec![KnownAsset {
            network: Network::eip155(84532),
            address: USDC.into(),
            decimals: 6,
            symbol: "USDC".into(),
        }],
        max_per_request: Some("0.02".into()),
        ..Policy::default()
    };
    Buyer::new(reqwest::Client::new(), schemes, policy)
}

fn spent(buyer: &Buyer) -> Amount {
    buyer.spent(&Network::eip155(84532), USDC)
}

#[tokio::test]
async fn a_pending_settlement_is_retried_once_and_then_serves_the_content() {
    let env = Env::start(1, settlement(true, None)).await;
    let buyer = new_buyer(signer());
    let paid = buyer.get(&env.url).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    let payment = paid.payment.expect("paid");
    let s = payment.settlement.as_ref().expect("settlement");
    assert!(s.success && !payment.is_pending(), "{s:?}");
    assert_eq!(s.transaction, TX);
    assert_eq!(paid.response.text().await.unwrap(), CONTENT);
    env.settled_identically(2);
    assert_eq!(env.paid_requests(), 1);
    assert_eq!(spent(&buyer), Amount::from(PRICE));
}

/// Checks the seller's answer to a payment still pending after the retry.
async fn assert_pending_answer(response: reqwest::Response) {
    assert_eq!(response.status(), 504);
    assert!(
        !response.headers().contains_key(PAYMENT_REQUIRED),
        "a 402 invitation to pay again"
    );
    let s: SettleResponse = x402_core::header::decode(
        response.headers()[PAYMENT_RESPONSE].to_str().unwrap(),
        65536,
    )
    .unwrap();
    assert!(x402_buyer::settlement_pending(&s), "{s:?}");
    assert_eq!(s.transaction, TX);
    let body = response.text().await.unwrap();
    assert!(!body.contains(CONTENT), "the content leaked: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["errorReason"], "settlement_pending", "{v}");
    assert_eq!(v["transaction"], TX, "{v}");
    assert!(v["error"].as_str().unwrap().contains(TX), "{v}");
}

#[tokio::test]
async fn a_settlement_still_pending_is_a_504_and_the_buyer_never_pays_twice() {
    // The buyer client: the 504 comes back untouched, with the pending payment.
    let env = Env::start(2, settlement(true, None)).await;
    let buyer = new_buyer(signer());
    let paid = buyer.get(&env.url).await.unwrap();
    let payment = paid.payment.expect("a payment was sent");
    assert!(payment.is_pending(), "{payment:?}");
    assert_pending_answer(paid.response).await;
    // Only one retry of the settle, though a third would have succeeded.
    env.settled_identically(2);
    assert_eq!(env.paid_requests(), 1, "paid twice");
    assert_eq!(spent(&buyer), Amount::from(PRICE), "authorized twice");

    // The same through the reqwest middleware.
    let env = Env::start(2, settlement(true, None)).await;
    let buyer = Arc::new(new_buyer(signer()));
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(PayingMiddleware::new(buyer.clone()))
        .build();
    let response = client.get(&env.url).send().await.unwrap();
    let payment = response
        .extensions()
        .get::<x402_buyer::Payment>()
        .cloned()
        .expect("the payment is attached");
    assert!(payment.is_pending(), "{payment:?}");
    assert_pending_answer(response).await;
    env.settled_identically(2);
    assert_eq!(env.paid_requests(), 1, "paid twice");
    assert_eq!(spent(&buyer), Amount::from(PRICE), "authorized twice");
}

#[tokio::test]
async fn a_settlement_failure_that_is_not_pending_is_still_a_402_and_not_retried() {
    let failed = settlement(false, Some(Reason::INSUFFICIENT_FUNDS));

    // On the wire: 402 with the offers and the failed settlement.
    let env = Env::start(0, failed.clone()).await;
    let header = sign_first(&env.url, &signer(), |_| {}).await;
    let r = reqwest::Client::new()
        .get(&env.url)
        .header(PAYMENT_SIGNATURE, header)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    assert!(!r.headers().contains_key(PAYMENT_REQUIRED));
    let s: SettleResponse =
        x402_core::header::decode(r.headers()[PAYMENT_RESPONSE].to_str().unwrap(), 65536).unwrap();
    assert_eq!(s.error_reason, Some(Reason::INSUFFICIENT_FUNDS));
    assert_eq!(r.text().await.unwrap(), "{}");
    env.settled_identically(1);

    // The buyer client: a refusal, and no second payment.
    let env = Env::start(0, failed).await;
    let buyer = new_buyer(signer());
    match buyer.get(&env.url).await {
        Err(x402_buyer::Error::Refused {
            status,
            error,
            settlement,
        }) => {
            assert_eq!(status, 402);
            assert_eq!(
                error.as_deref(),
                Some("settlement failed: insufficient_funds")
            );
            let s = settlement.expect("the failed settlement");
            assert_eq!(s.error_reason, Some(Reason::INSUFFICIENT_FUNDS));
        }
        other => panic!("a refusal expected: {other:?}"),
    }
    env.settled_identically(1);
    assert_eq!(env.paid_requests(), 1, "paid twice");
    assert_eq!(spent(&buyer), Amount::from(PRICE));
}

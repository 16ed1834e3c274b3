//! Unit tests: a payment verifies and settles once; every refusal has its reason and moves
//! nothing.

use std::sync::Arc;

use x402_core::wire::{
    PaymentPayload, PaymentPayloadV2, PaymentRequirements, PaymentRequirementsV2, VerifyRequest,
};
use x402_core::{
    Amount, BuyerRole, FacilitatorRole, MemoryStore, Network, PaymentContext, Price, PriceRequest,
    Reason, SchemeConfig, SchemeError, SellerRole, Settlement, Verdict, X402Version,
};

use crate::{Account, Buyer, Facilitator, ID, Ledger, Nonce, Seller, ToyPayload, Transfer};

struct Fixture {
    network: Network,
    buyer: Buyer,
    pay_to: Account,
    ledger: Arc<Ledger>,
    store: Arc<MemoryStore>,
    facilitator: Arc<Facilitator>,
}

impl Fixture {
    /// A buyer holding 1000 on `toy:unit`, and a seller holding nothing.
    fn new() -> Self {
        let network = Network::parse("toy:unit").unwrap();
        let buyer = Buyer::random();
        let ledger = Arc::new(Ledger::new([(buyer.account(), Amount::from(1000))]));
        let store = Arc::new(MemoryStore::new());
        let facilitator =
            Facilitator::new(network.clone(), Arc::clone(&ledger), store.clone()).unwrap();
        Self {
            network,
            buyer,
            pay_to: Buyer::random().account(),
            ledger,
            store,
            facilitator: Arc::new(facilitator),
        }
    }

    async fn requirements(&self, price: &str) -> PaymentRequirementsV2 {
        let request = PriceRequest {
            network: self.network.clone(),
            price: Price::Decimal(price.into()),
            pay_to: self.pay_to.to_string(),
            asset: None,
            max_timeout_seconds: None,
            facilitator_kind: None,
        };
        Seller.requirements(&request).await.unwrap()
    }

    /// The buyer pays `requirements` as a wallet would.
    async fn pay(&self, requirements: PaymentRequirementsV2) -> VerifyRequest {
        let view = PaymentRequirements::V2(requirements.clone());
        let payload = self.buyer.sign(&view.view().unwrap()).await.unwrap();
        request(requirements, payload)
    }

    /// The buyer signs `transfer` (a wrong one, say) against `requirements`.
    fn pay_with(&self, requirements: PaymentRequirementsV2, transfer: Transfer) -> VerifyRequest {
        let payload = self.buyer.sign_transfer(transfer, &self.network);
        request(requirements, x402_core::wire::to_raw(&payload).unwrap())
    }

    fn transfer(&self, to: Account, amount: u64) -> Transfer {
        Transfer {
            from: self.buyer.account(),
            to,
            amount: Amount::from(amount),
            nonce: Nonce(rand::random()),
        }
    }

    async fn verify(&self, request: &VerifyRequest) -> Verdict {
        let ctx = PaymentContext::of(request).unwrap();
        self.facilitator.verify(&ctx).await.unwrap()
    }

    async fn settle(&self, request: &VerifyRequest) -> Settlement {
        settle(&self.facilitator, request).await
    }

    fn balances(&self) -> (Amount, Amount) {
        (
            self.ledger.balance(&self.buyer.account()),
            self.ledger.balance(&self.pay_to),
        )
    }
}

fn request(requirements: PaymentRequirementsV2, payload: x402_core::wire::Raw) -> VerifyRequest {
    let payment = PaymentPayloadV2 {
        x402_version: X402Version::V2,
        resource: None,
        accepted: requirements.clone(),
        payload,
        extensions: None,
    };
    VerifyRequest::new(
        PaymentPayload::V2(payment),
        PaymentRequirements::V2(requirements),
    )
}

async fn settle(facilitator: &Facilitator, request: &VerifyRequest) -> Settlement {
    let ctx = PaymentContext::of(request).unwrap();
    facilitator.settle(&ctx).await.unwrap()
}

fn reason<T>(result: &Result<T, x402_core::Rejection>) -> Option<Reason> {
    result.as_ref().err().map(|r| r.reason.clone())
}

#[test]
fn id_is_scheme_and_namespace() {
    assert_eq!(ID, "exact-toy");
    assert_eq!(ID, format!("{}-{}", crate::SCHEME, crate::NAMESPACE));
}

#[tokio::test]
async fn a_payment_verifies_and_settles_once() {
    let f = Fixture::new();
    let req = f.requirements("2.50").await;
    assert_eq!(req.amount, Amount::from(250));
    let payment = f.pay(req).await;
    let payer = Some(f.buyer.account().to_string());

    let verdict = f.verify(&payment).await;
    assert!(verdict.result.is_ok(), "{verdict:?}");
    assert_eq!(verdict.payer, payer);
    assert_eq!(
        f.balances(),
        (Amount::from(1000), Amount::ZERO),
        "verify moves nothing"
    );

    let settled = f.settle(&payment).await;
    assert!(settled.result.is_ok(), "{settled:?}");
    assert_eq!(settled.payer, payer);
    let tx = settled.transaction.clone().unwrap();
    assert_eq!(f.balances(), (Amount::from(750), Amount::from(250)));

    // A second settle is a duplicate, names the first transaction, and moves nothing.
    let again = f.settle(&payment).await;
    assert_eq!(reason(&again.result), Some(Reason::DUPLICATE_SETTLEMENT));
    assert_eq!(again.payer, payer);
    assert_eq!(again.transaction, Some(tx));
    assert_eq!(f.balances(), (Amount::from(750), Amount::from(250)));
    // Verifying it again finds the nonce used.
    let verdict = f.verify(&payment).await;
    assert_eq!(
        reason(&verdict.result),
        Some(crate::reason::INVALID_EXACT_TOY_NONCE_ALREADY_USED)
    );
}

#[tokio::test]
async fn concurrent_settles_of_one_payment_succeed_once() {
    let f = Fixture::new();
    let payment = Arc::new(f.pay(f.requirements("1").await).await);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (facilitator, payment) = (Arc::clone(&f.facilitator), Arc::clone(&payment));
            tokio::spawn(async move { settle(&facilitator, &payment).await })
        })
        .collect();
    let mut successes = 0;
    for t in tasks {
        let s = t.await.unwrap();
        match reason(&s.result) {
            None => successes += 1,
            Some(r) => assert_eq!(r, Reason::DUPLICATE_SETTLEMENT, "{s:?}"),
        }
    }
    assert_eq!(successes, 1);
    assert_eq!(f.balances(), (Amount::from(900), Amount::from(100)));
}

#[tokio::test]
async fn refusals_have_their_reason_and_move_nothing() {
    let f = Fixture::new();
    let req = f.requirements("2.50").await;
    let stranger = Buyer::random().account();
    let mut bad_signature = f.pay(req.clone()).await;
    if let PaymentPayload::V2(p) = &mut bad_signature.payment_payload {
        let mut payload: ToyPayload = serde_json::from_str(p.payload.get()).unwrap();
        payload.transfer.nonce = Nonce(rand::random()); // not the nonce signed
        p.payload = x402_core::wire::to_raw(&payload).unwrap();
    }
    let cases = [
        (
            "wrong amount",
            f.pay_with(req.clone(), f.transfer(f.pay_to, 249)),
            crate::reason::INVALID_EXACT_TOY_PAYLOAD_AMOUNT_MISMATCH,
            "amount",
        ),
        (
            "wrong payTo",
            f.pay_with(req.clone(), f.transfer(stranger, 250)),
            crate::reason::INVALID_EXACT_TOY_PAYLOAD_RECIPIENT_MISMATCH,
            "payTo",
        ),
        (
            "bad signature",
            bad_signature,
            crate::reason::INVALID_EXACT_TOY_PAYLOAD_SIGNATURE,
            "signature",
        ),
        (
            "insufficient balance",
            f.pay(f.requirements("10.01").await).await,
            Reason::INSUFFICIENT_FUNDS,
            "holds 1000",
        ),
    ];
    let payer = Some(f.buyer.account().to_string());
    for (what, payment, want, needle) in cases {
        let verdict = f.verify(&payment).await;
        let rejection = verdict.result.clone().unwrap_err();
        assert_eq!(rejection.reason, want, "{what}: {verdict:?}");
        assert!(
            rejection.to_string().contains(needle),
            "{what}: {rejection}"
        );
        assert_eq!(verdict.payer, payer, "{what}");
        let settled = f.settle(&payment).await;
        assert_eq!(reason(&settled.result), Some(want), "{what}: {settled:?}");
        assert_eq!(settled.payer, payer, "{what}");
        assert_eq!(settled.transaction, None, "{what}");
        assert_eq!(f.balances(), (Amount::from(1000), Amount::ZERO), "{what}");
        assert!(f.store.is_empty(), "{what}: nothing claimed");
    }
}

#[tokio::test]
async fn shape_scheme_and_network_are_checked_first() {
    let f = Fixture::new();
    let req = f.requirements("1").await;
    // Not a transfer at all: no payer to name.
    let garbage = request(req.clone(), x402_core::wire::to_raw(&"hello").unwrap());
    let verdict = f.verify(&garbage).await;
    assert_eq!(reason(&verdict.result), Some(Reason::INVALID_PAYLOAD));
    assert_eq!(verdict.payer, None);
    // A malformed field elsewhere still names the payer.
    let mut json =
        serde_json::to_value(f.buyer.sign_transfer(f.transfer(f.pay_to, 100), &f.network)).unwrap();
    json["transfer"]["to"] = "0xnot-an-account".into();
    let verdict = f
        .verify(&request(
            req.clone(),
            x402_core::wire::to_raw(&json).unwrap(),
        ))
        .await;
    assert_eq!(reason(&verdict.result), Some(Reason::INVALID_PAYLOAD));
    assert_eq!(verdict.payer, Some(f.buyer.account().to_string()));
    // Requirements for another toy network: this facilitator's network is from its
    // configuration, never the payload.
    let other = PaymentRequirementsV2 {
        network: "toy:other".into(),
        ..req.clone()
    };
    let verdict = f.verify(&f.pay(other).await).await;
    assert_eq!(reason(&verdict.result), Some(Reason::NETWORK_MISMATCH));
    let upto = PaymentRequirementsV2 {
        scheme: "upto".into(),
        ..req
    };
    let payload = f.pay(f.requirements("1").await).await;
    let payload = payload.payment_payload.payload().to_owned();
    let verdict = f.verify(&request(upto, payload)).await;
    assert_eq!(reason(&verdict.result), Some(Reason::UNSUPPORTED_SCHEME));
}

#[tokio::test]
async fn build_opens_the_ledger_from_the_options() {
    let network = Network::parse("toy:build").unwrap();
    let buyer = Buyer::random().account();
    let options = serde_json::json!({ "balances": { buyer.to_string(): "1000" } });
    let facilitator =
        Facilitator::from_config(SchemeConfig::new(network.clone(), options.clone())).unwrap();
    assert_eq!(facilitator.ledger().balance(&buyer), Amount::from(1000));
    let shared = Ledger::of(&network).unwrap();
    assert!(Arc::ptr_eq(&shared, facilitator.ledger()));
    // One genesis per network; options are strict.
    for (network, options, needle) in [
        ("toy:build", options, "already open"),
        (
            "toy:b2",
            serde_json::json!({ "balances": { "ABC": "1" } }),
            "64 lower-case hex",
        ),
        (
            "toy:b3",
            serde_json::json!({ "balances": { buyer.to_string(): 1 } }),
            "string",
        ),
        (
            "toy:b4",
            serde_json::json!({ "balance": {} }),
            "unknown field",
        ),
    ] {
        let config = SchemeConfig::new(Network::parse(network).unwrap(), options);
        let err = Facilitator::from_config(config).unwrap_err();
        assert!(
            matches!(&err, SchemeError::Config(m) if m.contains(needle)),
            "{err}"
        );
    }
}

#[tokio::test]
async fn libraries_register_the_roles_by_hand() {
    use x402_core::Facilitator as _;
    let f = Fixture::new();
    let roles = x402_core::Roles::new(crate::SCHEME)
        .with_seller(Seller)
        .with_facilitator(f.facilitator.clone());
    let mut registry = x402_core::Registry::new();
    registry
        .register("toy:*", &[X402Version::V2], Arc::new(roles))
        .unwrap();
    let local = x402_core::LocalFacilitator::new(registry);
    let payment = f.pay(f.requirements("1").await).await;
    let response = local.settle(&payment).await.unwrap();
    assert!(response.success, "{response:?}");
    assert_eq!(f.balances(), (Amount::from(900), Amount::from(100)));
}

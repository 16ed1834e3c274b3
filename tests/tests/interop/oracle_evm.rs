//! The official facilitator library as the oracle of ours on EVM: `tests/interop/oracle-evm.mjs`
//! serves `x402Facilitator` with `@x402/evm`'s `exact` (v2 and v1) and `upto` facilitators on the
//! shop's anvil, and the official client. For each mechanism — `exact` by EIP-3009 (v2, v1),
//! `exact` by Permit2, `upto` — a payment our buyer signs verifies with both facilitators; one the
//! official client signs verifies with ours and settles once; and every broken variant of
//! `broken` is refused by both with the same reason, moving nothing. Our facilitator is the
//! facilitator-bin router over HTTP, so both receive the same JSON bodies.

mod auth;
mod broken;

use std::sync::Arc;

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use serde_json::{Value, json};
use x402_core::client::FacilitatorClient;
use x402_core::wire::{PaymentRequirements, PaymentRequirementsV2};
use x402_core::{
    Amount, BuyerRole as _, Facilitator as _, Price, PriceRequest, SellerRole as _, X402Version,
};
use x402_evm::addresses::{EXACT_PERMIT2_PROXY, UPTO_PERMIT2_PROXY};
use x402_evm::assets::{AssetTable, TransferMethod};
use x402_tests::e2e::{NodeScript, Shop};
use x402_tests::evm::exact::{PRICE, UNITS, now, request_v1, request_v2, to_v1, usdc_info};

/// A mechanism the official packages and ours both implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mech {
    /// `exact` v2 by EIP-3009 `transferWithAuthorization`.
    Eip3009,
    /// `exact` v2 by a Permit2 witness transfer through the exact proxy.
    Permit2,
    /// `exact` v1 by EIP-3009.
    Eip3009V1,
    /// `upto` v2 (Permit2 through the upto proxy).
    Upto,
}

impl Mech {
    /// Whether the buyer signs an EIP-3009 authorization (else a Permit2 witness transfer).
    pub(crate) fn eip3009(self) -> bool {
        matches!(self, Mech::Eip3009 | Mech::Eip3009V1)
    }

    /// The protocol version of the payment.
    pub(crate) fn version(self) -> X402Version {
        if self == Mech::Eip3009V1 {
            X402Version::V1
        } else {
            X402Version::V2
        }
    }

    /// The proxy a Permit2 payment of this mechanism names as spender.
    pub(crate) fn proxy(self) -> Address {
        if self == Mech::Upto {
            UPTO_PERMIT2_PROXY
        } else {
            EXACT_PERMIT2_PROXY
        }
    }
}

/// The node process serving the official libraries (killed on drop).
struct Oracle {
    _node: tokio::process::Child,
    url: String,
}

/// The shop's chain, our facilitator over HTTP and the oracle; buyer #1 is the official client's.
pub(crate) struct Bed {
    pub(crate) shop: Shop,
    oracle: Oracle,
    http: reqwest::Client,
}

/// A verify or settle answer as JSON, whichever facilitator gave it.
pub(crate) type Answer = Value;

impl Bed {
    pub(crate) async fn start() -> Arc<Self> {
        let shop = Shop::start().await;
        let key = |k: &PrivateKeySigner| format!("0x{}", alloy::hex::encode(k.to_bytes()));
        let bed = &shop.h.bed;
        let (_node, url) = NodeScript::new("oracle-evm.mjs")
            .serve(&[
                ("X402_ORACLE_RPC_URL", bed.endpoint().to_owned()),
                ("X402_ORACLE_CHAIN_ID", bed.chain_id().to_string()),
                (
                    "X402_ORACLE_V1_NETWORK",
                    shop.h.network.to_wire(X402Version::V1),
                ),
                // The same key as our facilitator's signer: `upto` names it as the witness
                // facilitator. The oracle only verifies; it never sends with it.
                (
                    "X402_ORACLE_FACILITATOR_KEY",
                    key(&bed.facilitator().signer),
                ),
                ("X402_ORACLE_BUYER_KEY", key(&bed.buyer(1).signer)),
            ])
            .await;
        Arc::new(Self {
            shop,
            oracle: Oracle { _node, url },
            http: reqwest::Client::new(),
        })
    }

    async fn post(&self, url: String, body: &Value) -> Answer {
        let response = self.http.post(&url).json(body).send().await.expect(&url);
        assert!(response.status().is_success(), "{url}: {response:?}");
        response.json().await.expect("a JSON answer")
    }

    /// Our facilitator's answer to `POST /verify`.
    pub(crate) async fn ours(&self, body: &Value) -> Answer {
        self.post(format!("{}/verify", self.shop.facilitator_url), body)
            .await
    }

    /// Our facilitator's answer to `POST /settle`.
    pub(crate) async fn settle(&self, body: &Value) -> Answer {
        self.post(format!("{}/settle", self.shop.facilitator_url), body)
            .await
    }

    /// The official facilitator's verify answer (`{"error": …}` when it throws).
    pub(crate) async fn theirs(&self, body: &Value) -> Answer {
        self.post(format!("{}/verify", self.oracle.url), body).await
    }

    /// The payment payload the official client signs for `required` (a 402 body).
    async fn sign_theirs(&self, required: &Value) -> Value {
        let body = json!({ "paymentRequired": required });
        let payload = self.post(format!("{}/sign", self.oracle.url), &body).await;
        assert!(
            payload.get("error").is_none(),
            "the client threw: {payload}"
        );
        payload
    }

    /// The requirements of `mech`: [`PRICE`] of the bed's USDC to the seller (`upto`: at most
    /// that, settled by the facilitator `/supported` names).
    pub(crate) async fn requirements(&self, mech: Mech) -> PaymentRequirementsV2 {
        let h = &self.shop.h;
        match mech {
            Mech::Eip3009 | Mech::Eip3009V1 => h.requirements(PRICE, TransferMethod::Eip3009).await,
            Mech::Permit2 => h.requirements(PRICE, TransferMethod::Permit2).await,
            Mech::Upto => {
                let facilitator = FacilitatorClient::new(self.shop.facilitator_url.clone());
                let supported = facilitator.supported().await.expect("supported");
                let kind = supported.kinds.into_iter().find(|k| k.scheme == "upto");
                let mut assets = AssetTable::empty();
                assets.insert(
                    h.network.clone(),
                    usdc_info(h.bed.usdc(), TransferMethod::Permit2),
                );
                scheme_upto_evm::Seller::new(assets)
                    .requirements(&PriceRequest {
                        network: h.network.clone(),
                        price: Price::Decimal(PRICE.into()),
                        pay_to: h.bed.seller().address.to_checksum(None),
                        asset: None,
                        max_timeout_seconds: Some(120),
                        facilitator_kind: Some(kind.expect("upto in /supported")),
                    })
                    .await
                    .expect("upto requirements")
            }
        }
    }

    /// The verify body of `mech` for `payload` (v1: the requirements written as v1).
    pub(crate) fn body(
        mech: Mech,
        req: &PaymentRequirementsV2,
        payload: x402_core::wire::Raw,
    ) -> Value {
        let request = match mech.version() {
            X402Version::V1 => request_v1(req, payload),
            X402Version::V2 => request_v2(req, payload),
        };
        serde_json::to_value(request).expect("json")
    }

    /// The payload our buyer `key` signs for `req`.
    async fn sign_ours(
        &self,
        mech: Mech,
        key: &PrivateKeySigner,
        req: &PaymentRequirementsV2,
    ) -> x402_core::wire::Raw {
        let requirements = match mech.version() {
            X402Version::V1 => PaymentRequirements::V1(to_v1(req)),
            X402Version::V2 => PaymentRequirements::V2(req.clone()),
        };
        let view = requirements.view().expect("view");
        let signer = Arc::new(key.clone());
        if mech == Mech::Upto {
            scheme_upto_evm::Buyer::new(signer).sign(&view).await
        } else {
            scheme_exact_evm::Buyer::new(signer).sign(&view).await
        }
        .expect("our buyer signs")
    }
}

/// Asserts `answer` is a valid verify naming `payer`.
fn assert_valid(answer: &Answer, payer: Address, what: &str) {
    assert_eq!(answer["isValid"], true, "{what}: {answer}");
    let named = answer["payer"].as_str().unwrap_or_default();
    assert!(
        named.eq_ignore_ascii_case(&payer.to_string()),
        "{what}: payer {named}, expected {payer}: {answer}"
    );
}

/// Our buyer #0 signs; both facilitators find the payment valid, for the same payer.
async fn ours_valid_to_both(bed: &Bed, mech: Mech) {
    let buyer = bed.shop.h.bed.buyer(0).signer.clone();
    let req = bed.requirements(mech).await;
    let body = Bed::body(mech, &req, bed.sign_ours(mech, &buyer, &req).await);
    assert_valid(
        &bed.theirs(&body).await,
        buyer.address(),
        "theirs, our payload",
    );
    assert_valid(&bed.ours(&body).await, buyer.address(), "ours, our payload");
}

/// The official client signs (buyer #1); ours finds it valid (theirs too) and settles it once:
/// the balances move by exactly the amount charged, and a second settle is refused.
async fn theirs_settles_once_with_ours(bed: &Bed, mech: Mech) {
    let h = &bed.shop.h;
    let payer = h.bed.buyer(1).address;
    let seller = h.bed.seller().address;
    let req = bed.requirements(mech).await;
    let (required, requirements) = match mech.version() {
        X402Version::V1 => {
            let v1 = serde_json::to_value(to_v1(&req)).expect("json");
            (
                json!({ "x402Version": 1, "error": "", "accepts": [v1] }),
                v1,
            )
        }
        X402Version::V2 => {
            let v2 = serde_json::to_value(&req).expect("json");
            let resource = json!({ "url": "http://127.0.0.1/paid" });
            let required = json!({ "x402Version": 2, "resource": resource, "accepts": [v2] });
            (required, v2)
        }
    };
    let payload = bed.sign_theirs(&required).await;
    let mut body = json!({
        "x402Version": payload["x402Version"],
        "paymentPayload": payload,
        "paymentRequirements": requirements,
    });
    assert_valid(&bed.ours(&body).await, payer, "ours, their payload");
    assert_valid(&bed.theirs(&body).await, payer, "theirs, their payload");

    // `upto` charges less than the maximum: the seller's requirements carry the charge.
    let charged = if mech == Mech::Upto { UNITS / 4 } else { UNITS };
    if mech == Mech::Upto {
        let charge = scheme_upto_evm::charge(&req, Amount::from(charged)).expect("charge");
        body["paymentRequirements"] = serde_json::to_value(charge).expect("json");
    }
    let (payer_before, seller_before) = (h.usdc(payer).await, h.usdc(seller).await);
    let settled = bed.settle(&body).await;
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(h.usdc(payer).await, payer_before - U256::from(charged));
    assert_eq!(h.usdc(seller).await, seller_before + U256::from(charged));
    let before = h.snapshot(&[payer]).await;
    let again = bed.settle(&body).await;
    assert_eq!(again["success"], false, "a second settle: {again}");
    h.assert_untouched(&before, "a second settle").await;
}

/// A fresh nonce for an authorization.
pub(crate) fn fresh_nonce() -> B256 {
    PrivateKeySigner::random().to_bytes()
}

/// Seconds since the epoch, by the test's clock (both facilitators read the same).
pub(crate) fn unix_now() -> u64 {
    now()
}

macro_rules! mechanism {
    ($name:ident, $mech:expr) => {
        mod $name {
            #[tokio::test]
            async fn payments_verify_both_ways_and_settle_once() {
                let bed = super::Bed::start().await;
                super::ours_valid_to_both(&bed, $mech).await;
                super::theirs_settles_once_with_ours(&bed, $mech).await;
            }

            #[tokio::test]
            async fn broken_variants_get_the_same_reason_from_both() {
                let bed = super::Bed::start().await;
                super::broken::same_reasons(&bed, $mech).await;
            }
        }
    };
}

mechanism!(eip3009_v2, super::Mech::Eip3009);
mechanism!(permit2_v2, super::Mech::Permit2);
mechanism!(eip3009_v1, super::Mech::Eip3009V1);
mechanism!(upto_v2, super::Mech::Upto);

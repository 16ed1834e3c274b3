//! The official facilitator library as oracle for `exact` on Solana: `x402Facilitator` from
//! `@x402/core` with `@x402/svm`'s exact schemes registered (tests/interop/oracle-svm.mjs), on the
//! same validator, managing the same fee-payer keys as our facilitator. Three mechanisms: v2 with
//! an SPL Token mint, v2 with a Token-2022 mint, v1 with an SPL Token mint. For each:
//!
//! * both ways: a payload our buyer signs is valid to both facilitators; a payload the official
//!   client signs is valid to both, ours settles it once (the balances move by exactly the
//!   amount) and refuses a second settle;
//! * broken variants (`variants`): each gives the same reason from both facilitators, the one the
//!   variant names, and nothing moves — no token, no fee payer's lamport, nothing sent;
//! * `differences`: the payments it accepts and we refuse on purpose (docs/reasons.md).
//!
//! Sharing the fee payers is what makes the comparison fair: `extra.feePayer` is account 0 of the
//! transaction, so requirements built per facilitator would put two different transactions before
//! them. Here both judge the very same bytes. The oracle reads the chain directly, ours through
//! the harness proxy, which counts what ours sends.

mod differences;
mod variants;

use std::fmt;

use serde_json::{Value, json};
use solana_pubkey::Pubkey;
use solana_signer::Signer as _;
use x402_core::json::JsonLimits;
use x402_core::wire::{
    PaymentPayload, PaymentPayloadV1, PaymentRequirements, PaymentRequirementsV2, Raw,
    SettleResponse, VerifyRequest, VerifyResponse,
};
use x402_core::{Reason, X402Version};
use x402_tests::e2e::{NodeScript, NodeSession};
use x402_tests::solana::TestMint;
use x402_tests::solana::exact::{Snapshot, SvmHarness, request_v2, to_v1};

/// The price of every payment here, in atomic units.
const AMOUNT: u64 = 2_345;
/// What the fee payers pay for one settled payment of the official layout: two signatures at
/// 5,000 lamports and the priority fee of 20,000 CU at 1 µ-lamport (rounded up).
const TX_FEE: u64 = 10_001;

/// One way of paying with `exact` on Solana.
#[derive(Debug, Clone, Copy)]
enum Mechanism {
    V2SplToken,
    V2Token2022,
    V1SplToken,
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V2SplToken => "exact v2, SPL Token",
            Self::V2Token2022 => "exact v2, Token-2022",
            Self::V1SplToken => "exact v1, SPL Token",
        })
    }
}

impl Mechanism {
    fn version(self) -> X402Version {
        match self {
            Self::V1SplToken => X402Version::V1,
            Self::V2SplToken | Self::V2Token2022 => X402Version::V2,
        }
    }

    /// The mint paid in, and the other bed mint.
    fn mints(self, h: &SvmHarness) -> (TestMint, TestMint) {
        let (spl, t22) = (h.bed.spl_token_mint(), h.bed.token_2022_mint());
        match self {
            Self::V2Token2022 => (t22, spl),
            Self::V2SplToken | Self::V1SplToken => (spl, t22),
        }
    }

    /// `requirements` as this mechanism's wire requirements.
    fn requirements(self, requirements: &PaymentRequirementsV2) -> Value {
        match self.version() {
            X402Version::V1 => serde_json::to_value(to_v1(requirements)).unwrap(),
            X402Version::V2 => serde_json::to_value(requirements).unwrap(),
        }
    }

    /// A verify request carrying `payload` (`{"transaction"}`) for `requirements`.
    fn request(self, requirements: &PaymentRequirementsV2, payload: Raw) -> Value {
        let request = match self.version() {
            X402Version::V2 => request_v2(requirements, payload),
            X402Version::V1 => {
                let v1 = to_v1(requirements);
                VerifyRequest::new(
                    PaymentPayload::V1(PaymentPayloadV1 {
                        x402_version: X402Version::V1,
                        scheme: v1.scheme.clone(),
                        network: v1.network.clone(),
                        payload,
                    }),
                    PaymentRequirements::V1(v1),
                )
            }
        };
        serde_json::to_value(request).unwrap()
    }

    /// The string this mechanism answers for the condition whose current string is `reason`.
    fn reason(self, reason: Reason) -> Reason {
        match self.version() {
            X402Version::V2 => reason,
            X402Version::V1 => scheme_exact_svm::reason::V1_SPELLINGS
                .iter()
                .find(|(current, _)| *current == reason)
                .map_or(reason, |(_, v1)| v1.clone()),
        }
    }
}

/// The official facilitator library, and the official client for the harness buyer.
struct Oracle(NodeSession);

/// What the official facilitator answered.
#[derive(Debug)]
struct TheirVerdict {
    is_valid: bool,
    invalid_reason: Option<String>,
    invalid_message: Option<String>,
    payer: Option<String>,
}

impl Oracle {
    /// The oracle managing `h`'s fee payers, its client signing for `h.buyer`.
    async fn start(h: &SvmHarness) -> Self {
        let fee_payers: Vec<Vec<u8>> = h.fee_payers.iter().map(|k| k.to_bytes().to_vec()).collect();
        let session = NodeScript::new("oracle-svm.mjs")
            .session(&[
                ("SOLANA_RPC_URL", h.bed.rpc_url().to_owned()),
                ("NETWORK", h.network.to_string()),
                (
                    "X402_ORACLE_FEE_PAYERS",
                    serde_json::to_string(&fee_payers).unwrap(),
                ),
                (
                    "X402_ORACLE_BUYER_KEY",
                    serde_json::to_string(&h.buyer.to_bytes().to_vec()).unwrap(),
                ),
            ])
            .await;
        Self(session)
    }

    async fn verify(&mut self, request: &Value) -> TheirVerdict {
        let answer = self
            .0
            .call(json!({
                "cmd": "verify",
                "x402Version": request["x402Version"],
                "paymentPayload": request["paymentPayload"],
                "paymentRequirements": request["paymentRequirements"],
            }))
            .await;
        let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        TheirVerdict {
            is_valid: answer["isValid"].as_bool().expect("isValid"),
            invalid_reason: text(&answer["invalidReason"]),
            invalid_message: text(&answer["invalidMessage"]),
            payer: text(&answer["payer"]),
        }
    }

    /// The official client's payment payload for `requirements` (wire requirements of `m`).
    async fn sign(&mut self, m: Mechanism, requirements: &Value) -> Value {
        self.0
            .call(json!({
                "cmd": "sign",
                "x402Version": m.version(),
                "paymentRequirements": requirements,
                "resource": { "url": "http://127.0.0.1/paid" },
            }))
            .await
    }
}

/// Our verify, through the dispatcher's JSON path as the HTTP server runs it.
async fn our_verify(h: &SvmHarness, request: &Value) -> VerifyResponse {
    let body = serde_json::to_vec(request).unwrap();
    h.facilitator
        .verify_json(&body, JsonLimits::DEFAULT)
        .await
        .expect("verify")
}

async fn our_settle(h: &SvmHarness, request: &Value) -> SettleResponse {
    let body = serde_json::to_vec(request).unwrap();
    h.facilitator
        .settle_json(&body, JsonLimits::DEFAULT)
        .await
        .expect("settle")
}

/// Both bed mints (a variant may pay in the other one).
fn bed_mints(h: &SvmHarness) -> [Pubkey; 2] {
    h.bed.mints().map(|m| m.address)
}

async fn both_ways(m: Mechanism) {
    let h = SvmHarness::start().await;
    let mut oracle = Oracle::start(&h).await;
    let (mint, _) = m.mints(&h);
    let buyer = h.buyer.pubkey().to_string();
    let req = h.requirements(&mint, AMOUNT, None).await;

    // Our buyer signs; both facilitators accept.
    let ours = match m.version() {
        X402Version::V1 => h.pay_v1(&h.buyer, &req).await,
        X402Version::V2 => h.pay_v2(&h.buyer, &req).await,
    };
    let request = serde_json::to_value(&ours).unwrap();
    let theirs = oracle.verify(&request).await;
    assert!(
        theirs.is_valid,
        "{m}: the official facilitator refused ours: {theirs:?}"
    );
    assert_eq!(theirs.payer.as_deref(), Some(buyer.as_str()), "{m}");
    let v = our_verify(&h, &request).await;
    assert!(v.is_valid, "{m}: {v:?}");

    // The official client signs; both accept, ours settles it exactly once.
    let requirements = m.requirements(&req);
    let payload = oracle.sign(m, &requirements).await;
    let request = json!({
        "x402Version": m.version(),
        "paymentPayload": payload,
        "paymentRequirements": requirements,
    });
    let theirs = oracle.verify(&request).await;
    assert!(
        theirs.is_valid,
        "{m}: the official facilitator refused its own: {theirs:?}"
    );
    let v = our_verify(&h, &request).await;
    assert!(
        v.is_valid,
        "{m}: we refused the official client's payload: {v:?}"
    );
    assert_eq!(v.payer.as_deref(), Some(buyer.as_str()), "{m}");

    let mints = bed_mints(&h);
    let before = h.snapshot(&mints, &[]).await;
    let s = our_settle(&h, &request).await;
    assert!(s.success, "{m}: {s:?}");
    assert_eq!(s.payer.as_deref(), Some(buyer.as_str()), "{m}");
    assert_eq!(s.network, requirements["network"].as_str().unwrap(), "{m}");
    let after = h.snapshot(&mints, &[]).await;
    // Sent (perhaps more than once while confirming: one transaction, one signature).
    assert!(after.sends > before.sends, "{m}: nothing sent");
    assert_eq!(moved(&before, &after), paid(&h, &mint.address), "{m}");
    assert_eq!(
        before.fee_payer_sol.iter().sum::<u64>() - after.fee_payer_sol.iter().sum::<u64>(),
        TX_FEE,
        "{m}: the fee payers paid exactly the fee"
    );

    let again = our_settle(&h, &request).await;
    assert!(!again.success, "{m}: settled twice: {again:?}");
    assert_eq!(
        again.error_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{m}"
    );
    assert_eq!(
        h.snapshot(&mints, &[]).await,
        after,
        "{m}: the second settle moved something"
    );
}

/// The token balances that changed between two snapshots: `(owner, mint, signed change)`.
fn moved(before: &Snapshot, after: &Snapshot) -> Vec<(Pubkey, Pubkey, i128)> {
    before
        .tokens
        .iter()
        .zip(&after.tokens)
        .filter(|(b, a)| b.2 != a.2)
        .map(|(b, a)| (b.0, b.1, i128::from(a.2) - i128::from(b.2)))
        .collect()
}

/// The change one payment of [`AMOUNT`] in `mint` makes (in the snapshot's order: seller, buyer).
fn paid(h: &SvmHarness, mint: &Pubkey) -> Vec<(Pubkey, Pubkey, i128)> {
    let amount = i128::from(AMOUNT);
    vec![
        (h.seller.pubkey(), *mint, amount),
        (h.buyer.pubkey(), *mint, -amount),
    ]
}

async fn broken_variants(m: Mechanism) {
    let h = SvmHarness::start().await;
    let mut oracle = Oracle::start(&h).await;
    let mints = bed_mints(&h);
    let cases = variants::all(&h, m).await;
    assert!(cases.len() >= 10, "{m}: ten variants at least");
    for case in cases {
        let name = case.name;
        let before = h.snapshot(&mints, &case.watch).await;
        let theirs = oracle.verify(&case.request).await;
        let ours = our_verify(&h, &case.request).await;
        let settled = our_settle(&h, &case.request).await;
        let after = h.snapshot(&mints, &case.watch).await;
        let ours_reason = ours.invalid_reason.as_ref().map(Reason::as_str);
        assert!(
            !theirs.is_valid,
            "{m}, {name}: the official facilitator accepted it"
        );
        assert!(!ours.is_valid, "{m}, {name}: we accepted it");
        assert_eq!(
            ours_reason,
            theirs.invalid_reason.as_deref(),
            "{m}, {name}: ours (left) and the official facilitator (right) disagree: {ours:?}"
        );
        assert_eq!(
            theirs.invalid_reason.as_deref(),
            Some(m.reason(case.reason).as_str()),
            "{m}, {name}: not the condition the variant names"
        );
        if let Some(detail) = case.detail {
            let message = theirs.invalid_message.as_deref().unwrap_or_default();
            assert!(
                message.contains(detail),
                "{m}, {name}: the official facilitator's simulation failed otherwise: {message}"
            );
        }
        assert!(!settled.success, "{m}, {name}: we settled it");
        assert_eq!(
            settled.error_reason, ours.invalid_reason,
            "{m}, {name}: settle"
        );
        assert_eq!(after, before, "{m}, {name}: something moved or was sent");
    }
}

#[tokio::test]
async fn official_facilitator_and_ours_agree_both_ways_exact_v2_spl_token() {
    both_ways(Mechanism::V2SplToken).await;
}

#[tokio::test]
async fn official_facilitator_and_ours_agree_both_ways_exact_v2_token_2022() {
    both_ways(Mechanism::V2Token2022).await;
}

#[tokio::test]
async fn official_facilitator_and_ours_agree_both_ways_exact_v1_spl_token() {
    both_ways(Mechanism::V1SplToken).await;
}

#[tokio::test]
async fn official_facilitator_and_ours_refuse_alike_exact_v2_spl_token() {
    broken_variants(Mechanism::V2SplToken).await;
}

#[tokio::test]
async fn official_facilitator_and_ours_refuse_alike_exact_v2_token_2022() {
    broken_variants(Mechanism::V2Token2022).await;
}

#[tokio::test]
async fn official_facilitator_and_ours_refuse_alike_exact_v1_spl_token() {
    broken_variants(Mechanism::V1SplToken).await;
}

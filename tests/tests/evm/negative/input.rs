//! 2.A Input handling (S4, S5): non-canonical spellings of amounts, timestamps, nonces,
//! signatures and addresses. In the signed payload they are an answer (`invalid_payload`) from
//! verify and settle alike; in the seller's requirements the body is malformed (HTTP 400,
//! `invalid_payment_requirements`), in the buyer's echo of them (`accepted`) its payload part is
//! (400, `invalid_payload`). Nothing moves, and the unmodified payment still verifies.

use alloy::primitives::U256;
use serde_json::{Value, json};
use x402_core::wire::VerifyRequest;
use x402_core::{DispatchError, Reason};
use x402_tests::evm::exact::{ExactHarness, body_with, non_canonical_10000, payload_of};
use x402_tests::evm::x402::EXACT_PERMIT2_PROXY;

use super::{Ctx, Kind, Message, Row, each_kind, run_rows};

/// Which control request a row edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Envelope {
    V1,
    V2,
}

/// A row's edit of the control's JSON: the member at `pointer` becomes `value`.
#[derive(Debug, Clone)]
struct BodyEdit {
    envelope: Envelope,
    pointer: String,
    value: Value,
    /// The body is malformed (400-class `BadRequest` with the row's reason), not answered.
    malformed: bool,
}

/// The controls of a kind: v2, and v1 for EIP-3009 (Permit2 is v2 only).
#[derive(Debug, Clone)]
struct Controls {
    v2: VerifyRequest,
    v1: Option<VerifyRequest>,
}

impl Controls {
    async fn of(ctx: &Ctx) -> Self {
        let controls = match ctx.kind {
            // What the scheme's own buyer signs.
            Kind::Eip3009 => Controls {
                v2: ctx.h.pay_v2(&ctx.key, &ctx.req).await,
                v1: Some(ctx.h.pay_v1(&ctx.key, &ctx.req).await),
            },
            Kind::Permit2 => Controls {
                v2: ctx.signed(&ctx.message()),
                v1: None,
            },
        };
        ctx.h.assert_valid(&controls.v2, &ctx.what("v2")).await;
        if let Some(v1) = &controls.v1 {
            ctx.h.assert_valid(v1, &ctx.what("v1")).await;
        }
        controls
    }

    fn get(&self, envelope: Envelope) -> &VerifyRequest {
        match envelope {
            Envelope::V2 => &self.v2,
            Envelope::V1 => self.v1.as_ref().expect("a v1 control"),
        }
    }
}

/// A body the dispatcher cannot read: a 400-class `BadRequest` with `reason`, for verify and
/// settle alike.
async fn bad_request(h: &ExactHarness, body: &[u8], reason: Reason, what: &str) {
    for (op, result) in [
        (
            "verify",
            h.verify_body(body).await.map(|r| format!("{r:?}")),
        ),
        (
            "settle",
            h.settle_body(body).await.map(|r| format!("{r:?}")),
        ),
    ] {
        match result {
            Err(DispatchError::BadRequest(e)) => {
                assert_eq!(e.reason(), reason, "{what}: {op}: {e}");
            }
            Err(DispatchError::Internal(e)) => panic!("{what}: {op}: internal error {e}"),
            Ok(r) => panic!("{what}: {op}: answered {r}"),
        }
    }
}

/// Runs `rows` against the controls; nothing moves; the v2 control still verifies afterwards.
async fn refuse_bodies(ctx: &Ctx, controls: &Controls, suite: &str, rows: Vec<Row<BodyEdit>>) {
    let before = ctx.h.snapshot(&[ctx.payer]).await;
    let check = |ctx: Ctx, row: Row<BodyEdit>, reason: Reason| {
        let edit = row.edit;
        let body = body_with(controls.get(edit.envelope), &edit.pointer, &edit.value);
        async move {
            let what = ctx.what(&row.case);
            if edit.malformed {
                bad_request(&ctx.h, &body, reason, &what).await;
            } else {
                assert_eq!(
                    reason,
                    Reason::INVALID_PAYLOAD,
                    "{what}: the table's reason"
                );
                ctx.h.assert_payload_refused(&body, &what).await;
            }
        }
    };
    run_rows(ctx, suite, rows, check).await;
    ctx.h.assert_untouched(&before, &ctx.what(suite)).await;
    // The unmodified payment still verifies: nothing above was refused for another reason.
    ctx.h
        .assert_valid(&controls.v2, &ctx.what(&format!("v2 after {suite}")))
        .await;
}

/// A row answered `invalid_payload` that applies to `kind` alone.
fn payload_row(kind: Kind, envelope: Envelope, pointer: String, value: Value) -> Row<BodyEdit> {
    let case = format!(
        "{}{} = {value}",
        if envelope == Envelope::V1 { "v1 " } else { "" },
        pointer.trim_start_matches("/paymentPayload/payload/"),
    );
    let edit = BodyEdit {
        envelope,
        pointer,
        value,
        malformed: false,
    };
    Row::only(kind, case, edit, Reason::INVALID_PAYLOAD)
}

async fn s4(kind: Kind) {
    let ctx = Ctx::start(kind).await;
    let controls = Controls::of(&ctx).await;
    let amount = kind.pick(
        "/paymentPayload/payload/authorization/value",
        "/paymentPayload/payload/permit2Authorization/permitted/amount",
    );
    let mut rows = Vec::new();
    for value in non_canonical_10000() {
        // In the signed payload: an answer, invalid_payload.
        rows.push(payload_row(
            kind,
            Envelope::V2,
            amount.into(),
            value.clone(),
        ));
        rows.push(payload_row(
            Kind::Eip3009,
            Envelope::V1,
            amount.into(),
            value.clone(),
        ));
        // In the seller's requirements the body is malformed (HTTP 400,
        // invalid_payment_requirements); in the buyer's echo of them, the payload part is.
        for (envelope, pointer, eip3009, permit2) in [
            (
                Envelope::V2,
                "/paymentRequirements/amount",
                Some(Reason::INVALID_PAYMENT_REQUIREMENTS),
                Some(Reason::INVALID_PAYMENT_REQUIREMENTS),
            ),
            (
                Envelope::V1,
                "/paymentRequirements/maxAmountRequired",
                Some(Reason::INVALID_PAYMENT_REQUIREMENTS),
                None,
            ),
            (
                Envelope::V2,
                "/paymentPayload/accepted/amount",
                Some(Reason::INVALID_PAYLOAD),
                Some(Reason::INVALID_PAYLOAD),
            ),
        ] {
            rows.push(Row {
                case: format!("{pointer} = {value}"),
                edit: BodyEdit {
                    envelope,
                    pointer: pointer.into(),
                    value: value.clone(),
                    malformed: true,
                },
                eip3009,
                permit2,
                v1: false,
            });
        }
    }
    refuse_bodies(&ctx, &controls, "S4", rows).await;
}
each_kind!(s4_non_canonical_amounts_are_refused_cleanly, s4);

/// EIP-3009's non-canonical timestamps, nonces, signatures, addresses and payload shapes.
fn eip3009_rows(request: &VerifyRequest) -> Vec<Row<BodyEdit>> {
    let auth: Value = serde_json::from_str(payload_of(request).get()).expect("payload json");
    let field = |name: &str| auth["authorization"][name].as_str().unwrap().to_owned();
    let (valid_after, valid_before, nonce) =
        (field("validAfter"), field("validBefore"), field("nonce"));
    let from = field("from");
    let signature = auth["signature"].as_str().unwrap().to_owned();
    let nonce_hex = nonce.trim_start_matches("0x").to_owned();
    let sig_hex = signature.trim_start_matches("0x").to_owned();
    let mut cases: Vec<(&str, Value)> = Vec::new();
    for v in [
        format!("+{valid_before}"),
        format!("-{valid_before}"),
        format!("0x{:x}", valid_before.parse::<u64>().unwrap()),
        format!(" {valid_before}"),
        format!("0{valid_before}"),
        format!("{valid_before}.0"),
        "18446744073709551616".repeat(4),
    ] {
        cases.push(("authorization/validBefore", json!(v)));
    }
    cases.push((
        "authorization/validBefore",
        json!(valid_before.parse::<u64>().unwrap()),
    ));
    for v in [format!("+{valid_after}"), "-1".to_owned(), "0x0".to_owned()] {
        cases.push(("authorization/validAfter", json!(v)));
    }
    for v in [
        format!("0x{}", &nonce_hex[..62]),
        format!("0x{nonce_hex}00"),
        format!("0x{}", &nonce_hex[..63]),
        format!("0X{nonce_hex}"),
        nonce_hex.clone(),
        format!("0x{}", "g".repeat(64)),
        String::new(),
    ] {
        cases.push(("authorization/nonce", json!(v)));
    }
    for v in [
        format!("0X{}", &from[2..]),
        from[2..].to_owned(),
        format!("0x{}", &from[2..41]),
        // A mixed-case address with a broken EIP-55 checksum.
        format!(
            "0x{}{}",
            from[2..3].to_ascii_uppercase(),
            flip_case(&from[3..])
        ),
    ] {
        cases.push(("authorization/from", json!(v)));
    }
    for v in [
        json!(""),
        json!("0x"),
        json!(format!("0x{}", &sig_hex[..129])),
        json!(format!("0X{sig_hex}")),
        json!(sig_hex.clone()),
        json!(format!("0x{}", "ab".repeat(4097))),
        json!(null),
    ] {
        cases.push(("signature", v));
    }
    let mut rows: Vec<Row<BodyEdit>> = cases
        .into_iter()
        .map(|(pointer, value)| {
            payload_row(
                Kind::Eip3009,
                Envelope::V2,
                format!("/paymentPayload/payload/{pointer}"),
                value,
            )
        })
        .collect();
    // Shapes: nothing to pay with, or both methods at once.
    for (what, payload) in [
        ("no authorization", json!({ "signature": signature })),
        (
            "both methods",
            json!({
                "signature": signature,
                "authorization": auth["authorization"],
                "permit2Authorization": {},
            }),
        ),
        ("a string", json!("0x00")),
    ] {
        let mut row = payload_row(
            Kind::Eip3009,
            Envelope::V2,
            "/paymentPayload/payload".into(),
            payload,
        );
        row.case = format!("payload: {what}");
        rows.push(row);
    }
    rows
}

fn flip_case(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// Permit2's non-canonical nonces, deadlines, windows, addresses and missing members.
fn permit2_rows(ctx: &Ctx, message: &Message) -> Vec<Row<BodyEdit>> {
    let Message::Permit2(message) = message else {
        panic!("a Permit2 authorization")
    };
    let deadline = message.deadline.to_string();
    let from = ctx.payer.to_checksum(None);
    let over_max = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
    let mut cases: Vec<(&str, Value)> = Vec::new();
    for v in [
        json!("0x01"),
        json!("+1"),
        json!("-1"),
        json!("01"),
        json!(over_max),
        json!(1),
        json!(""),
    ] {
        cases.push(("nonce", v));
    }
    for v in [
        json!(format!("+{deadline}")),
        json!(format!("0x{:x}", message.deadline)),
        json!(message.deadline.to::<u64>()),
        json!(format!("{deadline} ")),
    ] {
        cases.push(("deadline", v));
    }
    for v in [json!("-1"), json!(" 0"), json!("0x0")] {
        cases.push(("witness/validAfter", v));
    }
    cases.push(("from", json!(from[2..].to_owned())));
    cases.push(("from", json!(format!("0X{}", &from[2..]))));
    cases.push((
        "spender",
        json!(format!("{EXACT_PERMIT2_PROXY:#x}")[..41].to_owned()),
    ));
    cases.push((
        "witness/to",
        json!(format!("{:#x}", ctx.h.bed.seller().address)[2..].to_owned()),
    ));
    cases.push(("permitted/token", json!(null)));
    cases.push(("witness", json!(null)));
    cases
        .into_iter()
        .map(|(pointer, value)| {
            payload_row(
                Kind::Permit2,
                Envelope::V2,
                format!("/paymentPayload/payload/permit2Authorization/{pointer}"),
                value,
            )
        })
        .collect()
}

async fn s5(kind: Kind) {
    let ctx = Ctx::start(kind).await;
    let message = ctx.message();
    let v2 = match kind {
        Kind::Eip3009 => ctx.h.pay_v2(&ctx.key, &ctx.req).await,
        Kind::Permit2 => ctx.signed(&message),
    };
    ctx.h.assert_valid(&v2, &ctx.what("control")).await;
    let rows = match kind {
        Kind::Eip3009 => eip3009_rows(&v2),
        Kind::Permit2 => permit2_rows(&ctx, &message),
    };
    let controls = Controls { v2, v1: None };
    refuse_bodies(&ctx, &controls, "S5", rows).await;
    // The canonical extremes are valid: EIP-3009's validBefore beyond u64 (FiatToken accepts
    // it: a far-future deadline, not a parse failure), Permit2's largest nonce (its bitmap word
    // is read, not overflowed).
    let mut message = ctx.message();
    let what = match &mut message {
        Message::Eip3009(m) => {
            m.validBefore = U256::from(u64::MAX) + U256::from(1);
            "validBefore = 2^64"
        }
        Message::Permit2(m) => {
            m.nonce = U256::MAX;
            "nonce 2^256-1"
        }
    };
    ctx.h
        .assert_valid(&ctx.signed(&message), &ctx.what(what))
        .await;
}
each_kind!(s5_non_canonical_fields_are_invalid_payload, s5);

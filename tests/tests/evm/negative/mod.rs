//! Negative cases of `exact` on EVM (threat-model S4–S40) on anvil with Circle's FiatTokenV2_2,
//! paid by EIP-3009 and through Permit2 and the exact proxy. Every refusal is checked for its
//! reason string, for NO-FUNDS (no USDC moved, the facilitator spent no ETH) and NO-BROADCAST
//! (facilitator nonces unchanged), unless the case itself must broadcast; client input never
//! makes the dispatcher fail or panic.
//!
//! A case that applies to both transfer methods is a row of a table run against each [`Kind`],
//! with the reason each kind answers (`None`: the case does not apply to that kind); each table
//! has one test per kind (`<suite>::eip3009`, `<suite>::permit2`). A failing row is named in the
//! test's failure, with every other failing row of its table. Cases only one method has are rows
//! for that kind alone, or tests in `eip3009` and `permit2`.
//!
//! * `binding` — what was signed must be what is required (S8–S12, S17/S18, S38);
//! * `input` — non-canonical amounts and fields (S4, S5);
//! * `signatures` — malformed and forged signatures (S29);
//! * `state` — replays (S21), more payments than the balance covers (S27), the chain changing
//!   under a verified payment: its nonce revoked or used by a third party, funds moved away
//!   (S28, S30, S31, S39);
//! * `settle` — what settle checks again or refuses before broadcasting (S17/S18, S32, S34, S36);
//! * `eip3009` — EIP-3009's own cases (S15, S22–S24, S31 mempool, S32, S34, S35);
//! * `permit2` — Permit2's own cases (S22–S24, S28/S39 allowance, S40);
//! * `network` — what a network's block time and contracts demand: the expiry buffer (S86),
//!   Multicall3 at start-up, a transaction's target without code;
//! * `gas` — simulation with the transaction's own gas limit and fees (a gas-dependent wallet).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod binding;
mod eip3009;
mod gas;
mod input;
mod network;
mod permit2;
mod settle;
mod signatures;
mod state;

use std::fmt;
use std::sync::Arc;

use alloy::primitives::{Address, Bytes, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::Eip712Domain;
use x402_core::Reason;
use x402_core::wire::{PaymentRequirements, PaymentRequirementsV2, Raw, VerifyRequest};
use x402_evm::abi::eip3009::TransferWithAuthorization;
use x402_evm::abi::permit2_exact::{PermitWitnessTransferFrom, TokenPermissions, Witness};
use x402_evm::assets::TransferMethod;
use x402_tests::cases::Cases;
use x402_tests::evm::exact::{
    ExactHarness, PRICE, eip3009_with_signature, payload_of, permit2_with_signature, request_v1,
    request_v2,
};
use x402_tests::evm::x402::sign_eip712;
use x402_tests::evm::{PERMIT2_ADDRESS, permit2_domain, usdc_domain};

/// How the buyer pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// FiatToken's `transferWithAuthorization`.
    Eip3009,
    /// A Permit2 witness transfer through the exact proxy.
    Permit2,
}

impl Kind {
    /// The asset table's transfer method.
    pub(crate) fn method(self) -> TransferMethod {
        match self {
            Kind::Eip3009 => TransferMethod::Eip3009,
            Kind::Permit2 => TransferMethod::Permit2,
        }
    }

    /// `eip3009` or `permit2`, whichever is this kind's.
    pub(crate) fn pick<T>(self, eip3009: T, permit2: T) -> T {
        match self {
            Kind::Eip3009 => eip3009,
            Kind::Permit2 => permit2,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.pick("EIP-3009", "Permit2"))
    }
}

/// Two `#[tokio::test]`s, `eip3009` and `permit2`, in a module `$name`, each awaiting
/// `$suite(kind)`.
macro_rules! each_kind {
    ($name:ident, $suite:ident) => {
        mod $name {
            #[tokio::test]
            async fn eip3009() {
                super::$suite(crate::negative::Kind::Eip3009).await;
            }

            #[tokio::test]
            async fn permit2() {
                super::$suite(crate::negative::Kind::Permit2).await;
            }
        }
    };
}
pub(crate) use each_kind;

/// An authorization of either kind, not yet signed.
#[derive(Debug, Clone)]
pub(crate) enum Message {
    /// An EIP-3009 `TransferWithAuthorization`.
    Eip3009(TransferWithAuthorization),
    /// A Permit2 `PermitWitnessTransferFrom` for the exact proxy.
    Permit2(PermitWitnessTransferFrom),
}

impl Message {
    /// The recipient: `to` / `witness.to`.
    pub(crate) fn set_to(&mut self, to: Address) {
        match self {
            Message::Eip3009(m) => m.to = to,
            Message::Permit2(m) => {
                m.witness = Witness {
                    to,
                    validAfter: m.witness.validAfter,
                }
            }
        }
    }

    /// The amount: `value` / `permitted.amount`.
    pub(crate) fn set_amount(&mut self, amount: U256) {
        match self {
            Message::Eip3009(m) => m.value = amount,
            Message::Permit2(m) => {
                m.permitted = TokenPermissions {
                    token: m.permitted.token,
                    amount,
                }
            }
        }
    }

    /// The validity window: `validAfter` and `validBefore` / `witness.validAfter` and `deadline`.
    pub(crate) fn set_window(&mut self, valid_after: u64, expiry: u64) {
        let (valid_after, expiry) = (U256::from(valid_after), U256::from(expiry));
        match self {
            Message::Eip3009(m) => {
                m.validAfter = valid_after;
                m.validBefore = expiry;
            }
            Message::Permit2(m) => {
                m.deadline = expiry;
                m.witness = Witness {
                    to: m.witness.to,
                    validAfter: valid_after,
                };
            }
        }
    }

    /// Moves the end of the window (`validBefore` / `deadline`) by `seconds`.
    pub(crate) fn extend_expiry(&mut self, seconds: u64) {
        match self {
            Message::Eip3009(m) => m.validBefore += U256::from(seconds),
            Message::Permit2(m) => m.deadline += U256::from(seconds),
        }
    }

    /// The Permit2 witness transfer, to edit the fields EIP-3009 does not have.
    pub(crate) fn permit2_mut(&mut self) -> &mut PermitWitnessTransferFrom {
        match self {
            Message::Permit2(m) => m,
            Message::Eip3009(_) => panic!("an EIP-3009 authorization has no Permit2 fields"),
        }
    }

    /// The EIP-3009 authorization.
    pub(crate) fn eip3009(&self) -> &TransferWithAuthorization {
        match self {
            Message::Eip3009(m) => m,
            Message::Permit2(_) => panic!("a Permit2 authorization is not EIP-3009"),
        }
    }

    /// `key`'s EIP-712 signature of the message under `domain`.
    pub(crate) fn sign(&self, key: &PrivateKeySigner, domain: &Eip712Domain) -> Bytes {
        match self {
            Message::Eip3009(m) => sign_eip712(key, m, domain),
            Message::Permit2(m) => sign_eip712(key, m, domain),
        }
    }

    /// The scheme payload carrying `signature` verbatim; `owner` is Permit2's `from` (EIP-3009's
    /// is the message's own `from`).
    pub(crate) fn payload(&self, owner: Address, signature: Bytes) -> Raw {
        match self {
            Message::Eip3009(m) => eip3009_with_signature(m, signature),
            Message::Permit2(m) => permit2_with_signature(owner, m, signature),
        }
    }
}

/// A bed with requirements of one kind and the payer of the cases: `key` signs for `payer` (the
/// key's own address, or a smart wallet it owns).
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) kind: Kind,
    pub(crate) h: Arc<ExactHarness>,
    pub(crate) req: PaymentRequirementsV2,
    pub(crate) key: PrivateKeySigner,
    pub(crate) payer: Address,
    /// The payer's verified authorization that rows edit (see [`Ctx::with_control`]).
    pub(crate) control: Option<Message>,
}

impl Ctx {
    /// A bed, requirements of `kind` and buyer #0, with an unlimited allowance to Permit2 (so
    /// only the change under test can be wrong).
    pub(crate) async fn start(kind: Kind) -> Self {
        let h = Arc::new(ExactHarness::start().await);
        let buyer = h.bed.buyer(0).signer.clone();
        let ctx = Self::for_key(h, kind, buyer).await;
        ctx.approve_permit2().await;
        ctx
    }

    /// [`Ctx::start`], and the buyer's valid payment, checked to verify: the control the rows
    /// derive their variants from.
    pub(crate) async fn with_control(kind: Kind) -> Self {
        let mut ctx = Self::start(kind).await;
        let control = ctx.message();
        ctx.h
            .assert_valid(&ctx.signed(&control), &ctx.what("control"))
            .await;
        ctx.control = Some(control);
        ctx
    }

    /// Requirements of `kind` on `h`, paid by `key` for its own address; no allowance given.
    pub(crate) async fn for_key(h: Arc<ExactHarness>, kind: Kind, key: PrivateKeySigner) -> Self {
        let req = h.requirements(PRICE, kind.method()).await;
        Self {
            kind,
            h,
            req,
            payer: key.address(),
            key,
            control: None,
        }
    }

    /// Lets Permit2 move all of the payer's USDC (the payer must be a dev account); nothing for
    /// EIP-3009.
    pub(crate) async fn approve_permit2(&self) {
        if self.kind == Kind::Permit2 {
            self.h
                .bed
                .approve_usdc(self.payer, PERMIT2_ADDRESS, U256::MAX)
                .await;
        }
    }

    /// `case`, named with the kind, for failure messages.
    pub(crate) fn what(&self, case: &str) -> String {
        format!("{}: {case}", self.kind)
    }

    /// A fresh authorization of the payer for the requirements (random nonce, valid from ten
    /// minutes ago for two minutes).
    pub(crate) fn message(&self) -> Message {
        self.message_for(&self.req)
    }

    /// A fresh authorization of the payer for `req`.
    pub(crate) fn message_for(&self, req: &PaymentRequirementsV2) -> Message {
        match self.kind {
            Kind::Eip3009 => Message::Eip3009(self.h.eip3009_message(self.payer, req)),
            Kind::Permit2 => Message::Permit2(self.h.permit2_message(req)),
        }
    }

    /// The requirements with `asset` in place of the bed's USDC.
    pub(crate) fn requirements_for(&self, asset: Address) -> PaymentRequirementsV2 {
        PaymentRequirementsV2 {
            asset: asset.to_checksum(None),
            ..self.req.clone()
        }
    }

    /// The control if there is one, a fresh authorization otherwise.
    pub(crate) fn control_or_fresh(&self) -> Message {
        self.control.clone().unwrap_or_else(|| self.message())
    }

    /// The domain this kind's signatures are made under: USDC's or Permit2's on the bed.
    pub(crate) fn domain(&self) -> Eip712Domain {
        self.kind
            .pick(self.h.usdc_domain(), self.h.permit2_domain())
    }

    /// The domain of the same contract under chain id `chain_id`.
    pub(crate) fn domain_on(&self, chain_id: u64) -> Eip712Domain {
        self.kind.pick(
            usdc_domain(chain_id, self.h.bed.usdc()),
            permit2_domain(chain_id),
        )
    }

    /// The payer's signature of `message` under [`Ctx::domain`].
    pub(crate) fn signature(&self, message: &Message) -> Bytes {
        message.sign(&self.key, &self.domain())
    }

    /// A v2 request for the requirements with `message` signed by the payer.
    pub(crate) fn signed(&self, message: &Message) -> VerifyRequest {
        self.with_signature(message, self.signature(message))
    }

    /// A v2 request for the requirements with `message` carrying `signature` verbatim.
    pub(crate) fn with_signature(&self, message: &Message, signature: Bytes) -> VerifyRequest {
        request_v2(&self.req, message.payload(self.payer, signature))
    }
}

/// One case of a table: what is changed, and the reason each kind answers (`None`: the case
/// does not apply to the kind).
#[derive(Debug, Clone)]
pub(crate) struct Row<E> {
    pub(crate) case: String,
    pub(crate) edit: E,
    pub(crate) eip3009: Option<Reason>,
    pub(crate) permit2: Option<Reason>,
    /// EIP-3009 also refuses the same payload in a v1 envelope (Permit2 is v2 only).
    pub(crate) v1: bool,
}

impl<E> Row<E> {
    /// A case of both kinds.
    pub(crate) fn both(case: impl Into<String>, edit: E, eip3009: Reason, permit2: Reason) -> Self {
        Self {
            case: case.into(),
            edit,
            eip3009: Some(eip3009),
            permit2: Some(permit2),
            v1: false,
        }
    }

    /// A case of `kind` alone.
    pub(crate) fn only(kind: Kind, case: impl Into<String>, edit: E, reason: Reason) -> Self {
        let (eip3009, permit2) = kind.pick((Some(reason.clone()), None), (None, Some(reason)));
        Self {
            case: case.into(),
            edit,
            eip3009,
            permit2,
            v1: false,
        }
    }

    /// EIP-3009 refuses the payload in a v1 envelope too.
    pub(crate) fn and_v1(mut self) -> Self {
        self.v1 = true;
        self
    }

    /// The reason `kind` answers, if the case applies to it.
    pub(crate) fn reason(&self, kind: Kind) -> Option<Reason> {
        kind.pick(self.eip3009.clone(), self.permit2.clone())
    }
}

/// Runs every row of `rows` that applies to `ctx.kind` through `check(ctx, row, reason)`, each on
/// its own task; fails once at the end, naming every failed row of `suite`.
pub(crate) async fn run_rows<E, F, Fut>(ctx: &Ctx, suite: &str, rows: Vec<Row<E>>, check: F)
where
    E: Send + 'static,
    F: Fn(Ctx, Row<E>, Reason) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_kind_rows(ctx.kind, suite, rows, |row, reason| {
        check(ctx.clone(), row, reason)
    })
    .await;
}

/// [`run_rows`] for rows that set up a bed of their own.
pub(crate) async fn run_kind_rows<E, F, Fut>(kind: Kind, suite: &str, rows: Vec<Row<E>>, check: F)
where
    E: Send + 'static,
    F: Fn(Row<E>, Reason) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut cases = Cases::new(format!("{kind} {suite}"));
    for row in rows {
        let Some(reason) = row.reason(kind) else {
            continue;
        };
        let case = row.case.clone();
        cases.run(case, check(row, reason)).await;
    }
    cases.finish();
}

/// Verify and settle refuse `request` with `reason` and nothing moves (the seller, the signers,
/// `watch`) and nothing is broadcast; for a row marked `v1` on EIP-3009, the same payload in a v1
/// envelope too, refused with the v1 spelling of `reason`.
pub(crate) async fn refused<E>(
    ctx: &Ctx,
    row: &Row<E>,
    request: &VerifyRequest,
    reason: Reason,
    watch: &[Address],
) {
    let what = ctx.what(&row.case);
    ctx.h
        .assert_refused(request, reason.clone(), watch, &what)
        .await;
    if row.v1 && ctx.kind == Kind::Eip3009 {
        let PaymentRequirements::V2(req) = &request.payment_requirements else {
            panic!("{what}: a v2 request expected")
        };
        let v1 = request_v1(req, payload_of(request));
        let v1_reason = reason.for_version(
            x402_core::X402Version::V1,
            scheme_exact_evm::reason::V1_SPELLINGS,
        );
        ctx.h
            .assert_refused(&v1, v1_reason, watch, &format!("v1 {what}"))
            .await;
    }
}

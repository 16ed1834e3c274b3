//! 2.D/2.E The chain under a payment: its nonce revoked by the owner or used by a third party
//! before verify, between verify and settle, or between verify and broadcast (S28, S30, S31);
//! the payer's funds moved away after verify (S28, S39); replays of a settled payment (S21) and
//! more payments than the balance covers (S27).

use std::sync::Arc;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider as _;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use scheme_exact_evm::Policy;
use x402_core::{Facilitator as _, Reason};
use x402_evm::abi::eip3009::{IEip3009Token, TransferWithAuthorization};
use x402_tests::evm::PERMIT2_ADDRESS;
use x402_tests::evm::exact::{
    ExactHarness, UNITS, assert_duplicate, assert_settle_refused, payload_of, request_v1,
};
use x402_tests::evm::x402::{
    EXACT_PERMIT2_PROXY, IExactPermit2Proxy, ProxyArgs as _, sign_eip712, split_signature,
};

use super::{Ctx, Kind, Message, Row, each_kind, refused, run_rows};

alloy::sol! {
    /// FiatToken's EIP-712 message that cancels an unused authorization.
    struct CancelAuthorization {
        address authorizer;
        bytes32 nonce;
    }

    /// FiatTokenV2_2's cancellation entry point.
    interface IFiatTokenCancel {
        function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;
    }

    /// Permit2's owner-side nonce invalidation.
    interface IPermit2Invalidate {
        function invalidateUnorderedNonces(uint256 wordPos, uint256 mask) external;
    }
}

/// The transaction by which `submitter` cancels the payer's EIP-3009 `nonce` on FiatToken
/// (anyone may submit the signed cancellation).
fn cancel_tx(ctx: &Ctx, nonce: B256, submitter: Address) -> TransactionRequest {
    let message = CancelAuthorization {
        authorizer: ctx.payer,
        nonce,
    };
    let (v, r, s) = split_signature(&sign_eip712(&ctx.key, &message, &ctx.h.usdc_domain()));
    let data = IFiatTokenCancel::cancelAuthorizationCall {
        authorizer: ctx.payer,
        nonce,
        v,
        r,
        s,
    }
    .abi_encode();
    TransactionRequest::default()
        .from(submitter)
        .to(ctx.h.bed.usdc())
        .input(data.into())
}

/// The transaction by which `owner` invalidates its Permit2 `nonce`.
fn invalidate_tx(owner: Address, nonce: U256) -> TransactionRequest {
    let data = IPermit2Invalidate::invalidateUnorderedNoncesCall {
        wordPos: nonce >> 8,
        mask: U256::from(1) << (nonce & U256::from(0xff)).to::<usize>(),
    }
    .abi_encode();
    TransactionRequest::default()
        .from(owner)
        .to(PERMIT2_ADDRESS)
        .input(data.into())
}

/// The transaction by which `from`, a third party, uses an EIP-3009 authorization itself (the
/// `v, r, s` overload).
pub(super) fn front_run_tx(
    h: &ExactHarness,
    from: Address,
    message: &TransferWithAuthorization,
    signature: &Bytes,
) -> TransactionRequest {
    let (v, r, s) = split_signature(signature);
    let data = IEip3009Token::transferWithAuthorization_0Call {
        from: message.from,
        to: message.to,
        value: message.value,
        validAfter: message.validAfter,
        validBefore: message.validBefore,
        nonce: message.nonce,
        v,
        r,
        s,
    }
    .abi_encode();
    TransactionRequest::default()
        .from(from)
        .to(h.bed.usdc())
        .input(data.into())
}

/// The owner revokes the authorization's nonce: FiatToken's signed cancellation (submitted by a
/// spare account), Permit2's `invalidateUnorderedNonces`.
fn revoke_tx(ctx: &Ctx, message: &Message) -> TransactionRequest {
    match message {
        Message::Eip3009(m) => cancel_tx(ctx, m.nonce, ctx.h.bed.spare_accounts()[0].address),
        Message::Permit2(m) => invalidate_tx(ctx.payer, m.nonce),
    }
}

/// `from`, a third party, uses the payer's signed authorization itself: FiatToken's
/// `transferWithAuthorization`, or the exact proxy's `settle` (which has no caller binding).
fn third_party_tx(
    ctx: &Ctx,
    message: &Message,
    signature: &Bytes,
    from: Address,
) -> TransactionRequest {
    match message {
        Message::Eip3009(m) => front_run_tx(&ctx.h, from, m, signature),
        Message::Permit2(m) => {
            let data = IExactPermit2Proxy::settleCall {
                permit: m.transfer_permit(),
                owner: ctx.payer,
                witness: m.proxy_witness(),
                signature: signature.clone(),
            }
            .abi_encode();
            TransactionRequest::default()
                .from(from)
                .to(EXACT_PERMIT2_PROXY)
                .input(data.into())
        }
    }
}

/// What happens to the nonce of a signed authorization.
#[derive(Debug, Clone, Copy)]
enum Event {
    /// The owner revokes it.
    Revoked,
    /// A third party's transaction uses the authorization (the price moves once, by it).
    UsedByThirdParty,
}

/// When it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    BeforeVerify,
    /// After a successful verify, before settle.
    AfterVerify,
    /// Inside settle: after verification and simulation, before the nonce check and broadcast.
    AfterClaim,
}

async fn check_event(ctx: Ctx, row: Row<(Event, When)>, reason: Reason) {
    let (event, when) = row.edit;
    let what = ctx.what(&row.case);
    let third = ctx.h.bed.spare_accounts()[0].address;
    let seller = ctx.h.bed.seller().address;
    let message = ctx.message();
    let signature = ctx.signature(&message);
    let request = ctx.with_signature(&message, signature.clone());
    let tx = match event {
        Event::Revoked => revoke_tx(&ctx, &message),
        Event::UsedByThirdParty => third_party_tx(&ctx, &message, &signature, third),
    };
    if when != When::BeforeVerify {
        ctx.h
            .assert_valid(&request, &format!("{what}: before"))
            .await;
    }
    match (event, when) {
        (Event::Revoked, When::BeforeVerify | When::AfterVerify) => {
            ctx.h.bed.send(tx, &what).await;
            refused(&ctx, &row, &request, reason, &[ctx.payer]).await;
        }
        (Event::UsedByThirdParty, When::BeforeVerify | When::AfterVerify) => {
            let s0 = ctx.h.usdc(seller).await;
            let used = ctx.h.bed.send(tx, &what).await.transaction_hash;
            assert_eq!(
                ctx.h.usdc(seller).await,
                s0 + U256::from(UNITS),
                "{what}: the third party's transaction paid"
            );
            used_elsewhere(&ctx, &row, &request, reason, used).await;
        }
        (Event::Revoked, When::AfterClaim) => {
            let (_, before, s) = ctx
                .h
                .settle_racing(tx, "revocation", &request, &[ctx.payer])
                .await;
            // A revocation paid nobody: no transaction to name.
            assert_settle_refused(&s, reason, &what);
            ctx.h.assert_untouched(&before, &what).await;
        }
        (Event::UsedByThirdParty, When::AfterClaim) => {
            let s = ctx
                .h
                .assert_front_run_wins(tx, &request, ctx.payer, reason)
                .await;
            if ctx.kind == Kind::Eip3009 {
                // The hash is the front-runner's transaction, read from its AuthorizationUsed log.
                let foreign = ctx
                    .h
                    .bed
                    .provider()
                    .get_transaction_by_hash(s.transaction.parse().expect("a tx hash"))
                    .await
                    .unwrap()
                    .expect("the named transaction exists");
                assert_eq!(foreign.inner.signer(), third, "{what}: {s:?}");
            }
        }
    }
}

/// A payment whose authorization a third party's transaction `used` already: verify refuses it
/// with `reason`; settle (whose simulation runs under the payment's claim, threat-model S31)
/// refuses it with `reason` too, naming that transaction where the token logs it (EIP-3009's
/// `AuthorizationUsed`; Permit2 has no per-nonce event), and records it — a later settle is a
/// duplicate naming it. Nothing moves.
async fn used_elsewhere<E>(
    ctx: &Ctx,
    row: &Row<E>,
    request: &x402_core::wire::VerifyRequest,
    reason: Reason,
    used: alloy::primitives::TxHash,
) {
    let what = ctx.what(&row.case);
    let before = ctx.h.snapshot(&[ctx.payer]).await;
    let v = ctx.h.verify_json(request).await;
    assert!(!v.is_valid, "{what}: {v:?}");
    assert_eq!(v.invalid_reason, Some(reason.clone()), "{what}: {v:?}");
    let s = ctx.h.settle_json(request).await;
    assert!(!s.success, "{what}: {s:?}");
    assert_eq!(s.error_reason, Some(reason), "{what}: {s:?}");
    if ctx.kind == Kind::Eip3009 {
        assert_eq!(s.transaction, format!("{used:#x}"), "{what}: {s:?}");
        let again = ctx.h.settle_json(request).await;
        assert_duplicate(&again, &s.transaction, &what);
    } else {
        assert_eq!(s.transaction, "", "{what}: {s:?}");
    }
    ctx.h.assert_untouched(&before, &what).await;
}

async fn nonce_events(kind: Kind) {
    let used = (
        scheme_exact_evm::reason::INVALID_EXACT_EVM_NONCE_ALREADY_USED,
        x402_evm::reason::PERMIT2_INVALID_NONCE,
    );
    let row = |case: &str, change, (eip3009, permit2): (Reason, Reason)| {
        Row::both(case, change, eip3009, permit2)
    };
    let rows = vec![
        row(
            "S28/S30 revoked before verify",
            (Event::Revoked, When::BeforeVerify),
            used.clone(),
        ),
        row(
            "S28/S30 revoked between verify and settle",
            (Event::Revoked, When::AfterVerify),
            used.clone(),
        ),
        row(
            "S31 revoked between verify and broadcast",
            (Event::Revoked, When::AfterClaim),
            used.clone(),
        ),
        row(
            "S30 used by a third party between verify and settle",
            (Event::UsedByThirdParty, When::AfterVerify),
            used.clone(),
        ),
        row(
            "S31 front-run between verify and broadcast",
            (Event::UsedByThirdParty, When::AfterClaim),
            used,
        ),
    ];
    let ctx = Ctx::start(kind).await;
    run_rows(&ctx, "nonce revoked or used", rows, check_event).await;
}
each_kind!(s28_s30_s31_nonce_revoked_or_used_on_chain, nonce_events);

/// A row of [`funds_moved`]: the payer (spare account `payer`, holding one price) moves
/// `amount` away after verify.
#[derive(Debug, Clone, Copy)]
struct Move {
    payer: usize,
    amount: u64,
}

async fn check_move(ctx: Ctx, row: Row<Move>, reason: Reason) {
    let Move { payer, amount } = row.edit;
    let key = ctx.h.bed.spare_accounts()[payer].signer.clone();
    let ctx = Ctx::for_key(ctx.h.clone(), ctx.kind, key).await;
    ctx.h.bed.mint_usdc(ctx.payer, U256::from(UNITS)).await;
    ctx.approve_permit2().await;
    let request = ctx.signed(&ctx.message());
    ctx.h
        .assert_valid(&request, &ctx.what("before the move"))
        .await;
    let elsewhere = Address::repeat_byte(0xee);
    ctx.h
        .bed
        .transfer_usdc(ctx.payer, elsewhere, U256::from(amount))
        .await;
    refused(&ctx, &row, &request, reason, &[ctx.payer, elsewhere]).await;
}

async fn funds_moved(kind: Kind) {
    let row = |case: &str, payer, amount| {
        Row::both(
            case,
            Move { payer, amount },
            scheme_exact_evm::reason::INVALID_EXACT_EVM_INSUFFICIENT_BALANCE,
            x402_evm::reason::PERMIT2_INSUFFICIENT_BALANCE,
        )
    };
    let rows = vec![
        row("S28 all of it moved away after verify", 0, UNITS),
        row("S28/S39 one unit moved away after verify", 1, 1),
    ];
    let ctx = Ctx::start(kind).await;
    run_rows(&ctx, "funds moved", rows, check_move).await;
}
each_kind!(
    s28_s39_buyer_moves_its_funds_between_verify_and_settle,
    funds_moved
);

async fn s21(kind: Kind) {
    let ctx = Ctx::start(kind).await;
    let h = &ctx.h;
    let used = kind.pick(
        scheme_exact_evm::reason::INVALID_EXACT_EVM_NONCE_ALREADY_USED,
        x402_evm::reason::PERMIT2_INVALID_NONCE,
    );
    let seller = h.bed.seller().address;
    let message = ctx.message();
    let request = ctx.signed(&message);
    let (b0, s0, n0) = (
        h.usdc(ctx.payer).await,
        h.usdc(seller).await,
        h.signer_nonces().await,
    );
    let first = h.settle_json(&request).await;
    assert!(first.success, "{first:?}");
    let paid = h.snapshot(&[ctx.payer]).await;
    assert_eq!(paid.usdc[0].1, s0 + U256::from(UNITS));
    assert_eq!(h.usdc(ctx.payer).await, b0 - U256::from(UNITS));
    assert_eq!(paid.signer_nonces[0], n0[0] + 1);

    // Verify reads the settlement store (threat-model S78)...
    let v = h.verify_json(&request).await;
    assert_eq!(
        v.invalid_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{v:?}"
    );
    assert!(
        v.invalid_message
            .as_deref()
            .unwrap_or_default()
            .contains(&first.transaction),
        "{v:?}"
    );
    // ...and, without a record (another facilitator's store), the nonce state on chain.
    let fresh = h.fresh_facilitator(Policy::default(), x402_core::system_clock());
    let v = fresh.verify(&request).await.unwrap();
    assert_eq!(v.invalid_reason, Some(used.clone()), "{v:?}");
    // Settle answers from the ledger: the recorded transaction, never a second success — in
    // either envelope (Permit2 is v2 only).
    assert_duplicate(&h.settle_json(&request).await, &first.transaction, "v2");
    if kind == Kind::Eip3009 {
        let v1 = request_v1(&ctx.req, payload_of(&request));
        assert_duplicate(&h.settle_json(&v1).await, &first.transaction, "v1");
    }
    // A new authorization (another expiry) reusing the spent nonce: the same payment identity.
    let mut reuse = message.clone();
    reuse.extend_expiry(30);
    let reuse = ctx.signed(&reuse);
    let v = h.verify_json(&reuse).await;
    assert_eq!(
        v.invalid_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{v:?}"
    );
    assert_duplicate(&h.settle_json(&reuse).await, &first.transaction, "reuse");
    // A facilitator without the ledger entry reads the chain instead: the authorization is
    // used — by the first settlement, which it names where the token logs it (EIP-3009's
    // `AuthorizationUsed`) — and from then on that is what its own ledger answers.
    let s = fresh.settle(&request).await.unwrap();
    assert!(!s.success, "fresh ledger, replay: {s:?}");
    assert_eq!(
        s.error_reason,
        Some(used.clone()),
        "fresh ledger, replay: {s:?}"
    );
    let named = match kind {
        Kind::Eip3009 => first.transaction.clone(),
        Kind::Permit2 => String::new(),
    };
    assert_eq!(s.transaction, named, "fresh ledger, replay: {s:?}");
    assert_duplicate(
        &fresh.settle(&reuse).await.unwrap(),
        &named,
        "fresh ledger, reuse",
    );
    h.assert_untouched(&paid, "replays").await;
}
each_kind!(s21_replay_and_nonce_reuse_after_settlement, s21);

/// Settles payments of `kinds` — each valid alone, all by one payer holding one price — at once:
/// exactly one settles, every other is refused with its kind's insufficient-balance reason before
/// broadcast.
async fn n_payments(kinds: &[Kind]) {
    let h = Arc::new(ExactHarness::start().await);
    let buyer: PrivateKeySigner = h.bed.spare_accounts()[0].signer.clone();
    h.bed.mint_usdc(buyer.address(), U256::from(UNITS)).await;
    let mut ctxs = Vec::new();
    for kind in [Kind::Eip3009, Kind::Permit2] {
        if kinds.contains(&kind) {
            let ctx = Ctx::for_key(h.clone(), kind, buyer.clone()).await;
            ctx.approve_permit2().await;
            ctxs.push(ctx);
        }
    }
    let ctx_of = |kind: Kind| ctxs.iter().find(|c| c.kind == kind).expect("a context");
    let requests = kinds
        .iter()
        .map(|&kind| {
            let ctx = ctx_of(kind);
            ctx.signed(&ctx.message())
        })
        .collect();
    let refusals: Vec<Reason> = ctxs
        .iter()
        .map(|c| {
            c.kind.pick(
                scheme_exact_evm::reason::INVALID_EXACT_EVM_INSUFFICIENT_BALANCE,
                x402_evm::reason::PERMIT2_INSUFFICIENT_BALANCE,
            )
        })
        .collect();
    h.assert_only_one_affordable(buyer.address(), requests, &refusals)
        .await;
}

async fn s27(kind: Kind) {
    n_payments(&[kind; 6]).await;
}
each_kind!(s27_n_payments_with_balance_for_one, s27);

#[tokio::test]
async fn s27_n_payments_across_both_methods_with_balance_for_one() {
    n_payments(&[Kind::Permit2, Kind::Eip3009].repeat(3)).await;
}

//! The assertions negative and concurrency tests make with an [`ExactHarness`]: refusals that
//! move nothing and broadcast nothing, settles racing a change of the chain, payments that settle
//! once.

use std::sync::Arc;

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use scheme_exact_evm::Policy;
use x402_core::settlement::faulty::FaultyStore;
use x402_core::wire::{SettleResponse, VerifyRequest};
use x402_core::{Facilitator as _, LocalFacilitator, Reason, ShiftedClock, system_clock};

use super::{ExactHarness, Snapshot, UNITS, settle_all};

impl ExactHarness {
    /// Asserts NO-FUNDS and NO-BROADCAST against `before` (same `watch` list).
    pub async fn assert_untouched(&self, before: &Snapshot, what: &str) {
        let watch: Vec<Address> = before
            .usdc
            .iter()
            .skip(1 + self.pool.addresses().len())
            .map(|(a, _)| *a)
            .collect();
        let now = self.snapshot(&watch).await;
        assert_eq!(
            now.signer_nonces, before.signer_nonces,
            "{what}: the facilitator broadcast a transaction"
        );
        assert_eq!(now.usdc, before.usdc, "{what}: USDC moved");
        assert_eq!(
            now.signer_eth, before.signer_eth,
            "{what}: the facilitator spent ETH"
        );
    }

    /// Verify says `is_valid` (the control a negative variant is derived from).
    pub async fn assert_valid(&self, request: &VerifyRequest, what: &str) {
        let v = self.verify_json(request).await;
        assert!(
            v.is_valid,
            "{what}: the unmodified payment must verify: {v:?}"
        );
    }

    /// Verify and settle both refuse `request` with `reason`; nothing moves (the seller, the
    /// facilitator signers and `watch`) and nothing is broadcast.
    pub async fn assert_refused(
        &self,
        request: &VerifyRequest,
        reason: Reason,
        watch: &[Address],
        what: &str,
    ) {
        let before = self.snapshot(watch).await;
        let v = self.verify_json(request).await;
        assert!(!v.is_valid, "{what}: verify accepted: {v:?}");
        assert_eq!(
            v.invalid_reason,
            Some(reason.clone()),
            "{what}: verify {v:?}"
        );
        assert_settle_refused(&self.settle_json(request).await, reason, what);
        self.assert_untouched(&before, what).await;
    }

    /// A request body whose payload is malformed: verify and settle answer `invalid_payload`,
    /// never an error.
    pub async fn assert_payload_refused(&self, body: &[u8], what: &str) {
        let v = self
            .verify_body(body)
            .await
            .unwrap_or_else(|e| panic!("{what}: verify failed instead of answering: {e}"));
        assert!(!v.is_valid, "{what}: {v:?}");
        assert_eq!(
            v.invalid_reason,
            Some(Reason::INVALID_PAYLOAD),
            "{what}: {v:?}"
        );
        let s = self
            .settle_body(body)
            .await
            .unwrap_or_else(|e| panic!("{what}: settle failed instead of answering: {e}"));
        assert_settle_refused(&s, Reason::INVALID_PAYLOAD, what);
    }

    /// `request` verifies, then settling it is refused with `reason` — twice, the refusal gives
    /// the claim back rather than recording a duplicate — and nothing moves or is broadcast.
    pub async fn assert_settle_refused_twice(
        &self,
        request: &VerifyRequest,
        reason: Reason,
        watch: &[Address],
        what: &str,
    ) {
        self.assert_valid(request, what).await;
        let before = self.snapshot(watch).await;
        for attempt in 0..2 {
            let s = self.settle_json(request).await;
            assert_settle_refused(&s, reason.clone(), &format!("{what} #{attempt}"));
        }
        self.assert_untouched(&before, what).await;
        assert_eq!(self.pool.stats().sent, 0);
    }

    /// `request` (valid from 30 s ago for 60 s) verifies on a dispatcher with a clock of its own
    /// ([`ShiftedClock`]); settling it with the clock moved by each `(shift, reason)` is refused
    /// with `reason` and touches nothing; back at the real clock the same payment settles: the
    /// refusals burnt nothing.
    pub async fn assert_settle_rechecks_the_window(
        &self,
        request: &VerifyRequest,
        watch: &[Address],
        shifts: &[(i64, Reason)],
    ) {
        let clock = Arc::new(ShiftedClock::default());
        let f = self.fresh_facilitator(Policy::default(), clock.clone());
        let v = f.verify(request).await.expect("verify answers");
        assert!(v.is_valid, "{v:?}");
        let before = self.snapshot(watch).await;
        // Time moves between verify and settle (the chain itself would still accept the
        // payment: only the facilitator's re-check stands in the way).
        for (shift, reason) in shifts {
            clock.set_shift(*shift);
            let s = f.settle(request).await.expect("settle answers");
            let what = format!("shift {shift}");
            assert_settle_refused(&s, reason.clone(), &what);
            self.assert_untouched(&before, &what).await;
        }
        clock.set_shift(0);
        let s = f.settle(request).await.expect("settle answers");
        assert!(s.success, "{s:?}");
        assert_eq!(
            self.usdc(self.bed.seller().address).await,
            before.usdc[0].1 + U256::from(UNITS)
        );
    }

    /// Settles `request` through a dispatcher with a store of its own that sends `tx` (and mines
    /// it) the moment the payment is claimed: after the checks that read nothing changeable,
    /// before the settle's last check (its simulation) and the broadcast. Asserts that `tx` ran;
    /// returns that dispatcher (for retries), a snapshot of `watch` from just before, and the
    /// answer.
    pub async fn settle_racing(
        &self,
        tx: TransactionRequest,
        what: &'static str,
        request: &VerifyRequest,
        watch: &[Address],
    ) -> (LocalFacilitator, Snapshot, SettleResponse) {
        self.settle_racing_at(false, tx, what, request, watch).await
    }

    /// As [`Self::settle_racing`], with `tx` sent and mined at the write-ahead instead: after
    /// the settle's last check passed and its transaction was signed, right before the
    /// broadcast — the chain changing between the simulation and the send.
    pub async fn settle_racing_the_send(
        &self,
        tx: TransactionRequest,
        what: &'static str,
        request: &VerifyRequest,
        watch: &[Address],
    ) -> (LocalFacilitator, Snapshot, SettleResponse) {
        self.settle_racing_at(true, tx, what, request, watch).await
    }

    async fn settle_racing_at(
        &self,
        at_write_ahead: bool,
        tx: TransactionRequest,
        what: &'static str,
        request: &VerifyRequest,
        watch: &[Address],
    ) -> (LocalFacilitator, Snapshot, SettleResponse) {
        let provider = self.bed.provider();
        let hook: x402_core::settlement::faulty::ClaimHook = Box::new(move || {
            Box::pin(async move {
                let pending = provider.send_transaction(tx).await.expect(what);
                let receipt = pending.get_receipt().await.expect(what);
                assert!(receipt.status(), "{what} reverted");
            })
        });
        let store = Arc::new(if at_write_ahead {
            FaultyStore::with_write_ahead_hook(hook)
        } else {
            FaultyStore::with_claim_hook(hook)
        });
        let f = self.facilitator_with(store.clone(), Policy::default(), system_clock());
        let before = self.snapshot(watch).await;
        let s = f.settle(request).await.expect("settle answers");
        assert!(
            store.hook_fired().await,
            "{what}: ran after the payment was verified"
        );
        (f, before, s)
    }

    /// A third party sends `front_run` — which uses `buyer`'s payment itself — after the
    /// facilitator verified `request` and before it broadcasts: the settle reports `used` (the
    /// reference's reason for a used nonce), the price moved exactly once (by the front-runner's
    /// transaction) and the facilitator sent nothing; a later settle is a duplicate. Returns the
    /// answer.
    pub async fn assert_front_run_wins(
        &self,
        front_run: TransactionRequest,
        request: &VerifyRequest,
        buyer: Address,
        used: Reason,
    ) -> SettleResponse {
        let (f, before, s) = self
            .settle_racing(front_run, "front-run", request, &[buyer])
            .await;
        assert!(!s.success, "{s:?}");
        assert_eq!(s.error_reason, Some(used), "{s:?}");
        let after = self.snapshot(&[buyer]).await;
        assert_eq!(
            after.signer_nonces, before.signer_nonces,
            "nothing broadcast"
        );
        assert_eq!(after.signer_eth, before.signer_eth);
        assert_eq!(
            after.usdc[0].1,
            before.usdc[0].1 + U256::from(UNITS),
            "paid once"
        );
        assert_eq!(
            after.usdc.last().expect("the buyer").1,
            before.usdc.last().expect("the buyer").1 - U256::from(UNITS)
        );
        // And a later settle of the same payment is never a success.
        let again = f.settle(request).await.expect("settle answers");
        assert_duplicate(&again, &s.transaction, "settle after the front-run");
        self.assert_untouched(&after, "after the front-run").await;
        s
    }

    /// Settles `requests` — each valid alone, all paid by `buyer`, who holds one price — at
    /// once: exactly one settles, with one broadcast; every other is refused with one of
    /// `refusals` before broadcast; the buyer ends with nothing and the seller gained one price.
    pub async fn assert_only_one_affordable(
        self: &Arc<Self>,
        buyer: Address,
        requests: Vec<VerifyRequest>,
        refusals: &[Reason],
    ) {
        for r in &requests {
            self.assert_valid(r, "each alone").await;
        }
        let seller = self.bed.seller().address;
        let (s0, n0) = (self.usdc(seller).await, self.signer_nonces().await);
        let mut successes = 0;
        for s in settle_all(self, requests).await {
            if s.success {
                successes += 1;
            } else {
                assert!(
                    s.error_reason
                        .as_ref()
                        .is_some_and(|r| refusals.contains(r)),
                    "{s:?}"
                );
                assert_eq!(s.transaction, "", "refused before broadcast");
            }
        }
        assert_eq!(successes, 1);
        assert_eq!(self.pool.stats().sent, 1, "no transaction that must revert");
        assert_eq!(self.signer_nonces().await[0], n0[0] + 1);
        assert_eq!(self.usdc(buyer).await, U256::ZERO);
        assert_eq!(self.usdc(seller).await, s0 + U256::from(UNITS));
    }

    /// Settles each of `variants` — one payment by `buyer` written in different ways, each
    /// verifying alone — `rounds` times, all at once (with a verify before each settle of
    /// `verify_round`): exactly one settlement succeeds, with one broadcast, every other is a
    /// duplicate, and the price moved once. Returns the winning transaction.
    pub async fn assert_variants_settle_once(
        self: &Arc<Self>,
        buyer: Address,
        variants: &[(&'static str, VerifyRequest)],
        rounds: usize,
        verify_round: Option<usize>,
    ) -> String {
        for (what, request) in variants {
            self.assert_valid(request, what).await;
        }
        let seller = self.bed.seller().address;
        let (b0, s0, n0) = (
            self.usdc(buyer).await,
            self.usdc(seller).await,
            self.signer_nonces().await,
        );
        let mut tasks = Vec::new();
        for round in 0..rounds {
            for (what, request) in variants.iter().cloned() {
                let h = self.clone();
                tasks.push(tokio::spawn(async move {
                    if verify_round == Some(round) {
                        // Verifies mixed in: any answer, never an error.
                        let _ = h
                            .facilitator
                            .verify(&request)
                            .await
                            .expect("verify answers");
                    }
                    (
                        what,
                        h.facilitator
                            .settle(&request)
                            .await
                            .expect("settle answers"),
                    )
                }));
            }
        }
        let mut winners = Vec::new();
        let mut losers = 0;
        for t in tasks {
            let (what, s) = t.await.expect("settle task");
            if s.success {
                winners.push((what, s.transaction));
            } else {
                assert_eq!(
                    s.error_reason,
                    Some(Reason::DUPLICATE_SETTLEMENT),
                    "{what}: {s:?}"
                );
                losers += 1;
            }
        }
        assert_eq!(winners.len(), 1, "{winners:?}");
        assert_eq!(losers, rounds * variants.len() - 1);
        assert_eq!(self.pool.stats().sent, 1, "one broadcast");
        assert_eq!(self.signer_nonces().await[0], n0[0] + 1);
        assert_eq!(self.usdc(buyer).await, b0 - U256::from(UNITS));
        assert_eq!(self.usdc(seller).await, s0 + U256::from(UNITS));
        winners.remove(0).1
    }
}

/// Asserts `s` refuses with `reason` and names no transaction (nothing was broadcast).
pub fn assert_settle_refused(s: &SettleResponse, reason: Reason, what: &str) {
    assert!(!s.success, "{what}: settle succeeded: {s:?}");
    assert_eq!(s.error_reason, Some(reason), "{what}: settle {s:?}");
    assert_eq!(
        s.transaction, "",
        "{what}: settle names a transaction: {s:?}"
    );
}

/// Asserts `s` answers a payment already settled by `transaction`: a duplicate naming it, never
/// a second success.
pub fn assert_duplicate(s: &SettleResponse, transaction: &str, what: &str) {
    assert!(!s.success, "{what}: {s:?}");
    assert_eq!(
        s.error_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{what}: {s:?}"
    );
    assert_eq!(s.transaction, transaction, "{what}: {s:?}");
}

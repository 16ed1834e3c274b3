//! Settling a verified payment: the before/failure/after hooks around one settle at the
//! facilitator that verified it, the one retry of a `settlement_pending` answer, and the checks
//! of the answer before anything is granted.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use x402_core::wire::{SettleResponse, VerifyRequest};
use x402_core::{Reason, X402Version};

use crate::body::BodyContext;
use crate::config::{Route, SellerInner};
use crate::flow::{Paid, aborted, hook_failed};
use crate::hook::{Hooks, Operation, SellerCall};
use crate::offers::Offers;
use crate::response;

/// Whether the facilitator answered that the payment was sent but not yet decided.
pub(crate) fn is_pending(settlement: &SettleResponse) -> bool {
    !settlement.success && settlement.error_reason == Some(Reason::SETTLEMENT_PENDING)
}

/// What a settle needs to know.
pub(crate) struct Settling<'a> {
    pub(crate) seller: &'a SellerInner,
    pub(crate) hooks: &'a Hooks<'a>,
    pub(crate) route: &'a Route,
    pub(crate) offers: &'a Offers,
    pub(crate) paid: &'a Paid,
    /// The facilitator that verified the payment: its settle goes there and nowhere else.
    pub(crate) facilitator: usize,
    pub(crate) payer: Option<&'a str>,
}

impl Settling<'_> {
    /// Settles through the hooks; `Err` is the response to send instead of the handler's (402,
    /// 500 for a failed hook, 502, or 504 while the settlement is pending).
    ///
    /// The settle goes only to the facilitator that verified the payment, never to another:
    /// a transport error or timeout does not say whether the settlement was sent, and a second
    /// facilitator settling the same authorization either fails on chain after the first
    /// succeeded (the buyer charged, the content withheld) or — for a scheme without a one-time
    /// nonce — charges twice.
    pub(crate) async fn settle(
        &self,
        request: &VerifyRequest,
    ) -> Result<SettleResponse, Box<Response<Body>>> {
        let call = SellerCall {
            operation: Operation::Settle,
            request,
            version: self.paid.version,
            payer: self.payer,
        };
        match self.hooks.before(&call).await {
            Ok(None) => {}
            Ok(Some((rejection, hook))) => {
                return Err(Box::new(aborted(
                    self.offers,
                    &rejection,
                    &hook,
                    self.payer,
                )));
            }
            Err(failed) => return Err(Box::new(hook_failed(&failed))),
        }
        let facilitator = &self.seller.upstreams[self.facilitator].facilitator;
        let result = match facilitator.settle(request).await {
            Ok(s) if is_pending(&s) => Ok(self.settle_pending(request, s).await),
            other => other,
        };
        let answer = match self.hooks.settled(&call, result, is_pending).await {
            Ok(a) => a,
            Err(failed) => return Err(Box::new(hook_failed(&failed))),
        };
        let settlement = match answer.result {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "facilitator settle failed");
                return Err(Box::new(response::error(
                    StatusCode::BAD_GATEWAY,
                    &format!(
                        "the payment facilitator failed to settle: {e}; the response is withheld"
                    ),
                )));
            }
        };
        if is_pending(&settlement) {
            tracing::error!(
                transaction = %settlement.transaction,
                network = %settlement.network,
                payer = ?settlement.payer,
                "settlement still pending; the response is withheld"
            );
            return Err(Box::new(response::settlement_pending(
                self.paid.version,
                &settlement,
            )));
        }
        if !settlement.success {
            tracing::warn!(
                reason = ?settlement.error_reason,
                message = ?settlement.error_message,
                payer = ?settlement.payer,
                recovered = answer.recovered,
                "settlement failed; the response is withheld"
            );
            let default = response::settlement_failed(self.offers, self.paid.version, &settlement);
            let custom = self
                .route
                .settlement_failed_body
                .as_ref()
                .filter(|_| self.paid.version == X402Version::V2);
            let Some(custom) = custom else {
                return Err(Box::new(default));
            };
            let error = settlement
                .error_reason
                .as_ref()
                .map_or("Settlement failed", Reason::as_str);
            let body = (custom.0)(&BodyContext {
                error,
                resource: &self.offers.resource,
                accepts: &self.offers.v2,
                settlement: Some(&settlement),
                browser: false,
            });
            return Err(Box::new(response::with_custom_body(default, body)));
        }
        if answer.recovered {
            // The seller's own hook vouches for a recovered settlement.
            tracing::info!(transaction = %settlement.transaction, "a seller hook recovered the settle");
            return Ok(settlement);
        }
        // Never grant on an answer that does not describe this payment (threat model S67).
        let requirements = &request.payment_requirements;
        let amount_zero = requirements
            .view()
            .map(|v| v.amount.is_zero())
            .unwrap_or(false);
        if settlement.network != requirements.network_text()
            || (settlement.transaction.is_empty() && !amount_zero)
        {
            tracing::error!(?settlement, "inconsistent settlement answer");
            return Err(Box::new(response::error(
                StatusCode::BAD_GATEWAY,
                "the payment facilitator's settlement answer does not match the payment; the response is withheld",
            )));
        }
        tracing::info!(
            transaction = %settlement.transaction,
            network = %settlement.network,
            payer = ?settlement.payer,
            "payment settled"
        );
        Ok(settlement)
    }

    /// Retries, once and after [`crate::SellerOptions::pending_retry_pause`], a settle the
    /// facilitator answered `settlement_pending`, with the identical payment and requirements.
    ///
    /// Answers the retry's success (checked by the caller like any other), or else a pending
    /// answer ([`response::settlement_pending`]), never a refusal: the transaction was sent and
    /// may still land, and a refusal of the retry does not say it will not — a facilitator that
    /// records outcomes answers a second settle of a pending payment `duplicate_settlement`, and
    /// one that re-verifies may find the authorization already used by the pending transaction
    /// itself. The answer then is the latest pending one.
    async fn settle_pending(
        &self,
        request: &VerifyRequest,
        pending: SettleResponse,
    ) -> SettleResponse {
        let pause = self.seller.options.pending_retry_pause();
        tracing::warn!(
            transaction = %pending.transaction,
            network = %pending.network,
            ?pause,
            "settlement pending; retrying the settle once"
        );
        tokio::time::sleep(pause).await;
        let facilitator = &self.seller.upstreams[self.facilitator].facilitator;
        match facilitator.settle(request).await {
            Ok(s) if s.success => {
                if s.transaction != pending.transaction {
                    tracing::info!(
                        pending = %pending.transaction,
                        settled = %s.transaction,
                        "the retried settle names another transaction"
                    );
                }
                s
            }
            Ok(s) if is_pending(&s) => s,
            Ok(s) => {
                tracing::warn!(
                    reason = ?s.error_reason,
                    message = ?s.error_message,
                    "the retried settle was refused after a pending answer; still reported as pending"
                );
                pending
            }
            Err(e) => {
                tracing::warn!(error = %e, "the retried settle failed; still reported as pending");
                pending
            }
        }
    }
}

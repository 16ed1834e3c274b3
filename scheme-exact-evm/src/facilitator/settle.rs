//! Settlement: verify again (with simulation) right before anything is sent, one settle per payer
//! at a time, then hand the plan to the shared engine ([`x402_evm::settle::Settler`]), which
//! claims the payment identity, re-checks the nonce, broadcasts, waits and records.

use x402_core::{PaymentContext, Reason, Rejection, SchemeError, Settlement};
use x402_evm::settle::failed;

use super::Facilitator;
use crate::payload::{self, ExactEvmPayload};

impl Facilitator {
    /// Settles a payment (see the module documentation).
    pub(crate) async fn settle_payment(
        &self,
        ctx: &PaymentContext<'_>,
    ) -> Result<Settlement, SchemeError> {
        // One settle per payer at a time, receipt included: a second payment from the same payer
        // is simulated only after the first has landed, so "N payments, balance for one" cannot
        // broadcast N transactions (threat-model S27).
        let _payer_turn = match payload::parse(ctx.payload.payload) {
            Ok(p) => Some(self.payer_locks.lock(&format!("{:#x}", p.payer())).await),
            Err(_) => None,
        };
        let (payload, verdict) = self.check(ctx).await?;
        let Some(payload) = payload else {
            let hint = payload::payer_hint(ctx.payload.payload);
            let r = verdict
                .err()
                .unwrap_or_else(|| Rejection::new(Reason::InvalidPayload));
            return Ok(Settlement::refused(hint, r));
        };
        let payer = payload.payer();
        match verdict {
            Ok(plan) => self.settler.settle(&plan, ctx.deadline).await,
            Err(rejection) => {
                // A payment this facilitator settled before fails verification (its nonce is
                // spent): answer with what was recorded, not a fresh failure.
                if let Some(id) = self.identity(ctx, &payload)
                    && let Some(answer) = self.settler.recorded(&id, payer).await?
                {
                    return Ok(answer);
                }
                Ok(failed(payer, None, rejection))
            }
        }
    }

    /// The identity of a payment without verifying it (for answering repeats).
    fn identity(
        &self,
        ctx: &PaymentContext<'_>,
        payload: &ExactEvmPayload,
    ) -> Option<x402_core::PaymentId> {
        match payload {
            ExactEvmPayload::Eip3009(p) => {
                let asset = x402_evm::parse::address("asset", ctx.requirements.asset).ok()?;
                Some(super::eip3009::eip3009_id(&self.network, asset, p))
            }
            ExactEvmPayload::Permit2(p) => Some(super::permit2_id(&self.network, p.from, p.nonce)),
        }
    }
}

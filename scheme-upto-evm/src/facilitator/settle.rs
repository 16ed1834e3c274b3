//! Settlement of the actual amount: verify again (with simulation) for the charge, one settle
//! per payer at a time, then the shared engine — or, for a zero charge, no transaction at all but
//! the authorization recorded as consumed so no later settle of it can succeed.

use x402_core::{PaymentContext, Reason, Rejection, SchemeError, Settlement};
use x402_evm::permit2::permit2_id;
use x402_evm::settle::{failed, settled};

use super::Facilitator;
use super::verify::Phase;
use crate::payload;

impl Facilitator {
    /// Settles `requirements.amount` (the actual charge) of an authorization for a maximum.
    pub(crate) async fn settle_payment(
        &self,
        ctx: &PaymentContext<'_>,
    ) -> Result<Settlement, SchemeError> {
        let _payer_turn = match payload::parse(ctx.payload.payload) {
            Ok(p) => Some(self.payer_locks.lock(&format!("{:#x}", p.from)).await),
            Err(_) => None,
        };
        let (payload, verdict) = self.check(ctx, Phase::Settle).await?;
        let Some(p) = payload else {
            let r = verdict
                .err()
                .unwrap_or_else(|| Rejection::new(Reason::UnsupportedPayloadType));
            return Ok(Settlement::refused(None, r));
        };
        let plan = match verdict {
            Ok(plan) => plan,
            Err(rejection) => {
                let id = permit2_id(&self.network, p.from, p.nonce);
                if rejection.reason != Reason::InvalidUptoEvmPayloadSettlementExceedsAmount
                    && let Some(answer) = self.settler.recorded(&id, p.from).await?
                {
                    return Ok(answer);
                }
                return Ok(failed(p.from, None, rejection));
            }
        };
        if plan.transfer.value.is_zero() {
            return Ok(
                match self
                    .settler
                    .consume_without_transfer(&plan.id, plan.expires, p.from)
                    .await?
                {
                    Ok(()) => settled(p.from, String::new(), Some(plan.transfer.value)),
                    Err(answer) => answer,
                },
            );
        }
        self.settler.settle(&plan, ctx.deadline).await
    }
}

//! Paying a payment request that did not come as an HTTP 402 (an MCP tool's payment-required
//! error, say): the same hooks, policy, budgets and ledger as [`Buyer::execute`], without the
//! HTTP round trip, which the caller makes with the payment it gets.

use x402_core::X402Version;
use x402_core::wire::{PaymentPayload, PaymentRequired, PaymentRequirements, SettleResponse};

use crate::client::{Buyer, Error};

/// A payment signed for a [`PaymentRequired`] by [`Buyer::sign_required`]: budgeted and in the
/// ledger already, to be sent by the caller.
#[derive(Debug, Clone)]
pub struct SignedPayment {
    /// The protocol version of the payment.
    pub version: X402Version,
    /// The requirement paid (as the seller sent it).
    pub requirements: PaymentRequirements,
    /// The signed payment document.
    pub payload: PaymentPayload,
    /// Its id in the ledger ([`crate::ledger::PaymentRecord::id`]).
    pub id: String,
    /// The `payment-identifier` id the payment carries, if any.
    pub payment_id: Option<String>,
}

impl Buyer {
    /// Chooses one requirement of `required` by policy, reserves its budget, signs it and
    /// records it in the ledger, exactly as [`Buyer::execute`] does for a 402; `resource` stands
    /// for the request's URL (the hooks' `url`, the rate limit's origin, the ledger's `url`).
    /// The hooks see the method `POST`.
    pub async fn sign_required(
        &self,
        resource: &reqwest::Url,
        required: &PaymentRequired,
    ) -> Result<SignedPayment, Error> {
        let method = reqwest::Method::POST;
        // The on-payment-required hooks run as for a 402 (an abort ends it here); a
        // `Before::RetryWith` answer names an HTTP header, which a payment request that came
        // another way cannot carry: it is ignored and the payment goes on.
        if let Some((name, _)) = self.on_required(&method, resource, required).await? {
            tracing::debug!(header = %name, "a hook's retry with a header does not apply outside HTTP");
        }
        let prepared = self.pay(&method, resource, required).await?;
        Ok(SignedPayment {
            version: prepared.version,
            requirements: prepared.requirements,
            payload: prepared.payload,
            id: prepared.id,
            payment_id: prepared.payment_id,
        })
    }

    /// Adds the settlement the seller reported for payment `id` (a [`SignedPayment::id`]) to
    /// the ledger; nothing when `settlement` is `None` or the buyer keeps no ledger.
    pub async fn note_settlement(&self, id: &str, settlement: Option<&SettleResponse>) {
        self.record_settlement(id, settlement).await;
    }
}

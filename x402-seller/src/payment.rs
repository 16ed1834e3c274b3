//! What the protected handler learns about the request's payment, as request extensions.

use x402_core::X402Version;
use x402_core::wire::{PaymentRequirements, SettleResponse};

/// The verified payment of the request, inserted as a request extension before the protected
/// handler runs (axum: `Extension(payment): Extension<VerifiedPayment>`).
///
/// With [`SettleTiming::BeforeHandler`](crate::SettleTiming) the payment is already settled and
/// [`VerifiedPayment::settlement`] holds the result (transaction, payer, network). With
/// [`SettleTiming::AfterHandler`](crate::SettleTiming) (the default) the handler runs before the
/// settlement, so `settlement` is `None`; the result reaches the seller's code in
/// [`SellerHook::after_settle`](crate::SellerHook::after_settle), and the buyer in
/// `PAYMENT-RESPONSE`.
#[derive(Debug, Clone)]
pub struct VerifiedPayment {
    /// The payment's protocol version.
    pub version: X402Version,
    /// The payer the facilitator's verify named.
    pub payer: Option<String>,
    /// The seller's requirements the payment matched (built for this request).
    pub requirements: PaymentRequirements,
    /// The settlement, when the route settles before its handler.
    pub settlement: Option<SettleResponse>,
}

impl VerifiedPayment {
    /// The settlement's transaction, when settled (before the handler).
    pub fn transaction(&self) -> Option<&str> {
        self.settlement.as_ref().map(|s| s.transaction.as_str())
    }
}

/// Inserted as a request extension when a [`SellerHook`](crate::SellerHook) granted the request
/// free access ([`Access::Grant`](crate::Access::Grant)): nothing was asked, verified or settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeAccess {
    /// The name of the hook that granted it.
    pub hook: String,
}

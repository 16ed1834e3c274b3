//! A scheme's roles as small traits, and their composition into a [`Scheme`].
//!
//! A scheme crate writes scheme logic only: a seller type ([`SellerRole`]), a buyer type
//! ([`BuyerRole`]) and a facilitator type ([`FacilitatorRole`]), each implementing just what its
//! role does. [`Roles`] composes whichever of them an application has into the [`Scheme`] the
//! registry stores, answering a role it was not given with [`SchemeError::RoleNotConfigured`] —
//! written once here, never in a scheme crate. A facilitator role cannot lack `verify` or
//! `settle`: both are required methods.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::scheme::{
    PriceRequest, Reconciled, Role, Scheme, SchemeError, SchemeStatus, Settlement, Verdict,
};
use crate::wire::{PaymentRequirementsV2, Raw};
use crate::{Network, PaymentContext, PaymentId, RequirementsView};

/// Seller: turns prices into requirements.
#[async_trait]
pub trait SellerRole: Send + Sync + Debug {
    /// The scheme name on the wire (`exact`, `upto`).
    fn scheme(&self) -> &'static str;

    /// Turns a price into requirements (with the scheme's `extra`).
    async fn requirements(
        &self,
        request: &PriceRequest,
    ) -> Result<PaymentRequirementsV2, SchemeError>;

    /// The identity a facilitator settles this payment under, read from `payload` without
    /// verifying it, so two encodings of one authorization have one identity (the seller keys
    /// its "already being processed" guard on it). `None` (the default) when it cannot be read:
    /// the seller then keys on the payload's canonical JSON.
    fn payment_id(
        &self,
        requirements: &RequirementsView<'_>,
        payload: &serde_json::value::RawValue,
    ) -> Option<PaymentId> {
        let _ = (requirements, payload);
        None
    }

    /// This seller as a scheme (for a [`crate::Registry`]).
    fn into_scheme(self) -> Arc<dyn Scheme>
    where
        Self: Sized + 'static,
    {
        Arc::new(Roles::new(self.scheme()).with_seller(self))
    }
}

/// Buyer: signs payloads.
#[async_trait]
pub trait BuyerRole: Send + Sync + Debug {
    /// The scheme name on the wire.
    fn scheme(&self) -> &'static str;

    /// Signs a payment for `requirements`, returning the scheme `payload`.
    async fn sign(&self, requirements: &RequirementsView<'_>) -> Result<Raw, SchemeError>;

    /// Signs a payment for `requirements` offered in a 402 with `offered` (its raw v2
    /// `extensions`, `None` in v1): the scheme `payload` and the extension entries the payment
    /// carries in place of the seller's declarations (a gas-sponsoring permit, say). Default:
    /// [`Self::sign`], no entries.
    async fn sign_offered(
        &self,
        requirements: &RequirementsView<'_>,
        offered: Option<&serde_json::value::RawValue>,
    ) -> Result<crate::scheme::Signed, SchemeError> {
        let _ = offered;
        Ok(crate::scheme::Signed::payload(
            self.sign(requirements).await?,
        ))
    }

    /// This buyer as a scheme (for a [`crate::Registry`]).
    fn into_scheme(self) -> Arc<dyn Scheme>
    where
        Self: Sized + 'static,
    {
        Arc::new(Roles::new(self.scheme()).with_buyer(self))
    }
}

/// Facilitator: verifies and settles. `verify` and `settle` have no default: a facilitator
/// without them does not compile.
#[async_trait]
pub trait FacilitatorRole: Send + Sync + Debug {
    /// The scheme name on the wire.
    fn scheme(&self) -> &'static str;

    /// The payer the payment names, read without verifying it, canonical for the chain (an EVM
    /// address checksummed, a Solana key in base58): what the dispatcher's hooks screen before
    /// anything is sent ([`crate::hook`]). `None` (the default) when it cannot be read.
    fn payer(&self, payment: &PaymentContext<'_>) -> Option<String> {
        let _ = payment;
        None
    }

    /// Checks a payment without moving funds.
    async fn verify(&self, payment: &PaymentContext<'_>) -> Result<Verdict, SchemeError>;

    /// Verifies again and settles, at most once per payment identity.
    async fn settle(&self, payment: &PaymentContext<'_>) -> Result<Settlement, SchemeError>;

    /// The `extra` of this scheme's `/supported` kind on `network`, if any.
    fn supported_extra(&self, network: &Network) -> Option<Raw> {
        let _ = network;
        None
    }

    /// Probes the chain (the RPC answers, the signers are funded).
    async fn status(&self, network: &Network) -> Result<Option<SchemeStatus>, SchemeError> {
        let _ = network;
        Ok(None)
    }

    /// The addresses that sign settlements on `network`.
    fn signers(&self, network: &Network) -> Vec<String> {
        let _ = network;
        Vec::new()
    }

    /// Resolves this scheme's unresolved settlement records on `network` from the chain
    /// (default: nothing to reconcile).
    async fn reconcile(&self, network: &Network) -> Result<Reconciled, SchemeError> {
        let _ = network;
        Ok(Reconciled::default())
    }

    /// This facilitator as a scheme (for a [`crate::Registry`]).
    fn into_scheme(self) -> Arc<dyn Scheme>
    where
        Self: Sized + 'static,
    {
        Arc::new(Roles::new(self.scheme()).with_facilitator(Arc::new(self)))
    }
}

/// A scheme composed of the roles it was given.
#[derive(Debug, Clone)]
pub struct Roles {
    scheme: &'static str,
    seller: Option<Arc<dyn SellerRole>>,
    buyer: Option<Arc<dyn BuyerRole>>,
    facilitator: Option<Arc<dyn FacilitatorRole>>,
}

impl Roles {
    /// No role yet, for the scheme named `scheme` on the wire.
    pub fn new(scheme: &'static str) -> Self {
        Self {
            scheme,
            seller: None,
            buyer: None,
            facilitator: None,
        }
    }

    /// Adds the seller role.
    pub fn with_seller(mut self, seller: impl SellerRole + 'static) -> Self {
        debug_assert_eq!(seller.scheme(), self.scheme);
        self.seller = Some(Arc::new(seller));
        self
    }

    /// Adds the buyer role.
    pub fn with_buyer(mut self, buyer: impl BuyerRole + 'static) -> Self {
        debug_assert_eq!(buyer.scheme(), self.scheme);
        self.buyer = Some(Arc::new(buyer));
        self
    }

    /// Adds the facilitator role.
    pub fn with_facilitator(mut self, facilitator: Arc<dyn FacilitatorRole>) -> Self {
        debug_assert_eq!(facilitator.scheme(), self.scheme);
        self.facilitator = Some(facilitator);
        self
    }

    fn missing(&self, role: Role) -> SchemeError {
        SchemeError::RoleNotConfigured {
            scheme: self.scheme,
            role,
        }
    }

    fn facilitator(&self) -> Result<&dyn FacilitatorRole, SchemeError> {
        self.facilitator
            .as_deref()
            .ok_or_else(|| self.missing(Role::Facilitator))
    }
}

#[async_trait]
impl Scheme for Roles {
    fn scheme(&self) -> &'static str {
        self.scheme
    }

    async fn requirements(
        &self,
        request: &PriceRequest,
    ) -> Result<PaymentRequirementsV2, SchemeError> {
        let seller = self
            .seller
            .as_deref()
            .ok_or_else(|| self.missing(Role::Seller))?;
        seller.requirements(request).await
    }

    fn payment_id(
        &self,
        requirements: &RequirementsView<'_>,
        payload: &serde_json::value::RawValue,
    ) -> Option<PaymentId> {
        self.seller.as_ref()?.payment_id(requirements, payload)
    }

    async fn sign(&self, requirements: &RequirementsView<'_>) -> Result<Raw, SchemeError> {
        let buyer = self
            .buyer
            .as_deref()
            .ok_or_else(|| self.missing(Role::Buyer))?;
        buyer.sign(requirements).await
    }

    async fn sign_offered(
        &self,
        requirements: &RequirementsView<'_>,
        offered: Option<&serde_json::value::RawValue>,
    ) -> Result<crate::scheme::Signed, SchemeError> {
        let buyer = self
            .buyer
            .as_deref()
            .ok_or_else(|| self.missing(Role::Buyer))?;
        buyer.sign_offered(requirements, offered).await
    }

    fn payer(&self, payment: &PaymentContext<'_>) -> Option<String> {
        self.facilitator.as_ref()?.payer(payment)
    }

    async fn verify(&self, payment: &PaymentContext<'_>) -> Result<Verdict, SchemeError> {
        self.facilitator()?.verify(payment).await
    }

    async fn settle(&self, payment: &PaymentContext<'_>) -> Result<Settlement, SchemeError> {
        self.facilitator()?.settle(payment).await
    }

    fn supported_extra(&self, network: &Network) -> Option<Raw> {
        self.facilitator.as_ref()?.supported_extra(network)
    }

    async fn status(&self, network: &Network) -> Result<Option<SchemeStatus>, SchemeError> {
        match &self.facilitator {
            Some(f) => f.status(network).await,
            None => Ok(None),
        }
    }

    fn signers(&self, network: &Network) -> Vec<String> {
        self.facilitator
            .as_ref()
            .map(|f| f.signers(network))
            .unwrap_or_default()
    }

    async fn reconcile(&self, network: &Network) -> Result<Reconciled, SchemeError> {
        match &self.facilitator {
            Some(f) => f.reconcile(network).await,
            None => Ok(Reconciled::default()),
        }
    }
}

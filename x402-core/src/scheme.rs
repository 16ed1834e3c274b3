//! The `Scheme` trait: everything a payment scheme does, for every role.
//!
//! A scheme (say `exact` on `eip155`) answers four questions:
//!
//! | role        | method           | input                        | output                       |
//! |-------------|------------------|------------------------------|------------------------------|
//! | seller      | [`Scheme::requirements`] | a price on a network | requirements with the scheme's `extra` |
//! | buyer       | [`Scheme::sign`]         | requirements         | the scheme `payload`         |
//! | facilitator | [`Scheme::verify`]       | payload + requirements | [`Verdict`]                |
//! | facilitator | [`Scheme::settle`]       | payload + requirements | [`Settlement`]             |
//!
//! **An invalid payment is `Ok`** carrying a [`Rejection`] (reason code + message); `Err` means the
//! implementation itself failed (RPC down, signer unavailable).
//!
//! Scheme crates do not implement this trait: they write one small type per role
//! ([`crate::SellerRole`], [`crate::BuyerRole`], [`crate::FacilitatorRole`]) and
//! [`crate::Roles`] composes them into a `Scheme`, answering a role it was not given with
//! [`SchemeError::RoleNotConfigured`] (a buyer holds a key but no RPC, say).
//!
//! Schemes read payments through [`PaymentContext`], the same view for protocol v1 and v2.

use std::fmt::Debug;

use async_trait::async_trait;
use serde_json::value::RawValue;

use crate::settlement::StoreError;
use crate::wire::{PaymentRequirementsV2, Raw, SettleResponse, SupportedKind, VerifyResponse};
use crate::{Amount, Network, PaymentContext, Rejection, RequirementsView, X402Version};

/// A role a scheme instance can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Builds requirements from prices.
    Seller,
    /// Signs payloads.
    Buyer,
    /// Verifies and settles.
    Facilitator,
}

/// The implementation failed (not the payment).
#[derive(Debug, thiserror::Error)]
pub enum SchemeError {
    /// This instance was built without the role's configuration (keys, RPC).
    #[error("this {scheme} instance is not configured for the {role:?} role")]
    RoleNotConfigured {
        /// The scheme id.
        scheme: &'static str,
        /// The role asked for.
        role: Role,
    },
    /// The seller's price or the buyer's requirements cannot be used (unknown asset decimals,
    /// missing EIP-712 domain data, a price that would round).
    #[error("unusable requirements: {0}")]
    Unusable(String),
    /// Configuration given to the scheme's builder is wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// A chain RPC failed. The text comes from the chain family's one describing function (for
    /// transport failures, [`crate::transport::TransportFailure`]'s wording). The client's error
    /// is deliberately not kept: its text and `Debug` name the endpoint URL, which may carry an
    /// API token.
    #[error("rpc: {0}")]
    Rpc(String),
    /// A signer failed; its error is the source.
    #[error("signer: {0}")]
    Signer(#[source] BoxError),
    /// The settlement store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else; its error (or message) is the source.
    #[error("{0}")]
    Other(#[source] BoxError),
}

/// The error a [`SchemeError`] keeps as its source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl SchemeError {
    /// [`SchemeError::Other`] from an error (kept as the source) or a message.
    pub fn other(e: impl Into<BoxError>) -> Self {
        Self::Other(e.into())
    }

    /// [`SchemeError::Signer`] from the signer's error (kept as the source) or a message.
    pub fn signer(e: impl Into<BoxError>) -> Self {
        Self::Signer(e.into())
    }
}

/// A seller's price: atomic units, or a decimal converted exactly with the asset's decimals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Price {
    /// Atomic units of the asset.
    Atomic(Amount),
    /// A decimal such as `"0.01"` (or `"$0.01"`), converted exactly; rounding is an error.
    Decimal(String),
}

/// What a seller asks a scheme to price.
#[derive(Debug, Clone)]
pub struct PriceRequest {
    /// The network to be paid on.
    pub network: Network,
    /// The price.
    pub price: Price,
    /// The recipient.
    pub pay_to: String,
    /// The asset; `None` = the scheme's default for the network.
    pub asset: Option<String>,
    /// The time allowed; `None` = the scheme's default.
    pub max_timeout_seconds: Option<u64>,
    /// The facilitator's `/supported` kind for this scheme and network, whose `extra` some
    /// schemes copy (`feePayer`, `facilitatorAddress`).
    pub facilitator_kind: Option<SupportedKind>,
}

/// The outcome of a verify that ran to completion.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The payer, whenever the payload names one (filled even on rejection).
    pub payer: Option<String>,
    /// `Ok` = valid; `Err` = the reason it is not.
    pub result: Result<(), Rejection>,
    /// Extension responses.
    pub extensions: Option<Raw>,
}

impl Verdict {
    /// A valid payment from `payer`.
    pub fn valid(payer: impl Into<String>) -> Self {
        Self {
            payer: Some(payer.into()),
            result: Ok(()),
            extensions: None,
        }
    }

    /// The verdict of a check that produced something (a settlement plan, say) or a rejection.
    pub fn from_check<T>(payer: Option<String>, check: Result<T, Rejection>) -> Self {
        Self {
            payer,
            result: check.map(|_| ()),
            extensions: None,
        }
    }

    /// An invalid payment.
    pub fn invalid(payer: Option<String>, rejection: Rejection) -> Self {
        Self {
            payer,
            result: Err(rejection),
            extensions: None,
        }
    }

    /// The verdict as a payment of `version` is answered (see [`crate::Reason::for_version`]).
    pub fn for_version(
        mut self,
        version: X402Version,
        v1_spellings: &[(crate::Reason, crate::Reason)],
    ) -> Self {
        if let Err(r) = &mut self.result {
            r.reason = r.reason.clone().for_version(version, v1_spellings);
        }
        self
    }

    /// The wire response.
    pub fn into_response(self) -> VerifyResponse {
        let mut response = match self.result {
            Ok(()) => VerifyResponse {
                is_valid: true,
                invalid_reason: None,
                invalid_message: None,
                payer: self.payer,
                extensions: None,
                extra: None,
            },
            Err(r) => VerifyResponse::invalid(r.reason, r.message, self.payer),
        };
        response.extensions = self.extensions;
        response
    }
}

/// The outcome of a settle that ran to completion.
#[derive(Debug, Clone)]
pub struct Settlement {
    /// The payer, whenever known.
    pub payer: Option<String>,
    /// The transaction hash or signature, when one exists (also on failure or pending).
    pub transaction: Option<String>,
    /// The amount settled, for schemes that settle a variable amount (`upto`).
    pub amount: Option<Amount>,
    /// `Ok` = settled; `Err` = why not (`settlement_pending` with a transaction when the outcome
    /// is not yet known).
    pub result: Result<(), Rejection>,
    /// Extension responses.
    pub extensions: Option<Raw>,
}

impl Settlement {
    /// A refused settlement with no transaction.
    pub fn refused(payer: Option<String>, rejection: Rejection) -> Self {
        Self {
            payer,
            transaction: None,
            amount: None,
            result: Err(rejection),
            extensions: None,
        }
    }

    /// The settlement as a payment of `version` is answered (see
    /// [`crate::Reason::for_version`]).
    pub fn for_version(
        mut self,
        version: X402Version,
        v1_spellings: &[(crate::Reason, crate::Reason)],
    ) -> Self {
        if let Err(r) = &mut self.result {
            r.reason = r.reason.clone().for_version(version, v1_spellings);
        }
        self
    }

    /// The wire response; `network` is written as the request's version names it.
    pub fn into_response(self, network: &Network, version: X402Version) -> SettleResponse {
        let (success, error_reason, error_message) = match self.result {
            Ok(()) => (true, None, None),
            Err(r) => (false, Some(r.reason), r.message),
        };
        SettleResponse {
            success,
            error_reason,
            error_message,
            transaction: self.transaction.unwrap_or_default(),
            network: network.to_wire(version),
            payer: self.payer,
            amount: self.amount,
            extensions: self.extensions,
            extra: None,
        }
    }
}

/// One settlement signer's funding, for readiness and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerStatus {
    /// The signer's address.
    pub address: String,
    /// Its native balance in the chain's smallest unit (wei, lamports).
    pub balance: Amount,
    /// Whether the balance is at or above the configured floor.
    pub funded: bool,
}

/// What a facilitator scheme reports about its chain connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemeStatus {
    /// The signers and their funding.
    pub signers: Vec<SignerStatus>,
}

/// A payment scheme on one chain family. See the module documentation.
#[async_trait]
pub trait Scheme: Send + Sync + Debug {
    /// The scheme name on the wire (`exact`, `upto`).
    fn scheme(&self) -> &'static str;

    /// Seller: turns a price into requirements (with the scheme's `extra`).
    async fn requirements(
        &self,
        request: &PriceRequest,
    ) -> Result<PaymentRequirementsV2, SchemeError>;

    /// Seller: the identity a facilitator settles a payment under, read without verifying it
    /// (see [`crate::SellerRole::payment_id`]); `None` by default.
    fn payment_id(
        &self,
        requirements: &RequirementsView<'_>,
        payload: &serde_json::value::RawValue,
    ) -> Option<crate::PaymentId> {
        let _ = (requirements, payload);
        None
    }

    /// Buyer: signs a payment for `requirements`, returning the scheme `payload`.
    async fn sign(&self, requirements: &RequirementsView<'_>) -> Result<Raw, SchemeError>;

    /// Buyer: signs a payment for `requirements` offered with the 402's raw v2 `extensions`
    /// (see [`crate::BuyerRole::sign_offered`]). Default: [`Self::sign`], no entries.
    async fn sign_offered(
        &self,
        requirements: &RequirementsView<'_>,
        offered: Option<&serde_json::value::RawValue>,
    ) -> Result<Signed, SchemeError> {
        let _ = offered;
        Ok(Signed::payload(self.sign(requirements).await?))
    }

    /// Facilitator: the payer the payment names, read without verifying it (for the
    /// dispatcher's hooks, [`crate::hook`]); canonical for the chain. `None` by default, and
    /// when the payload does not name one.
    fn payer(&self, payment: &PaymentContext<'_>) -> Option<String> {
        let _ = payment;
        None
    }

    /// Facilitator: checks a payment without moving funds.
    async fn verify(&self, payment: &PaymentContext<'_>) -> Result<Verdict, SchemeError>;

    /// Facilitator: verifies again and settles, at most once per payment identity.
    async fn settle(&self, payment: &PaymentContext<'_>) -> Result<Settlement, SchemeError>;

    /// Facilitator: the `extra` of this scheme's `/supported` kind on `network`
    /// (`feePayer`, `facilitatorAddress`), if any.
    fn supported_extra(&self, network: &Network) -> Option<Raw>;

    /// Facilitator: probes the chain (the RPC answers, the signers are funded). `Ok(None)` for a
    /// scheme instance with nothing to probe; `Err` when the chain cannot be reached.
    async fn status(&self, network: &Network) -> Result<Option<SchemeStatus>, SchemeError>;

    /// Facilitator: the addresses that sign settlements on `network`.
    fn signers(&self, network: &Network) -> Vec<String>;

    /// Facilitator: resolves this scheme's unresolved settlement records on `network` from the
    /// chain (see [`crate::settlement`]); run at start-up, on a timer and by a repeated settle.
    async fn reconcile(&self, network: &Network) -> Result<Reconciled, SchemeError> {
        let _ = network;
        Ok(Reconciled::default())
    }
}

/// What one reconciliation pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Records examined.
    pub examined: u64,
    /// Found landed (their next settle answers success).
    pub landed: u64,
    /// Found failed for good.
    pub failed: u64,
    /// Proved unable to land any more: removed, the payment may be settled again.
    pub released: u64,
    /// Still undecided (sent again while still valid).
    pub pending: u64,
}

impl Reconciled {
    /// Adds another pass's counts.
    pub fn add(&mut self, other: Reconciled) {
        self.examined += other.examined;
        self.landed += other.landed;
        self.failed += other.failed;
        self.released += other.released;
        self.pending += other.pending;
    }
}

/// Reads a scheme payload, answering a malformed one with `invalid_payload` and the parser's
/// message (a helper for [`Scheme::verify`] implementations).
pub fn parse_payload<T: serde::de::DeserializeOwned>(raw: &RawValue) -> Result<T, Rejection> {
    serde_json::from_str(raw.get())
        .map_err(|e| Rejection::with_message(crate::Reason::INVALID_PAYLOAD, e.to_string()))
}

/// What a buyer signed: the scheme `payload`, and the extension entries (key → entry) its
/// payment carries in place of the seller's declarations under the same keys.
#[derive(Debug)]
pub struct Signed {
    /// The scheme payload.
    pub payload: Raw,
    /// Extension entries, in order.
    pub extensions: Vec<(String, Raw)>,
}

impl Signed {
    /// A payload without extension entries.
    pub fn payload(payload: Raw) -> Self {
        Self {
            payload,
            extensions: Vec::new(),
        }
    }
}

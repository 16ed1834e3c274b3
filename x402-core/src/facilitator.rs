//! The facilitator API as a trait, and the local dispatcher that routes requests to schemes.
//!
//! [`Facilitator`] is what a seller talks to: the in-process [`LocalFacilitator`] or a remote
//! one over HTTP (`client::FacilitatorClient`, feature `client`). Payment problems are
//! always `Ok` responses carrying a reason; `Err` is reserved for the facilitator itself failing.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt as _;

use crate::extension::{Extension, merge_answers};
use crate::hook::{Before, FacilitatorHook, Failure, HookCall, Operation};
use crate::json::JsonLimits;
use crate::registry::Registry;
use crate::scheme::{Reconciled, SchemeError};
use crate::settlement::SettlementStore;
use crate::timing::SettleTimeouts;
use crate::wire::{
    RequestError, SettleRequest, SettleResponse, SupportedKind, SupportedResponse, VerifyRequest,
    VerifyResponse,
};
use crate::{Network, NetworkPattern, PaymentContext, Rejection, X402Version};

/// The facilitator itself failed (not the payment).
#[derive(Debug, thiserror::Error)]
pub enum FacilitatorError {
    /// A scheme implementation failed.
    #[error(transparent)]
    Scheme(#[from] SchemeError),
    /// A scheme implementation panicked; the panic was contained.
    #[error("scheme {scheme} panicked during {operation}")]
    Panicked {
        /// The scheme.
        scheme: &'static str,
        /// `verify` or `settle`.
        operation: &'static str,
    },
    /// A hook ([`crate::hook`]) failed or panicked before the scheme or in a failure step.
    #[error("hook {hook} failed in {step}: {message}")]
    Hook {
        /// The hook's name.
        hook: String,
        /// The step (`before_verify`, `on_settle_failure`…).
        step: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The remote facilitator could not be reached or timed out.
    #[error("facilitator transport: {0}")]
    Transport(String),
    /// The remote facilitator answered something that is not a response of the API.
    #[error("facilitator answered HTTP {status} without a readable response: {body}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
}

/// A facilitator: verify, settle, and what it supports.
#[async_trait]
pub trait Facilitator: Send + Sync {
    /// Checks a payment without moving funds.
    async fn verify(&self, request: &VerifyRequest) -> Result<VerifyResponse, FacilitatorError>;
    /// Settles a payment (verifying it again first).
    async fn settle(&self, request: &SettleRequest) -> Result<SettleResponse, FacilitatorError>;
    /// The kinds, extensions and signers served.
    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError>;
}

/// A request body could not be served.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The body is malformed (HTTP 400).
    #[error(transparent)]
    BadRequest(RequestError),
    /// The facilitator failed (HTTP 5xx).
    #[error(transparent)]
    Internal(#[from] FacilitatorError),
}

/// Why a body was not read into a request.
#[derive(Debug)]
pub enum Unread {
    /// Well formed, but of a protocol version not served: answered with this refusal (HTTP 200).
    Refused(Rejection),
    /// Malformed (HTTP 400).
    Malformed(RequestError),
}

/// Whether a settle answer is a failure for the hooks: refused, but not `settlement_pending`
/// (a transaction is out; its outcome is not known yet).
fn settle_failed(response: &SettleResponse) -> bool {
    !response.success && response.error_reason.as_ref() != Some(&crate::Reason::SETTLEMENT_PENDING)
}

/// Routes verify/settle requests to the registered schemes, in process.
#[derive(Debug, Clone)]
pub struct LocalFacilitator {
    registry: Arc<Registry>,
    extensions: Vec<String>,
    timeouts: Option<SettleTimeouts>,
    store: Option<Arc<dyn SettlementStore>>,
    hooks: Vec<Arc<dyn FacilitatorHook>>,
    extension_impls: Vec<Arc<dyn Extension>>,
}

/// One scheme's reconciliation pass on one network.
#[derive(Debug)]
pub struct ReconcileLine {
    /// The scheme.
    pub scheme: &'static str,
    /// The network.
    pub network: Network,
    /// What the pass did, or why it failed.
    pub result: Result<Reconciled, SchemeError>,
}

impl LocalFacilitator {
    /// A dispatcher over `registry`.
    pub fn new(registry: Registry) -> Self {
        Self {
            registry: Arc::new(registry),
            extensions: Vec::new(),
            timeouts: None,
            store: None,
            hooks: Vec::new(),
            extension_impls: Vec::new(),
        }
    }

    /// Adds a facilitator extension ([`crate::extension`]): listed in `/supported.extensions`,
    /// run after every verify and settle (after the hooks), its answers added to the response's
    /// `extensions`.
    pub fn with_extension(mut self, extension: Arc<dyn Extension>) -> Self {
        self.extensions.push(extension.key().to_owned());
        self.extension_impls.push(extension);
        self
    }

    /// The extensions, in the order they run.
    pub fn extensions(&self) -> &[Arc<dyn Extension>] {
        &self.extension_impls
    }

    /// The extension registered under `key`.
    pub fn extension(&self, key: &str) -> Option<&Arc<dyn Extension>> {
        self.extension_impls.iter().find(|e| e.key() == key)
    }

    /// Adds a lifecycle hook around every verify and settle, after those added before it (see
    /// [`crate::hook`] for the order and what a hook may do).
    pub fn with_hook(mut self, hook: Arc<dyn FacilitatorHook>) -> Self {
        self.hooks.push(hook);
        self
    }

    /// The hooks, in the order they run.
    pub fn hooks(&self) -> &[Arc<dyn FacilitatorHook>] {
        &self.hooks
    }

    /// What the hooks see of `request`.
    fn hook_call<'r>(&self, operation: Operation, request: &'r VerifyRequest) -> HookCall<'r> {
        let requirements = &request.payment_requirements;
        let (network, pay_to) = match requirements.view() {
            Ok(view) => (Some(view.network.clone()), view.pay_to),
            Err(_) => (None, pay_to_of(requirements)),
        };
        let payer = match self.route(request) {
            Ok((ctx, scheme)) => {
                // A scheme's payload reader must not take the request down.
                std::panic::catch_unwind(AssertUnwindSafe(|| scheme.payer(&ctx))).unwrap_or(None)
            }
            Err(_) => None,
        };
        HookCall {
            operation,
            request,
            network,
            pay_to,
            payer,
        }
    }

    /// Names the settlement store the schemes were built with (for readiness, metrics and
    /// reconciliation reports).
    pub fn with_store(mut self, store: Arc<dyn SettlementStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The settlement store named with [`LocalFacilitator::with_store`].
    pub fn store(&self) -> Option<&Arc<dyn SettlementStore>> {
        self.store.as_ref()
    }

    /// Runs one reconciliation pass of every registered scheme on every network it serves
    /// (see [`crate::settlement`]).
    pub async fn reconcile(&self) -> Vec<ReconcileLine> {
        let mut seen = std::collections::HashSet::new();
        let mut lines = Vec::new();
        for e in self.registry.entries() {
            let NetworkPattern::Exact(network) = &e.pattern else {
                continue;
            };
            if !seen.insert((e.scheme.scheme(), network.clone())) {
                continue;
            }
            lines.push(ReconcileLine {
                scheme: e.scheme.scheme(),
                network: network.clone(),
                result: e.scheme.reconcile(network).await,
            });
        }
        lines
    }

    /// Settles answer within `timeouts.answer_within()` of dispatch: a scheme stops waiting for
    /// the chain then and answers `settlement_pending` with the transaction (see
    /// [`crate::timing`]). Without it, only the schemes' own bounds apply.
    pub fn with_timeouts(mut self, timeouts: SettleTimeouts) -> Self {
        self.timeouts = Some(timeouts);
        self
    }

    /// The settle bounds set with [`LocalFacilitator::with_timeouts`].
    pub fn timeouts(&self) -> Option<SettleTimeouts> {
        self.timeouts
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Reads a verify or settle body: the one reading path of the HTTP server and of
    /// [`LocalFacilitator::verify_json`] / [`LocalFacilitator::settle_json`].
    pub fn read_request(body: &[u8], limits: JsonLimits) -> Result<VerifyRequest, Unread> {
        VerifyRequest::from_json(body, limits).map_err(|e| match e {
            RequestError::UnsupportedVersion(_) | RequestError::VersionMismatch { .. } => {
                Unread::Refused(Rejection::with_message(e.reason(), e.to_string()))
            }
            e => Unread::Malformed(e),
        })
    }

    /// Reads a verify body and answers it. An unsupported `x402Version` is an answer
    /// (`invalid_x402_version`), a malformed body is [`DispatchError::BadRequest`].
    pub async fn verify_json(
        &self,
        body: &[u8],
        limits: JsonLimits,
    ) -> Result<VerifyResponse, DispatchError> {
        match Self::read_request(body, limits) {
            Ok(request) => Ok(self.verify(&request).await?),
            Err(Unread::Refused(r)) => Ok(VerifyResponse::invalid(r.reason, r.message, None)),
            Err(Unread::Malformed(e)) => Err(DispatchError::BadRequest(e)),
        }
    }

    /// Reads a settle body and answers it (see [`LocalFacilitator::verify_json`]).
    pub async fn settle_json(
        &self,
        body: &[u8],
        limits: JsonLimits,
    ) -> Result<SettleResponse, DispatchError> {
        match Self::read_request(body, limits) {
            Ok(request) => Ok(self.settle(&request).await?),
            Err(Unread::Refused(r)) => Ok(SettleResponse::failed(r.reason, r.message, "", None)),
            Err(Unread::Malformed(e)) => Err(DispatchError::BadRequest(e)),
        }
    }

    /// Finds the scheme for a request, or the rejection that explains why there is none.
    fn route<'r>(
        &self,
        request: &'r VerifyRequest,
    ) -> Result<(PaymentContext<'r>, &Arc<dyn crate::Scheme>), Rejection> {
        let ctx = PaymentContext::of(request)?;
        let version = request.payment_payload.version();
        let scheme = self
            .registry
            .lookup(version, ctx.requirements.scheme, &ctx.requirements.network)
            .map_err(|miss| {
                miss.rejection(
                    version,
                    ctx.requirements.scheme,
                    ctx.requirements.network.as_str(),
                )
            })?;
        Ok((ctx, scheme))
    }
}

fn pay_to_of(requirements: &crate::wire::PaymentRequirements) -> &str {
    match requirements {
        crate::wire::PaymentRequirements::V1(r) => &r.pay_to,
        crate::wire::PaymentRequirements::V2(r) => &r.pay_to,
    }
}

/// Runs one hook step, containing a panic as [`FacilitatorError::Hook`].
async fn guarded<T>(
    hook: &dyn FacilitatorHook,
    step: &'static str,
    future: impl std::future::Future<Output = Result<T, FacilitatorError>>,
) -> Result<T, FacilitatorError> {
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            Err(FacilitatorError::Hook {
                hook: hook.name().to_owned(),
                step,
                message: "panicked".to_owned(),
            })
        })
}

/// Runs an after step: it observes only, so a panic is contained and ignored.
async fn observed(future: impl std::future::Future<Output = ()>) {
    let _ = AssertUnwindSafe(future).catch_unwind().await;
}

impl LocalFacilitator {
    async fn verify_scheme(
        &self,
        request: &VerifyRequest,
    ) -> Result<VerifyResponse, FacilitatorError> {
        let (ctx, scheme) = match self.route(request) {
            Ok(found) => found,
            Err(r) => return Ok(VerifyResponse::invalid(r.reason, r.message, None)),
        };
        let verdict = AssertUnwindSafe(scheme.verify(&ctx))
            .catch_unwind()
            .await
            .map_err(|_| FacilitatorError::Panicked {
                scheme: scheme.scheme(),
                operation: "verify",
            })??;
        Ok(verdict.into_response())
    }

    async fn settle_scheme(
        &self,
        request: &SettleRequest,
        deadline: Option<std::time::Instant>,
    ) -> Result<SettleResponse, FacilitatorError> {
        let (ctx, scheme) = match self.route(request) {
            Ok(found) => found,
            Err(r) => {
                let network = request.payment_requirements.network_text().to_owned();
                return Ok(SettleResponse::failed(r.reason, r.message, network, None));
            }
        };
        let ctx = ctx.with_deadline(deadline);
        let settlement = AssertUnwindSafe(scheme.settle(&ctx))
            .catch_unwind()
            .await
            .map_err(|_| FacilitatorError::Panicked {
                scheme: scheme.scheme(),
                operation: "settle",
            })??;
        Ok(settlement.into_response(&ctx.requirements.network, ctx.requirements.version))
    }
}

impl LocalFacilitator {
    /// Runs the hooks ([`crate::hook`]) around the scheme's verify.
    async fn verify_hooked(
        &self,
        request: &VerifyRequest,
    ) -> Result<VerifyResponse, FacilitatorError> {
        if self.hooks.is_empty() {
            return self.verify_scheme(request).await;
        }
        let call = self.hook_call(Operation::Verify, request);
        for hook in &self.hooks {
            let decision =
                guarded(hook.as_ref(), "before_verify", hook.before_verify(&call)).await?;
            if let Before::Abort(r) = decision {
                return Ok(VerifyResponse::invalid(r.reason, r.message, call.payer));
            }
        }
        let answer = self.verify_scheme(request).await;
        let response = match answer {
            Ok(response) if response.is_valid => response,
            answer => {
                let mut recovered = None;
                for hook in &self.hooks {
                    let failure = match &answer {
                        Ok(response) => Failure::Refused(response),
                        Err(e) => Failure::Error(e),
                    };
                    let step = hook.on_verify_failure(&call, failure);
                    if let Some(r) = guarded(hook.as_ref(), "on_verify_failure", step).await? {
                        recovered = Some(r);
                        break;
                    }
                }
                match recovered {
                    Some(response) => response,
                    None => return answer,
                }
            }
        };
        for hook in &self.hooks {
            observed(hook.after_verify(&call, &response)).await;
        }
        Ok(response)
    }

    /// Runs the hooks ([`crate::hook`]) around the scheme's settle; the settle's answer
    /// deadline counts from here, hooks included.
    async fn settle_hooked(
        &self,
        request: &SettleRequest,
    ) -> Result<SettleResponse, FacilitatorError> {
        let deadline = self.timeouts.map(|t| t.answer_deadline_from_now());
        if self.hooks.is_empty() {
            return self.settle_scheme(request, deadline).await;
        }
        let call = self.hook_call(Operation::Settle, request);
        for hook in &self.hooks {
            let decision =
                guarded(hook.as_ref(), "before_settle", hook.before_settle(&call)).await?;
            if let Before::Abort(r) = decision {
                let network = request.payment_requirements.network_text().to_owned();
                return Ok(SettleResponse::failed(
                    r.reason, r.message, network, call.payer,
                ));
            }
        }
        let answer = self.settle_scheme(request, deadline).await;
        let response = match answer {
            Ok(response) if !settle_failed(&response) => response,
            answer => {
                let mut recovered = None;
                for hook in &self.hooks {
                    let failure = match &answer {
                        Ok(response) => Failure::Refused(response),
                        Err(e) => Failure::Error(e),
                    };
                    let step = hook.on_settle_failure(&call, failure);
                    if let Some(r) = guarded(hook.as_ref(), "on_settle_failure", step).await? {
                        recovered = Some(r);
                        break;
                    }
                }
                match recovered {
                    Some(response) => response,
                    None => return answer,
                }
            }
        };
        for hook in &self.hooks {
            observed(hook.after_settle(&call, &response)).await;
        }
        Ok(response)
    }
}

#[async_trait]
impl Facilitator for LocalFacilitator {
    /// Runs the hooks ([`crate::hook`]) around the scheme's verify, then the extensions.
    async fn verify(&self, request: &VerifyRequest) -> Result<VerifyResponse, FacilitatorError> {
        let mut response = self.verify_hooked(request).await?;
        let mut answers = Vec::new();
        for e in &self.extension_impls {
            let step = AssertUnwindSafe(e.verified(request, &response)).catch_unwind();
            if let Ok(Some(answer)) = step.await {
                answers.push((e.key(), answer));
            }
        }
        response.extensions = merge_answers(response.extensions.take(), answers);
        Ok(response)
    }

    /// Runs the hooks ([`crate::hook`]) around the scheme's settle, then the extensions (an
    /// extension that fails or panics answers nothing; the settlement stands).
    async fn settle(&self, request: &SettleRequest) -> Result<SettleResponse, FacilitatorError> {
        let mut response = self.settle_hooked(request).await?;
        let mut answers = Vec::new();
        for e in &self.extension_impls {
            let step = AssertUnwindSafe(e.settled(request, &response)).catch_unwind();
            if let Ok(Some(answer)) = step.await {
                answers.push((e.key(), answer));
            }
        }
        response.extensions = merge_answers(response.extensions.take(), answers);
        Ok(response)
    }

    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        let mut kinds = Vec::new();
        let mut signers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for entry in self.registry.entries() {
            let NetworkPattern::Exact(network) = &entry.pattern else {
                // A namespace-wide entry (a library's `eip155:*`) names no concrete network.
                continue;
            };
            if entry.version == X402Version::V1 && network.v1_name().is_none() {
                continue;
            }
            kinds.push(SupportedKind {
                x402_version: entry.version,
                scheme: entry.scheme.scheme().to_owned(),
                network: network.to_wire(entry.version),
                extra: entry.scheme.supported_extra(network),
            });
            let family = signers
                .entry(format!("{}:*", network.namespace()))
                .or_default();
            for s in entry.scheme.signers(network) {
                if !family.contains(&s) {
                    family.push(s);
                }
            }
        }
        Ok(SupportedResponse {
            kinds,
            extensions: self.extensions.clone(),
            signers,
        })
    }
}

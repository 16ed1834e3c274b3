//! The seller role: [`SiwxSeller`] issues a fresh challenge in every 402 of the routes that
//! declare its [`SiwxSeller::extension`], and its [`SiwxSeller::hook`] (a
//! [`SellerHook`](x402_seller::SellerHook)) checks the `SIGN-IN-WITH-X` proof of a protected
//! request and grants it for free when the seller's [`AccessPolicy`] finds a payment of the
//! signer for that resource in the [`PaymentHistory`] — which the same hook fills after every
//! successful settlement.
//!
//! A refused proof is never an error status: the request goes on to the 402, which still offers
//! payment and says in its `error` why the proof was refused (`<reason>: <message>`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::request::Parts;
use x402_core::extension::{Declaration, JsonObject};
use x402_core::wire::{PaymentPayload, PaymentRequirements, Raw, SettleResponse};
use x402_core::{SharedClock, UnixTime, system_clock};
use x402_seller::{Access, HookError, RequestInfo, RouteExtension, SellerCall, SellerHook};

use crate::proof::{self, Challenge, HEADER, KEY, Proof, SupportedChain};
use crate::reason::{self, Refusal};
use crate::store::{MemoryHistory, MemoryNonces, NonceStore, PaymentHistory, payer_key};

/// Who may sign in instead of paying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessPolicy {
    /// Anyone who ever paid for the resource (as long as the history remembers).
    AnyPastPayment,
    /// Anyone whose last payment for the resource is at most this old.
    Within(Duration),
}

/// The seller's sign-in-with-x configuration could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sign-in-with-x: {0}")]
pub struct ConfigError(String);

#[derive(Debug, Clone)]
struct Inner {
    scheme: String,
    host: String,
    statement: Option<String>,
    expiration: u64,
    max_age: u64,
    skew: u64,
    networks: Option<Vec<String>>,
    /// The chains the 402s declared (when `networks` is not configured).
    declared: Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
    policy: AccessPolicy,
    nonces: Arc<dyn NonceStore>,
    history: Arc<dyn PaymentHistory>,
    clock: SharedClock,
    #[cfg(feature = "evm")]
    rpc: std::collections::BTreeMap<String, alloy::providers::DynProvider>,
    #[cfg(feature = "evm")]
    rpc_timeout: Duration,
}

/// The seller's sign-in-with-x: the challenge ([`SiwxSeller::extension`]) and the check
/// ([`SiwxSeller::hook`]) share its stores, so configure it before taking them.
#[derive(Debug, Clone)]
pub struct SiwxSeller {
    inner: Arc<Inner>,
}

impl SiwxSeller {
    /// Sign-in for the seller at `origin` (`https://api.example.com`, no path): the challenge's
    /// `domain` is its host and `uri` the resource's URL under it; a proof for another origin is
    /// refused. Defaults: challenges expire after 5 minutes, a proof may be 5 minutes old, 30
    /// seconds of clock skew, any past payment grants access, in-memory stores.
    pub fn new(origin: &str) -> Result<Self, ConfigError> {
        let (scheme, host, path) = proof::origin_and_path(origin)
            .ok_or_else(|| ConfigError(format!("{origin:?} is not an http(s) origin")))?;
        let bare = origin.trim_end_matches('/');
        if path != "/" || bare.contains(['?', '#']) || bare.matches('/').count() > 2 {
            return Err(ConfigError(format!(
                "{origin:?} has a path, query or fragment; give the origin only"
            )));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                scheme,
                host,
                statement: None,
                expiration: 300,
                max_age: 300,
                skew: 30,
                networks: None,
                declared: Arc::default(),
                policy: AccessPolicy::AnyPastPayment,
                nonces: Arc::new(MemoryNonces::default()),
                history: Arc::new(MemoryHistory::default()),
                clock: system_clock(),
                #[cfg(feature = "evm")]
                rpc: std::collections::BTreeMap::new(),
                #[cfg(feature = "evm")]
                rpc_timeout: Duration::from_secs(10),
            }),
        })
    }

    fn with(mut self, change: impl FnOnce(&mut Inner)) -> Self {
        change(Arc::make_mut(&mut self.inner));
        self
    }

    /// The sentence the signer is shown.
    pub fn statement(self, statement: impl Into<String>) -> Self {
        let statement = statement.into().replace(['\n', '\r'], " ");
        self.with(|i| i.statement = Some(statement))
    }

    /// How long a challenge is valid (`expirationTime`, default 5 minutes).
    pub fn expiration(self, expiration: Duration) -> Self {
        self.with(|i| i.expiration = expiration.as_secs().max(1))
    }

    /// The oldest `issuedAt` accepted (default 5 minutes).
    pub fn max_age(self, max_age: Duration) -> Self {
        self.with(|i| i.max_age = max_age.as_secs())
    }

    /// The clock difference tolerated on every time check (default 30 seconds).
    pub fn clock_skew(self, skew: Duration) -> Self {
        self.with(|i| i.skew = skew.as_secs())
    }

    /// The chains (CAIP-2) sign-ins are declared and accepted on; by default each 402 declares
    /// the networks it offers payment on (of the families this build verifies), and a proof is
    /// accepted on a chain some 402 of this seller declared.
    pub fn networks<S: Into<String>>(self, networks: impl IntoIterator<Item = S>) -> Self {
        let networks = networks.into_iter().map(Into::into).collect();
        self.with(|i| i.networks = Some(networks))
    }

    /// Who may sign in instead of paying (default: any past payment).
    pub fn policy(self, policy: AccessPolicy) -> Self {
        self.with(|i| i.policy = policy)
    }

    /// Where the nonces of accepted proofs are kept (default: in memory, bounded).
    pub fn nonce_store(self, store: Arc<dyn NonceStore>) -> Self {
        self.with(|i| i.nonces = store)
    }

    /// Where payments are recorded and looked up (default: in memory, bounded).
    pub fn history(self, history: Arc<dyn PaymentHistory>) -> Self {
        self.with(|i| i.history = history)
    }

    /// Keeps the payment history and the spent nonces in the settlement store `store` (its
    /// sign-in tables: every replica on the same database shares them, so a proof is good once
    /// across all). An error when the store keeps no such tables.
    pub fn settlement_store(
        self,
        store: Arc<dyn x402_core::SettlementStore>,
    ) -> Result<Self, ConfigError> {
        let backed =
            Arc::new(crate::store::SettlementBacked::new(store).map_err(|e| ConfigError(e.0))?);
        Ok(self.with(|i| {
            i.nonces = backed.clone();
            i.history = backed;
        }))
    }

    /// Reads "now" from `clock`.
    pub fn with_clock(self, clock: SharedClock) -> Self {
        self.with(|i| i.clock = clock)
    }

    /// The RPC of EVM chain `network` (`eip155:8453`): smart wallets (EIP-1271, ERC-6492) sign
    /// in on chains that have one; without, only accounts without code can.
    #[cfg(feature = "evm")]
    pub fn evm_rpc(
        self,
        network: impl Into<String>,
        provider: alloy::providers::DynProvider,
    ) -> Self {
        let network = network.into();
        self.with(|i| {
            i.rpc.insert(network, provider);
        })
    }

    /// How long a smart wallet's check may wait for the chain (default 10 seconds); past it the
    /// proof is refused (`invalid_siwx_verifier_error`) and the buyer can still pay.
    #[cfg(feature = "evm")]
    pub fn rpc_timeout(self, timeout: Duration) -> Self {
        self.with(|i| i.rpc_timeout = timeout)
    }

    /// The route extension declaring the challenge in each 402.
    pub fn extension(&self) -> SiwxExtension {
        SiwxExtension {
            inner: self.inner.clone(),
        }
    }

    /// The seller hook checking proofs and recording payments.
    pub fn hook(&self) -> Arc<dyn SellerHook> {
        Arc::new(SiwxHook {
            inner: self.inner.clone(),
        })
    }

    /// Checks the proof in a `SIGN-IN-WITH-X` header `value` for a request to `path`: the
    /// payer it grants access to, or why not. An accepted proof's nonce is spent.
    pub async fn verify(&self, value: &str, path: &str) -> Result<String, Refusal> {
        self.inner.verify(value, path).await
    }
}

/// The families this build verifies.
fn family_supported(network: &str) -> bool {
    (cfg!(feature = "evm") && network.starts_with("eip155:"))
        || (cfg!(feature = "svm") && network.starts_with("solana:"))
}

impl Inner {
    fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }

    fn challenge(&self, path: &str) -> Challenge {
        let now = self.clock.now();
        let uri = format!("{}{path}", self.origin());
        let nonce: [u8; 16] = rand::random();
        Challenge {
            domain: self.host.clone(),
            uri: uri.clone(),
            version: "1".to_owned(),
            nonce: nonce.iter().map(|b| format!("{b:02x}")).collect(),
            issued_at: crate::time::format(now),
            expiration_time: Some(crate::time::format(UnixTime(
                now.0.saturating_add(self.expiration),
            ))),
            not_before: None,
            statement: self.statement.clone(),
            request_id: None,
            resources: Some(vec![uri]),
        }
    }

    fn accepts_chain(&self, chain: &str) -> bool {
        family_supported(chain)
            && match &self.networks {
                Some(n) => n.iter().any(|c| c == chain),
                None => self
                    .declared
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .contains(chain),
            }
    }

    async fn verify(&self, value: &str, path: &str) -> Result<String, Refusal> {
        let proof = Proof::decode(value)?;
        if proof.domain != self.host {
            return Err(Refusal::new(
                reason::DOMAIN_MISMATCH,
                format!("signed for {:?}; this is {:?}", proof.domain, self.host),
            ));
        }
        let Some((scheme, host, signed_path)) = proof::origin_and_path(&proof.uri) else {
            return Err(Refusal::new(
                reason::URI_MISMATCH,
                format!("uri {:?} is not an http(s) URL", proof.uri),
            ));
        };
        if scheme != self.scheme || host != self.host {
            return Err(Refusal::new(
                reason::URI_MISMATCH,
                format!("uri {:?} is not under {}", proof.uri, self.origin()),
            ));
        }
        if signed_path != path {
            return Err(Refusal::new(
                reason::URI_MISMATCH,
                format!("signed for {signed_path:?}; this request is for {path:?}"),
            ));
        }
        let message = proof.message()?;
        if !self.accepts_chain(&proof.chain_id) {
            return Err(Refusal::new(
                reason::UNSUPPORTED_CHAIN,
                format!("sign-in is not accepted on {}", proof.chain_id),
            ));
        }
        let now_ms = i64::try_from(self.clock.now().0)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        let skew = i64::try_from(self.skew)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        let max_age = i64::try_from(self.max_age)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        // message() checked that every date parses.
        let at = |t: &str| crate::time::parse(t).unwrap_or(i64::MIN);
        let issued = at(&proof.issued_at);
        let mut until = issued.saturating_add(max_age);
        if let Some(t) = &proof.expiration_time {
            let expires = at(t);
            if now_ms > expires.saturating_add(skew) {
                return Err(Refusal::new(reason::EXPIRED, format!("expired at {t}")));
            }
            until = until.max(expires);
        }
        if now_ms.saturating_sub(issued) > max_age.saturating_add(skew) {
            return Err(Refusal::new(
                reason::ISSUED_AT_TOO_OLD,
                format!(
                    "issued at {}, more than {}s ago",
                    proof.issued_at, self.max_age
                ),
            ));
        }
        if issued.saturating_sub(now_ms) > skew {
            return Err(Refusal::new(
                reason::ISSUED_AT_IN_FUTURE,
                format!("issued at {}, in the future", proof.issued_at),
            ));
        }
        if let Some(t) = &proof.not_before
            && at(t).saturating_sub(skew) > now_ms
        {
            return Err(Refusal::new(
                reason::NOT_YET_VALID,
                format!("not valid before {t}"),
            ));
        }
        let payer = self.signer(&proof, &message).await?;
        let store_error = |e: crate::store::StoreError| {
            Refusal::new(
                reason::NOT_PAID,
                format!("the payment history cannot be read: {e}"),
            )
        };
        let last = self
            .history
            .last_paid(path, &payer_key(&payer))
            .await
            .map_err(store_error)?;
        let now = self.clock.now();
        let granted = match (last, self.policy) {
            (None, _) => false,
            (Some(_), AccessPolicy::AnyPastPayment) => true,
            (Some(t), AccessPolicy::Within(window)) => {
                now.0.saturating_sub(t.0) <= window.as_secs()
            }
        };
        if !granted {
            return Err(Refusal::new(
                reason::NOT_PAID,
                format!("no payment of {payer} for {path} grants access"),
            ));
        }
        let until = UnixTime(u64::try_from(until.saturating_add(skew) / 1000).unwrap_or(0));
        let fresh = self
            .nonces
            .claim(&proof.nonce, until, now)
            .await
            .map_err(|e| {
                Refusal::new(reason::NONCE, format!("the nonce cannot be checked: {e}"))
            })?;
        if !fresh {
            return Err(Refusal::new(
                reason::NONCE,
                format!("nonce {} was used before (a replayed proof)", proof.nonce),
            ));
        }
        Ok(payer)
    }

    /// The address whose signature the proof carries, checked by its family.
    async fn signer(&self, proof: &Proof, message: &str) -> Result<String, Refusal> {
        #[cfg(feature = "evm")]
        if proof.chain_id.starts_with("eip155:") {
            let check = crate::evm::verify(proof, message, self.rpc.get(&proof.chain_id));
            return tokio::time::timeout(self.rpc_timeout, check)
                .await
                .unwrap_or_else(|_| {
                    Err(Refusal::new(
                        reason::VERIFIER_ERROR,
                        format!(
                            "the {} RPC did not answer within {:?}",
                            proof.chain_id, self.rpc_timeout
                        ),
                    ))
                });
        }
        #[cfg(feature = "svm")]
        if proof.chain_id.starts_with("solana:") {
            return crate::svm::verify(proof, message);
        }
        let _ = message;
        Err(Refusal::new(
            reason::UNSUPPORTED_CHAIN,
            format!("this build verifies no sign-in on {}", proof.chain_id),
        ))
    }
}

/// The sign-in-with-x declaration of a route: a fresh challenge in each 402.
#[derive(Debug, Clone)]
pub struct SiwxExtension {
    inner: Arc<Inner>,
}

/// The official declaration's JSON Schema of a proof.
fn schema() -> JsonObject {
    let text = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"domain":{"type":"string"},"address":{"type":"string"},"statement":{"type":"string"},"uri":{"type":"string","format":"uri"},"version":{"type":"string"},"chainId":{"type":"string"},"type":{"type":"string"},"nonce":{"type":"string"},"issuedAt":{"type":"string","format":"date-time"},"expirationTime":{"type":"string","format":"date-time"},"notBefore":{"type":"string","format":"date-time"},"requestId":{"type":"string"},"resources":{"type":"array","items":{"type":"string","format":"uri"}},"signature":{"type":"string"}},"required":["domain","address","uri","version","chainId","type","nonce","issuedAt","signature"]}"#;
    JsonObject::parse(text).unwrap_or_default()
}

impl SiwxExtension {
    /// The declaration for a request to `path` offering payment on `networks`.
    pub fn declaration(&self, path: &str, networks: &[&str]) -> Declaration {
        let chains: Vec<SupportedChain> = match &self.inner.networks {
            Some(n) => n.iter().map(|c| SupportedChain::for_network(c)).collect(),
            None => {
                let mut seen = Vec::new();
                for n in networks {
                    if family_supported(n) && !seen.contains(n) {
                        seen.push(*n);
                    }
                }
                let mut declared = self
                    .inner
                    .declared
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                declared.extend(seen.iter().map(|n| (*n).to_owned()));
                seen.into_iter().map(SupportedChain::for_network).collect()
            }
        };
        let challenge = self.inner.challenge(path);
        let info = serde_json::to_string(&challenge)
            .ok()
            .and_then(|t| JsonObject::parse(&t).ok())
            .unwrap_or_default();
        let mut siblings = JsonObject::new();
        if let Ok(raw) = serde_json::value::to_raw_value(&chains) {
            siblings.set("supportedChains", raw);
        }
        Declaration {
            info,
            schema: schema(),
            siblings,
        }
    }
}

impl RouteExtension for SiwxExtension {
    fn key(&self) -> &str {
        KEY
    }

    fn check(&self) -> Result<(), String> {
        match &self.inner.networks {
            Some(n) => match n.iter().find(|c| !family_supported(c)) {
                Some(c) => Err(format!("this build verifies no sign-in on {c}")),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    fn declare(&self, request: &RequestInfo<'_>) -> Option<Raw> {
        let networks: Vec<&str> = request.accepts.iter().map(|r| r.network.as_str()).collect();
        let declaration = self.declaration(request.path, &networks);
        let declares_chains = declaration
            .siblings
            .get("supportedChains")
            .is_some_and(|c| c.get() != "[]");
        declares_chains.then(|| declaration.to_raw())
    }
}

/// The longest refusal put in a 402's `error`, in bytes.
const MAX_REFUSAL_LEN: usize = 300;

/// The seller hook of [`SiwxSeller`].
#[derive(Debug)]
struct SiwxHook {
    inner: Arc<Inner>,
}

/// The URL path of a settled payment's resource.
fn resource_path(payload: &PaymentPayload, requirements: &PaymentRequirements) -> Option<String> {
    let url = match (payload, requirements) {
        (PaymentPayload::V2(p), _) => p.resource.as_ref()?.url.clone(),
        (_, PaymentRequirements::V1(r)) => r.resource.clone(),
        _ => return None,
    };
    proof::origin_and_path(&url).map(|(_, _, path)| path)
}

#[async_trait]
impl SellerHook for SiwxHook {
    fn name(&self) -> &str {
        KEY
    }

    async fn on_protected_request(&self, request: &Parts) -> Result<Access, HookError> {
        let Some(value) = request.headers.get(HEADER) else {
            return Ok(Access::Continue);
        };
        let Ok(value) = value.to_str() else {
            return Ok(Access::Decline(format!(
                "{}: {HEADER} is not visible ASCII",
                reason::MALFORMED
            )));
        };
        match self.inner.verify(value, request.uri.path()).await {
            Ok(payer) => {
                tracing::info!(%payer, path = request.uri.path(), "signed in with x: free access");
                Ok(Access::Grant)
            }
            Err(refusal) => {
                tracing::info!(reason = %refusal.reason, message = %refusal.message, "sign-in-with-x proof refused");
                // The message quotes the proof's own fields: bounded, so a long header does not
                // make a long 402.
                let mut text = refusal.to_string();
                if text.len() > MAX_REFUSAL_LEN {
                    let mut end = MAX_REFUSAL_LEN;
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    text.truncate(end);
                    text.push('…');
                }
                Ok(Access::Decline(text))
            }
        }
    }

    async fn after_settle(&self, call: &SellerCall<'_>, response: &SettleResponse) {
        if !response.success {
            return;
        }
        let Some(payer) = response.payer.as_deref().or(call.payer) else {
            return;
        };
        let request = call.request;
        let Some(path) = resource_path(&request.payment_payload, &request.payment_requirements)
        else {
            return;
        };
        let now = self.inner.clock.now();
        if let Err(e) = self
            .inner
            .history
            .record(&path, &payer_key(payer), now)
            .await
        {
            tracing::warn!(%payer, %path, "the payment could not be added to the sign-in history: {e}");
        }
    }
}

#[cfg(all(test, feature = "evm", feature = "svm"))]
mod tests;

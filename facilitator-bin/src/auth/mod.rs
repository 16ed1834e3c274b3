//! Access control for `POST /verify` and `POST /settle`: API keys sent as
//! `Authorization: Bearer <key>`, each with a scope (networks, schemes, `payTo` recipients) and
//! its own rate limits. `/supported`, `/health`, `/ready` and `/metrics` stay open.
//!
//! Refusals are 401 (no key, or a key this facilitator does not know), 403 (outside the key's
//! scope) and 429 with `Retry-After` (a rate or the concurrent-settle limit), with a JSON body
//! `{"error": "..."}`; never a 5xx. Keys are compared by their SHA-256 digests in constant time;
//! only a key's id ever appears in logs, errors and metrics
//! (`x402_auth_refusals_total{route,key,cause}`).

mod bucket;
pub mod config;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use x402_core::Network;
use x402_core::wire::{PaymentRequirements, VerifyRequest};

use self::bucket::Bucket;
pub use self::config::{AuthConfig, KeyConfig};
use crate::metrics::Metrics;

/// The route a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /verify`.
    Verify,
    /// `POST /settle`.
    Settle,
}

impl Route {
    fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Settle => "settle",
        }
    }
}

/// One configured key at run time.
struct Key {
    config: KeyConfig,
    verifies: Bucket,
    settles: Bucket,
    settling: Arc<Semaphore>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.config.id)
            .finish_non_exhaustive()
    }
}

/// Who may call `/verify` and `/settle`, and the state of each key's limits.
#[derive(Debug, Clone)]
pub struct Access {
    /// `None`: anyone.
    keys: Option<Arc<[Key]>>,
    metrics: Option<Arc<Metrics>>,
}

/// An admitted caller: the key it presented (none when access is open).
#[derive(Debug, Clone)]
pub struct Admitted {
    key: Option<usize>,
    access: Access,
}

/// Why a request was refused; [`Refusal::response`] is its HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    status: StatusCode,
    cause: &'static str,
    message: String,
    retry_after: Option<Duration>,
}

impl Refusal {
    fn new(status: StatusCode, cause: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            cause,
            message: message.into(),
            retry_after: None,
        }
    }

    fn retry(cause: &'static str, message: String, after: Duration) -> Self {
        Self {
            retry_after: Some(after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, cause, message)
        }
    }

    /// The HTTP status (401, 403 or 429).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The metrics label of the cause (`missing_key`, `unknown_key`, `network`, `scheme`,
    /// `pay_to`, `verify_rate`, `settle_rate`, `concurrent_settles`).
    pub fn cause(&self) -> &'static str {
        self.cause
    }

    /// The HTTP answer: the status, `{"error": message}`, and `Retry-After` (whole seconds, at
    /// least 1) or `WWW-Authenticate: Bearer` where they apply.
    pub fn response(&self) -> Response {
        let body = serde_json::json!({ "error": self.message }).to_string();
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if let Some(after) = self.retry_after {
            let secs = after
                .as_secs()
                .saturating_add(u64::from(after.subsec_nanos() > 0));
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"x402-facilitator\""),
            );
        }
        response
    }
}

/// The bearer token of `headers`, if any (the scheme name in any case, RFC 7235).
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    (scheme.eq_ignore_ascii_case(b"bearer ") && !token.is_empty()).then_some(token)
}

/// Whether `pay_to` is `allowed` on `network`: EVM addresses in any case, others exactly.
fn same_recipient(network: &Network, allowed: &str, pay_to: &str) -> bool {
    if network.namespace() == "eip155" {
        allowed.eq_ignore_ascii_case(pay_to)
    } else {
        allowed == pay_to
    }
}

impl Access {
    /// Anyone may call (`auth = "none"`).
    pub fn open() -> Self {
        Self {
            keys: None,
            metrics: None,
        }
    }

    /// The access `config` describes.
    pub fn new(config: &AuthConfig) -> Self {
        let keys = match config {
            AuthConfig::None => None,
            AuthConfig::Keys(keys) => Some(
                keys.iter()
                    .map(|k| Key {
                        verifies: Bucket::new(k.verifies_per_second),
                        settles: Bucket::new(k.settles_per_second),
                        settling: Arc::new(Semaphore::new(k.concurrent_settles as usize)),
                        config: k.clone(),
                    })
                    .collect(),
            ),
        };
        Self {
            keys,
            metrics: None,
        }
    }

    /// Counts refusals in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Whether anyone may call.
    pub fn is_open(&self) -> bool {
        self.keys.is_none()
    }

    /// The ids of the configured keys.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys
            .iter()
            .flat_map(|keys| keys.iter().map(|k| k.config.id.clone()))
            .collect()
    }

    fn refuse(&self, route: Route, key: Option<&Key>, refusal: Refusal) -> Refusal {
        let id = key.map(|k| k.config.id.as_str()).unwrap_or_default();
        tracing::info!(
            route = route.as_str(),
            key = id,
            cause = refusal.cause,
            status = refusal.status.as_u16(),
            "request refused"
        );
        if let Some(metrics) = &self.metrics {
            metrics.inc(
                "x402_auth_refusals_total",
                vec![
                    ("route", route.as_str().to_owned()),
                    ("key", id.to_owned()),
                    ("cause", refusal.cause.to_owned()),
                ],
            );
        }
        refusal
    }

    /// Authenticates a request for `route` and takes one token of the key's rate for it.
    pub fn admit(&self, route: Route, headers: &HeaderMap) -> Result<Admitted, Refusal> {
        let Some(keys) = &self.keys else {
            return Ok(Admitted {
                key: None,
                access: self.clone(),
            });
        };
        let Some(token) = bearer(headers) else {
            return Err(self.refuse(
                route,
                None,
                Refusal::new(
                    StatusCode::UNAUTHORIZED,
                    "missing_key",
                    "an API key is required: send `Authorization: Bearer <key>`",
                ),
            ));
        };
        let digest: [u8; 32] = sha2::Sha256::digest(token).into();
        // Every key is compared, each in constant time.
        let mut found = None;
        for (i, k) in keys.iter().enumerate() {
            if bool::from(k.config.digest.ct_eq(&digest)) && found.is_none() {
                found = Some(i);
            }
        }
        let Some(index) = found else {
            return Err(self.refuse(
                route,
                None,
                Refusal::new(
                    StatusCode::UNAUTHORIZED,
                    "unknown_key",
                    "the API key is not valid for this facilitator",
                ),
            ));
        };
        let key = &keys[index];
        let (bucket, cause, what) = match route {
            Route::Verify => (&key.verifies, "verify_rate", "verifies_per_second"),
            Route::Settle => (&key.settles, "settle_rate", "settles_per_second"),
        };
        if let Err(after) = bucket.take() {
            let message = format!(
                "API key {:?} is over its rate limit ({what}); retry later",
                key.config.id
            );
            return Err(self.refuse(route, Some(key), Refusal::retry(cause, message, after)));
        }
        Ok(Admitted {
            key: Some(index),
            access: self.clone(),
        })
    }
}

impl Admitted {
    fn key(&self) -> Option<&Key> {
        Some(&self.access.keys.as_ref()?[self.key?])
    }

    /// The id of the key admitted (none when access is open).
    pub fn key_id(&self) -> Option<&str> {
        self.key().map(|k| k.config.id.as_str())
    }

    /// Checks the request against the key's networks, schemes and recipients.
    pub fn check_scope(&self, route: Route, request: &VerifyRequest) -> Result<(), Refusal> {
        let Some(key) = self.key() else {
            return Ok(());
        };
        let c = &key.config;
        let requirements = &request.payment_requirements;
        let refuse = |cause, what: String| {
            let message = format!("API key {:?} may not {} {what}", c.id, route.as_str());
            self.access.refuse(
                route,
                Some(key),
                Refusal::new(StatusCode::FORBIDDEN, cause, message),
            )
        };
        let network = Network::from_wire(requirements.version(), requirements.network_text()).ok();
        if let Some(allowed) = &c.networks
            && !network.as_ref().is_some_and(|n| allowed.contains(n))
        {
            return Err(refuse("network", "on this network".to_owned()));
        }
        if let Some(allowed) = &c.schemes
            && !allowed.iter().any(|s| s == requirements.scheme())
        {
            return Err(refuse("scheme", "with this scheme".to_owned()));
        }
        if let Some(allowed) = &c.pay_to {
            let pay_to = match requirements {
                PaymentRequirements::V1(r) => r.pay_to.as_str(),
                PaymentRequirements::V2(r) => r.pay_to.as_str(),
            };
            let ok = network
                .as_ref()
                .is_some_and(|n| allowed.iter().any(|a| same_recipient(n, a, pay_to)));
            if !ok {
                return Err(refuse("pay_to", "to this payTo".to_owned()));
            }
        }
        Ok(())
    }

    /// A place among the key's concurrent settles, held until the settle ends (none when access
    /// is open).
    pub fn settle_permit(&self) -> Result<Option<OwnedSemaphorePermit>, Refusal> {
        let Some(key) = self.key() else {
            return Ok(None);
        };
        match Arc::clone(&key.settling).try_acquire_owned() {
            Ok(permit) => Ok(Some(permit)),
            Err(_) => {
                let message = format!(
                    "API key {:?} has {} settles in flight (concurrent_settles); retry later",
                    key.config.id, key.config.concurrent_settles
                );
                Err(self.access.refuse(
                    Route::Settle,
                    Some(key),
                    Refusal::retry("concurrent_settles", message, Duration::from_secs(1)),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests;

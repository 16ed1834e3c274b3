//! What a seller configures: the facilitator, the schemes it prices with, and per-route offers.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::request::Parts;
use x402_core::{Amount, Facilitator, Network, Price, Registry, SettleTimeouts, X402Version};

use crate::body::{BodyContext, BodyHook, CustomBody};
use crate::hook::SellerHook;
use crate::layer::Paywall;
use crate::supported::SupportedCache;

/// Computes a price from the request (path, query, headers) for a dynamically priced route.
pub type PriceFn = Arc<dyn Fn(&Parts) -> Result<Price, String> + Send + Sync>;

/// Computes the recipient (`payTo`) from the request, e.g. per tenant; `Err` refuses the request
/// with a 400 naming the message.
pub type PayToFn = Arc<dyn Fn(&Parts) -> Result<String, String> + Send + Sync>;

/// The `extra` members the facilitator supplies through its `/supported` answer (the fee payer
/// of `exact` on Solana, the spender of `upto`): a seller cannot set them.
pub const FACILITATOR_EXTRA: &[&str] = &["feePayer", "facilitatorAddress"];

/// The longest `extra.memo` (the Solana memo program's limit the exact-SVM scheme enforces).
pub const MAX_MEMO_BYTES: usize = 256;

/// What a handler of an `upto` route reports as actually used, in atomic units, as a response
/// extension (`(Extension(Charge(amount)), body)` in axum). At most the authorized maximum is
/// settled. The [`crate::SettlementOverrides`] header is the reference's equivalent (it also takes
/// a percentage or a price); a `Charge` takes precedence over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge(pub Amount);

/// A route was configured with something the seller cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The route accepts nothing.
    #[error("the route accepts no payment option")]
    NoOptions,
    /// The route speaks no protocol version.
    #[error("the route serves neither x402 v1 nor v2")]
    NoVersions,
    /// No registered scheme prices this option.
    #[error("no seller scheme {scheme:?} is registered for {network} (x402 v2)")]
    UnknownScheme {
        /// The scheme.
        scheme: String,
        /// The network.
        network: Network,
    },
    /// An option's `extra` sets a member the facilitator supplies ([`FACILITATOR_EXTRA`]).
    #[error(
        "extra.{key} is supplied by the facilitator's /supported answer; a seller cannot set it"
    )]
    FacilitatorExtra {
        /// The member.
        key: String,
    },
    /// An option's `extra` member is unusable.
    #[error("extra.{key}: {why}")]
    Extra {
        /// The member.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// [`Seller::route`] was given a method axum cannot route.
    #[error("the method {0} cannot be routed")]
    Method(String),
    /// A declared extension is invalid ([`Route::extension`]).
    #[error("extension {key}: {why}")]
    Extension {
        /// The extension's key.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// A custom body for the unpaid 402 on a route that serves x402 v1, whose offers travel in
    /// the body.
    #[error(
        "a custom unpaid 402 body needs a route that serves x402 v2 only (v1 carries its offers in the body)"
    )]
    CustomBodyWithV1,
    /// A service member of the resource is outside the reference's limits.
    #[error("resource {member}: {why}")]
    Resource {
        /// The member (`serviceName`, `tags`, `iconUrl`).
        member: &'static str,
        /// What is wrong.
        why: String,
    },
}

/// When a paid request is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SettleTiming {
    /// Verify, run the handler, settle only if it succeeded (status < 400). The default.
    #[default]
    AfterHandler,
    /// Verify and settle before the handler runs: for costly or side-effecting handlers whose
    /// work must not be done unpaid (threat model S64). Not for `upto`.
    BeforeHandler,
}

/// How a price is found.
#[derive(Clone)]
pub(crate) enum PriceSource {
    Static(Price),
    Dynamic(PriceFn),
}

impl fmt::Debug for PriceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static(p) => f.debug_tuple("Static").field(p).finish(),
            Self::Dynamic(_) => f.write_str("Dynamic(..)"),
        }
    }
}

/// How the recipient is found.
#[derive(Clone)]
pub(crate) enum PayToSource {
    Static(String),
    Dynamic(PayToFn),
}

impl fmt::Debug for PayToSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static(p) => f.debug_tuple("Static").field(p).finish(),
            Self::Dynamic(_) => f.write_str("Dynamic(..)"),
        }
    }
}

/// One accepted way to pay: a scheme on a network, a price, a recipient, optionally an asset.
#[derive(Debug, Clone)]
pub struct Accept {
    pub(crate) scheme: String,
    pub(crate) network: Network,
    pub(crate) pay_to: PayToSource,
    pub(crate) price: PriceSource,
    pub(crate) asset: Option<String>,
    pub(crate) max_timeout_seconds: Option<u64>,
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
}

impl Accept {
    /// `scheme` on `network` at a fixed `price`, paid to `pay_to`, in the scheme's default asset.
    pub fn new(
        scheme: impl Into<String>,
        network: Network,
        pay_to: impl Into<String>,
        price: Price,
    ) -> Self {
        Self {
            scheme: scheme.into(),
            network,
            pay_to: PayToSource::Static(pay_to.into()),
            price: PriceSource::Static(price),
            asset: None,
            max_timeout_seconds: None,
            extra: serde_json::Map::new(),
        }
    }

    /// A price computed from each request (for `upto`: the maximum the buyer authorizes).
    pub fn dynamic(
        scheme: impl Into<String>,
        network: Network,
        pay_to: impl Into<String>,
        price: impl Fn(&Parts) -> Result<Price, String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            price: PriceSource::Dynamic(Arc::new(price)),
            ..Self::new(scheme, network, pay_to, Price::Atomic(Amount::ZERO))
        }
    }

    /// Quotes the price in `asset` (a token address or mint the scheme knows) instead of the
    /// network's default.
    pub fn asset(mut self, asset: impl Into<String>) -> Self {
        self.asset = Some(asset.into());
        self
    }

    /// How long the buyer's authorization must stay valid.
    pub fn max_timeout_seconds(mut self, seconds: u64) -> Self {
        self.max_timeout_seconds = Some(seconds);
        self
    }

    /// The recipient computed from each request (per tenant, say), replacing the one given to
    /// the constructor. `Err` refuses the request with a 400 naming the message. A payment is
    /// matched against the requirements built for the request that carries it, so a payment
    /// signed for one request's `payTo` is refused ("No matching payment requirements") on a
    /// request whose `payTo` differs.
    pub fn dynamic_pay_to(
        mut self,
        pay_to: impl Fn(&Parts) -> Result<String, String> + Send + Sync + 'static,
    ) -> Self {
        self.pay_to = PayToSource::Dynamic(Arc::new(pay_to));
        self
    }

    /// Adds `key: value` to the requirement's `extra` (the Solana memo of `exact`:
    /// `.extra("memo", "invoice-42")`, a UTF-8 string of at most [`MAX_MEMO_BYTES`] bytes the
    /// payment must carry).
    ///
    /// Precedence: members the scheme writes (`name`/`version`/`assetTransferMethod` of EVM,
    /// `feePayer` of Solana, `facilitatorAddress` of `upto`) win. The members the facilitator
    /// supplies ([`FACILITATOR_EXTRA`]) are refused when the paywall is built
    /// ([`ConfigError::FacilitatorExtra`]); any other member the scheme also writes must have
    /// the scheme's value, or the request is answered 500 and nothing is offered.
    pub fn extra(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }
}

/// Checks an option's `extra` when the paywall is built.
fn check_extra(extra: &serde_json::Map<String, serde_json::Value>) -> Result<(), ConfigError> {
    for (key, value) in extra {
        if FACILITATOR_EXTRA.contains(&key.as_str()) {
            return Err(ConfigError::FacilitatorExtra { key: key.clone() });
        }
        if key == "memo" {
            let why = match value.as_str() {
                None => Some("the memo must be a string".to_owned()),
                Some(m) if m.len() > MAX_MEMO_BYTES => Some(format!(
                    "the memo is {} bytes, more than {MAX_MEMO_BYTES}",
                    m.len()
                )),
                Some(_) => None,
            };
            if let Some(why) = why {
                return Err(ConfigError::Extra {
                    key: key.clone(),
                    why,
                });
            }
        }
    }
    Ok(())
}

/// A protected route: what it accepts and how it describes itself.
#[derive(Debug, Clone)]
pub struct Route {
    pub(crate) accepts: Vec<Accept>,
    pub(crate) description: String,
    pub(crate) mime_type: String,
    pub(crate) resource_url: Option<String>,
    pub(crate) service_name: Option<String>,
    pub(crate) tags: Option<Vec<String>>,
    pub(crate) icon_url: Option<String>,
    pub(crate) versions: Vec<X402Version>,
    pub(crate) settle: SettleTiming,
    pub(crate) unpaid_body: Option<BodyHook>,
    pub(crate) settlement_failed_body: Option<BodyHook>,
    pub(crate) extensions: Vec<std::sync::Arc<dyn crate::extensions::RouteExtension>>,
}

impl Default for Route {
    fn default() -> Self {
        Self::new()
    }
}

impl Route {
    /// A route accepting nothing yet, for x402 v1 and v2.
    pub fn new() -> Self {
        Self {
            accepts: Vec::new(),
            description: String::new(),
            mime_type: "application/json".to_owned(),
            resource_url: None,
            service_name: None,
            tags: None,
            icon_url: None,
            versions: X402Version::ALL.to_vec(),
            settle: SettleTiming::AfterHandler,
            unpaid_body: None,
            settlement_failed_body: None,
            extensions: Vec::new(),
        }
    }

    /// Adds an accepted payment option (the first is the seller's preference).
    pub fn accept(mut self, accept: Accept) -> Self {
        self.accepts.push(accept);
        self
    }

    /// A human description of the resource.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// The MIME type of the paid response.
    pub fn mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.mime_type = mime_type.into();
        self
    }

    /// The resource URL announced to buyers (default: the seller's base URL and the path).
    pub fn resource_url(mut self, url: impl Into<String>) -> Self {
        self.resource_url = Some(url.into());
        self
    }

    /// The name of the service hosting the resource (v2 `resource.serviceName`): 1 to 32
    /// printable ASCII characters. Catalogues such as the bazaar list it.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Topical tags of the resource (v2 `resource.tags`): at most 5, each 1 to 32 printable ASCII
    /// characters, no two equal ignoring case.
    pub fn tags<T: Into<String>>(mut self, tags: impl IntoIterator<Item = T>) -> Self {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// The service's icon (v2 `resource.iconUrl`): an absolute `http://` or `https://` URL of at
    /// most 2048 characters.
    pub fn icon_url(mut self, url: impl Into<String>) -> Self {
        self.icon_url = Some(url.into());
        self
    }

    /// The protocol versions served (default both; v1 only offers options whose scheme is
    /// registered for v1 on a network with a v1 name).
    pub fn versions(mut self, versions: &[X402Version]) -> Self {
        self.versions = versions.to_vec();
        self
    }

    /// When to settle.
    pub fn settle(mut self, timing: SettleTiming) -> Self {
        self.settle = timing;
        self
    }

    /// The body of the unpaid 402 (a request without a payment header), browsers included,
    /// instead of `{}` or the HTML paywall. The status and `PAYMENT-REQUIRED` (the offers) stay
    /// as the protocol requires. Only on a route serving x402 v2 only (`.versions(&[V2])`): v1
    /// carries its offers in the body ([`ConfigError::CustomBodyWithV1`]). A refused payment's
    /// 402 keeps the protocol's body.
    pub fn unpaid_body(
        mut self,
        body: impl Fn(&BodyContext<'_>) -> CustomBody + Send + Sync + 'static,
    ) -> Self {
        self.unpaid_body = Some(BodyHook(Arc::new(body)));
        self
    }

    /// The body of the 402 answering a v2 payment whose settlement failed, instead of `{}`. The
    /// status and `PAYMENT-RESPONSE` (the failed settlement) stay as the protocol requires; a v1
    /// payment keeps the v1 document as its body.
    pub fn settlement_failed_body(
        mut self,
        body: impl Fn(&BodyContext<'_>) -> CustomBody + Send + Sync + 'static,
    ) -> Self {
        self.settlement_failed_body = Some(BodyHook(Arc::new(body)));
        self
    }
}

/// Seller-wide settings.
#[derive(Debug, Clone)]
pub struct SellerOptions {
    /// The base URL resources are announced under (`https://api.example.com`); default
    /// `http://<Host header>`.
    pub base_url: Option<String>,
    /// The largest handler response buffered before settlement; a larger one is a 500 and is
    /// not settled.
    pub max_response_bytes: usize,
    /// The settle bounds of the facilitator, the value its client was built with
    /// (`FacilitatorClient::with_settle_timeouts`; the default fits a default facilitator and
    /// `FacilitatorClient::new`). A settle answered `settlement_pending` is retried once after
    /// [`SellerOptions::pending_retry_pause`].
    pub settle_timeouts: SettleTimeouts,
    /// How long the facilitator's `/supported` answer is used before it is fetched again (in the
    /// background; requests meanwhile use the last answer). Default 5 minutes.
    pub supported_ttl: Duration,
    /// After a failed refresh of `/supported`, the last good answer is kept and the refresh is
    /// tried again this much later. Default 30 seconds.
    pub supported_retry: Duration,
    /// The HTML paywall a browser's unpaid request gets (app name, logo, testnet banner, token
    /// labels); see [`PaywallConfig`](crate::PaywallConfig).
    pub paywall: crate::paywall::PaywallConfig,
}

impl Default for SellerOptions {
    fn default() -> Self {
        Self {
            base_url: None,
            max_response_bytes: 8 * 1024 * 1024,
            settle_timeouts: SettleTimeouts::default(),
            supported_ttl: Duration::from_secs(300),
            supported_retry: Duration::from_secs(30),
            paywall: crate::paywall::PaywallConfig::default(),
        }
    }
}

impl SellerOptions {
    /// How long the seller waits before retrying a settle the facilitator answered
    /// `settlement_pending`: a tenth of the facilitator's answer bound
    /// ([`SettleTimeouts::answer_within`]), at most [`SettleTimeouts::MARGIN`] (5 s at the
    /// default 60 s bound).
    ///
    /// The facilitator has already waited the whole bound for the transaction; the pause gives
    /// the chain a little longer, in proportion to how slowly the facilitator expects it to
    /// decide, without stretching the buyer's wait by more than one margin (the whole exchange
    /// then ends within `answer_within + MARGIN + client_timeout`).
    pub fn pending_retry_pause(&self) -> Duration {
        (self.settle_timeouts.answer_within() / 10).min(SettleTimeouts::MARGIN)
    }
}

/// One facilitator of a seller, with its cached `/supported`.
#[derive(Clone)]
pub(crate) struct Upstream {
    pub(crate) facilitator: Arc<dyn Facilitator>,
    pub(crate) supported: Arc<SupportedCache>,
}

pub(crate) struct SellerInner {
    /// The facilitators, in precedence order (never empty).
    pub(crate) upstreams: Vec<Upstream>,
    pub(crate) schemes: Registry,
    pub(crate) options: SellerOptions,
    pub(crate) hooks: Vec<Arc<dyn SellerHook>>,
    /// The routes [`Seller::paywall`] built, for [`Seller::validate`].
    pub(crate) routes: Mutex<Vec<Arc<Route>>>,
    /// Payments being processed right now, by scheme payload: one payment is never served twice
    /// concurrently, on any route of this seller.
    pub(crate) in_flight: Mutex<HashSet<String>>,
    /// Where payment-id entries are kept ([`crate::payment_id`]).
    pub(crate) payment_ids: Arc<dyn x402_core::extension::idempotency::IdempotencyStore>,
    pub(crate) payment_id_options: crate::payment_id::PaymentIdOptions,
    /// The routes [`Seller::route`] added, for the origin manifest ([`crate::manifest`]).
    pub(crate) manifest: Mutex<Vec<crate::manifest::Listed>>,
}

impl fmt::Debug for SellerInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Seller")
            .field("facilitators", &self.upstreams.len())
            .field("schemes", &self.schemes)
            .field("options", &self.options)
            .field("hooks", &self.hooks)
            .finish_non_exhaustive()
    }
}

impl SellerInner {
    fn new(upstreams: Vec<Upstream>, schemes: Registry, options: SellerOptions) -> Self {
        Self {
            upstreams,
            schemes,
            options,
            hooks: Vec::new(),
            routes: Mutex::new(Vec::new()),
            in_flight: Mutex::new(HashSet::new()),
            payment_ids: Arc::new(x402_core::extension::idempotency::MemoryIdempotency::default()),
            payment_id_options: crate::payment_id::PaymentIdOptions::default(),
            manifest: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn upstream(&self, facilitator: Arc<dyn Facilitator>) -> Upstream {
        Upstream {
            facilitator,
            supported: Arc::new(SupportedCache::new(
                self.options.supported_ttl,
                self.options.supported_retry,
            )),
        }
    }
}

/// A seller: its facilitators (in precedence order), the schemes it prices with, its hooks,
/// shared by all its routes.
///
/// The builders ([`Seller::with_facilitator`], [`Seller::with_hook`]) return a new seller:
/// configure it completely before building paywalls (a paywall keeps the seller it was built
/// from).
#[derive(Debug, Clone)]
pub struct Seller {
    pub(crate) inner: Arc<SellerInner>,
}

impl Seller {
    /// A seller using `facilitator`, pricing with the seller roles registered in `schemes`.
    pub fn new(facilitator: Arc<dyn Facilitator>, schemes: Registry) -> Self {
        Self::with_options(facilitator, schemes, SellerOptions::default())
    }

    /// A seller with explicit options.
    pub fn with_options(
        facilitator: Arc<dyn Facilitator>,
        schemes: Registry,
        options: SellerOptions,
    ) -> Self {
        let mut inner = SellerInner::new(Vec::new(), schemes, options);
        inner.upstreams.push(inner.upstream(facilitator));
        Self {
            inner: Arc::new(inner),
        }
    }

    /// A copy of this seller's configuration, changed by `edit` (the routes built so far are
    /// kept for [`Seller::validate`]).
    pub(crate) fn edited(self, edit: impl FnOnce(&mut SellerInner)) -> Self {
        let old = &self.inner;
        let mut inner = SellerInner::new(
            old.upstreams.clone(),
            old.schemes.clone(),
            old.options.clone(),
        );
        inner.hooks = old.hooks.clone();
        inner.payment_ids = old.payment_ids.clone();
        inner.payment_id_options = old.payment_id_options;
        inner.manifest = Mutex::new(
            old.manifest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        );
        inner.routes = Mutex::new(
            old.routes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        );
        edit(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Adds a facilitator after those added before it (the one given to the constructor
    /// first). See [Several facilitators](crate#several-facilitators) for the precedence and
    /// fallback rules: offers for a (scheme, network) come from the first facilitator that is up
    /// and supports it, a payment's verify and settle go to the facilitator whose kind was
    /// offered, a verify falls over on a transport error, a settle never does.
    pub fn with_facilitator(self, facilitator: Arc<dyn Facilitator>) -> Self {
        self.edited(|inner| {
            let upstream = inner.upstream(facilitator);
            inner.upstreams.push(upstream);
        })
    }

    /// Adds a lifecycle hook, after those added before it (see [`crate::hook`] for the order
    /// and what a hook may do).
    pub fn with_hook(self, hook: Arc<dyn SellerHook>) -> Self {
        self.edited(|inner| inner.hooks.push(hook))
    }

    /// The hooks, in the order they run.
    pub fn hooks(&self) -> &[Arc<dyn SellerHook>] {
        &self.inner.hooks
    }

    /// The layer protecting one route (also remembered for [`Seller::validate`]).
    pub fn paywall(&self, route: Route) -> Result<Paywall, ConfigError> {
        if route.accepts.is_empty() {
            return Err(ConfigError::NoOptions);
        }
        if route.versions.is_empty() {
            return Err(ConfigError::NoVersions);
        }
        if route.unpaid_body.is_some() && route.versions.contains(&X402Version::V1) {
            return Err(ConfigError::CustomBodyWithV1);
        }
        crate::resource::check(&route)?;
        crate::extensions::check(&route)?;
        for a in &route.accepts {
            if self
                .inner
                .schemes
                .lookup(X402Version::V2, &a.scheme, &a.network)
                .is_err()
            {
                return Err(ConfigError::UnknownScheme {
                    scheme: a.scheme.clone(),
                    network: a.network.clone(),
                });
            }
            check_extra(&a.extra)?;
        }
        let route = Arc::new(route);
        self.inner
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(route.clone());
        Ok(Paywall::new(self.inner.clone(), route))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pending_retry_pause_follows_the_settle_bound() {
        let pause = |ms| {
            SellerOptions {
                settle_timeouts: SettleTimeouts::new(Duration::from_millis(ms)),
                ..SellerOptions::default()
            }
            .pending_retry_pause()
        };
        assert_eq!(
            SellerOptions::default().pending_retry_pause(),
            SettleTimeouts::MARGIN
        );
        assert_eq!(pause(200), Duration::from_millis(20));
        assert_eq!(pause(30_000), Duration::from_secs(3));
        assert_eq!(pause(600_000), SettleTimeouts::MARGIN);
    }
}

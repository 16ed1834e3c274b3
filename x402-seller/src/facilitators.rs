//! A seller's facilitators: which one offers an option, which one verifies and settles a
//! payment, the verify fallover, and start-up validation of the routes.

use std::fmt;
use std::sync::Arc;

use x402_core::wire::{SupportedKind, SupportedResponse, VerifyRequest, VerifyResponse};
use x402_core::{FacilitatorError, Network, PriceRequest, X402Version};

use crate::config::{Accept, PayToSource, PriceSource, Route, Seller, SellerInner};

/// The facilitator an offer came from, and the `extra` of its kind (a fee payer, a spender)
/// that the requirement embeds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Source {
    pub(crate) facilitator: usize,
    pub(crate) kind_extra: Option<serde_json::Value>,
}

impl Source {
    pub(crate) fn of(facilitator: usize, kind: &SupportedKind) -> Self {
        Self {
            facilitator,
            kind_extra: extra_value(kind),
        }
    }
}

fn extra_value(kind: &SupportedKind) -> Option<serde_json::Value> {
    kind.extra
        .as_deref()
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .filter(|v: &serde_json::Value| !v.is_null())
}

pub(crate) fn find_kind<'s>(
    supported: &'s [SupportedKind],
    version: X402Version,
    scheme: &str,
    network: &str,
) -> Option<&'s SupportedKind> {
    supported
        .iter()
        .find(|k| k.x402_version == version && k.scheme == scheme && k.network == network)
}

/// The facilitators' `/supported` answers for one request, fetched as needed.
pub(crate) struct Answers {
    answers: Vec<Option<Arc<SupportedResponse>>>,
    /// Facilitators skipped as down (their last fetch failed recently).
    skipped: Vec<usize>,
    /// The first fetch error, for an answer when no facilitator serves.
    pub(crate) error: Option<FacilitatorError>,
}

impl Answers {
    /// Every facilitator's answer, skipping those down.
    pub(crate) async fn collect(seller: &SellerInner) -> Self {
        let mut answers = Self {
            answers: vec![None; seller.upstreams.len()],
            skipped: Vec::new(),
            error: None,
        };
        for (i, up) in seller.upstreams.iter().enumerate() {
            match up.supported.get_unless_down(&up.facilitator).await {
                Some(Ok(a)) => answers.answers[i] = Some(a),
                Some(Err(e)) => {
                    tracing::debug!(facilitator = i, error = %e, "facilitator /supported unavailable");
                    answers.error.get_or_insert(e);
                }
                None => answers.skipped.push(i),
            }
        }
        answers
    }

    /// Asks the facilitators skipped as down once more (when no other serves an option).
    pub(crate) async fn retry_skipped(&mut self, seller: &SellerInner) {
        for i in std::mem::take(&mut self.skipped) {
            let up = &seller.upstreams[i];
            match up.supported.get(&up.facilitator).await {
                Ok(a) => self.answers[i] = Some(a),
                Err(e) => {
                    self.error.get_or_insert(e);
                }
            }
        }
    }

    pub(crate) fn has_skipped(&self) -> bool {
        !self.skipped.is_empty()
    }

    /// The first facilitator (in precedence order) that answered and supports the kind.
    pub(crate) fn find(
        &self,
        version: X402Version,
        scheme: &str,
        network: &str,
    ) -> Option<(usize, &SupportedKind)> {
        self.answers.iter().enumerate().find_map(|(i, a)| {
            a.as_ref()
                .and_then(|a| find_kind(&a.kinds, version, scheme, network))
                .map(|k| (i, k))
        })
    }

    /// `facilitator`'s kind, when it answered and supports it.
    pub(crate) fn kind_of(
        &self,
        facilitator: usize,
        version: X402Version,
        scheme: &str,
        network: &str,
    ) -> Option<&SupportedKind> {
        self.answers
            .get(facilitator)?
            .as_ref()
            .and_then(|a| find_kind(&a.kinds, version, scheme, network))
    }

    /// Whether any facilitator answered.
    pub(crate) fn any(&self) -> bool {
        self.answers.iter().any(Option::is_some)
    }
}

/// Verifies with the facilitator the payment's offer came from; on a transport error (the
/// facilitator is unreachable or timed out: a verify moves nothing, so asking another is safe),
/// with the next facilitator, in precedence order, whose `/supported` lists the same kind with
/// identical `extra` (so the requirement the buyer signed is valid there too). Answers the result
/// and the facilitator that gave it (the one to settle with).
pub(crate) async fn verify(
    seller: &SellerInner,
    source: &Source,
    version: X402Version,
    request: &VerifyRequest,
) -> (Result<VerifyResponse, FacilitatorError>, usize) {
    let first = seller.upstreams[source.facilitator]
        .facilitator
        .verify(request)
        .await;
    let Err(FacilitatorError::Transport(e)) = first else {
        return (first, source.facilitator);
    };
    let mut last = FacilitatorError::Transport(e);
    let requirements = &request.payment_requirements;
    for (j, up) in seller.upstreams.iter().enumerate() {
        if j == source.facilitator {
            continue;
        }
        let Some(Ok(supported)) = up.supported.get_unless_down(&up.facilitator).await else {
            continue;
        };
        let Some(kind) = find_kind(
            &supported.kinds,
            version,
            requirements.scheme(),
            requirements.network_text(),
        ) else {
            continue;
        };
        if extra_value(kind) != source.kind_extra {
            continue;
        }
        tracing::warn!(error = %last, from = source.facilitator, to = j, "facilitator verify failed; falling over");
        match up.facilitator.verify(request).await {
            Err(FacilitatorError::Transport(e)) => last = FacilitatorError::Transport(e),
            other => return (other, j),
        }
    }
    (Err(last), source.facilitator)
}

/// An option of a route that no facilitator supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedOption {
    /// The route's position among those built with [`Seller::paywall`] (from 0).
    pub route: usize,
    /// The route's description.
    pub description: String,
    /// The scheme.
    pub scheme: String,
    /// The network.
    pub network: Network,
}

/// An option of a route that a facilitator supports but the seller cannot price (a static price
/// and recipient the scheme refuses, an `extra` member contradicting the scheme's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusableOption {
    /// The route's position among those built with [`Seller::paywall`] (from 0).
    pub route: usize,
    /// The route's description.
    pub description: String,
    /// The scheme.
    pub scheme: String,
    /// The network.
    pub network: Network,
    /// Why.
    pub why: String,
}

/// A facilitator whose `/supported` could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    /// Its position in the seller's list (0: the one given to the constructor).
    pub facilitator: usize,
    /// Why.
    pub error: String,
}

/// Start-up validation found options no facilitator supports, or that cannot be priced
/// ([`Seller::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// The options no reachable facilitator supports, in any version their route serves.
    pub unsupported: Vec<UnsupportedOption>,
    /// The supported options with a static price and recipient that cannot be priced.
    pub unusable: Vec<UnusableOption>,
    /// The facilitators that could not be asked.
    pub unreachable: Vec<Unreachable>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if !self.unsupported.is_empty() {
            write!(f, "no facilitator supports")?;
            for (n, o) in self.unsupported.iter().enumerate() {
                let sep = if n == 0 { ":" } else { ";" };
                write!(
                    f,
                    "{sep} {} on {} (route #{} {:?})",
                    o.scheme, o.network, o.route, o.description
                )?;
            }
            sep = "; ";
        }
        for o in &self.unusable {
            write!(
                f,
                "{sep}{} on {} (route #{} {:?}) cannot be priced: {}",
                o.scheme, o.network, o.route, o.description, o.why
            )?;
            sep = "; ";
        }
        for u in &self.unreachable {
            write!(
                f,
                "; facilitator #{} unreachable: {}",
                u.facilitator, u.error
            )?;
        }
        Ok(())
    }
}

/// The versions in which `route` serves the option on `network` with `scheme`.
fn served_versions(
    seller: &SellerInner,
    route: &Route,
    scheme: &str,
    network: &Network,
) -> Vec<(X402Version, String)> {
    let mut out = Vec::new();
    if route.versions.contains(&X402Version::V2) {
        out.push((X402Version::V2, network.as_str().to_owned()));
    }
    if route.versions.contains(&X402Version::V1)
        && seller
            .schemes
            .lookup(X402Version::V1, scheme, network)
            .is_ok()
        && let Some(name) = network.v1_name()
    {
        out.push((X402Version::V1, name.to_owned()));
    }
    out
}

/// Prices an option with a static price and recipient as a request would, with the kind of the
/// first facilitator that lists it (options computed per request are not priced here).
async fn price_now(
    seller: &SellerInner,
    answers: &[Arc<SupportedResponse>],
    accept: &Accept,
) -> Result<(), String> {
    let (PriceSource::Static(price), PayToSource::Static(pay_to)) = (&accept.price, &accept.pay_to)
    else {
        return Ok(());
    };
    let Some(kind) = answers.iter().find_map(|a| {
        find_kind(
            &a.kinds,
            X402Version::V2,
            &accept.scheme,
            accept.network.as_str(),
        )
    }) else {
        return Ok(());
    };
    let Ok(scheme) = seller
        .schemes
        .lookup(X402Version::V2, &accept.scheme, &accept.network)
    else {
        return Ok(());
    };
    let mut requirements = scheme
        .requirements(&PriceRequest {
            network: accept.network.clone(),
            price: price.clone(),
            pay_to: pay_to.clone(),
            asset: accept.asset.clone(),
            max_timeout_seconds: accept.max_timeout_seconds,
            facilitator_kind: Some(kind.clone()),
        })
        .await
        .map_err(|e| e.to_string())?;
    crate::offers::merge_extra(&mut requirements, &accept.extra).map_err(|e| e.to_string())
}

impl Seller {
    /// Fetches every facilitator's `/supported` now (each is otherwise fetched on first use).
    /// `Err` (the first failure) when none answered.
    pub async fn warm_up(&self) -> Result<(), FacilitatorError> {
        let mut first = None;
        let mut any = false;
        for up in &self.inner.upstreams {
            match up.supported.get(&up.facilitator).await {
                Ok(_) => any = true,
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        match first {
            Some(e) if !any => Err(e),
            _ => Ok(()),
        }
    }

    /// The `/supported` of the first facilitator, in precedence order, that answers (the cached
    /// answer; fetched if there is none, refreshed in the background if stale).
    pub async fn supported(&self) -> Result<Arc<SupportedResponse>, FacilitatorError> {
        let mut first = None;
        for up in &self.inner.upstreams {
            match up.supported.get(&up.facilitator).await {
                Ok(a) => return Ok(a),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        Err(first.unwrap_or_else(|| FacilitatorError::Transport("no facilitator".to_owned())))
    }

    /// Checks, at start-up, every route built with [`Seller::paywall`] so far against each
    /// facilitator's `/supported` (fetched now): `Err` lists every option that no reachable
    /// facilitator supports in any version its route serves, every supported option with a
    /// static price and recipient that the scheme cannot price with the facilitator's kind (an
    /// `extra` member contradicting the scheme's, say), and the facilitators that could not be
    /// asked. Prices and recipients computed per request are not checked. A facilitator that is down while the others cover every option is not an
    /// error (it is logged, and skipped by requests until it answers).
    ///
    /// At request time an option no facilitator serves is simply not offered (a route left with
    /// none is a 503); call this once the routes are built to learn it before serving.
    pub async fn validate(&self) -> Result<(), ValidationError> {
        let seller = &self.inner;
        let mut answers = Vec::new();
        let mut unreachable = Vec::new();
        for (i, up) in seller.upstreams.iter().enumerate() {
            match up.supported.fetch_now(&up.facilitator).await {
                Ok(a) => answers.push(a),
                Err(error) => unreachable.push(Unreachable {
                    facilitator: i,
                    error,
                }),
            }
        }
        let routes = seller
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut unsupported = Vec::new();
        let mut unusable = Vec::new();
        for (n, route) in routes.iter().enumerate() {
            for accept in &route.accepts {
                let supported = served_versions(seller, route, &accept.scheme, &accept.network)
                    .iter()
                    .any(|(version, network)| {
                        answers.iter().any(|a| {
                            find_kind(&a.kinds, *version, &accept.scheme, network).is_some()
                        })
                    });
                if supported && let Err(why) = price_now(seller, &answers, accept).await {
                    unusable.push(UnusableOption {
                        route: n,
                        description: route.description.clone(),
                        scheme: accept.scheme.clone(),
                        network: accept.network.clone(),
                        why,
                    });
                }
                if !supported {
                    unsupported.push(UnsupportedOption {
                        route: n,
                        description: route.description.clone(),
                        scheme: accept.scheme.clone(),
                        network: accept.network.clone(),
                    });
                }
            }
        }
        for u in &unreachable {
            tracing::warn!(facilitator = u.facilitator, error = %u.error, "facilitator /supported unavailable at start-up");
        }
        if unsupported.is_empty() && unusable.is_empty() {
            Ok(())
        } else {
            Err(ValidationError {
                unsupported,
                unusable,
                unreachable,
            })
        }
    }
}

//! The seller's own requirements for one request, and matching a buyer's payment against them.

use axum::http::request::Parts;
use x402_core::wire::{
    PaymentRequiredV1, PaymentRequiredV2, PaymentRequirementsV1, PaymentRequirementsV2,
    ResourceInfo,
};
use x402_core::{Amount, FacilitatorError, Network, Price, PriceRequest, SchemeError, X402Version};

use crate::config::{PayToSource, PriceSource, Route, SellerInner};
use crate::facilitators::{Answers, Source};

/// What a route asks for on this request, in each version it serves.
#[derive(Debug, Clone)]
pub(crate) struct Offers {
    /// v2 requirements (empty when v2 is not served).
    pub(crate) v2: Vec<PaymentRequirementsV2>,
    /// The facilitator each v2 requirement came from.
    pub(crate) v2_from: Vec<Source>,
    /// v1 requirements (empty when v1 is not served or nothing qualifies).
    pub(crate) v1: Vec<PaymentRequirementsV1>,
    /// The facilitator each v1 requirement came from.
    pub(crate) v1_from: Vec<Source>,
    /// The resource.
    pub(crate) resource: ResourceInfo,
    /// The route's extension declarations for this request (v2 only).
    pub(crate) extensions: Option<x402_core::wire::Raw>,
}

/// Why a route could not say what it asks for.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OfferError {
    /// The facilitator's `/supported` could not be fetched.
    #[error("the payment facilitator is unavailable: {0}")]
    Facilitator(#[from] FacilitatorError),
    /// The route's price function refused this request.
    #[error("cannot price this request: {0}")]
    Price(String),
    /// The route's recipient function refused this request.
    #[error("cannot find the recipient for this request: {0}")]
    PayTo(String),
    /// The seller's `extra` contradicts the scheme's.
    #[error("the seller's payment configuration is unusable: {0}")]
    Extra(String),
    /// A scheme refused the seller's own configuration.
    #[error("the seller's payment configuration is unusable: {0}")]
    Scheme(#[from] SchemeError),
    /// No facilitator serves any of the route's options.
    #[error("no payment facilitator serves this resource's payment options")]
    NothingOffered,
}

fn resource_url(seller: &SellerInner, route: &Route, parts: &Parts) -> String {
    if let Some(url) = &route.resource_url {
        return url.clone();
    }
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let base = seller.options.base_url.clone().unwrap_or_else(|| {
        let host = parts
            .headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        format!("http://{host}")
    });
    format!("{}{path}", base.trim_end_matches('/'))
}

/// Merges the seller's `extra` into the scheme's: the scheme's members win; a seller member the
/// scheme also wrote must have the scheme's value.
pub(crate) fn merge_extra(
    requirements: &mut PaymentRequirementsV2,
    extra: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), OfferError> {
    if extra.is_empty() {
        return Ok(());
    }
    let mut merged = match requirements.extra.as_deref() {
        Some(raw) => match serde_json::from_str::<serde_json::Value>(raw.get()) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(serde_json::Value::Null) => serde_json::Map::new(),
            _ => {
                return Err(OfferError::Extra(
                    "the scheme's extra is not an object; the seller's cannot be added".to_owned(),
                ));
            }
        },
        None => serde_json::Map::new(),
    };
    for (key, value) in extra {
        match merged.get(key) {
            Some(theirs) if theirs != value => {
                return Err(OfferError::Extra(format!(
                    "extra.{key} is {value}, but the {} scheme sets it to {theirs}",
                    requirements.scheme
                )));
            }
            Some(_) => {}
            None => {
                merged.insert(key.clone(), value.clone());
            }
        }
    }
    requirements.extra = Some(
        x402_core::wire::to_raw(&serde_json::Value::Object(merged))
            .map_err(|e| OfferError::Extra(e.to_string()))?,
    );
    Ok(())
}

/// Builds the route's requirements for this request from the seller's configuration: each
/// option from the first facilitator (in precedence order) that is up and supports it.
pub(crate) async fn build(
    seller: &SellerInner,
    route: &Route,
    parts: &Parts,
) -> Result<Offers, OfferError> {
    let mut answers = Answers::collect(seller).await;
    let resource = ResourceInfo {
        url: resource_url(seller, route, parts),
        description: Some(route.description.clone()),
        mime_type: Some(route.mime_type.clone()),
        service_name: route.service_name.clone(),
        tags: route.tags.clone(),
        icon_url: route.icon_url.clone(),
    };
    let mut offers = Offers {
        v2: Vec::new(),
        v2_from: Vec::new(),
        v1: Vec::new(),
        v1_from: Vec::new(),
        resource,
        extensions: None,
    };
    for accept in &route.accepts {
        let network = accept.network.as_str();
        let mut found = answers.find(X402Version::V2, &accept.scheme, network);
        if found.is_none() && answers.has_skipped() {
            answers.retry_skipped(seller).await;
            found = answers.find(X402Version::V2, &accept.scheme, network);
        }
        // Not served by any facilitator: not offered (Seller::validate reports it at start-up).
        let Some((facilitator, kind)) = found else {
            continue;
        };
        let Ok(scheme) = seller
            .schemes
            .lookup(X402Version::V2, &accept.scheme, &accept.network)
        else {
            continue;
        };
        let price = match &accept.price {
            PriceSource::Static(p) => p.clone(),
            PriceSource::Dynamic(f) => f(parts).map_err(OfferError::Price)?,
        };
        let pay_to = match &accept.pay_to {
            PayToSource::Static(p) => p.clone(),
            PayToSource::Dynamic(f) => f(parts).map_err(OfferError::PayTo)?,
        };
        let mut requirements = scheme
            .requirements(&PriceRequest {
                network: accept.network.clone(),
                price,
                pay_to,
                asset: accept.asset.clone(),
                max_timeout_seconds: accept.max_timeout_seconds,
                facilitator_kind: Some(kind.clone()),
            })
            .await?;
        merge_extra(&mut requirements, &accept.extra)?;
        let source = Source::of(facilitator, kind);
        let v1_served = route.versions.contains(&X402Version::V1)
            && seller
                .schemes
                .lookup(X402Version::V1, &accept.scheme, &accept.network)
                .is_ok();
        if let Some(name) = accept.network.v1_name().filter(|_| v1_served)
            && let Some(v1_kind) =
                answers.kind_of(facilitator, X402Version::V1, &accept.scheme, name)
        {
            offers.v1.push(to_v1(&requirements, name, &offers.resource));
            offers.v1_from.push(Source::of(facilitator, v1_kind));
        }
        if route.versions.contains(&X402Version::V2) {
            offers.v2.push(requirements);
            offers.v2_from.push(source);
        }
    }
    if offers.v1.is_empty() && offers.v2.is_empty() {
        return Err(match answers.error.take() {
            Some(e) if !answers.any() => OfferError::Facilitator(e),
            _ => OfferError::NothingOffered,
        });
    }
    offers.extensions = crate::extensions::declare(route, parts, &offers.v2);
    Ok(offers)
}

/// `price` (`"$0.05"`) in atomic units of the asset of `requirements`, converted by the scheme
/// that priced them, exactly as a route price in that asset converts (so a price finer than the
/// asset's smallest unit is refused, not rounded).
pub(crate) async fn atomic_price(
    seller: &SellerInner,
    facilitator: usize,
    requirements: &PaymentRequirementsV2,
    price: &str,
) -> Result<Amount, String> {
    let network = Network::parse(&requirements.network).map_err(|e| e.to_string())?;
    let scheme = seller
        .schemes
        .lookup(X402Version::V2, &requirements.scheme, &network)
        .map_err(|e| format!("no seller scheme prices it: {e:?}"))?;
    let up = &seller.upstreams[facilitator];
    let supported = up
        .supported
        .get(&up.facilitator)
        .await
        .map_err(|e| e.to_string())?;
    let kind = crate::facilitators::find_kind(
        &supported.kinds,
        X402Version::V2,
        &requirements.scheme,
        &requirements.network,
    )
    .cloned();
    let priced = scheme
        .requirements(&PriceRequest {
            network,
            price: Price::Decimal(price.to_owned()),
            pay_to: requirements.pay_to.clone(),
            asset: Some(requirements.asset.clone()),
            max_timeout_seconds: Some(requirements.max_timeout_seconds),
            facilitator_kind: kind,
        })
        .await
        .map_err(|e| e.to_string())?;
    if priced.asset != requirements.asset {
        return Err(format!(
            "the scheme priced it in {} instead of {}",
            priced.asset, requirements.asset
        ));
    }
    Ok(priced.amount)
}

fn to_v1(
    r: &PaymentRequirementsV2,
    network: &str,
    resource: &ResourceInfo,
) -> PaymentRequirementsV1 {
    PaymentRequirementsV1 {
        scheme: r.scheme.clone(),
        network: network.to_owned(),
        max_amount_required: r.amount,
        asset: r.asset.clone(),
        pay_to: r.pay_to.clone(),
        resource: resource.url.clone(),
        description: resource.description.clone().unwrap_or_default(),
        mime_type: resource.mime_type.clone(),
        output_schema: None,
        max_timeout_seconds: r.max_timeout_seconds,
        extra: r.extra.clone(),
    }
}

impl Offers {
    /// The v2 document for a 402 (`None` when v2 is not offered).
    pub(crate) fn required_v2(&self, error: &str) -> Option<PaymentRequiredV2> {
        (!self.v2.is_empty()).then(|| PaymentRequiredV2 {
            x402_version: X402Version::V2,
            error: Some(error.to_owned()),
            resource: self.resource.clone(),
            accepts: self.v2.clone(),
            extensions: self.extensions.clone(),
        })
    }

    /// The v1 document for a 402 body (`None` when v1 is not offered).
    pub(crate) fn required_v1(
        &self,
        error: &str,
        payer: Option<String>,
    ) -> Option<PaymentRequiredV1> {
        (!self.v1.is_empty()).then(|| PaymentRequiredV1 {
            x402_version: X402Version::V1,
            error: Some(error.to_owned()),
            accepts: self.v1.clone(),
            payer,
        })
    }

    /// The seller's requirement the buyer's `accepted` names, by the reference's rule
    /// ([`PaymentRequirementsV2::matches_accepted`]: every member but `extra` equal exactly, the
    /// seller's `extra` contained in the buyer's); the buyer's copy itself is never used.
    pub(crate) fn match_v2(
        &self,
        accepted: &PaymentRequirementsV2,
    ) -> Option<(&PaymentRequirementsV2, &Source)> {
        let i = self.v2.iter().position(|r| r.matches_accepted(accepted))?;
        Some((&self.v2[i], &self.v2_from[i]))
    }

    /// The seller's v1 requirement for a v1 payment's (scheme, network).
    pub(crate) fn match_v1(
        &self,
        scheme: &str,
        network: &str,
    ) -> Option<(&PaymentRequirementsV1, &Source)> {
        let i = self
            .v1
            .iter()
            .position(|r| r.scheme == scheme && r.network == network)?;
        Some((&self.v1[i], &self.v1_from[i]))
    }
}

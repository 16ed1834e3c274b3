//! Extensions a route declares in its v2 `PaymentRequired` (`extensions`), checked when the
//! paywall is built and enriched per request.
//!
//! ```
//! use x402_core::extension::bazaar::Bazaar;
//! use x402_seller::{RawExtension, Route};
//! let route = Route::new()
//!     .extension(Bazaar::query().input_example(serde_json::json!({"city": "Paris"})))
//!     .extension(RawExtension::new("my-ext", serde_json::json!({"info": {}, "schema": {}})));
//! ```
//!
//! - [`Bazaar`] (discovery): checked at start-up with [`Bazaar::check`] (route template rules,
//!   the method against the input type, the declaration against its own schema). Per request
//!   the request's method fills in `info.input.method` when the builder declares none (a method
//!   that does not fit the input type omits the declaration from that 402), and the route
//!   template — the builder's, or else the axum route the request matched (`/users/{id}` becomes
//!   `/users/:id`) — becomes `routeTemplate` with the request's path parameters.
//! - [`RawExtension`]: any other extension, sent verbatim.

use std::fmt::Debug;
use std::sync::Arc;

use axum::extract::MatchedPath;
use axum::http::request::Parts;
use x402_core::extension::bazaar::{self, BAZAAR, Bazaar};
use x402_core::extension::{Declaration, JsonObject};
use x402_core::wire::Raw;

use crate::config::{ConfigError, Route};

/// What an extension sees of the request it declares itself for.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The HTTP method (`GET`).
    pub method: &'a str,
    /// The request path (`/users/42`).
    pub path: &'a str,
    /// The route template of the matched route (`/users/:id`), when the router tells it.
    pub route_template: Option<&'a str>,
    /// The v2 requirements this 402 offers (a sign-in-with-x challenge names their networks).
    pub accepts: &'a [x402_core::wire::PaymentRequirementsV2],
}

/// An extension a route declares (see the module documentation).
pub trait RouteExtension: Send + Sync + Debug {
    /// The key in `extensions` (`bazaar`).
    fn key(&self) -> &str;
    /// Checked once, when the paywall is built.
    fn check(&self) -> Result<(), String>;
    /// The declaration for one request; `None` leaves it out of that 402.
    fn declare(&self, request: &RequestInfo<'_>) -> Option<Raw>;
}

impl RouteExtension for Bazaar {
    fn key(&self) -> &str {
        BAZAAR
    }

    fn check(&self) -> Result<(), String> {
        Bazaar::check(self).map_err(|errors| errors.join("; "))
    }

    fn declare(&self, request: &RequestInfo<'_>) -> Option<Raw> {
        let declaration = self.declaration();
        if self.is_mcp() {
            return Some(declaration.to_raw());
        }
        let method = match self.declared_method() {
            Some(m) => m.to_owned(),
            None if bazaar::method_fits(&declaration, request.method) => request.method.to_owned(),
            None => return None,
        };
        let template = declaration
            .siblings
            .string("routeTemplate")
            .or_else(|| request.route_template.map(str::to_owned));
        Some(bazaar::enrich(&declaration, &method, template.as_deref(), request.path).to_raw())
    }
}

/// An extension this crate has no builder for: its declaration, sent verbatim.
#[derive(Debug, Clone)]
pub struct RawExtension {
    key: String,
    declaration: Result<Raw, String>,
}

impl RawExtension {
    /// Declares `declaration` (an `{"info": …, "schema": …}` object) under `key`.
    pub fn new(key: impl Into<String>, declaration: impl serde::Serialize) -> Self {
        let declaration = serde_json::value::to_raw_value(&declaration)
            .map_err(|e| e.to_string())
            .and_then(|raw| {
                serde_json::from_str::<Declaration>(raw.get())
                    .map(|_| raw)
                    .map_err(|e| format!("not an extension declaration: {e}"))
            });
        Self {
            key: key.into(),
            declaration,
        }
    }
}

impl RouteExtension for RawExtension {
    fn key(&self) -> &str {
        &self.key
    }

    fn check(&self) -> Result<(), String> {
        if self.key.is_empty() {
            return Err("the key is empty".to_owned());
        }
        self.declaration.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    fn declare(&self, _: &RequestInfo<'_>) -> Option<Raw> {
        self.declaration.as_ref().ok().cloned()
    }
}

impl Route {
    /// Declares an extension in this route's v2 `PaymentRequired` (a later one with the same
    /// key replaces an earlier one).
    pub fn extension(mut self, extension: impl RouteExtension + 'static) -> Self {
        let key = extension.key().to_owned();
        self.extensions.retain(|e| e.key() != key);
        self.extensions.push(Arc::new(extension));
        self
    }
}

/// Checks every declared extension (when the paywall is built).
pub(crate) fn check(route: &Route) -> Result<(), ConfigError> {
    for e in &route.extensions {
        e.check().map_err(|why| ConfigError::Extension {
            key: e.key().to_owned(),
            why,
        })?;
    }
    Ok(())
}

/// The seller vouches for what a facilitator may catalog: a v2 payment's `resource` and `bazaar`
/// declaration are replaced by the seller's own for this request before the payment goes to the
/// facilitator (the buyer's echoed copies are not signed, so a buyer could otherwise have any
/// resource listed under the seller's name); the buyer's other extensions are kept as it sent
/// them. v1 payments carry neither.
pub(crate) fn vouch(
    payload: x402_core::wire::PaymentPayload,
    offers: &crate::offers::Offers,
) -> x402_core::wire::PaymentPayload {
    let x402_core::wire::PaymentPayload::V2(mut p) = payload else {
        return payload;
    };
    p.resource = Some(offers.resource.clone());
    let ours =
        x402_core::extension::read_extensions(offers.extensions.as_deref()).unwrap_or_default();
    let mut all =
        x402_core::extension::read_extensions(p.extensions.as_deref()).unwrap_or_default();
    let had = p.extensions.is_some();
    match ours.get(BAZAAR) {
        Some(declaration) => all.set(BAZAAR, declaration.to_owned()),
        None => {
            all.remove(BAZAAR);
        }
    }
    p.extensions = (had || !all.is_empty()).then(|| all.to_raw());
    x402_core::wire::PaymentPayload::V2(p)
}

/// An axum route (`/users/{id}`) as a route template (`/users/:id`); `None` for a wildcard or a
/// route without parameters.
fn template_of(route: &str) -> Option<String> {
    if route.contains("{*") || !route.contains('{') {
        return None;
    }
    let converted: Vec<String> = route
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => format!(":{name}"),
                None => segment.to_owned(),
            },
        )
        .collect();
    Some(converted.join("/"))
}

/// The route's `extensions` for this request, `None` when it declares none.
pub(crate) fn declare(
    route: &Route,
    parts: &Parts,
    accepts: &[x402_core::wire::PaymentRequirementsV2],
) -> Option<Raw> {
    if route.extensions.is_empty() {
        return None;
    }
    let template = parts
        .extensions
        .get::<MatchedPath>()
        .and_then(|m| template_of(m.as_str()));
    let request = RequestInfo {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        route_template: template.as_deref(),
        accepts,
    };
    let mut all = JsonObject::new();
    for e in &route.extensions {
        if let Some(declaration) = e.declare(&request) {
            all.set(e.key(), declaration);
        }
    }
    (!all.is_empty()).then(|| all.to_raw())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parts(method: &str, path: &str) -> Parts {
        axum::http::Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn the_seller_vouches_for_the_resource_and_its_declaration() {
        use x402_core::wire::{PaymentPayload, ResourceInfo};
        let route = Route::new().extension(Bazaar::query());
        let offers = crate::offers::Offers {
            v2: Vec::new(),
            v2_from: Vec::new(),
            v1: Vec::new(),
            v1_from: Vec::new(),
            resource: ResourceInfo::new("https://shop.example/a"),
            extensions: declare(&route, &parts("GET", "/a"), &[]),
        };
        let forged = json!({"x402Version": 2,
            "resource": {"url": "https://evil.example/"},
            "accepted": {"scheme": "exact", "network": "eip155:1", "amount": "1", "asset": "0xa",
                         "payTo": "0xb", "maxTimeoutSeconds": 60},
            "payload": {},
            "extensions": {"bazaar": {"info": {"input": {"type": "mcp"}}, "schema": {}},
                           "other": {"info": {"id": 1}, "schema": {}}}});
        let payload: PaymentPayload =
            PaymentPayload::from_json(forged.to_string().as_bytes(), Default::default()).unwrap();
        let PaymentPayload::V2(p) = vouch(payload, &offers) else {
            panic!("v2")
        };
        assert_eq!(p.resource.unwrap().url, "https://shop.example/a");
        let ext: serde_json::Value = serde_json::from_str(p.extensions.unwrap().get()).unwrap();
        assert_eq!(ext["bazaar"]["info"]["input"]["type"], "http");
        assert_eq!(ext["bazaar"]["info"]["input"]["method"], "GET");
        assert_eq!(
            ext["other"]["info"]["id"], 1,
            "the buyer's other extensions are kept"
        );
    }

    #[test]
    fn templates_come_from_axum_routes() {
        assert_eq!(template_of("/users/{id}").as_deref(), Some("/users/:id"));
        assert_eq!(template_of("/a/{x}/b/{y}").as_deref(), Some("/a/:x/b/:y"));
        assert_eq!(template_of("/files/{*rest}"), None);
        assert_eq!(template_of("/plain"), None);
    }

    #[test]
    fn declarations_are_enriched_per_request() {
        let route = Route::new().extension(Bazaar::query().route_template("/users/:id"));
        check(&route).unwrap();
        let raw = declare(&route, &parts("GET", "/users/7?x=1"), &[]).unwrap();
        let all: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
        let b = &all["bazaar"];
        assert_eq!(b["info"]["input"]["method"], "GET");
        assert_eq!(b["info"]["input"]["pathParams"], json!({"id": "7"}));
        assert_eq!(b["routeTemplate"], "/users/:id");
        let declaration: Declaration = serde_json::from_str(&b.to_string()).unwrap();
        assert_eq!(bazaar::check(&declaration), Ok(()));
        // A method that does not fit a query input leaves the declaration out.
        assert!(declare(&route, &parts("POST", "/users/7"), &[]).is_none());
    }

    #[test]
    fn bad_declarations_fail_the_paywall_build() {
        for route in [
            Route::new().extension(Bazaar::query().method("POST")),
            Route::new().extension(Bazaar::query().route_template("/../etc")),
            Route::new().extension(RawExtension::new("x", json!({"info": {}}))),
            Route::new().extension(RawExtension::new("", json!({"info": {}, "schema": {}}))),
        ] {
            let error = check(&route).unwrap_err();
            assert!(matches!(error, ConfigError::Extension { .. }), "{error}");
        }
        // The same key twice: the later one is declared.
        let route = Route::new()
            .extension(RawExtension::new(
                "x",
                json!({"info": {"a": 1}, "schema": {}}),
            ))
            .extension(RawExtension::new(
                "x",
                json!({"info": {"a": 2}, "schema": {}}),
            ));
        let raw = declare(&route, &parts("GET", "/"), &[]).unwrap();
        assert_eq!(raw.get(), r#"{"x":{"info":{"a":2},"schema":{}}}"#);
    }
}

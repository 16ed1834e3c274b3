//! The origin manifest: `GET /.well-known/x402` (and `/.well-known/x402.json`, the name the
//! upstream draft uses) lists the seller's paid routes and what they ask for, built from the same
//! route configuration as the live 402s.
//!
//! A route is listed when it is added with [`Seller::route`] (method, path, handler and
//! [`Route`] given once, used both for routing and for the manifest); the manifest itself is
//! served by the router [`Seller::manifest_router`] returns. The document follows the upstream
//! draft (x402-foundation/x402 PR #2646, `specs/extensions/well-known-discovery.md`):
//!
//! ```json
//! {"x402Version":2,"lastUpdated":1781555511,"items":[
//!   {"resource":{"url":"https://api.example/weather/:city","description":"…","mimeType":"application/json"},
//!    "type":"http","accepts":[{…}],
//!    "input":{"method":"GET","routeTemplate":"/weather/:city"},
//!    "output":{…},"requires":["payment-identifier"]}]}
//! ```
//!
//! `accepts` are the requirements a request to the route would get (a dynamic price or
//! recipient is computed from a request for the route template itself; a route whose functions
//! refuse it is left out); the live 402 is authoritative. `input` is the method and route
//! template, with the bazaar declaration's input members lifted in when the route declares one;
//! `output` is the bazaar's `info.output`; `requires` names the route's other extensions
//! (`payment-identifier` only when it is required). `lastUpdated` is when the last route was
//! added (Unix seconds). Anyone may read it (`Access-Control-Allow-Origin: *`).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use axum::routing::{MethodFilter, get, on};
use x402_core::extension::JsonObject;
use x402_core::extension::bazaar::BAZAAR;
use x402_core::extension::payment_id::{self, PAYMENT_IDENTIFIER};

use crate::config::{ConfigError, Route, Seller, SellerInner};
use crate::offers::{self, OfferError};
use crate::response;

/// Where the manifest is served.
pub const MANIFEST_PATH: &str = "/.well-known/x402";

/// The upstream draft's name for the manifest, served too.
pub const MANIFEST_PATH_JSON: &str = "/.well-known/x402.json";

/// A route listed in the manifest.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    method: Method,
    /// The route template (`/users/:id`).
    template: String,
    route: Arc<Route>,
    added: u64,
}

/// An axum path (`/users/{id}`) as a route template (`/users/:id`).
fn template(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            match segment
                .strip_prefix("{*")
                .or_else(|| segment.strip_prefix('{'))
                .and_then(|s| s.strip_suffix('}'))
            {
                Some(name) => format!(":{name}"),
                None => segment.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Seller {
    /// Adds `handler` for `method` requests to `path` on `router`, behind a paywall for `route`
    /// (as [`Seller::paywall`] builds it), and lists it in the origin manifest.
    pub fn route<S, H, T>(
        &self,
        router: Router<S>,
        method: Method,
        path: &str,
        handler: H,
        route: Route,
    ) -> Result<Router<S>, ConfigError>
    where
        H: Handler<T, S>,
        T: 'static,
        S: Clone + Send + Sync + 'static,
    {
        let filter = MethodFilter::try_from(method.clone())
            .map_err(|_| ConfigError::Method(method.to_string()))?;
        let paywall = self.paywall(route)?;
        self.inner
            .manifest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Listed {
                method,
                template: template(path),
                route: paywall.route(),
                added: now_seconds(),
            });
        Ok(router.route(path, on(filter, handler).layer(paywall)))
    }

    /// A router serving the manifest at [`MANIFEST_PATH`] and [`MANIFEST_PATH_JSON`] (merge it
    /// into the application's router, after the routes are added).
    pub fn manifest_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let seller = self.inner.clone();
        let serve = move |request: Request<Body>| {
            let seller = seller.clone();
            async move { serve(&seller, request.into_parts().0).await }
        };
        Router::new()
            .route(MANIFEST_PATH, get(serve.clone()))
            .route(MANIFEST_PATH_JSON, get(serve))
    }
}

/// The manifest for the request `parts` asked it with (its `Host` names the origin).
async fn serve(seller: &SellerInner, parts: Parts) -> Response<Body> {
    let listed = seller
        .manifest
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mut items = Vec::new();
    for l in &listed {
        match item(seller, l, &parts).await {
            Ok(Some(i)) => items.push(i),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "the origin manifest cannot be built");
                return response::error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
            }
        }
    }
    let document = JsonObject::new()
        .with("x402Version", &2)
        .with(
            "lastUpdated",
            &listed.iter().map(|l| l.added).max().unwrap_or_default(),
        )
        .with("items", &items);
    let mut response = Response::new(Body::from(document.to_json()));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}

/// One route's item; `None` when it offers nothing for its template (a refusing price or
/// recipient function); `Err` when the facilitator cannot be reached.
async fn item(
    seller: &SellerInner,
    listed: &Listed,
    asked: &Parts,
) -> Result<Option<JsonObject>, OfferError> {
    let mut request = Request::builder()
        .method(listed.method.clone())
        .uri(listed.template.as_str());
    if let Some(host) = asked.headers.get(header::HOST) {
        request = request.header(header::HOST, host);
    }
    let Ok(request) = request.body(()) else {
        return Ok(None);
    };
    let parts = request.into_parts().0;
    let offers = match offers::build(seller, &listed.route, &parts).await {
        Ok(o) => o,
        Err(e @ OfferError::Facilitator(_)) => return Err(e),
        Err(e) => {
            tracing::debug!(error = %e, route = %listed.template, "not listed in the manifest");
            return Ok(None);
        }
    };
    let extensions =
        x402_core::extension::read_extensions(offers.extensions.as_deref()).unwrap_or_default();
    let bazaar_info = extensions
        .object(BAZAAR)
        .and_then(|b| b.object("info"))
        .unwrap_or_default();
    let lifted = bazaar_info.object("input").unwrap_or_default();
    let kind = lifted.string("type").unwrap_or_else(|| "http".to_owned());
    let mut input = JsonObject::new()
        .with("method", listed.method.as_str())
        .with("routeTemplate", listed.template.as_str());
    for (k, v) in lifted.iter() {
        if !matches!(k, "type" | "method") {
            input.set(k, v.to_owned());
        }
    }
    let requires: Vec<&str> = extensions
        .iter()
        .filter(|(k, v)| *k != BAZAAR && (*k != PAYMENT_IDENTIFIER || payment_id::is_required(v)))
        .map(|(k, _)| k)
        .collect();
    let mut item = JsonObject::new()
        .with("resource", &offers.resource)
        .with("type", kind.as_str())
        .with("accepts", &offers.v2)
        .with("input", &input);
    if let Some(output) = bazaar_info.get("output") {
        item.set("output", output.to_owned());
    }
    if !requires.is_empty() {
        item.set_value("requires", &requires);
    }
    Ok(Some(item))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axum_paths_become_templates() {
        assert_eq!(template("/users/{id}"), "/users/:id");
        assert_eq!(template("/files/{*rest}"), "/files/:rest");
        assert_eq!(template("/plain"), "/plain");
    }
}

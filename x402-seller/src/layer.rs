//! The tower `Layer` and `Service`.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{Request, Response};
use futures::future::BoxFuture;
use tower::{Layer, Service};

use crate::config::{Route, SellerInner};

/// The layer protecting one route (built by [`crate::Seller::paywall`]).
#[derive(Clone)]
pub struct Paywall {
    seller: Arc<SellerInner>,
    route: Arc<Route>,
}

impl fmt::Debug for Paywall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Paywall")
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl Paywall {
    pub(crate) fn new(seller: Arc<SellerInner>, route: Arc<Route>) -> Self {
        Self { seller, route }
    }

    /// The route this paywall protects.
    pub(crate) fn route(&self) -> Arc<Route> {
        self.route.clone()
    }
}

impl<S> Layer<S> for Paywall {
    type Service = PaywallService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PaywallService {
            inner,
            paywall: self.clone(),
        }
    }
}

/// A service behind a [`Paywall`].
#[derive(Clone)]
pub struct PaywallService<S> {
    inner: S,
    paywall: Paywall,
}

impl<S> fmt::Debug for PaywallService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaywallService")
            .field("paywall", &self.paywall)
            .finish_non_exhaustive()
    }
}

impl<S> Service<Request<Body>> for PaywallService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The inner service is driven to readiness when (and only if) it is called.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let paywall = self.paywall.clone();
        Box::pin(async move {
            crate::payment_id::handle(
                paywall.seller.clone(),
                paywall.route.clone(),
                inner,
                request,
            )
            .await
        })
    }
}

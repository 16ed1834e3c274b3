//! The buyer as [`reqwest_middleware`] middleware: a `ClientWithMiddleware` built with
//! [`PayingMiddleware`] pays a 402 by the buyer's policy and retries once, like
//! [`crate::Buyer::execute`]. The payment made (with the seller's settlement) is attached to the
//! final response as a [`Payment`] extension. Only a 402 is paid: any other answer to the paid
//! retry — a seller's 504 whose settlement is still pending ([`Payment::is_pending`]) among them —
//! is returned as it is, and nothing is paid again.
//!
//! ```ignore
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(PayingMiddleware::new(Arc::new(buyer)))
//!     .build();
//! let response = client.get(url).send().await?;
//! let payment = response.extensions().get::<x402_buyer::Payment>();
//! ```

use std::sync::Arc;

use reqwest_middleware::{Error, Middleware, Next, Result};
use x402_core::header::{PAYMENT_SIGNATURE, X_PAYMENT};

use crate::{Buyer, Payment, read_402, settlement_of};

/// Pays 402s with a [`Buyer`]'s schemes and policy.
#[derive(Debug, Clone)]
pub struct PayingMiddleware {
    buyer: Arc<Buyer>,
}

impl PayingMiddleware {
    /// Middleware paying with `buyer` (its budget is shared by every client using it).
    pub fn new(buyer: Arc<Buyer>) -> Self {
        Self { buyer }
    }
}

#[async_trait::async_trait]
impl Middleware for PayingMiddleware {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> Result<reqwest::Response> {
        // A request that already carries a payment is never paid again.
        let carries_payment = request.headers().contains_key(PAYMENT_SIGNATURE)
            || request.headers().contains_key(X_PAYMENT);
        let retry = request.try_clone();
        let (method, url) = (request.method().clone(), request.url().clone());
        let response = next.clone().run(request, extensions).await?;
        if response.status().as_u16() != 402 || carries_payment {
            return Ok(response);
        }
        let mut retry = retry.ok_or_else(|| Error::middleware(crate::Error::NotReplayable))?;
        let required = read_402(response).await.map_err(Error::middleware)?;
        let header = (self.buyer)
            .on_required(&method, &url, &required)
            .await
            .map_err(Error::middleware)?;
        if let Some((name, value)) = header {
            // A hook's unpaid retry (sign-in-with-x); a 402 to it goes on to pay.
            let mut unpaid = retry
                .try_clone()
                .ok_or_else(|| Error::middleware(crate::Error::NotReplayable))?;
            unpaid.headers_mut().insert(name, value);
            let response = next.clone().run(unpaid, extensions).await?;
            if response.status().as_u16() != 402 {
                return Ok(response);
            }
        }
        let prepared = self
            .buyer
            .pay(&method, &url, &required)
            .await
            .map_err(Error::middleware)?;
        let (name, value) = prepared.header.clone();
        retry.headers_mut().insert(name, value);
        let mut response = next.run(retry, extensions).await?;
        let settlement = settlement_of(response.headers());
        self.buyer
            .record_settlement(&prepared.id, settlement.as_ref())
            .await;
        response.extensions_mut().insert(Payment {
            version: prepared.version,
            requirements: prepared.requirements,
            settlement,
            id: prepared.id,
            payment_id: prepared.payment_id,
        });
        Ok(response)
    }
}

//! The client side: [`PayingClient`] calls a tool through an rmcp client and, when the tool asks
//! for a payment, pays once with an x402-buyer [`Buyer`] — within its policy, budgets, rate limit
//! and hooks, recorded in its ledger — and calls again with the payment in
//! `_meta["x402/payment"]`.

use std::sync::Arc;

use rmcp::model::{CallToolRequestParams, CallToolResult, RequestMetaObject};
use rmcp::service::{Peer, RoleClient, ServiceError};
use x402_buyer::{Buyer, Payment};
use x402_core::wire::{PaymentRequired, SettleResponse};

use crate::meta::{PAYMENT_META_KEY, payment_required_of, settlement_of};

/// Why a paid tool call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The MCP call itself failed (transport, protocol error).
    #[error("the MCP call failed: {0}")]
    Mcp(#[from] ServiceError),
    /// The buyer would not or could not pay (policy, budget, hook, signer, ledger).
    #[error(transparent)]
    Buyer(#[from] x402_buyer::Error),
    /// The payment document could not be put in the request's `_meta`.
    #[error("the payment cannot be sent: {0}")]
    Encode(String),
    /// The server refused the payment: it answered the paid call with a payment request again
    /// (its `error` the reason), or reported a failed settlement.
    #[error("the server refused the payment: {}", .error.as_deref().unwrap_or("no reason given"))]
    Refused {
        /// The server's reason.
        error: Option<String>,
        /// The settlement the server reported, if any.
        settlement: Option<Box<SettleResponse>>,
    },
}

/// A tool's result, and the payment made to obtain it (if one was asked).
#[derive(Debug, Clone)]
pub struct PaidCall {
    /// The tool's final result (after the paid retry, when one was needed).
    pub result: CallToolResult,
    /// The payment, when the first answer asked for one; its `settlement` is the server's
    /// `_meta["x402/payment-response"]`.
    pub payment: Option<Payment>,
}

impl PaidCall {
    /// The settlement the server reported, if a payment was made and the server reported one.
    pub fn settlement(&self) -> Option<&SettleResponse> {
        self.payment.as_ref()?.settlement.as_ref()
    }
}

/// Calls MCP tools and pays those that ask, with a [`Buyer`].
#[derive(Debug, Clone)]
pub struct PayingClient {
    buyer: Arc<Buyer>,
    server: Option<reqwest::Url>,
}

impl PayingClient {
    /// Pays with `buyer`.
    pub fn new(buyer: Arc<Buyer>) -> Self {
        Self {
            buyer,
            server: None,
        }
    }

    /// Names the MCP server (its streamable HTTP endpoint, say) as the URL the buyer's hooks,
    /// rate limit and ledger see for every tool of it. Without it they see the payment request's
    /// resource URL (`mcp://tool/<name>`), or `mcp://tool/<name>` when that does not parse.
    pub fn for_server(mut self, url: reqwest::Url) -> Self {
        self.server = Some(url);
        self
    }

    /// The buyer.
    pub fn buyer(&self) -> &Arc<Buyer> {
        &self.buyer
    }

    fn resource(
        &self,
        params: &CallToolRequestParams,
        required: &PaymentRequired,
    ) -> Result<reqwest::Url, Error> {
        if let Some(url) = &self.server {
            return Ok(url.clone());
        }
        let named = match required {
            PaymentRequired::V2(d) => reqwest::Url::parse(&d.resource.url).ok(),
            PaymentRequired::V1(_) => None,
        };
        match named {
            Some(url) => Ok(url),
            None => reqwest::Url::parse(&format!("mcp://tool/{}", params.name))
                .map_err(|e| Error::Encode(format!("the tool name is not usable in a URL: {e}"))),
        }
    }

    /// Calls the tool `params` names through `peer`. When the result is a payment request (and
    /// the call does not carry a payment already), pays one of its options by the buyer's
    /// policy and calls once more with the payment; that answer is final: a payment request
    /// again, or a failed settlement, is [`Error::Refused`]. Any other result (an unpaid tool,
    /// an ordinary tool error) is returned as it is, with no payment.
    pub async fn call_tool(
        &self,
        peer: &Peer<RoleClient>,
        params: CallToolRequestParams,
    ) -> Result<PaidCall, Error> {
        let carries_payment = params
            .meta
            .as_ref()
            .is_some_and(|m| m.contains_key(PAYMENT_META_KEY));
        let first = peer.call_tool(params.clone()).await?;
        let required = match payment_required_of(&first) {
            Some(r) if !carries_payment => r,
            _ => {
                return Ok(PaidCall {
                    result: first,
                    payment: None,
                });
            }
        };
        let resource = self.resource(&params, &required)?;
        let signed = self.buyer.sign_required(&resource, &required).await?;
        let payload =
            serde_json::to_value(&signed.payload).map_err(|e| Error::Encode(e.to_string()))?;
        let mut retry = params;
        retry
            .meta
            .get_or_insert_with(RequestMetaObject::new)
            .insert(PAYMENT_META_KEY.to_owned(), payload);
        let result = peer.call_tool(retry).await?;
        let settlement = settlement_of(&result);
        self.buyer
            .note_settlement(&signed.id, settlement.as_ref())
            .await;
        let failed_settlement = settlement
            .as_ref()
            .filter(|s| !s.success && !x402_buyer::settlement_pending(s));
        if let Some(again) = payment_required_of(&result) {
            let document = match again {
                PaymentRequired::V1(d) => d.error,
                PaymentRequired::V2(d) => d.error,
            };
            let error = match failed_settlement {
                Some(s) => Some(format!(
                    "settlement failed: {}",
                    s.error_reason
                        .as_ref()
                        .map(|r| r.as_str().to_owned())
                        .or(document)
                        .unwrap_or_else(|| "no reason given".to_owned())
                )),
                None => document,
            };
            return Err(Error::Refused {
                error,
                settlement: settlement.map(Box::new),
            });
        }
        Ok(PaidCall {
            result,
            payment: Some(Payment {
                version: signed.version,
                requirements: signed.requirements,
                settlement,
                id: signed.id,
                payment_id: signed.payment_id,
            }),
        })
    }
}

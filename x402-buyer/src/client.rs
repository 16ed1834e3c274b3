//! The paying client: send, and on a 402 pay once by policy and retry once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use x402_core::header::{
    self as codec, MAX_RESPONSE_HEADER_LEN, PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE,
    X_PAYMENT, X_PAYMENT_RESPONSE,
};
use x402_core::json::JsonLimits;
use x402_core::wire::{
    PaymentPayload, PaymentPayloadV1, PaymentPayloadV2, PaymentRequired, PaymentRequirements,
    SettleResponse,
};
use x402_core::{Amount, Reason, Registry, Scheme, SchemeError, X402Version};

use crate::policy::{Policy, format_units, ledger_key};

/// Why a request could not be completed (or paid).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP request failed.
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The request's body cannot be sent twice, so it cannot be retried with a payment.
    #[error("the request body is a stream and cannot be sent again with a payment")]
    NotReplayable,
    /// The 402 does not carry a readable x402 document.
    #[error("the server answered 402 without a readable x402 payment request: {0}")]
    Unreadable402(String),
    /// No requirement passes the policy and has a registered scheme.
    #[error("no acceptable payment option: {}", .0.join("; "))]
    NoAcceptableOption(Vec<String>),
    /// The scheme could not sign (requirements it cannot check, signer failure).
    #[error("cannot sign the payment: {0}")]
    Sign(#[from] SchemeError),
    /// The seller refused the payment after the retry: `error` is the 402 document's reason, or
    /// `settlement failed: <reason>` when the seller reported a failed settlement.
    #[error("the seller refused the payment (HTTP {status}): {}", .error.as_deref().unwrap_or("no reason given"))]
    Refused {
        /// The HTTP status of the retry.
        status: u16,
        /// The seller's error text.
        error: Option<String>,
        /// The failed settlement, when the seller reported one.
        settlement: Option<Box<SettleResponse>>,
    },
}

/// A payment this client made for a request.
#[derive(Debug, Clone)]
pub struct Payment {
    /// The protocol version used.
    pub version: X402Version,
    /// The requirement paid (as the seller sent it).
    pub requirements: PaymentRequirements,
    /// The settlement the seller reported (`PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE`).
    pub settlement: Option<SettleResponse>,
}

impl Payment {
    /// Whether the seller reported this payment's settlement as still pending (see
    /// [`settlement_pending`]): it was sent and may still land, so the request must not be paid
    /// again before its transaction is decided.
    pub fn is_pending(&self) -> bool {
        self.settlement.as_ref().is_some_and(settlement_pending)
    }
}

/// Whether `settlement` says the payment was sent but not yet decided: `success: false`,
/// `settlement_pending`, and the transaction to follow.
pub fn settlement_pending(settlement: &SettleResponse) -> bool {
    !settlement.success
        && settlement.error_reason == Some(Reason::SETTLEMENT_PENDING)
        && !settlement.transaction.is_empty()
}

/// A response, and the payment made to obtain it (if one was needed).
#[derive(Debug)]
pub struct Paid {
    /// The final response.
    pub response: reqwest::Response,
    /// The payment, when the first answer was a 402.
    pub payment: Option<Payment>,
}

/// A client that pays x402 resources by policy.
#[derive(Debug)]
pub struct Buyer {
    http: reqwest::Client,
    schemes: Registry,
    policy: Policy,
    /// Authorized so far, per asset: every signed payment counts, settled or not (a signed
    /// authorization may still be settled later).
    spent: Mutex<HashMap<String, Amount>>,
}

impl Buyer {
    /// A buyer paying with the buyer roles registered in `schemes` (e.g. `use scheme_exact_evm as
    /// exact;` then `register(exact::ANY_NETWORK, exact::VERSIONS, exact::Buyer::new(signer).into_scheme())`).
    pub fn new(http: reqwest::Client, schemes: Registry, policy: Policy) -> Self {
        Self {
            http,
            schemes,
            policy,
            spent: Mutex::new(HashMap::new()),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// What has been authorized so far on `network` in `asset` (atomic units).
    pub fn spent(&self, network: &x402_core::Network, asset: &str) -> Amount {
        self.ledger()
            .get(&ledger_key(network, asset))
            .copied()
            .unwrap_or_default()
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, HashMap<String, Amount>> {
        self.spent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `GET url`, paying if asked.
    pub async fn get(&self, url: &str) -> Result<Paid, Error> {
        self.execute(self.http.get(url).build()?).await
    }

    /// What `url` asks for: `None` when it answers without a 402.
    pub async fn requirements(&self, url: &str) -> Result<Option<PaymentRequired>, Error> {
        let response = self.http.get(url).send().await?;
        if response.status().as_u16() != 402 {
            return Ok(None);
        }
        read_402(response).await.map(Some)
    }

    /// Sends `request`; on a 402 pays one requirement chosen by policy and sends it once more.
    /// A request that already carries a payment header is sent as it is and never paid again.
    ///
    /// Only a 402 to the unpaid request is paid. The paid retry's answer is final: a 402 or 412
    /// is [`Error::Refused`]; any other is returned untouched with the [`Payment`] — among them a
    /// seller's error status (x402-seller answers 504) whose settlement is still pending
    /// ([`Payment::is_pending`]): the payment was sent, and it is not paid again.
    pub async fn execute(&self, request: reqwest::Request) -> Result<Paid, Error> {
        let carries_payment = request.headers().contains_key(PAYMENT_SIGNATURE)
            || request.headers().contains_key(X_PAYMENT);
        let retry = request.try_clone();
        let response = self.http.execute(request).await?;
        if response.status().as_u16() != 402 || carries_payment {
            return Ok(Paid {
                response,
                payment: None,
            });
        }
        let mut retry = retry.ok_or(Error::NotReplayable)?;
        let required = read_402(response).await?;
        let (version, requirements, header) = self.pay(&required).await?;
        let (name, value) = header;
        retry.headers_mut().insert(name, value);
        let response = self.http.execute(retry).await?;
        let settlement = settlement_of(response.headers());
        let status = response.status().as_u16();
        if status == 402 || status == 412 {
            // A failed settlement is reported in the settlement header (the reference's 402
            // after a failed settle carries no PAYMENT-REQUIRED, its body is `{}`); a refusal
            // before settling in the 402 document's `error` (the bare reason code).
            let document = read_402(response).await.ok().and_then(|r| match r {
                PaymentRequired::V1(d) => d.error,
                PaymentRequired::V2(d) => d.error,
            });
            let error = match &settlement {
                Some(s) if !s.success => Some(format!(
                    "settlement failed: {}",
                    s.error_reason
                        .as_ref()
                        .map(|r| r.as_str().to_owned())
                        .or(document)
                        .unwrap_or_else(|| "no reason given".to_owned())
                )),
                _ => document,
            };
            return Err(Error::Refused {
                status,
                error,
                settlement: settlement.map(Box::new),
            });
        }
        Ok(Paid {
            response,
            payment: Some(Payment {
                version,
                requirements,
                settlement,
            }),
        })
    }

    /// Chooses, reserves budget for, and signs one requirement.
    pub(crate) async fn pay(
        &self,
        required: &PaymentRequired,
    ) -> Result<(X402Version, PaymentRequirements, (HeaderName, HeaderValue)), Error> {
        let options: Vec<PaymentRequirements> = match required {
            PaymentRequired::V1(d) => d
                .accepts
                .iter()
                .cloned()
                .map(PaymentRequirements::V1)
                .collect(),
            PaymentRequired::V2(d) => d
                .accepts
                .iter()
                .cloned()
                .map(PaymentRequirements::V2)
                .collect(),
        };
        let (chosen, scheme, key, amount) = self.choose(&options)?;
        let view = chosen
            .view()
            .map_err(|r| Error::Unreadable402(r.to_string()))?;
        let signed = scheme.sign(&view).await;
        let payload = match signed {
            Ok(p) => p,
            Err(e) => {
                // Nothing left the process: give the budget back.
                if let Some(used) = self.ledger().get_mut(&key) {
                    *used = Amount::new(used.get().saturating_sub(amount.get()));
                }
                return Err(Error::Sign(e));
            }
        };
        let (version, name, document) = match (required, &chosen) {
            (PaymentRequired::V2(d), PaymentRequirements::V2(r)) => (
                X402Version::V2,
                PAYMENT_SIGNATURE,
                PaymentPayload::V2(PaymentPayloadV2 {
                    x402_version: X402Version::V2,
                    resource: Some(d.resource.clone()),
                    accepted: r.clone(),
                    payload,
                    extensions: d.extensions.clone(),
                }),
            ),
            (_, r) => (
                X402Version::V1,
                X_PAYMENT,
                PaymentPayload::V1(PaymentPayloadV1 {
                    x402_version: X402Version::V1,
                    scheme: r.scheme().to_owned(),
                    network: r.network_text().to_owned(),
                    payload,
                }),
            ),
        };
        let value = codec::encode(&document).map_err(|e| Error::Sign(SchemeError::other(e)))?;
        let value = HeaderValue::try_from(value).map_err(|e| Error::Sign(SchemeError::other(e)))?;
        let name = HeaderName::try_from(name).map_err(|e| Error::Sign(SchemeError::other(e)))?;
        tracing::info!(scheme = chosen.scheme(), network = chosen.network_text(), %amount, "paying");
        Ok((version, chosen, (name, value)))
    }

    /// The best acceptable requirement, its scheme, and the budget reserved for it.
    #[allow(clippy::type_complexity)]
    fn choose(
        &self,
        options: &[PaymentRequirements],
    ) -> Result<(PaymentRequirements, Arc<dyn Scheme>, String, Amount), Error> {
        let mut ledger = self.ledger();
        let mut refusals = Vec::new();
        let mut best: Option<((usize, usize), usize, Arc<dyn Scheme>)> = None;
        for (i, option) in options.iter().enumerate() {
            let label = format!(
                "option {} ({} on {})",
                i + 1,
                option.scheme(),
                option.network_text()
            );
            let view = match option.view() {
                Ok(v) => v,
                Err(r) => {
                    refusals.push(format!("{label}: {r}"));
                    continue;
                }
            };
            let Ok(scheme) = self
                .schemes
                .lookup(view.version, view.scheme, &view.network)
            else {
                refusals.push(format!("{label}: no scheme is registered to pay it"));
                continue;
            };
            if let Some(why) = self.policy.refusal(&view, &ledger) {
                refusals.push(format!("{label}: {why}"));
                continue;
            }
            let rank = self.policy.rank(&view);
            if best.as_ref().is_none_or(|(r, _, _)| rank < *r) {
                best = Some((rank, i, scheme.clone()));
            }
        }
        let Some((_, index, scheme)) = best else {
            return Err(Error::NoAcceptableOption(refusals));
        };
        let chosen = options[index].clone();
        let view = chosen
            .view()
            .map_err(|r| Error::Unreadable402(r.to_string()))?;
        let key = ledger_key(&view.network, view.asset);
        let used = ledger.entry(key.clone()).or_default();
        *used = Amount::new(used.get().saturating_add(view.amount.get()));
        let amount = view.amount;
        drop(ledger);
        Ok((chosen, scheme, key, amount))
    }

    /// `amount` of `asset` on `network` for display (`0.01 USDC`), if the asset is known.
    pub fn display(&self, r: &PaymentRequirements) -> String {
        match r.view() {
            Ok(v) => match self.policy.asset(&v.network, v.asset) {
                Some(a) => format!("{} {}", format_units(v.amount, a.decimals), a.symbol),
                None => format!("{} atomic units of {}", v.amount, v.asset),
            },
            Err(_) => "an unreadable amount".to_owned(),
        }
    }
}

/// The settlement header of a response (`PAYMENT-RESPONSE`, then `X-PAYMENT-RESPONSE`).
pub fn settlement_of(headers: &HeaderMap) -> Option<SettleResponse> {
    let value = headers
        .get(PAYMENT_RESPONSE)
        .or_else(|| headers.get(X_PAYMENT_RESPONSE))?;
    let text = value.to_str().ok()?;
    codec::decode(text, MAX_RESPONSE_HEADER_LEN).ok()
}

/// Reads a 402: the `PAYMENT-REQUIRED` header (v2), else the JSON body (v1).
pub async fn read_402(mut response: reqwest::Response) -> Result<PaymentRequired, Error> {
    let limits = JsonLimits {
        max_bytes: MAX_RESPONSE_HEADER_LEN,
        ..JsonLimits::DEFAULT
    };
    if let Some(value) = response.headers().get(PAYMENT_REQUIRED) {
        let text = value
            .to_str()
            .map_err(|_| Error::Unreadable402("PAYMENT-REQUIRED is not ASCII".into()))?;
        let bytes = codec::decode_json(text, MAX_RESPONSE_HEADER_LEN)
            .map_err(|e| Error::Unreadable402(format!("PAYMENT-REQUIRED: {e}")))?;
        return match PaymentRequired::from_json(&bytes, limits) {
            Ok(doc @ PaymentRequired::V2(_)) => Ok(doc),
            Ok(PaymentRequired::V1(_)) => Err(Error::Unreadable402(
                "PAYMENT-REQUIRED carries an x402 v1 document".into(),
            )),
            Err(e) => Err(Error::Unreadable402(format!("PAYMENT-REQUIRED: {e}"))),
        };
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_RESPONSE_HEADER_LEN {
            return Err(Error::Unreadable402("the 402 body is too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    PaymentRequired::from_json(&body, limits).map_err(|e| Error::Unreadable402(e.to_string()))
}

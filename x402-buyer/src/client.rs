//! The paying client: send, and on a 402 pay once by policy and retry once (the payment itself
//! is prepared in [`crate::pay`]).

use std::sync::{Arc, Mutex};

use reqwest::header::HeaderMap;
use x402_core::header::{
    self as codec, MAX_RESPONSE_HEADER_LEN, PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE,
    X_PAYMENT, X_PAYMENT_RESPONSE,
};
use x402_core::json::JsonLimits;
use x402_core::wire::{PaymentRequired, PaymentRequirements, SettleResponse};
use x402_core::{Amount, Reason, Registry, SchemeError, SharedClock, X402Version, system_clock};

use crate::governance::Book;
use crate::hook::BuyerHook;
use crate::ledger::{Ledger, LedgerError};
use crate::pay::lock;
use crate::policy::{Policy, format_units, ledger_key};
use crate::select::{Candidate, Ranked, SelectFn, Selector};

/// Why a request could not be completed (or paid).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP request failed.
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// No answer came within the retry's timeout ([`crate::Retry::timeout`]).
    #[error("no answer: {0}")]
    Unanswered(String),
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
    /// A hook stopped the payment ([`crate::hook`]): nothing was signed or sent.
    #[error("hook {hook} stopped the payment ({step}): {reason}")]
    Aborted {
        /// The hook's name.
        hook: String,
        /// The step: `on_payment_required` or `before_payment`.
        step: &'static str,
        /// The hook's reason.
        reason: String,
    },
    /// A hook failed (returned `Err`, or panicked) where it could stop the payment: nothing
    /// was signed or sent.
    #[error("hook {hook} failed in {step}: {message}")]
    Hook {
        /// The hook's name.
        hook: String,
        /// The step: `on_payment_required` or `before_payment`.
        step: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The seller declared an extension the buyer cannot satisfy and marked it required
    /// ([`crate::extensions`]): nothing was chosen, reserved or signed.
    #[error("the seller requires the {key} extension, which this buyer cannot satisfy: {reason}")]
    Extension {
        /// The extension's key.
        key: String,
        /// Why the buyer cannot satisfy it.
        reason: String,
    },
    /// The ledger could not be written: the signed payment was dropped unsent.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
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
    /// Its id in the ledger ([`crate::ledger::PaymentRecord::id`]).
    pub id: String,
    /// The `payment-identifier` id sent with it, when the seller declared the extension.
    pub payment_id: Option<String>,
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
///
/// Configured with builders: [`Buyer::with_hook`], [`Buyer::with_selector`] (or
/// [`Buyer::select_with`]), [`Buyer::with_ledger`], [`Buyer::with_clock`]; the policy's own
/// builders set budgets, recipients, the rate limit and filters.
#[derive(Debug)]
pub struct Buyer {
    pub(crate) http: reqwest::Client,
    pub(crate) schemes: Registry,
    pub(crate) policy: Policy,
    /// The payments inside the budgets' windows (reserved or signed) and the lifetime totals:
    /// every signed payment counts, settled or not (a signed authorization may still be
    /// settled later by whoever holds it).
    pub(crate) book: Mutex<Book>,
    pub(crate) hooks: Vec<Arc<dyn BuyerHook>>,
    pub(crate) selector: Arc<dyn Selector>,
    pub(crate) ledger: Option<Arc<dyn Ledger>>,
    pub(crate) clock: SharedClock,
    /// Extensions the buyer understands ([`crate::extensions`]).
    pub(crate) extensions: Vec<Arc<dyn crate::extensions::BuyerExtension>>,
    /// Whether a declared `payment-identifier` is answered with an id.
    pub(crate) payment_ids: bool,
}

impl Buyer {
    /// A buyer paying with the buyer roles registered in `schemes` (e.g. `use scheme_exact_evm as
    /// exact;` then `register(exact::ANY_NETWORK, exact::VERSIONS, exact::Buyer::new(signer).into_scheme())`).
    pub fn new(http: reqwest::Client, schemes: Registry, policy: Policy) -> Self {
        Self {
            http,
            schemes,
            policy,
            book: Mutex::new(Book::default()),
            hooks: Vec::new(),
            selector: Arc::new(Ranked),
            ledger: None,
            clock: system_clock(),
            extensions: Vec::new(),
            payment_ids: true,
        }
    }

    /// Adds a lifecycle hook, run after those added before it (see [`crate::hook`] for the order
    /// and what a hook may do).
    pub fn with_hook(mut self, hook: Arc<dyn BuyerHook>) -> Self {
        self.hooks.push(hook);
        self
    }

    /// Chooses among the acceptable options with `selector` instead of taking the best ranked.
    pub fn with_selector(mut self, selector: impl Selector + 'static) -> Self {
        self.selector = Arc::new(selector);
        self
    }

    /// Chooses among the acceptable options with a closure: it gets them best first and answers
    /// the index of the one to pay, or `None` to pay none (see [`Selector`]).
    pub fn select_with(
        self,
        select: impl Fn(&[Candidate<'_>]) -> Option<usize> + Send + Sync + 'static,
    ) -> Self {
        self.with_selector(SelectFn(select))
    }

    /// Records every payment in `ledger` and counts the budgets and the rate limit from it: the
    /// payments it already holds that are inside their windows count from now on, so a new
    /// buyer on the same ledger keeps the limits of the one before. Reads the ledger (blocking);
    /// a ledger that cannot be read is an error, and no buyer is made from it.
    pub fn with_ledger(mut self, ledger: Arc<dyn Ledger>) -> Result<Self, LedgerError> {
        let records = ledger.records()?;
        let now = self.clock.now();
        let mut book = Book::from_records(&records);
        book.total = std::mem::take(&mut lock(&self.book).total);
        book.prune(now, self.policy.horizon());
        self.book = Mutex::new(book);
        self.ledger = Some(ledger);
        Ok(self)
    }

    /// [`Buyer::with_ledger`] with a [`JsonlLedger`](crate::JsonlLedger) at `path` (created,
    /// with its directory, when missing).
    pub fn with_ledger_file(self, path: impl AsRef<std::path::Path>) -> Result<Self, LedgerError> {
        let ledger = crate::JsonlLedger::open(path)?;
        self.with_ledger(Arc::new(ledger))
    }

    /// Reads "now" from `clock` (the budgets' and the rate limit's windows, the ledger's times).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The ledger, when the buyer keeps one.
    pub fn ledger(&self) -> Option<&Arc<dyn Ledger>> {
        self.ledger.as_ref()
    }

    /// What this buyer has authorized so far on `network` in `asset` (atomic units; every
    /// signed payment, settled or not).
    pub fn spent(&self, network: &x402_core::Network, asset: &str) -> Amount {
        lock(&self.book)
            .total
            .get(&ledger_key(network, asset))
            .copied()
            .unwrap_or_default()
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
    /// ([`Payment::is_pending`]): the payment was sent, and it is not paid again. A settlement
    /// the seller reports is added to the ledger.
    pub async fn execute(&self, request: reqwest::Request) -> Result<Paid, Error> {
        let carries_payment = request.headers().contains_key(PAYMENT_SIGNATURE)
            || request.headers().contains_key(X_PAYMENT);
        let retry = request.try_clone();
        let (method, url) = (request.method().clone(), request.url().clone());
        let response = self.http.execute(request).await?;
        if response.status().as_u16() != 402 || carries_payment {
            return Ok(Paid {
                response,
                payment: None,
            });
        }
        let mut retry = retry.ok_or(Error::NotReplayable)?;
        let required = read_402(response).await?;
        if let Some((name, value)) = self.on_required(&method, &url, &required).await? {
            // A hook's unpaid retry (sign-in-with-x); a 402 to it goes on to pay.
            let mut unpaid = retry.try_clone().ok_or(Error::NotReplayable)?;
            unpaid.headers_mut().insert(name, value);
            let response = self.http.execute(unpaid).await?;
            if response.status().as_u16() != 402 {
                return Ok(Paid {
                    response,
                    payment: None,
                });
            }
        }
        let prepared = self.pay(&method, &url, &required).await?;
        let (name, value) = prepared.header.clone();
        retry.headers_mut().insert(name, value);
        let response = self.http.execute(retry).await?;
        self.finish(prepared, response).await
    }

    /// The paid request's answer: its settlement recorded, a 402 or 412 made
    /// [`Error::Refused`].
    pub(crate) async fn finish(
        &self,
        prepared: crate::pay::Prepared,
        response: reqwest::Response,
    ) -> Result<Paid, Error> {
        let settlement = settlement_of(response.headers());
        self.record_settlement(&prepared.id, settlement.as_ref())
            .await;
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
                version: prepared.version,
                requirements: prepared.requirements,
                settlement,
                id: prepared.id,
                payment_id: prepared.payment_id,
            }),
        })
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

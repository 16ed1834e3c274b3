//! The paying client: send, and on a 402 pay once by policy and retry once.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt as _;

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
use x402_core::{
    Amount, Reason, Registry, Scheme, SchemeError, SharedClock, UnixTime, X402Version, system_clock,
};

use crate::governance::Book;
use crate::hook::{Before, BuyerHook, HookError, PaymentCall, RequiredCall, SignedCall};
use crate::ledger::{Ledger, LedgerError, PaymentRecord, Record, SettlementRecord};
use crate::policy::{KnownAsset, Policy, format_units, ledger_key};
use crate::select::{Candidate, Ranked, SelectFn, Selector};

/// Appends `record` on tokio's blocking pool (the store blocks: file I/O and `fsync`).
async fn append(ledger: &Arc<dyn Ledger>, record: Record) -> Result<(), LedgerError> {
    let ledger = ledger.clone();
    tokio::task::spawn_blocking(move || ledger.append(&record))
        .await
        .unwrap_or_else(|e| Err(LedgerError::Other(format!("the ledger write failed: {e}"))))
}

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

/// What [`Buyer::pay`] prepared: the signed payment and the header carrying it.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) version: X402Version,
    pub(crate) requirements: PaymentRequirements,
    pub(crate) header: (HeaderName, HeaderValue),
    /// The payment's ledger id.
    pub(crate) id: String,
}

/// A client that pays x402 resources by policy.
///
/// Configured with builders: [`Buyer::with_hook`], [`Buyer::with_selector`] (or
/// [`Buyer::select_with`]), [`Buyer::with_ledger`], [`Buyer::with_clock`]; the policy's own
/// builders set budgets, recipients, the rate limit and filters.
#[derive(Debug)]
pub struct Buyer {
    http: reqwest::Client,
    schemes: Registry,
    policy: Policy,
    /// The payments inside the budgets' windows (reserved or signed) and the lifetime totals:
    /// every signed payment counts, settled or not (a signed authorization may still be
    /// settled later by whoever holds it).
    book: Mutex<Book>,
    hooks: Vec<Arc<dyn BuyerHook>>,
    selector: Arc<dyn Selector>,
    ledger: Option<Arc<dyn Ledger>>,
    clock: SharedClock,
}

/// A reservation against the budgets: released when dropped uncommitted (the payment was never
/// signed, or never left the process).
struct Reservation<'a> {
    book: &'a Mutex<Book>,
    ticket: Option<u64>,
}

impl Reservation<'_> {
    fn commit(mut self) {
        if let Some(ticket) = self.ticket.take() {
            lock(self.book).commit(ticket);
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            lock(self.book).release(ticket);
        }
    }
}

fn lock(book: &Mutex<Book>) -> std::sync::MutexGuard<'_, Book> {
    book.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs a hook step that may stop the payment, containing a panic as [`Error::Hook`].
async fn decide(
    hook: &dyn BuyerHook,
    step: &'static str,
    future: impl std::future::Future<Output = Result<Before, HookError>>,
) -> Result<(), Error> {
    let failed = |message: String| Error::Hook {
        hook: hook.name().to_owned(),
        step,
        message,
    };
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(Ok(Before::Abort(reason))) => Err(Error::Aborted {
            hook: hook.name().to_owned(),
            step,
            reason,
        }),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(_) => Err(failed("panicked".to_owned())),
    }
}

/// A ledger id: the time, the process and a counter (unique within one ledger).
fn new_id(now: UnixTime) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{}-{nanos:09}-{}-{}",
        now.0,
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The payer a signed payload names, when it is an EVM authorization (`from`).
fn payer_of(payload: &serde_json::value::RawValue) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(payload.get()).ok()?;
    let from = v
        .get("authorization")
        .or_else(|| v.get("permit2Authorization"))?
        .get("from")?
        .as_str()?;
    Some(from.to_owned())
}

/// The options of a 402, in the seller's order.
fn options_of(required: &PaymentRequired) -> Vec<PaymentRequirements> {
    match required {
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
    }
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
        let prepared = self.pay(&method, &url, &required).await?;
        let (name, value) = prepared.header;
        retry.headers_mut().insert(name, value);
        let response = self.http.execute(retry).await?;
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
            }),
        })
    }

    /// Adds the seller's settlement of payment `id` to the ledger (a failure is logged: the
    /// payment itself is recorded already).
    pub(crate) async fn record_settlement(&self, id: &str, settlement: Option<&SettleResponse>) {
        let (Some(ledger), Some(s)) = (&self.ledger, settlement) else {
            return;
        };
        let record = Record::Settlement(SettlementRecord {
            id: id.to_owned(),
            time: self.clock.now(),
            success: s.success,
            transaction: (!s.transaction.is_empty()).then(|| s.transaction.clone()),
            payer: s.payer.clone(),
            error: s.error_reason.as_ref().map(|r| r.as_str().to_owned()),
        });
        if let Err(e) = append(ledger, record).await {
            tracing::warn!(
                payment = id,
                "the settlement could not be added to the ledger: {e}"
            );
        }
    }

    /// Runs the hooks, chooses, reserves budget for, signs and records one requirement.
    pub(crate) async fn pay(
        &self,
        method: &reqwest::Method,
        url: &reqwest::Url,
        required: &PaymentRequired,
    ) -> Result<Prepared, Error> {
        let call = RequiredCall {
            method,
            url,
            required,
        };
        for hook in &self.hooks {
            decide(
                hook.as_ref(),
                "on_payment_required",
                hook.on_payment_required(&call),
            )
            .await?;
        }
        let options = options_of(required);
        let origin = url.origin().ascii_serialization();
        let (index, scheme, asset, ticket) = self.choose(&options, &origin)?;
        let reservation = Reservation {
            book: &self.book,
            ticket: Some(ticket),
        };
        let chosen = &options[index];
        let call = PaymentCall {
            method,
            url,
            requirements: chosen,
            asset: &asset,
        };
        for hook in &self.hooks {
            decide(hook.as_ref(), "before_payment", hook.before_payment(&call)).await?;
        }
        let view = chosen
            .view()
            .map_err(|r| Error::Unreadable402(r.to_string()))?;
        // A failure from here on drops the reservation: nothing left the process.
        let payload = scheme.sign(&view).await?;
        let payer = payer_of(&payload);
        let (version, name, document) = match (required, chosen) {
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
        let now = self.clock.now();
        let record = PaymentRecord {
            id: new_id(now),
            time: now,
            url: url.to_string(),
            origin,
            network: view.network.to_string(),
            asset: view.asset.to_owned(),
            amount: view.amount,
            decimals: asset.decimals,
            symbol: asset.symbol.clone(),
            pay_to: view.pay_to.to_owned(),
            scheme: view.scheme.to_owned(),
            x402_version: version.number(),
            payer,
        };
        if let Some(ledger) = &self.ledger {
            // Nothing is sent that is not in the ledger.
            append(ledger, Record::Payment(record.clone())).await?;
        }
        reservation.commit();
        let call = SignedCall {
            method,
            url,
            requirements: chosen,
            payload: &document,
            record: &record,
        };
        for hook in &self.hooks {
            let _ = AssertUnwindSafe(hook.after_payment(&call))
                .catch_unwind()
                .await;
        }
        tracing::info!(scheme = chosen.scheme(), network = chosen.network_text(), amount = %view.amount, "paying");
        Ok(Prepared {
            version,
            requirements: chosen.clone(),
            header: (name, value),
            id: record.id,
        })
    }

    /// The acceptable option the selector picks (its index in `options`), its scheme and asset,
    /// and the ticket of the budget reserved for it.
    #[allow(clippy::type_complexity)]
    fn choose(
        &self,
        options: &[PaymentRequirements],
        origin: &str,
    ) -> Result<(usize, Arc<dyn Scheme>, KnownAsset, u64), Error> {
        let mut book = lock(&self.book);
        let now = self.clock.now();
        book.prune(now, self.policy.horizon());
        if let Some(why) = self
            .policy
            .rate_limit
            .as_ref()
            .and_then(|limit| book.rate_refusal(limit, origin, now))
        {
            return Err(Error::NoAcceptableOption(vec![why]));
        }
        let mut refusals = Vec::new();
        let mut candidates: Vec<((usize, usize), Candidate<'_>, Arc<dyn Scheme>)> = Vec::new();
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
            if let Some(why) = self.policy.refusal(&view, &book.total) {
                refusals.push(format!("{label}: {why}"));
                continue;
            }
            let Some(asset) = self.policy.asset(&view.network, view.asset) else {
                continue;
            };
            let why = self
                .policy
                .recipient_refusal(view.pay_to)
                .or_else(|| book.budget_refusal(&self.policy.budgets, asset, view.amount, now));
            if let Some(why) = why {
                refusals.push(format!("{label}: {why}"));
                continue;
            }
            let candidate = Candidate {
                index: i,
                requirements: option,
                view,
                asset,
            };
            let filtered = self
                .policy
                .filters
                .iter()
                .find_map(|f| (f.check)(&candidate).err().map(|why| (f, why)));
            if let Some((filter, why)) = filtered {
                refusals.push(format!("{label}: filter {}: {why}", filter.name));
                continue;
            }
            let rank = self.policy.rank(&candidate.view);
            candidates.push((rank, candidate, scheme.clone()));
        }
        if candidates.is_empty() {
            return Err(Error::NoAcceptableOption(refusals));
        }
        // Stable: equal ranks keep the seller's order.
        candidates.sort_by_key(|(rank, _, _)| *rank);
        let (mut schemes, list): (Vec<_>, Vec<_>) =
            candidates.into_iter().map(|(_, c, s)| (s, c)).unzip();
        let chosen = match self.selector.select(&list) {
            Some(k) if k < list.len() => k,
            Some(k) => {
                refusals.push(format!(
                    "the selector chose candidate {k} of {} (counted from 0)",
                    list.len()
                ));
                return Err(Error::NoAcceptableOption(refusals));
            }
            None => {
                refusals.push(format!(
                    "the selector declined the {} acceptable option(s)",
                    list.len()
                ));
                return Err(Error::NoAcceptableOption(refusals));
            }
        };
        let candidate = &list[chosen];
        let (index, asset, amount) = (
            candidate.index,
            candidate.asset.clone(),
            candidate.view.amount,
        );
        let key = ledger_key(&candidate.view.network, candidate.view.asset);
        drop(list);
        let ticket = book.reserve(key, origin.to_owned(), amount, now);
        Ok((index, schemes.swap_remove(chosen), asset, ticket))
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

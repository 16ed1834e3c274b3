//! The payment pipeline of a [`Buyer`]: hooks, choice (policy, filters, governance, selector)
//! with its budget reservation, signing, the ledger record.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt as _;
use reqwest::header::{HeaderName, HeaderValue};
use x402_core::header::{self as codec, PAYMENT_SIGNATURE, X_PAYMENT};
use x402_core::wire::{
    PaymentPayload, PaymentPayloadV1, PaymentPayloadV2, PaymentRequired, PaymentRequirements,
    SettleResponse,
};
use x402_core::{Scheme, SchemeError, UnixTime, X402Version};

use crate::client::{Buyer, Error};
use crate::governance::Book;
use crate::hook::{Before, BuyerHook, HookError, PaymentCall, RequiredCall, SignedCall};
use crate::ledger::{Ledger, LedgerError, PaymentRecord, Record, SettlementRecord};
use crate::policy::{KnownAsset, ledger_key};
use crate::select::Candidate;

/// Appends `record` on tokio's blocking pool (the store blocks: file I/O and `fsync`).
async fn append(ledger: &Arc<dyn Ledger>, record: Record) -> Result<(), LedgerError> {
    let ledger = ledger.clone();
    tokio::task::spawn_blocking(move || ledger.append(&record))
        .await
        .unwrap_or_else(|e| Err(LedgerError::Other(format!("the ledger write failed: {e}"))))
}

/// What [`Buyer::pay`] prepared: the signed payment and the header carrying it.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(crate) version: X402Version,
    pub(crate) requirements: PaymentRequirements,
    pub(crate) header: (HeaderName, HeaderValue),
    /// The signed payment the header carries.
    pub(crate) payload: PaymentPayload,
    /// The payment's ledger id.
    pub(crate) id: String,
    /// The `payment-identifier` id it carries.
    pub(crate) payment_id: Option<String>,
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

/// The book, even when a panicking holder poisoned its lock.
pub(crate) fn lock(book: &Mutex<Book>) -> std::sync::MutexGuard<'_, Book> {
    book.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A header a hook asked the request to be retried with, unpaid ([`Before::RetryWith`]).
pub(crate) type RetryHeader = Option<(HeaderName, HeaderValue)>;

/// Runs a hook step that may stop the payment, containing a panic as [`Error::Hook`].
async fn decide(
    hook: &dyn BuyerHook,
    step: &'static str,
    future: impl std::future::Future<Output = Result<Before, HookError>>,
) -> Result<RetryHeader, Error> {
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
        Ok(Ok(Before::RetryWith(name, value))) => Ok(Some((name, value))),
        Ok(Ok(_)) => Ok(None),
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

    /// Runs the on-payment-required hooks: the header of the first that asks for an unpaid
    /// retry, if any.
    pub(crate) async fn on_required(
        &self,
        method: &reqwest::Method,
        url: &reqwest::Url,
        required: &PaymentRequired,
    ) -> Result<RetryHeader, Error> {
        let call = RequiredCall {
            method,
            url,
            required,
        };
        for hook in &self.hooks {
            let step = hook.on_payment_required(&call);
            if let Some(header) = decide(hook.as_ref(), "on_payment_required", step).await? {
                return Ok(Some(header));
            }
        }
        Ok(None)
    }

    /// Chooses, reserves budget for, signs and records one requirement (the
    /// on-payment-required hooks ran before, [`Buyer::on_required`]).
    pub(crate) async fn pay(
        &self,
        method: &reqwest::Method,
        url: &reqwest::Url,
        required: &PaymentRequired,
    ) -> Result<Prepared, Error> {
        if let Some(ledger) = &self.ledger {
            // What other buyers on the same ledger paid meanwhile counts too.
            let ledger = ledger.clone();
            let news = tokio::task::spawn_blocking(move || ledger.news())
                .await
                .unwrap_or_else(|e| {
                    Err(LedgerError::Other(format!("the ledger read failed: {e}")))
                })?;
            let mut book = lock(&self.book);
            for record in &news {
                if let Record::Payment(p) = record {
                    book.add_record(p);
                }
            }
        }
        // Extensions first: one the buyer cannot satisfy stops it before anything is reserved.
        let (extensions, payment_id) = match required {
            PaymentRequired::V2(d) => self.echo_extensions(method, url, d).await?,
            PaymentRequired::V1(_) => (None, None),
        };
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
        let offered = match required {
            PaymentRequired::V2(d) => d.extensions.as_deref(),
            _ => None,
        };
        let signed = scheme.sign_offered(&view, offered).await?;
        let payload = signed.payload;
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
                    // The scheme's entries (a gas-sponsoring permit) on top of the echo the
                    // buyer's extensions prepared.
                    extensions: with_entries(extensions.as_deref(), signed.extensions),
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
            payload: document,
            id: record.id,
            payment_id,
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
}

/// The server's `extensions` echoed, with the buyer's own entries in place of the declarations
/// under their keys (a gas-sponsoring permit, say).
fn with_entries(
    server: Option<&serde_json::value::RawValue>,
    entries: Vec<(String, x402_core::wire::Raw)>,
) -> Option<x402_core::wire::Raw> {
    if entries.is_empty() {
        return server.map(ToOwned::to_owned);
    }
    let mut all = x402_core::extension::read_extensions(server).unwrap_or_default();
    for (key, entry) in entries {
        all.set(key, entry);
    }
    Some(all.to_raw())
}

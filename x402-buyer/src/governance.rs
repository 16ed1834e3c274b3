//! Spending governance: rolling budgets per asset, a per-origin rate limit, and the in-memory
//! book of the payments inside their windows (reserved before signing, rebuilt from the
//! [`ledger`](crate::ledger) when a buyer starts).

use std::collections::HashMap;
use std::time::Duration;

use x402_core::{Amount, Network, UnixTime, price_to_atomic};

use crate::ledger::{PaymentRecord, Record};
use crate::policy::{KnownAsset, format_units, ledger_key, same_address};

/// A rolling budget: at most `amount` of an asset over any `window` (a sliding window: a
/// payment counts until `window` has passed since it was signed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// The window.
    pub window: Duration,
    /// The most that may be paid within it, in the asset's units (`"1.50"`); each asset is
    /// counted on its own, in its own decimals.
    pub amount: String,
    /// Only this asset (network, address); `None` = every asset, each counted separately.
    pub asset: Option<(Network, String)>,
}

impl Budget {
    /// At most `amount` of each asset within any `window`.
    pub fn per(window: Duration, amount: impl Into<String>) -> Self {
        Self {
            window,
            amount: amount.into(),
            asset: None,
        }
    }

    /// At most `amount` of each asset within any hour.
    pub fn per_hour(amount: impl Into<String>) -> Self {
        Self::per(Duration::from_secs(3600), amount)
    }

    /// At most `amount` of each asset within any 24 hours.
    pub fn per_day(amount: impl Into<String>) -> Self {
        Self::per(Duration::from_secs(86_400), amount)
    }

    /// The same budget, for `asset` on `network` only.
    pub fn for_asset(mut self, network: Network, asset: impl Into<String>) -> Self {
        self.asset = Some((network, asset.into()));
        self
    }

    fn applies(&self, network: &Network, asset: &str) -> bool {
        self.asset
            .as_ref()
            .is_none_or(|(n, a)| n == network && same_address(a, asset))
    }
}

/// At most `payments` payments to one origin (`scheme://host[:port]`) within any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// How many payments.
    pub payments: u32,
    /// The sliding window.
    pub window: Duration,
}

/// A window for people: `1h`, `24h`, `90s`.
pub fn format_window(window: Duration) -> String {
    let s = window.as_secs();
    match s {
        s if s != 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s != 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s != 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// One payment inside the windows: reserved (being signed) or signed.
#[derive(Debug, Clone)]
struct Spend {
    ticket: u64,
    at: UnixTime,
    key: String,
    origin: String,
    amount: Amount,
    /// Reserved and not yet signed and stored: never pruned, released or committed.
    reserved: bool,
}

/// The book the budgets and the rate limit are checked against, behind the buyer's lock.
#[derive(Debug, Default)]
pub(crate) struct Book {
    /// Payments inside the longest window (older ones are pruned).
    recent: Vec<Spend>,
    /// Authorized by this buyer over its lifetime, per asset (`Policy::max_total`).
    pub(crate) total: HashMap<String, Amount>,
    next_ticket: u64,
}

/// Whether `at` is inside a `window` ending at `now`.
fn inside(at: UnixTime, now: UnixTime, window: Duration) -> bool {
    now.0.saturating_sub(at.0) < window.as_secs()
}

impl Book {
    /// The book rebuilt from the ledger's payments (prune it to the windows before use).
    pub(crate) fn from_records(records: &[Record]) -> Self {
        let mut book = Self::default();
        for record in records {
            if let Record::Payment(p) = record {
                book.add_record(p);
            }
        }
        book
    }

    /// Counts a payment from the ledger.
    pub(crate) fn add_record(&mut self, p: &PaymentRecord) {
        let Ok(network) = Network::parse(&p.network) else {
            return;
        };
        let ticket = self.ticket();
        self.recent.push(Spend {
            ticket,
            at: p.time,
            key: ledger_key(&network, &p.asset),
            origin: p.origin.clone(),
            amount: p.amount,
            reserved: false,
        });
    }

    fn ticket(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }

    /// Forgets signed payments older than `horizon` (reservations stay until they are
    /// committed or released).
    pub(crate) fn prune(&mut self, now: UnixTime, horizon: Duration) {
        self.recent
            .retain(|s| s.reserved || inside(s.at, now, horizon));
    }

    /// Why a payment to `origin` is refused by the rate limit, if it is.
    pub(crate) fn rate_refusal(
        &self,
        limit: &RateLimit,
        origin: &str,
        now: UnixTime,
    ) -> Option<String> {
        let made = self
            .recent
            .iter()
            .filter(|s| s.origin == origin && inside(s.at, now, limit.window))
            .count();
        (made >= limit.payments as usize).then(|| {
            format!(
                "{origin} was paid {made} time(s) in the last {}, the most allowed per origin",
                format_window(limit.window)
            )
        })
    }

    /// What was paid of `key` within `window` of `now`.
    fn used(&self, key: &str, now: UnixTime, window: Duration) -> Amount {
        let sum = self
            .recent
            .iter()
            .filter(|s| s.key == key && inside(s.at, now, window))
            .fold(Amount::ZERO.get(), |sum, s| {
                sum.saturating_add(s.amount.get())
            });
        Amount::new(sum)
    }

    /// Why paying `amount` of `asset` breaks one of `budgets`, if it does.
    pub(crate) fn budget_refusal(
        &self,
        budgets: &[Budget],
        asset: &KnownAsset,
        amount: Amount,
        now: UnixTime,
    ) -> Option<String> {
        let key = ledger_key(&asset.network, &asset.address);
        let shown = |a: Amount| format!("{} {}", format_units(a, asset.decimals), asset.symbol);
        for budget in budgets
            .iter()
            .filter(|b| b.applies(&asset.network, &asset.address))
        {
            let limit = match price_to_atomic(&budget.amount, asset.decimals) {
                Ok(l) => l,
                Err(e) => {
                    return Some(format!(
                        "the budget of {} per {} is unusable: {e}",
                        budget.amount,
                        format_window(budget.window)
                    ));
                }
            };
            let used = self.used(&key, now, budget.window);
            if used.get().saturating_add(amount.get()) > limit.get() {
                let window = format_window(budget.window);
                return Some(format!(
                    "it costs {}, and {} of the budget of {} per {window} was paid in the last \
                     {window}",
                    shown(amount),
                    shown(used),
                    shown(limit),
                ));
            }
        }
        None
    }

    /// Reserves a payment; the ticket releases it.
    pub(crate) fn reserve(
        &mut self,
        key: String,
        origin: String,
        amount: Amount,
        now: UnixTime,
    ) -> u64 {
        let ticket = self.ticket();
        let total = self.total.entry(key.clone()).or_default();
        *total = Amount::new(total.get().saturating_add(amount.get()));
        self.recent.push(Spend {
            ticket,
            at: now,
            key,
            origin,
            amount,
            reserved: true,
        });
        ticket
    }

    /// Turns a reservation into a signed, stored payment: it counts until its windows pass.
    pub(crate) fn commit(&mut self, ticket: u64) {
        if let Some(spend) = self.recent.iter_mut().find(|s| s.ticket == ticket) {
            spend.reserved = false;
        }
    }

    /// Gives a reservation back (the payment was never signed, or never left the process).
    pub(crate) fn release(&mut self, ticket: u64) {
        if let Some(i) = self
            .recent
            .iter()
            .position(|s| s.ticket == ticket && s.reserved)
        {
            let spend = self.recent.swap_remove(i);
            if let Some(total) = self.total.get_mut(&spend.key) {
                *total = Amount::new(total.get().saturating_sub(spend.amount.get()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usdc() -> KnownAsset {
        KnownAsset {
            network: Network::parse("eip155:84532").unwrap(),
            address: "0xAbC0000000000000000000000000000000000001".into(),
            decimals: 6,
            symbol: "USDC".into(),
        }
    }

    fn key() -> String {
        let a = usdc();
        ledger_key(&a.network, &a.address)
    }

    #[test]
    fn a_budget_slides_with_time() {
        let mut book = Book::default();
        let hourly = [Budget::per_hour("0.02")];
        let cent = Amount::from(10_000);
        let t0 = UnixTime(1_000_000);
        book.reserve(key(), "o".into(), cent, t0);
        assert_eq!(book.budget_refusal(&hourly, &usdc(), cent, t0), None);
        book.reserve(key(), "o".into(), cent, UnixTime(t0.0 + 1800));
        let refusal = book
            .budget_refusal(&hourly, &usdc(), cent, UnixTime(t0.0 + 1800))
            .unwrap();
        assert!(
            refusal.contains("0.02 USDC of the budget of 0.02 USDC per 1h"),
            "{refusal}"
        );
        // One second before the first payment leaves the window: still refused.
        assert!(
            book.budget_refusal(&hourly, &usdc(), cent, UnixTime(t0.0 + 3599))
                .is_some()
        );
        // Once it has left, one cent fits again, two do not.
        let later = UnixTime(t0.0 + 3600);
        assert_eq!(book.budget_refusal(&hourly, &usdc(), cent, later), None);
        assert!(
            book.budget_refusal(&hourly, &usdc(), Amount::from(20_000), later)
                .is_some()
        );
        // Another asset is counted on its own.
        let mut other = usdc();
        other.address = "0x00000000000000000000000000000000000000ff".into();
        assert_eq!(
            book.budget_refusal(&hourly, &other, Amount::from(20_000), t0),
            None
        );
        // A budget for one asset does not bind another.
        let only_other = [Budget::per_hour("0").for_asset(other.network.clone(), &other.address)];
        assert_eq!(book.budget_refusal(&only_other, &usdc(), cent, t0), None);
        assert!(book.budget_refusal(&only_other, &other, cent, t0).is_some());
        // The address compares case-insensitively (EVM).
        let lower =
            [Budget::per_hour("0").for_asset(usdc().network, usdc().address.to_lowercase())];
        assert!(book.budget_refusal(&lower, &usdc(), cent, t0).is_some());
    }

    #[test]
    fn a_day_budget_counts_what_an_hour_forgets_and_release_gives_back() {
        let mut book = Book::default();
        let budgets = [Budget::per_hour("1"), Budget::per_day("0.03")];
        let cent = Amount::from(10_000);
        let t0 = UnixTime(5_000_000);
        for h in 0..3 {
            let ticket = book.reserve(key(), "o".into(), cent, UnixTime(t0.0 + h * 7200));
            book.commit(ticket);
        }
        let now = UnixTime(t0.0 + 6 * 3600);
        let refusal = book.budget_refusal(&budgets, &usdc(), cent, now).unwrap();
        assert!(refusal.contains("per 1d"), "{refusal}");
        let ticket = book.reserve(key(), "o".into(), cent, now);
        book.release(ticket);
        assert_eq!(book.total[&key()], Amount::from(30_000));
        // The first payment leaves the day.
        let next_day = UnixTime(t0.0 + 86_400);
        assert_eq!(book.budget_refusal(&budgets, &usdc(), cent, next_day), None);
        let pending = book.reserve(key(), "o".into(), cent, UnixTime(0));
        book.prune(next_day, Duration::from_secs(86_400));
        // The first payment is forgotten; a reservation is kept whatever its age.
        assert_eq!(book.recent.len(), 3);
        book.release(pending);
        assert_eq!(book.recent.len(), 2);
        assert_eq!(book.total[&key()], Amount::from(30_000));
    }

    #[test]
    fn the_rate_limit_counts_per_origin() {
        let mut book = Book::default();
        let limit = RateLimit {
            payments: 2,
            window: Duration::from_secs(60),
        };
        let t0 = UnixTime(1_000);
        book.reserve(key(), "http://a".into(), Amount::from(1), t0);
        book.reserve(key(), "http://a".into(), Amount::from(1), UnixTime(1_010));
        let refusal = book
            .rate_refusal(&limit, "http://a", UnixTime(1_020))
            .unwrap();
        assert!(
            refusal.contains("http://a was paid 2 time(s) in the last 1m"),
            "{refusal}"
        );
        assert_eq!(book.rate_refusal(&limit, "http://b", UnixTime(1_020)), None);
        assert_eq!(book.rate_refusal(&limit, "http://a", UnixTime(1_060)), None);
    }

    #[test]
    fn an_unusable_budget_refuses() {
        let book = Book::default();
        let refusal = book
            .budget_refusal(
                &[Budget::per_hour("0.0000001")],
                &usdc(),
                Amount::from(1),
                UnixTime(0),
            )
            .unwrap();
        assert!(refusal.contains("unusable"), "{refusal}");
    }

    #[test]
    fn windows_read_well() {
        assert_eq!(format_window(Duration::from_secs(3600)), "1h");
        assert_eq!(format_window(Duration::from_secs(86_400)), "1d");
        assert_eq!(format_window(Duration::from_secs(90)), "90s");
        assert_eq!(format_window(Duration::from_secs(120)), "2m");
    }
}

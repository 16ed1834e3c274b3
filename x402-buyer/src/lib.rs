#![doc = include_str!("../README.md")]

mod client;
pub mod extensions;
pub mod governance;
pub mod hook;
pub mod ledger;
#[cfg(feature = "middleware")]
pub mod middleware;
mod pay;
mod policy;
mod retry;
pub mod select;
mod sign;

#[cfg(feature = "cli")]
pub mod cli;

pub use client::{Buyer, Error, Paid, Payment, read_402, settlement_of, settlement_pending};
pub use extensions::{BuyerExtension, ExtensionCall};
pub use governance::{Budget, RateLimit};
pub use hook::{Before, BuyerHook, PaymentCall, RequiredCall, SignedCall};
pub use ledger::{JsonlLedger, Ledger, LedgerError, Record};
pub use policy::{KnownAsset, Policy, format_units};
pub use retry::Retry;
pub use select::{Candidate, Selector};
pub use sign::SignedPayment;

#[cfg(test)]
mod tests;

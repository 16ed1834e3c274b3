#![doc = include_str!("../README.md")]

mod client;
#[cfg(feature = "middleware")]
pub mod middleware;
mod policy;

#[cfg(feature = "cli")]
pub mod cli;

pub use client::{Buyer, Error, Paid, Payment, read_402, settlement_of, settlement_pending};
pub use policy::{KnownAsset, Policy, format_units};

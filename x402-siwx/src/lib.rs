#![doc = include_str!("../README.md")]

#[cfg(feature = "buyer")]
mod client;
#[cfg(feature = "evm")]
pub mod evm;
pub mod proof;
pub mod reason;
#[cfg(feature = "seller")]
mod server;
pub mod store;
#[cfg(feature = "svm")]
pub mod svm;
pub mod time;

#[cfg(feature = "buyer")]
pub use client::SiwxBuyer;
pub use proof::{Challenge, HEADER, KEY, Proof, SupportedChain};
pub use reason::Refusal;
#[cfg(feature = "seller")]
pub use server::{AccessPolicy, ConfigError, SiwxExtension, SiwxSeller};
pub use store::{
    MemoryHistory, MemoryNonces, NonceStore, PaymentHistory, SettlementBacked, StoreError,
};

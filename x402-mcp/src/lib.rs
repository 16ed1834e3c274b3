#![doc = include_str!("../README.md")]

#[cfg(feature = "client")]
mod client;
mod meta;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "client")]
pub use client::{Error, PaidCall, PayingClient};
pub use meta::{
    PAYMENT_META_KEY, PAYMENT_RESPONSE_META_KEY, payment_required_of, payment_required_result,
    settlement_of,
};
#[cfg(feature = "server")]
pub use server::{PaidService, PaidTools, ToolCall};

/// The rmcp crate this one is built on (the version whose types its API takes and returns).
pub use rmcp;

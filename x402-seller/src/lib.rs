#![doc = include_str!("../README.md")]

mod config;
mod flow;
mod layer;
mod offers;
mod response;

pub use config::{
    Accept, Charge, ConfigError, PriceFn, Route, Seller, SellerOptions, SettleTiming,
};
pub use layer::{Paywall, PaywallService};

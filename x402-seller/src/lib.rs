#![doc = include_str!("../README.md")]

mod config;
mod extensions;
mod flow;
mod layer;
mod offers;
mod overrides;
mod resource;
mod response;
mod supported;

pub use config::{
    Accept, Charge, ConfigError, PriceFn, Route, Seller, SellerOptions, SettleTiming,
};
pub use extensions::{RawExtension, RequestInfo, RouteExtension};
pub use layer::{Paywall, PaywallService};
pub use overrides::{SETTLEMENT_OVERRIDES, SettlementOverrides};

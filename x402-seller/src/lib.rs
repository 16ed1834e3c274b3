#![doc = include_str!("../README.md")]

mod body;
mod config;
mod extensions;
mod facilitators;
mod flow;
pub mod hook;
mod layer;
mod manifest;
mod offers;
mod overrides;
mod payment;
mod payment_id;
mod paywall;
mod resource;
mod response;
mod settle;
mod supported;

pub use body::{BodyContext, BodyFn, CustomBody};
pub use config::{
    Accept, Charge, ConfigError, FACILITATOR_EXTRA, MAX_MEMO_BYTES, PayToFn, PriceFn, Route,
    Seller, SellerOptions, SettleTiming,
};
pub use extensions::{RawExtension, RequestInfo, RouteExtension};
pub use facilitators::{Unreachable, UnsupportedOption, UnusableOption, ValidationError};
pub use hook::{Access, HookError, SellerCall, SellerHook};
pub use layer::{Paywall, PaywallService};
pub use manifest::{MANIFEST_PATH, MANIFEST_PATH_JSON};
pub use overrides::{SETTLEMENT_OVERRIDES, SettlementOverrides};
pub use payment::{FreeAccess, VerifiedPayment};
pub use payment_id::{PaymentIdOptions, PaymentIdentifier, REPLAY_HEADER};
pub use paywall::{AssetLabel, PaywallConfig};

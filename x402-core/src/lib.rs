#![doc = include_str!("../README.md")]

pub mod allow;
pub mod amount;
#[cfg(feature = "client")]
pub mod client;
pub mod clock;
pub mod extension;
pub mod facilitator;
pub mod header;
pub mod hook;
pub mod json;
pub mod network;
pub mod reason;
pub mod registry;
pub mod roles;
pub mod scheme;
pub mod settlement;
pub mod timing;
pub mod transport;
mod version;
mod view;
pub mod wire;

pub use allow::AllowList;
pub use amount::{Amount, DecimalError, PriceError, UnixTime, price_to_atomic};
pub use clock::{Clock, SharedClock, ShiftedClock, SystemClock, system_clock};
pub use facilitator::{
    DispatchError, Facilitator, FacilitatorError, LocalFacilitator, ReconcileLine, Unread,
};
pub use hook::{Before, FacilitatorHook, Failure, HookCall, Operation};
pub use network::{Network, NetworkError, NetworkPattern};
pub use reason::Reason;
pub use registry::{Catalogue, DuplicateId, Registry, SchemeConfig, SchemeDescriptor, Shared};
pub use roles::{BuyerRole, FacilitatorRole, Roles, SellerRole};
pub use scheme::{
    Price, PriceRequest, Reconciled, Role, Scheme, SchemeError, SchemeStatus, Settlement, Signed,
    SignerStatus, Verdict,
};
pub use settlement::{
    Claim, ClaimToken, Intent, KeyedLocks, MemoryStore, Outcome, PayerCooldown, PayerTurn,
    PaymentId, Record, SettlementStore, StoreCounts, StoreError, StoreOptions,
};
pub use timing::SettleTimeouts;
pub use version::X402Version;
pub use view::{PayloadView, PaymentContext, Rejection, RequirementsView};

#[doc(hidden)]
pub use inventory;
